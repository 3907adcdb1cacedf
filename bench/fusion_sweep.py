#!/usr/bin/env python
"""SQuAD hit@1 / hit@5 of qa's retrieval under other fusion and rerank settings, on held-out questions.

Over the SQuAD index that bench/retrieval_bench.py built and cached (run it first), one half of the
questions (even or odd positions of its question file) is retrieved with Pipeline.retrieve (K = 20) under
each setting; the first row is the current default. Every setting reuses the same question vectors.

  .venv/bin/python bench/fusion_sweep.py --half even --limit 2500
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _common import OUT, table  # noqa: E402

ROOT = OUT / "retrieval"
SETTINGS = [
    {},
    {"candidates": 40},
    {"candidates": 40, "rerank_depth": 40},
    {"dense_weight": 0.4},
    {"sentence_weight": 0.3},
    {"rerank_weight": 1.5},
    {"rerank_weight": 0.7},
    {"dense_weight": 0.4, "sentence_weight": 0.3},
]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--index", type=Path, default=ROOT / "cache" / "squad" / "project")
    ap.add_argument("--questions", type=Path, default=ROOT / "retrieval_bench" / "questions_squad.json")
    ap.add_argument("--half", choices=("even", "odd"), default="even")
    ap.add_argument("--limit", type=int, default=2500, help="questions of that half (0 = all)")
    args = ap.parse_args(argv)
    if not (args.index / "chroma").exists() or not args.questions.exists():
        print(f"no cached index / questions at {args.index} / {args.questions}: run "
              "bench/retrieval_bench.py --parts squad first", file=sys.stderr)
        return 2

    from bot.config import load_settings
    from bot.pipeline import Pipeline
    from eval.metrics import hit_at_k

    questions = json.loads(args.questions.read_text())[0 if args.half == "even" else 1 :: 2]
    if args.limit:
        questions = questions[: args.limit]
    defaults = load_settings(data_dir=args.index, collection="articles")
    pipeline = Pipeline.from_settings(defaults)
    retriever = pipeline.retriever
    vectors = [retriever.encoder.encode_one(q["question"]) for q in questions]
    rows = []
    for change in SETTINGS:
        s = defaults.model_copy(update=change)
        retriever.candidates, retriever.dense_weight, retriever.sentence_weight = (
            s.candidates, s.dense_weight, s.sentence_weight)
        rerank = pipeline.postprocessors[0]  # the EvidenceRerank step
        rerank.depth, rerank.weight = s.rerank_depth, s.rerank_weight
        h1 = h5 = 0
        t0 = time.perf_counter()
        for q, v in zip(questions, vectors):
            docs = [c.doc_id for c in pipeline.retrieve(q["question"], k=20, vector=v)]
            h1 += hit_at_k(docs, q["gold_docs"], 1)
            h5 += hit_at_k(docs, q["gold_docs"], 5)
        n = len(questions)
        rows.append([", ".join(f"{k} {v}" for k, v in change.items()) or "default", f"{100 * h1 / n:.2f}",
                     f"{100 * h5 / n:.2f}", f"{time.perf_counter() - t0:.0f}"])
        print(rows[-1], flush=True)
    print(f"SQuAD dev, {len(questions)} questions ({args.half} positions), K = 20")
    print(table(rows, ["setting (changed from the default)", "hit@1 (%)", "hit@5 (%)", "wall s"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
