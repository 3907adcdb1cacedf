"""Choose how the reader abstains, and how many chunks it reads, on validation data only.

    python -m train.calibrate [--model bot/models/reader] [--write]

Validation sets (never the measurement sets):
- `squad-val`: the 7 SQuAD articles of the validation split, indexed as a corpus, all their questions.
- `rtqa-val`: RealTime QA 2020-2024 questions of the validation quiz dates (train/data/val.jsonl),
  each question's evidence an article of one corpus.
Each question is asked through the real pipeline (hybrid retrieval + rerank) once as it is (answerable)
and twice made unanswerable:
- "elsewhere": every chunk of its gold document and every chunk holding an answer removed from what the
  reader sees (related articles, no answer);
- "cut": the same chunks in the same order with every sentence holding an answer cut out (the article
  about the question is there but does not say: the commoner case when people ask about the news).
The objective is the expected share of questions handled right when --answerable-share of them (default
0.75: most questions people ask are about what the articles say) are answerable: share x (answered
correctly | answerable) + (1 - share) x (abstained | unanswerable), the abstention averaged over the two
kinds and the result over the two sets.
1. A grid over reader depth, rank penalty, coverage weights, type penalty and threshold picks the depth,
   the rank penalty, the weights of the question coverage added to each finding's margin
   (bot.answer.coverage), the penalty for a span that is not the kind of answer asked for
   (bot.answer.answer_type), and the threshold on that score (used when the gate is off, and for a second
   answer sentence). Reading deeper and weighing coverage or type must each gain 0.003 to be chosen, and
   they may not cost answers: a setting with coverage or type penalty is eligible only where its false
   abstention on each set is no higher than the margin alone's (`--allow-more-false-abstention` lifts
   that: on the shipped model the objective then chose a setting that abstained more on validation and,
   on newsqa-dev, turned right answers into abstentions, docs/benchmarks.md). The run also prints the
   weights chosen on one set and scored on the other beside the margin alone, and a paired bootstrap of
   the weights against the margin alone: whether they carry beyond the data they were fitted on.
2. The answer gate: a logistic regression over the best finding's span score, its no-answer score, its
   chunk's rank and the runner-up's margin (bot.answer.reader.GATE_FEATURES), weighted as the objective
   weighs the questions, its cut-off chosen for the objective. It is also fitted on each set alone and
   scored on the other, beside the margin threshold, so the table shows whether it carries across data.
`--write` stores the choice in the model's reader.json (with coverage weights, also the threshold chosen
for the margin alone, `margin_threshold`, which applies where no index gives coverage); the gate only
with `--gate` (on the shipped model it won on validation data but did not carry to the measurement sets:
see its model card).
`--records FILE --against OTHER` compares two models (each one's records file) at the settings the grid picks
for each, with a paired bootstrap over the questions: how a candidate model is accepted or turned down.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
DEPTHS = (3, 4, 5, 6, 8)


def _rtqa_val(data_dir: Path, val_file: Path, limit: int | None):
    """The RealTime QA validation questions and their evidence as a corpus (an eval Dataset)."""
    from eval.datasets import Dataset, _write_corpus
    from eval.questions import EvalQuestion, write_questions

    rows = [json.loads(x) for x in val_file.read_text(encoding="utf-8").splitlines() if x.strip()]
    rows = [r for r in rows if r["source"] == "realtimeqa" and r["answerable"]]
    if limit:
        rows = rows[:limit]
    docs, questions = {}, []
    for r in rows:
        doc_id = f"rtqa/{r['id']}.txt"
        docs[doc_id] = f"News quiz evidence {r['id'].split('_')[0]}\n\n{r['context']}\n"
        questions.append(EvalQuestion(r["id"], r["question"], tuple(r["answers"]), (doc_id,)))
    root = data_dir / "datasets" / "rtqa_val"
    _write_corpus(root / "corpus", docs)
    write_questions(root / "questions.jsonl", questions)
    return Dataset("rtqa-val", "rtqa_val", root, questions, len(docs))


PENALTIES = (0.0, 0.25, 0.5, 1.0, 2.0)


def cut_answers(chunk, answers):
    """The chunk with every sentence holding an answer cut out (None when under 10 words are left)."""
    from bot.answer.reader import sentence_spans
    from bot.types import Sentence
    from eval.metrics import contains

    parts, sentences, pos, size = [], [], 0, 0
    for a, b in sentence_spans(chunk):
        if contains(chunk.text[a:b], answers):
            # The sentence goes; the text before it (headings, line breaks) stays.
            parts.append(chunk.text[pos:a])
            size += a - pos
            pos = b
            continue
        gap, piece = chunk.text[pos:a], chunk.text[a:b]
        parts += [gap, piece]
        sentences.append(Sentence(size + len(gap), size + len(gap) + len(piece)))
        size += len(gap) + len(piece)
        pos = b
    joined = "".join(parts) + chunk.text[pos:]
    if len(joined.split()) < 10 or contains(joined, answers):
        return None
    return replace(chunk, text=joined, sentences=tuple(sentences), parts=())


# A raw finding, as stored in the records: [span score, no-answer score, chunk rank, sentence coverage,
# neighbourhood coverage, answer-type mismatch (0 or 1)]; an answerable question's findings add [answered
# correctly, answer words] for the answer composed from that finding, so any ordering rule can be scored
# without reading again.
RECORDS_VERSION = 3
OLD_RECORDS = "these calibration records come from an older train.calibrate: run it again without them"
OK, WORDS = 6, 7  # where an answerable question's finding keeps its correctness and answer length


def _raw(found) -> list[list]:
    """[span score, no-answer score, rank, sentence coverage, neighbourhood coverage, type mismatch] of each finding."""
    return [[f.span.score, f.span.null, f.rank, f.cover.sentence, f.cover.near, float(f.mismatch)] for f in found]


def _score(f, w: tuple[float, float, float]):
    """A raw finding's score as ReaderAnswerer.score computes it with weights w (coverage, type penalty);
    f may also be the findings' columns stacked (an array whose rows are the raw fields)."""
    return f[0] - f[1] + w[0] * f[3] + w[1] * f[4] - w[2] * f[5]


def _ordered(raw: list, n: int, p: float, w: tuple[float, float, float] = (0.0, 0.0, 0.0)) -> list:
    """The raw findings of the top n chunks, best first as ReaderAnswerer.order ranks them."""
    return sorted((f for f in raw if f[2] < n), key=lambda f: _score(f, w) - p * f[2], reverse=True)


def _top(raw: list, n: int, p: float, w: tuple[float, float, float]):
    """The finding the reader would answer from, or None when it found nothing."""
    inside = [f for f in raw if f[2] < n]
    return max(inside, key=lambda f: _score(f, w) - p * f[2]) if inside else None


def observe(pipeline, answerer, questions, depth: int) -> list[dict]:
    """Per question, every finding (see RECORDS_VERSION) as asked ("a", each with the correctness of the
    answer composed from it) and made unanswerable both ways ("u": elsewhere, "c": cut)."""
    from eval.metrics import contains

    out = []
    for q in questions:
        chunks = pipeline.retrieve(q.question, k=depth + 8)
        every = answerer.find(q.question, chunks)
        found = [f for f in every if f.rank < depth]
        rec = {"id": q.id, "version": RECORDS_VERSION}
        answered = []
        for f in found:
            # The second part of a two-part answer may come from any other finding, best first.
            text = answerer.compose(q.question, chunks, [f] + [g for g in found if g is not f]).text
            answered.append([bool(contains(text, q.answers)), len(text.split())])
        # Unanswerable, "elsewhere": the same findings without the answer's chunks, ranked among what is left.
        bad = {c.id for c in chunks if c.doc_id in q.gold_docs or contains(c.text, q.answers)}
        kept_rank = {c.id: i for i, c in enumerate(c for c in chunks if c.id not in bad)}
        fu = [replace(f, rank=kept_rank[f.chunk.id]) for f in every
              if f.chunk.id in kept_rank and kept_rank[f.chunk.id] < depth]
        # Unanswerable, "cut": the same chunks, in the same places, with the answer's sentences cut out.
        cut = [(i, c2) for i, c in enumerate(chunks[:depth]) if (c2 := cut_answers(c, q.answers)) is not None]
        fc = [replace(f, rank=cut[f.rank][0]) for f in answerer.find(q.question, [c for _, c in cut])]
        rec["raw"] = {"a": [r + a for r, a in zip(_raw(found), answered)], "u": _raw(fu), "c": _raw(fc)}
        # The question and each finding's span, so that `retype` can re-check answer types without reading.
        rec["question"] = q.question
        rec["spans"] = {k: [f.chunk.text[f.span.start : f.span.end] for f in fs]
                        for k, fs in (("a", found), ("u", fu), ("c", fc))}
        # And each finding's sentence, for a sentence scorer's verdict (train.sentence_scorer --records).
        rec["sentences"] = {k: [f.sentence for f in fs] for k, fs in (("a", found), ("u", fu), ("c", fc))}
        out.append(rec)
    return out


def retype(results: dict[str, list[dict]]) -> None:
    """Set every finding's answer-type mismatch from its stored span, as ReaderAnswerer.covered does with
    the answer_type rules of this checkout (so records stay valid when those rules change)."""
    from bot.answer.reader import wrong_kind

    _ARRAYS.clear()  # the findings change in place
    for recs in results.values():
        for r in recs:
            if r.get("version") != RECORDS_VERSION:
                raise ValueError(OLD_RECORDS)
            for k, spans in r["spans"].items():
                for f, span in zip(r["raw"][k], spans):
                    f[5] = float(wrong_kind(r["question"], span))


THRESHOLDS = np.arange(-6.0, 32.01, 0.25)  # the scores (margin plus weighted coverage) the grid tries


# Weights (sentence coverage, neighbourhood coverage, answer-type penalty) the grid tries; (0, 0, 0) is
# the reader's margin alone. The type penalty is chosen after the grid (choose_type_penalty).
COVERAGE_WEIGHTS = tuple((a, b, 0.0) for a in (0.0, 4.0, 8.0, 12.0, 16.0, 24.0, 32.0) for b in (0.0, 4.0, 8.0, 16.0))
NO_COVERAGE = ((0.0, 0.0, 0.0),)
TYPE_PENALTIES = (2.0, 4.0, 8.0, 16.0)

_ARRAYS: dict[tuple[int, str], tuple] = {}


def _arrays(records: list[dict], k: str) -> tuple[np.ndarray, ...]:
    """One variant's findings of every question as arrays (question, the raw fields as rows, correct),
    kept while the records are (the grid scores the same findings thousands of times): records changed in
    place must clear _ARRAYS, as `retype` does."""
    key = (id(records), k)
    if key not in _ARRAYS or _ARRAYS[key][0] is not records:
        rows = [(i, *f[:6], bool(k == "a" and f[OK])) for i, r in enumerate(records) for f in r["raw"][k]]
        cols = np.array(rows, dtype=float).reshape(-1, 8).T
        _ARRAYS[key] = (records, (cols[0].astype(int), cols[1:7], cols[7].astype(bool)))
    return _ARRAYS[key][1]


def _margins(records: list[dict], n: int, p: float, w: tuple[float, float, float] = (0.0, 0.0, 0.0)
             ) -> tuple[np.ndarray, ...]:
    """Per question at one setting: the chosen finding's score and correctness as asked, and the scores of
    its "elsewhere" and "cut" variants (-1e9 where nothing was found); the same choice as `_top`."""
    if records and records[0].get("version") != RECORDS_VERSION:
        raise ValueError(OLD_RECORDS)
    cols = []
    for k in ("a", "u", "c"):
        q, fields, ok = _arrays(records, k)
        s, rank = _score(fields, w), fields[2]
        idx = np.nonzero(rank < n)[0]
        # Best first within each question; a stable sort keeps the first of equal findings, as max() does.
        order = idx[np.lexsort((-(s[idx] - p * rank[idx]), q[idx]))]
        first = order[np.r_[True, q[order][1:] != q[order][:-1]]] if len(order) else order
        top, right = np.full(len(records), -1e9), np.zeros(len(records), dtype=bool)
        top[q[first]], right[q[first]] = s[first], ok[first]
        cols.append(top)
        if k == "a":
            correct = right
    return cols[0], correct, cols[1], cols[2]


def sweep(records: list[dict], n: int, p: float, w: tuple[float, float, float] = (0.0, 0.0, 0.0)
          ) -> list[tuple[float, float, float, float]]:
    """(threshold, answered-correct rate, false-abstention rate, abstention rate) for candidate thresholds.

    The abstention rate averages the two kinds of unanswerable question ("elsewhere" and "cut").
    """
    a, ok, u, c = _margins(records, n, p, w)
    t = THRESHOLDS[None, :]
    abstain = ((u[:, None] < t).mean(0) + (c[:, None] < t).mean(0)) / 2
    correct = ((a[:, None] >= t) & ok[:, None]).mean(0)
    false = (a[:, None] < t).mean(0)
    return [(float(x), float(y), float(z), float(v)) for x, y, z, v in zip(THRESHOLDS, correct, false, abstain)]


def _gate_rows(records: list[dict], n: int, p: float, w: tuple[float, float, float] = (0.0, 0.0, 0.0)):
    """Per set: gate features, label (answered correctly) and variant ("a", "u", "c") of every question."""
    from bot.answer.reader import GATE_FEATURES, gate_features

    X, y, kind = [], [], []
    for r in records:
        for k in ("a", "u", "c"):
            fs = _ordered(r["raw"][k], n, p, w)
            # Nothing found: features that no gate answers from (a very low span score, nothing else found).
            X.append(gate_features([tuple(f[:3]) for f in fs]) if fs else gate_features([(-100.0, 0.0, 0)]))
            y.append(1.0 if k == "a" and fs and fs[0][OK] else 0.0)
            kind.append(k)
    assert len(X[0]) == len(GATE_FEATURES)
    return np.array(X), np.array(y), np.array(kind)


def _objective(s: np.ndarray, y: np.ndarray, kind: np.ndarray, t: float, share: float) -> tuple[float, ...]:
    """(objective, answered correctly, false abstention, abstention) when answering at score >= t."""
    a = kind == "a"
    correct = float(np.mean((s[a] >= t) & (y[a] == 1)))
    abstain = float(np.mean([np.mean(s[kind == k] < t) for k in ("u", "c")]))
    return share * correct + (1 - share) * abstain, correct, float(np.mean(s[a] < t)), abstain


def _margin_threshold(rows: tuple, share: float) -> float:
    """The margin threshold that maximises the objective on one set's gate rows (for comparison)."""
    X, y, kind = rows
    m = X[:, 0] - X[:, 1]
    return float(THRESHOLDS[int(np.argmax([_objective(m, y, kind, t, share)[0] for t in THRESHOLDS]))])


def fit_gate(sets: dict[str, tuple], share: float, l2: float = 1.0) -> tuple[np.ndarray, float]:
    """Logistic regression (Newton steps, L2) of "answered correctly" on the gate features, each set and
    variant weighted as the objective weighs them; returns (weights, bias) with the threshold that
    maximises the mean objective over the sets folded into the bias."""
    X = np.concatenate([v[0] for v in sets.values()])
    y = np.concatenate([v[1] for v in sets.values()])
    w = np.concatenate([np.where(v[2] == "a", share / np.sum(v[2] == "a"), (1 - share) / np.sum(v[2] != "a"))
                        for v in sets.values()])
    w = w / w.mean()
    mu, sd = X.mean(0), X.std(0) + 1e-9
    Z = np.hstack([(X - mu) / sd, np.ones((len(X), 1))])
    beta = np.zeros(Z.shape[1])
    reg = np.r_[np.full(X.shape[1], l2), 0.0]  # the intercept is not shrunk
    for _ in range(100):
        prob = 1 / (1 + np.exp(-(Z @ beta)))
        grad = Z.T @ (w * (prob - y)) + reg * beta
        hess = (Z * (w * prob * (1 - prob))[:, None]).T @ Z + np.diag(reg)
        step = np.linalg.solve(hess, grad)
        beta -= step
        if np.abs(step).max() < 1e-8:
            break
    weights = beta[:-1] / sd
    bias = beta[-1] - float(weights @ mu)
    scores = {name: v[0] @ weights + bias for name, v in sets.items()}
    cands = np.unique(np.quantile(np.concatenate(list(scores.values())), np.linspace(0, 1, 801)))
    objective = [np.mean([_objective(scores[k], v[1], v[2], t, share)[0] for k, v in sets.items()]) for t in cands]
    return weights, bias - float(cands[int(np.argmax(objective))])


def choose(results: dict[str, list[dict]], share: float, verbose: bool = False,
           weights: tuple[tuple[float, float, float], ...] = COVERAGE_WEIGHTS, cap_false_abstention: bool = True,
           caps: dict[str, float] | None = None) -> tuple:
    """(objective, depth, threshold, rank penalty, (coverage weights, type penalty)) that the grid picks from per-set
    records; prints the best row of each depth and penalty when verbose.

    With cap_false_abstention, coverage may not cost answers: only settings whose false abstention on
    each set is no higher than that of the margin alone (at its own best setting) are eligible; `caps` (false
    abstention per set) replaces that bar, for every setting.
    """
    if caps is None and cap_false_abstention and tuple(weights) != NO_COVERAGE:
        _, n0, t0, p0, w0 = choose(results, share, weights=NO_COVERAGE)
        i0 = int(np.argmin(np.abs(THRESHOLDS - t0)))
        caps = {name: sweep(recs, n0, p0, w0)[i0][2] + 1e-9 for name, recs in results.items()}
    best = None
    if verbose:
        print(f"{'depth':>5} {'penalty':>7} {'coverage':>9} {'threshold':>9} | "
              + " | ".join(f"{n:^29}" for n in results))
        print(f"{'':>5} {'':>7} {'':>9} {'':>9} | " + " | ".join(f"{'correct':>9} {'false-abst':>10} {'abstain':>8}"
                                                                for _ in results))
    for n in DEPTHS:
        for p in PENALTIES:
            row = None
            for w in weights:
                tables = {name: sweep(recs, n, p, w) for name, recs in results.items()}
                scores = [np.mean([share * tables[name][i][1] + (1 - share) * tables[name][i][3] for name in tables])
                          if caps is None or all(tables[name][i][2] <= caps[name] for name in tables) else -1.0
                          for i in range(len(next(iter(tables.values()))))]
                i = int(np.argmax(scores))
                if row is None or scores[i] > row[0]:
                    row = (float(scores[i]), w, i, tables)
                # Reading deeper and weighing coverage must each pay for themselves.
                costlier = n > (best[1] if best else n) or sum(w) > (sum(best[4]) if best else sum(w))
                if best is None or scores[i] > best[0] + (0.003 if costlier else 0.0):
                    best = (float(scores[i]), n, float(THRESHOLDS[i]), p, w)
            if verbose:
                score, w, i, tables = row
                cells = " | ".join(f"{tables[name][i][1]:>9.3f} {tables[name][i][2]:>10.3f} {tables[name][i][3]:>8.3f}"
                                   for name in tables)
                print(f"{n:>5} {p:>7} {'%g/%g/%g' % w:>9} {THRESHOLDS[i]:>9.2f} | {cells}   objective {score:.3f}",
                      flush=True)
    return best


def per_question(records: list[dict], n: int, p: float, t: float, share: float,
                 w: tuple[float, float, float] = (0.0, 0.0, 0.0)) -> np.ndarray:
    """Each question's share of the objective at one setting (the set's objective is their mean)."""
    a, ok, u, c = _margins(records, n, p, w)
    return share * ((a >= t) & ok) + (1 - share) * ((u < t).astype(float) + (c < t)) / 2


def bootstrap_diffs(pairs: list, rounds: int = 5000, seed: int = 0) -> np.ndarray:
    """Per resample, the mean over sets of new minus base objective, from (base, new) per-question arrays of
    each set: questions resampled within each set, the same questions for both."""
    rng = np.random.default_rng(seed)
    diffs = np.empty(rounds)
    for j in range(rounds):
        d = 0.0
        for xa, xb in pairs:
            i = rng.integers(0, len(xa), len(xa))
            d += xb[i].mean() - xa[i].mean()
        diffs[j] = d / len(pairs)
    return diffs


def paired_bootstrap(base: dict[str, list[dict]], new: dict[str, list[dict]], share: float,
                     rounds: int = 5000, seed: int = 0, base_weights=COVERAGE_WEIGHTS,
                     new_weights=COVERAGE_WEIGHTS, cap: bool = True) -> dict[str, float]:
    """The new model's objective minus the base's, each at the setting the grid picks for it (from its
    coverage weights), with a 95 % interval and the share of resamples where it does not gain: questions
    are resampled within each set, the same questions for both, so what the two share (question
    difficulty) cancels out. The same records with two grids compare two rules for one model."""
    settings = {"base": choose(base, share, weights=base_weights, cap_false_abstention=cap),
                "new": choose(new, share, weights=new_weights, cap_false_abstention=cap)}
    xs = []
    for name in base:
        if [r["id"] for r in base[name]] != [r["id"] for r in new.get(name, [])]:
            raise ValueError(f"the two record files do not hold the same {name} questions")
        pair = []
        for key, recs in (("base", base), ("new", new)):
            _, n, t, p, w = settings[key]
            pair.append(per_question(recs[name], n, p, t, share, w))
        xs.append(pair)
    diffs = bootstrap_diffs(xs, rounds, seed)
    lo, hi = np.percentile(diffs, [2.5, 97.5])
    return {"base": settings["base"][0], "new": settings["new"][0],
            "gain": settings["new"][0] - settings["base"][0], "low": float(lo), "high": float(hi),
            "p_no_gain": float(np.mean(diffs <= 0))}


def choose_type_penalty(results: dict[str, list[dict]], share: float, choice: tuple, cap: bool = True
                        ) -> tuple[float, dict[str, float] | None]:
    """The answer-type penalty to add to the grid's choice, with its paired bootstrap against none (or 0.0
    and None).

    A wrong-kind span is rare in validation data, so the penalty moves the objective by less than the bar
    the grid sets for coverage; it is taken when it gains on every resample's 95 % interval (the lower
    bound above zero) and, like coverage, abstains on no more answerable questions than the margin alone.
    The largest such gain wins.
    """
    w = choice[4]
    best: tuple[float, dict[str, float] | None] = (0.0, None)
    for penalty in TYPE_PENALTIES:
        b = paired_bootstrap(results, results, share, base_weights=(w,), new_weights=((w[0], w[1], penalty),),
                             cap=cap)
        if b["low"] > 0 and b["gain"] > (best[1]["gain"] if best[1] else 0.0):
            best = (penalty, b)
    return best


def across_sets(results: dict[str, list[dict]], share: float, cap: bool = True) -> list[dict]:
    """Coverage chosen on one set and scored on the other, beside the margin alone chosen the same way:
    whether the coverage weights carry to data they were not fitted on."""
    out = []
    names = list(results)
    for fit_on, test_on in ((names[0], names[-1]), (names[-1], names[0])):
        row = {"fit": fit_on, "test": test_on}
        for label, grid in (("margin", NO_COVERAGE), ("coverage", COVERAGE_WEIGHTS)):
            _, n, t, p, w = choose({fit_on: results[fit_on]}, share, weights=grid, cap_false_abstention=cap)
            row[label] = (float(per_question(results[test_on], n, p, t, share, w).mean()), w)
        out.append(row)
    return out


def main(argv: list[str] | None = None) -> None:
    """Run the calibration and print the table (and write reader.json with --write)."""
    from bot.config import load_settings
    from bot.pipeline import Pipeline
    from eval.datasets import prepare
    from eval.runner import index_dataset

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=None, help="reader model folder (default: the shipped one)")
    ap.add_argument("--data-dir", type=Path, default=Path(".qa-calibrate"))
    ap.add_argument("--val-file", type=Path, default=HERE / "data" / "val.jsonl")
    ap.add_argument("--limit", type=int, default=None, help="questions per set (a quick run)")
    ap.add_argument("--write", action="store_true", help="store the chosen threshold and depth in reader.json")
    ap.add_argument("--gate", action="store_true", help="with --write: store the answer gate too")
    ap.add_argument("--answerable-share", type=float, default=0.75,
                    help="the share of answerable questions the threshold is chosen for")
    ap.add_argument("--allow-more-false-abstention", action="store_true",
                    help="let coverage weights be chosen that abstain on more answerable questions than the "
                    "margin alone")
    ap.add_argument("--records", type=Path, default=None,
                    help="save the per-question observations here, or reuse them if the file exists")
    ap.add_argument("--against", type=Path, default=None,
                    help="another model's --records file: compare the two objectives, paired over the questions")
    args = ap.parse_args(argv)

    settings = load_settings(data_dir=args.data_dir, offline_answerer="reader", reader_model=args.model)
    sets = [prepare("squad-val", args.data_dir, settings.shared_data_dir, args.limit),
            _rtqa_val(args.data_dir, args.val_file, args.limit)]
    results = {}
    if args.records and args.records.exists():
        results = json.loads(args.records.read_text())
        sets = []
    for ds in sets:
        s = index_dataset(ds, settings)
        pipeline = Pipeline.from_settings(s)
        answerer = pipeline.reader
        answerer.max_chunks = max(DEPTHS) + 8
        t0 = time.perf_counter()
        results[ds.name] = observe(pipeline, answerer, ds.questions, max(DEPTHS))
        print(f"{ds.name}: {len(ds.questions)} questions read in {time.perf_counter() - t0:.0f} s", flush=True)
    if args.records and sets:
        args.records.write_text(json.dumps(results))
    retype(results)

    cap = not args.allow_more_false_abstention
    choice = choose(results, args.answerable_share, verbose=True, cap_false_abstention=cap)
    penalty, typed = choose_type_penalty(results, args.answerable_share, choice, cap)
    if typed:
        print(f"answer-type penalty {penalty:g}: objective {typed['new']:.4f} vs {typed['base']:.4f}, gain "
              f"{typed['gain']:+.4f} (95 % interval {typed['low']:+.4f} to {typed['high']:+.4f})")
        choice = choose(results, args.answerable_share, weights=((*choice[4][:2], penalty),), cap_false_abstention=cap)
    else:
        print("answer-type penalty: none gains on the 95 % interval")
    _, n, t, p, cw = choice
    if len(results) > 1:
        for row in across_sets(results, args.answerable_share, cap):
            print(f"fitted on {row['fit']}, scored on {row['test']}: margin alone {row['margin'][0]:.4f}, "
                  f"with coverage {row['coverage'][0]:.4f} (weights {row['coverage'][1]})")
    own = paired_bootstrap(results, results, args.answerable_share, base_weights=NO_COVERAGE, cap=cap)
    print(f"coverage against the margin alone: objective {own['new']:.4f} vs {own['base']:.4f}, gain "
          f"{own['gain']:+.4f} (95 % interval {own['low']:+.4f} to {own['high']:+.4f})")
    if args.against:
        cmp = paired_bootstrap(json.loads(args.against.read_text()), results, args.answerable_share, cap=cap)
        print(f"against {args.against}: objective {cmp['new']:.4f} vs {cmp['base']:.4f}, gain {cmp['gain']:+.4f} "
              f"(95 % interval {cmp['low']:+.4f} to {cmp['high']:+.4f}; no gain in {cmp['p_no_gain']:.1%} of "
              "resamples)")
    print(f"chosen: reader depth {n}, rank penalty {p}, coverage weights {cw}, threshold {t:.2f}")
    w = args.answerable_share
    gate_sets = {name: _gate_rows(recs, n, p, cw) for name, recs in results.items()}
    print("answer gate (features: span score, no-answer score, rank, runner-up margin) against the margin threshold;")
    print("first fitted on one set and scored on the other, then fitted on both:")
    for fit_on, test_on in (list(gate_sets), list(gate_sets)[::-1]):
        gw, gb = fit_gate({fit_on: gate_sets[fit_on]}, w)
        tb = _margin_threshold(gate_sets[fit_on], w)
        X, y, k = gate_sets[test_on]
        g, m = _objective(X @ gw + gb, y, k, 0.0, w), _objective(X[:, 0] - X[:, 1], y, k, tb, w)
        print(f"  fit on {fit_on}, scored on {test_on}: gate objective {g[0]:.3f} (correct {g[1]:.3f}, "
              f"false abstention {g[2]:.3f}, abstention {g[3]:.3f}); margin threshold {tb:.2f}: {m[0]:.3f} "
              f"(correct {m[1]:.3f}, false abstention {m[2]:.3f}, abstention {m[3]:.3f})")
    gw, gb = fit_gate(gate_sets, w)
    for name, (X, y, k) in gate_sets.items():
        g = _objective(X @ gw + gb, y, k, 0.0, w)
        print(f"  fit on both, {name}: objective {g[0]:.3f} (correct {g[1]:.3f}, false abstention {g[2]:.3f}, "
              f"abstention {g[3]:.3f})")
    for name, recs in results.items():
        words = [f[WORDS] for r in recs if (f := _top(r["raw"]["a"], n, p, cw)) is not None and _score(f, cw) >= t]
        print(f"  {name}: median answer {np.median(words) if words else 0:.0f} words")
    if args.write:
        from bot.answer.span_reader import SHIPPED_MODEL

        path = Path(args.model or SHIPPED_MODEL) / "reader.json"
        cfg = json.loads(path.read_text()) if path.exists() else {}
        from bot.answer.reader import GATE_FEATURES

        gate = {"features": list(GATE_FEATURES), "weights": [round(float(x), 6) for x in gw], "bias": round(gb, 6)}
        cfg.update({"threshold": round(t, 2), "depth": n, "rank_penalty": p, "calibrated_on": sorted(results)})
        for key in ("coverage", "type_penalty", "margin_threshold"):
            cfg.pop(key, None)
        if any(cw):
            cfg["coverage"] = {"sentence": cw[0], "near": cw[1]}
            cfg["type_penalty"] = cw[2]
            # The threshold for the margin alone: what a reader uses without an index to weigh coverage by
            # (train.evaluate on gold passages, a ReaderAnswerer given no vocabulary).
            cfg["margin_threshold"] = round(choose(results, args.answerable_share, weights=NO_COVERAGE)[2], 2)
        cfg.pop("gate", None)
        if args.gate:
            cfg["gate"] = gate
        path.write_text(json.dumps(cfg, indent=2) + "\n")
        print("wrote", path)


if __name__ == "__main__":
    main()
