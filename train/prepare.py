"""Build the reader's training data from ../shared/data: one JSONL file per split.

Sources (and only these; the sets the bot is measured on are never read here):
- SQuAD v1.1 dev, split by Wikipedia article into train / validation / test (34 / 7 / 7 articles).
- RealTime QA quiz questions from 2020-2024 (`backnumber/` and `past/2022..2024`) whose gold choice occurs
  in their `evidence` text: news-domain examples, split by quiz date (70 / 15 / 15).
  RealTime QA 2025-2026, `newsqa-dev`, `seeds/` and `eval/questions.jsonl` are measurement sets: never used.

Each line: {id, source, split, question, context, answer_start, answer_text, answerable, group}.
Negatives (answerable false) teach the no-answer head: the question with a passage on the same subject
that lacks the answer (another paragraph of the same article; the same passage with the answer's
sentence removed; another news quiz's evidence from the same week). With --bm25-negatives N, also the N
passages of other subjects that BM25 ranks highest for the question (see bm25_negatives). With
--swap-negatives F, for a share F of the training questions also the question itself made unanswerable
by its own passage: one of its words that ties it to the answer's sentence swapped for another question's
word the passage lacks (see swap_negatives).

Usage: python -m train.prepare [--data ../shared/data] [--out train/data] [--bm25-negatives N] [--cut-all]
       [--swap-negatives F]
"""

from __future__ import annotations

import argparse
import glob
import hashlib
import html
import json
import random
import re
from pathlib import Path

SPLITS = ("train", "val", "test")
CUT_MIN_WORDS = 25  # a "cut" negative needs this many words left
# --cut-all keeps cut passages down to the size the calibration's "cut" questions allow (train.calibrate).
CUT_ALL_MIN_WORDS = 10
_SENT = re.compile(r"(?:(?<=[.!?])|(?<=[.!?][\"”’']))\s+(?=[\"“‘A-Z0-9])")
_TAG = re.compile(r"<[^>]+>")
_WS = re.compile(r"\s+")


def split_of(key: str, fractions=(0.70, 0.15, 0.15)) -> str:
    """A stable train/val/test assignment from a key's hash (so a split never moves between runs)."""
    x = int(hashlib.sha1(key.encode()).hexdigest()[:8], 16) / 0xFFFFFFFF
    if x < fractions[0]:
        return "train"
    return "val" if x < fractions[0] + fractions[1] else "test"


def sentences(text: str) -> list[tuple[int, int]]:
    """Character spans of the sentences of text (a plain regex split; good enough to drop one)."""
    spans, start = [], 0
    for m in _SENT.finditer(text):
        spans.append((start, m.start()))
        start = m.end()
    spans.append((start, len(text)))
    return [(a, b) for a, b in spans if text[a:b].strip()]


def contains_any(text: str, answers: list[str]) -> bool:
    """True when any answer string occurs in text (case-insensitive)."""
    low = text.lower()
    return any(a.lower() in low for a in answers if a)


def without_answer_sentences(context: str, answers: list[str],
                             min_words: int = CUT_MIN_WORDS) -> str | None:
    """The context with every sentence holding an answer removed, or None if under min_words are left."""
    kept = [context[a:b] for a, b in sentences(context) if not contains_any(context[a:b], answers)]
    rest = " ".join(s.strip() for s in kept)
    if len(rest.split()) < min_words or contains_any(rest, answers):
        return None
    return rest


def squad_examples(path: Path, rng: random.Random, cut_all: bool = False) -> list[dict]:
    """SQuAD dev questions as (question, paragraph, span) plus same-article negatives, split by article."""
    from eval.datasets import squad_splits

    min_words = CUT_ALL_MIN_WORDS if cut_all else CUT_MIN_WORDS

    data = json.loads(path.read_text(encoding="utf-8"))["data"]
    split = squad_splits([a["title"] for a in data])
    out = []
    for art in data:
        paras = [p["context"] for p in art["paragraphs"]]
        for pi, para in enumerate(art["paragraphs"]):
            ctx = para["context"]
            for qa in para["qas"]:
                answers = sorted({a["text"] for a in qa["answers"]})
                first = qa["answers"][0]
                base = {"source": "squad", "split": split[art["title"]], "question": qa["question"].strip(),
                        "group": qa["id"], "title": art["title"], "answers": answers}
                out.append({**base, "id": qa["id"], "context": ctx, "answer_start": first["answer_start"],
                            "answer_text": first["text"], "answerable": True})
                # Negative 1: another paragraph of the same article without any answer string.
                others = [i for i in range(len(paras)) if i != pi and not contains_any(paras[i], answers)]
                if others:
                    j = rng.choice(others)
                    out.append({**base, "id": f"{qa['id']}-para", "context": paras[j], "answer_start": -1,
                                "answer_text": "", "answerable": False})
                # Negative 2: the gold paragraph with the answer's sentences removed (same topic, no answer).
                # The coin is tossed either way, so --cut-all leaves every other draw as it was.
                if rng.random() < 0.5 or cut_all:
                    rest = without_answer_sentences(ctx, answers, min_words)
                    if rest:
                        out.append({**base, "id": f"{qa['id']}-cut", "context": rest, "answer_start": -1,
                                    "answer_text": "", "answerable": False})
    return out


def clean_evidence(raw: str) -> str:
    """Plain text of a quiz answer's HTML evidence."""
    return _WS.sub(" ", html.unescape(_TAG.sub(" ", raw))).strip()


def _find(text: str, answer: str) -> int:
    """Offset of answer in text: exact first, then case-insensitive; -1 when absent."""
    i = text.find(answer)
    return i if i >= 0 else text.lower().find(answer.lower())


def realtimeqa_examples(root: Path, rng: random.Random, cut_all: bool = False) -> list[dict]:
    """RealTime QA 2020-2024 questions whose gold choice occurs in their evidence, plus negatives."""
    min_words = CUT_ALL_MIN_WORDS if cut_all else CUT_MIN_WORDS
    files = sorted(glob.glob(str(root / "backnumber" / "*" / "*_qa.jsonl")))
    files += sorted(f for y in ("2022", "2023", "2024") for f in glob.glob(str(root / "past" / y / "*_qa.jsonl")))
    by_file: dict[str, list[dict]] = {}
    for f in files:
        rows = []
        for line in Path(f).read_text(encoding="utf-8").splitlines():
            if not line.strip():
                continue
            d = json.loads(line)
            if not d.get("evidence") or not d.get("answer"):
                continue
            try:
                gold = d["choices"][int(d["answer"][0])].strip()
            except (ValueError, IndexError):
                continue
            ctx = clean_evidence(d["evidence"])
            start = _find(ctx, gold) if gold else -1
            if start < 0 or len(ctx.split()) < 8:
                continue
            rows.append({"qid": d["question_id"], "question": _WS.sub(" ", d["question_sentence"]).strip(),
                         "context": ctx, "start": start, "gold": ctx[start : start + len(gold)]})
        by_file[f] = rows
    out = []
    for f, rows in by_file.items():
        split = split_of(Path(f).name)  # by quiz date: one week's questions share their stories
        for r in rows:
            base = {"source": "realtimeqa", "split": split, "question": r["question"], "group": r["qid"],
                    "title": "", "answers": [r["gold"]]}
            out.append({**base, "id": r["qid"], "context": r["context"], "answer_start": r["start"],
                        "answer_text": r["gold"], "answerable": True})
            rest = without_answer_sentences(r["context"], [r["gold"]], min_words)
            if rest:
                out.append({**base, "id": f"{r['qid']}-cut", "context": rest, "answer_start": -1,
                            "answer_text": "", "answerable": False})
            others = [o for o in rows if o is not r and not contains_any(o["context"], [r["gold"]])]
            if others and rng.random() < 0.5:
                o = rng.choice(others)
                out.append({**base, "id": f"{r['qid']}-week", "context": o["context"], "answer_start": -1,
                            "answer_text": "", "answerable": False})
    return out


def bm25_negatives(rows: list[dict], per_question: int = 1) -> list[dict]:
    """For each answerable row, the passages BM25 ranks highest for its question from other subjects of the same
    split that lack every answer string: lexically the closest wrong passages, as a retriever would offer them."""
    import bm25s

    out = []
    for split in SPLITS:
        pos = [r for r in rows if r["answerable"] and r["split"] == split]
        if not pos:
            continue
        owner: dict[str, str] = {}  # each distinct passage -> its subject, in first-seen order
        for r in pos:
            owner.setdefault(r["context"], r["title"] or r["group"])
        passages = list(owner)
        retriever = bm25s.BM25()
        retriever.index(bm25s.tokenize(passages, stopwords="en", show_progress=False), show_progress=False)
        k = min(20, len(passages))
        docs, scores = retriever.retrieve(bm25s.tokenize([r["question"] for r in pos], stopwords="en",
                                                    show_progress=False), k=k, show_progress=False)
        for r, hits, hit_scores in zip(pos, docs, scores):
            # SQuAD: another Wikipedia article; news: another quiz question's evidence (its own story differs).
            subject = r["title"] or r["group"]
            taken = 0
            for j, score in zip(hits, hit_scores):
                ctx = passages[int(j)]
                if score <= 0:  # no word in common: not a hard negative
                    break
                if owner[ctx] == subject or ctx == r["context"] or contains_any(ctx, r["answers"]):
                    continue
                out.append({**{k2: r[k2] for k2 in ("source", "split", "question", "group", "title", "answers")},
                            "id": f"{r['id']}-bm25{taken}", "context": ctx, "answer_start": -1,
                            "answer_text": "", "answerable": False})
                taken += 1
                if taken == per_question:
                    break
    return out


_QWORD = re.compile(r"\b(?:[A-Za-z][A-Za-z'-]{3,}|\d[\d,.]*\d|\d)\b")


def _word_class(word: str, at_start: bool) -> str:
    """'num', 'cap' (a name-like word, not merely sentence-initial) or 'low': a swap keeps the class."""
    if word[0].isdigit():
        return "num"
    return "cap" if word[0].isupper() and not at_start else "low"


def _has_word(text: str, word: str, prefix: bool = False) -> bool:
    """True when text holds word as a whole word (or, with prefix, as the start of one), ignoring case."""
    return re.search(r"\b" + re.escape(word) + ("" if prefix else r"\b"), text, re.I) is not None


def swap_negatives(rows: list[dict], share: float, rng: random.Random) -> list[dict]:
    """Training questions made unanswerable by their own passage, as "no answer" examples.

    The question keeps its form and its passage; one word of it that also occurs in the answer's sentence
    (what ties question to answer) is replaced by a word of the same kind (number, name, other word) from
    another training question that the passage lacks. The passage still holds an answer of the asked type
    for a related question: what a news reader meets when the article covers the subject but not the fact
    asked ("how much was it insured for" over "jewels worth $102 million").
    """
    from index.lexical import STOPWORDS

    stop = set(STOPWORDS) | {"what", "which", "when", "where", "whom", "whose", "many", "much", "does", "did"}
    pos = [r for r in rows if r["answerable"] and r["split"] == "train"]
    pool: dict[str, list[str]] = {"num": [], "cap": [], "low": []}
    for r in pos:
        for m in _QWORD.finditer(r["question"]):
            if m.group().lower() not in stop:
                pool[_word_class(m.group(), m.start() == 0)].append(m.group())
    out = []
    for r in pos:
        if rng.random() >= share:
            continue
        ctx, a0 = r["context"], r["answer_start"]
        sent = next((ctx[a:b] for a, b in sentences(ctx) if a <= a0 < b), ctx)
        answers = " ".join(r["answers"]).lower()
        ties = [m for m in _QWORD.finditer(r["question"]) if m.start() > 0 and m.group().lower() not in stop
                and _has_word(sent, m.group()) and m.group().lower() not in answers]
        if not ties:
            continue
        m = rng.choice(ties)
        cands = pool[_word_class(m.group(), m.start() == 0)]
        for _ in range(20):
            w = rng.choice(cands)
            # Not even as the start of a passage word: "Bowlers" for "Bowl" would keep it answerable.
            if w.lower() != m.group().lower() and not _has_word(ctx, w, prefix=True):
                q = r["question"][: m.start()] + w + r["question"][m.end():]
                out.append({**{k: r[k] for k in ("source", "split", "group", "title", "answers", "context")},
                            "question": q, "id": f"{r['id']}-swap", "answer_start": -1, "answer_text": "",
                            "answerable": False})
                break
    return out


def main(argv: list[str] | None = None) -> None:
    """Write train/val/test JSONL files and print their counts."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=Path(__file__).resolve().parent.parent.parent / "shared" / "data")
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "data")
    ap.add_argument("--seed", type=int, default=13)
    ap.add_argument("--bm25-negatives", type=int, default=0,
                    help="per answerable question, add N BM25-ranked passages from other subjects as negatives")
    ap.add_argument("--cut-all", action="store_true",
                    help="a 'cut' negative (the passage without its answer's sentences) for every question "
                         f"that leaves {CUT_ALL_MIN_WORDS}+ words, not half of the SQuAD ones leaving "
                         f"{CUT_MIN_WORDS}+")
    ap.add_argument("--swap-negatives", type=float, default=0.0,
                    help="for this share of the training questions, add the question with one of its words "
                         "swapped so that its own passage no longer answers it, as a negative")
    args = ap.parse_args(argv)
    rng = random.Random(args.seed)
    rows = squad_examples(args.data / "squad-v1.1" / "dev-v1.1.json", rng, args.cut_all)
    rows += realtimeqa_examples(args.data / "realtimeqa", rng, args.cut_all)
    if args.bm25_negatives:
        rows += bm25_negatives(rows, args.bm25_negatives)
    if args.swap_negatives:
        # Its own generator: the other negatives stay exactly as they are without the flag.
        rows += swap_negatives(rows, args.swap_negatives, random.Random(args.seed + 1))
    args.out.mkdir(parents=True, exist_ok=True)
    for split in SPLITS:
        part = [r for r in rows if r["split"] == split]
        with open(args.out / f"{split}.jsonl", "w", encoding="utf-8") as fh:
            for r in part:
                fh.write(json.dumps(r, ensure_ascii=False) + "\n")
        counts = {}
        for r in part:
            key = f"{r['source']}/{'pos' if r['answerable'] else 'neg'}"
            counts[key] = counts.get(key, 0) + 1
        print(split, len(part), json.dumps(counts, sort_keys=True))


if __name__ == "__main__":
    main()
