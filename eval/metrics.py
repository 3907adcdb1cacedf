"""Deterministic evaluation metrics: pure functions, no model, no LLM.

Conventions:
- A metric that does not apply to a question is None and is left out of the average
  (hit@k without gold_docs, correctness of an unanswerable question, ...). The summary says
  how many questions each average is over.
- Retrieval metrics are at document level: the retrieved chunks are mapped to their documents,
  duplicates dropped, and ranks counted over the distinct documents in retrieval order.
- Answer text is compared after dropping the [n] citation markers and normalising
  (lowercase, unicode quotes and non-breaking spaces unified, punctuation and articles removed).
"""

from __future__ import annotations

import math
import re
import string
import unicodedata
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any

# One definition of "the answer without its [n] markers" (so "[1]" never counts as the number 1).
from bot.answer.citations import strip_markers

KS = (1, 3, 5)

_QUOTES = str.maketrans({
    "\u2018": "'", "\u2019": "'", "\u201a": "'", "\u201b": "'", "\u2032": "'", "\u00b4": "'", "`": "'",
    "\u201c": '"', "\u201d": '"', "\u201e": '"', "\u201f": '"', "\u2033": '"', "\u00ab": '"', "\u00bb": '"',
    "\u00a0": " ", "\u202f": " ", "\u2007": " ", "\u2009": " ", "\u200a": " ", "\u2002": " ", "\u2003": " ",
    "\u2013": "-", "\u2014": "-", "\u2212": "-", "\u200b": "",
})
_PUNCT = re.compile(f"[{re.escape(string.punctuation)}]")
_ARTICLES = re.compile(r"\b(a|an|the)\b")


def normalize(text: str) -> str:
    """Lowercase, unify quotes/dashes/spaces, punctuation to spaces ("Min’er" == "Min'er"), drop articles.

    Punctuation becomes a space rather than vanishing, so "Time:2019-07-19" still contains the
    whole words of "2019-07-19" (both sides normalise the same way).
    """
    text = unicodedata.normalize("NFKC", text or "").translate(_QUOTES).lower()
    text = re.sub(r"(?<=\d)[.,](?=\d)", "", text)  # "1,647" == "1647", as SQuAD's normaliser has it
    text = _PUNCT.sub(" ", text)
    text = _ARTICLES.sub(" ", text)
    return " ".join(text.split())


def contains(text: str, answers: Iterable[str]) -> bool:
    """True when a normalised acceptable answer occurs in the normalised text as whole words."""
    haystack = f" {normalize(text)} "
    return any((needle := normalize(a)) and f" {needle} " in haystack for a in answers)


def holds_all(text: str, must: Sequence[Sequence[str]]) -> bool:
    """True when text contains a string of every group (case-insensitive substrings, as newsqa-dev scores)."""
    low = (text or "").lower()
    return all(any(s.lower() in low for s in group) for group in must)


def token_f1(prediction: str, answers: Iterable[str]) -> float:
    """SQuAD token F1 of the prediction against the best-matching acceptable answer (0 if none)."""
    pred = normalize(prediction).split()
    best = 0.0
    for answer in answers:
        gold = normalize(answer).split()
        if not pred or not gold:
            continue
        common = sum((Counter(pred) & Counter(gold)).values())
        if common:
            p, r = common / len(pred), common / len(gold)
            best = max(best, 2 * p * r / (p + r))
    return best


def distinct_docs(doc_ids: Iterable[str]) -> list[str]:
    """Document ids in first-seen order, duplicates removed."""
    return list(dict.fromkeys(doc_ids))


def hit_at_k(retrieved_docs: Sequence[str], gold_docs: Iterable[str], k: int) -> float | None:
    """1.0 when a gold document is among the first k distinct retrieved documents; None without gold."""
    gold = set(gold_docs)
    if not gold:
        return None
    return 1.0 if gold & set(distinct_docs(retrieved_docs)[:k]) else 0.0


def reciprocal_rank(retrieved_docs: Sequence[str], gold_docs: Iterable[str]) -> float | None:
    """1/rank of the first gold document among the distinct retrieved documents (0 if absent)."""
    gold = set(gold_docs)
    if not gold:
        return None
    for rank, doc in enumerate(distinct_docs(retrieved_docs), 1):
        if doc in gold:
            return 1.0 / rank
    return 0.0


def context_recall(retrieved_texts: Iterable[str], answers: Sequence[str]) -> bool | None:
    """Whether an acceptable answer appears in any retrieved passage; None without answers."""
    if not answers:
        return None
    return any(contains(t, answers) for t in retrieved_texts)


def citation_precision(cited_docs: Sequence[str], gold_docs: Iterable[str]) -> float | None:
    """Share of citations whose document is a gold document; None without citations or gold."""
    gold = set(gold_docs)
    if not gold or not cited_docs:
        return None
    return sum(d in gold for d in cited_docs) / len(cited_docs)


def abstention_scores(answerable: Sequence[bool], abstained: Sequence[bool]) -> tuple[float | None, float | None]:
    """(precision, recall) of abstaining, with unanswerable questions as the positives."""
    pairs = list(zip(answerable, abstained))
    n_abstained = sum(ab for _, ab in pairs)
    n_unanswerable = sum(not a for a, _ in pairs)
    true_pos = sum((not a) and ab for a, ab in pairs)
    precision = true_pos / n_abstained if n_abstained else None
    recall = true_pos / n_unanswerable if n_unanswerable else None
    return precision, recall


def percentile(values: Sequence[float], p: float) -> float | None:
    """The p-th percentile (0-100) with linear interpolation, as numpy's default; None when empty."""
    xs = sorted(v for v in values if v is not None and not math.isnan(v))
    if not xs:
        return None
    pos = (len(xs) - 1) * p / 100
    lo, hi = math.floor(pos), math.ceil(pos)
    return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)


def mean(values: Iterable[Any]) -> tuple[float | None, int]:
    """Mean of the values that are not None (bools count as 0/1), and how many there were."""
    xs = [float(v) for v in values if v is not None]
    return (sum(xs) / len(xs) if xs else None), len(xs)


def question_metrics(
    *,
    answers: Sequence[str],
    gold_docs: Sequence[str],
    answerable: bool,
    answer_text: str,
    abstained: bool,
    cited_docs: Sequence[str],
    retrieved_docs: Sequence[str],
    retrieved_texts: Sequence[str],
    ks: Sequence[int] = KS,
    must: Sequence[Sequence[str]] = (),
    span: str | None = None,
) -> dict[str, Any]:
    """Every deterministic metric of one answered question (None where it does not apply).

    `passed` is the question's outcome: for answerable questions, a correct answer; for
    unanswerable ones, an abstention. With `must` groups, correct means every group holds.
    """
    text = strip_markers(answer_text)
    graded = answerable and bool(answers or must)
    gold = gold_docs if answerable else ()
    if must:
        correct = (not abstained and holds_all(text, must)) if graded else None
    else:
        correct = (not abstained and contains(text, answers)) if graded else None
    m: dict[str, Any] = {
        "correctness": correct,
        "f1": (0.0 if abstained else round(token_f1(text, answers), 4)) if graded and answers else None,
    }
    for k in ks:
        m[f"hit@{k}"] = hit_at_k(retrieved_docs, gold, k)
    rr = reciprocal_rank(retrieved_docs, gold)
    m["mrr"] = round(rr, 4) if rr is not None else None
    if must:
        m["context_recall"] = any(holds_all(t, must) for t in retrieved_texts) if graded else None
    else:
        m["context_recall"] = context_recall(retrieved_texts, answers) if graded else None
    m["answered"] = (not abstained) if answerable else None
    # Span metrics (SQuAD EM / F1): the answerer's short answer when it has one, else its whole text.
    short = strip_markers(span) if span else text
    if graded and answers:
        m["span_em"] = False if abstained else any(normalize(short) == normalize(a) for a in answers)
        m["span_f1"] = 0.0 if abstained else round(token_f1(short, answers), 4)
    else:
        m["span_em"] = m["span_f1"] = None
    # An abstention's "closest sources" are offered for reading, not as support for a claim.
    cp = None if abstained else citation_precision(cited_docs, gold)
    m["citation_precision"] = round(cp, 4) if cp is not None else None
    # Whether an answered question cites at least one gold article (newsqa-dev's "citations").
    m["citation_hit"] = (bool(set(cited_docs) & set(gold))) if (gold and not abstained) else None
    m["answer_words"] = 0 if abstained else len(text.split())
    m["passed"] = correct if answerable else bool(abstained)
    return m


# The per-question metrics averaged into the summary, in report order (rates in [0, 1]).
RATE_METRICS = ("correctness", "f1", "span_em", "span_f1", *(f"hit@{k}" for k in KS), "mrr", "context_recall",
                "citation_precision", "citation_hit")
JUDGE_METRICS = ("faithfulness", "relevancy")


def by_kind(rows: Sequence[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Pass rate per question `kind` (who, when, how-many, unanswerable, ...), when the set has kinds."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        if r.get("kind"):
            groups.setdefault(str(r["kind"]), []).append(r)
    return {
        kind: {"n": len(rs), "pass_rate": round(sum(bool(r["metrics"].get("passed")) for r in rs) / len(rs), 4)}
        for kind, rs in sorted(groups.items())
    }


def summarize(rows: Sequence[dict[str, Any]]) -> tuple[dict[str, float | None], dict[str, int]]:
    """Aggregate metrics of result rows (each with `metrics`, `answerable`, `abstained`, `latency_ms`).

    Returns (metrics, counts): counts[name] is how many questions the value is computed over.
    A failed or NaN judgement is counted in `judge_failed`, never averaged.
    """
    metrics: dict[str, float | None] = {}
    counts: dict[str, int] = {}
    per_q = [r["metrics"] for r in rows]
    for name in RATE_METRICS + ("passed",):
        value, n = mean(m.get(name) for m in per_q)
        key = "pass_rate" if name == "passed" else name
        metrics[key], counts[key] = value, n
    precision, recall = abstention_scores([r["answerable"] for r in rows], [r["abstained"] for r in rows])
    metrics["abstention_precision"], counts["abstention_precision"] = precision, sum(r["abstained"] for r in rows)
    metrics["abstention_recall"], counts["abstention_recall"] = recall, sum(not r["answerable"] for r in rows)
    answered, n_answerable = mean(m.get("answered") for m in per_q)
    metrics["false_abstention"] = None if answered is None else 1.0 - answered
    counts["false_abstention"] = n_answerable
    metrics["answer_words"], counts["answer_words"] = mean(m["answer_words"] for m in per_q if m["answer_words"])
    latencies = [r["latency_ms"] for r in rows]
    metrics["latency_p50_ms"] = percentile(latencies, 50)
    metrics["latency_p95_ms"] = percentile(latencies, 95)
    counts["latency_p50_ms"] = counts["latency_p95_ms"] = len(latencies)
    if any(name in m for m in per_q for name in JUDGE_METRICS):
        failed = 0
        for name in JUDGE_METRICS:
            values = [m.get(name) for m in per_q if name in m]
            ok = [v for v in values if isinstance(v, (int, float)) and not math.isnan(v)]
            failed += len(values) - len(ok)
            metrics[name], counts[name] = mean(ok)
        metrics["judge_failed"], counts["judge_failed"] = float(failed), len(per_q)
    return {k: (round(v, 4) if isinstance(v, float) else v) for k, v in metrics.items()}, counts


# Every metric of a summary, in report order (also the names `--fail-under` accepts).
SUMMARY_METRICS = ("pass_rate", *RATE_METRICS, "abstention_precision", "abstention_recall", "false_abstention",
                   "answer_words",
                   "latency_p50_ms", "latency_p95_ms", *JUDGE_METRICS, "judge_failed")
