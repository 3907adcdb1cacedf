#!/usr/bin/env python
"""What an LLM reads: context recall@5 of qa's article passages vs their size, beside P1's top-5 nodes.

Over the RealTime QA 2026 index that bench/retrieval_bench.py built and cached (run it first), each
question is retrieved once with the pipeline (Pipeline.retrieve, K = 20 chunks, fused + reranked), then
regrouped into article passages (bot.passages.article_passages, best 5 articles) for every setting:
  fill        "bm25": retrieved chunks, then the article's other chunks in BM25 order, then neighbours
              "neighbours": retrieved chunks, then only the chunks next to them (window 1)
  max chars   the size limit of each passage (QA_PASSAGE_CHARS)
A last row gives the whole text of the same 5 articles: the ceiling of any passage choice.
Context recall@5 = an acceptable answer (eval.metrics.contains) occurs in the 5 passages. P1's row
(LlamaIndex default, its top-5 1,024-token nodes) is read from retrieval_bench's result JSON of the same
questions, so the two compare at their own amounts of text.

  .venv/bin/python bench/passage_sweep.py                 # all 420 questions
  .venv/bin/python bench/passage_sweep.py --limit 50      # quick run
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _common import OUT, percentile, table, write_json  # noqa: E402

ROOT = OUT / "retrieval"
DEFAULT_INDEX = ROOT / "cache" / "rtqa2026" / "project"
DEFAULT_QUESTIONS = ROOT / "retrieval_bench" / "questions_rtqa2026.json"
DEFAULT_PEER = ROOT / "retrieval_bench.json"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--index", type=Path, default=DEFAULT_INDEX, help="qa data dir of the RealTime QA 2026 index")
    ap.add_argument("--questions", type=Path, default=DEFAULT_QUESTIONS, help="retrieval_bench's question file")
    ap.add_argument("--peer", type=Path, default=DEFAULT_PEER, help="retrieval_bench result JSON (for P1's row)")
    ap.add_argument("--chars", default="2000,3000,4000,4500,5000", help="passage size limits to try")
    ap.add_argument("--limit", type=int, default=0, help="first N questions only (0 = all)")
    ap.add_argument("--json", type=Path, default=ROOT / "passage_sweep.json")
    args = ap.parse_args(argv)
    if not (args.index / "chroma").exists() or not args.questions.exists():
        print(f"no cached index / questions at {args.index} / {args.questions}: run "
              "bench/retrieval_bench.py --parts rtqa first", file=sys.stderr)
        return 2

    from bot.config import load_settings
    from bot.passages import article_passages, stitch
    from bot.pipeline import Pipeline
    from eval.metrics import context_recall

    questions = json.loads(args.questions.read_text())
    if args.limit:
        questions = questions[: args.limit]
    pipeline = Pipeline.from_settings(load_settings(data_dir=args.index, collection="articles"))
    caps = [int(c) for c in args.chars.split(",") if c.strip()]
    settings = [(fill, cap) for fill in ("bm25", "neighbours") for cap in caps]
    found = {s: 0 for s in settings}
    chars = {s: 0 for s in settings}
    times: dict[tuple, list[float]] = {s: [] for s in settings}
    chunk_hits = chunk_chars = whole_hits = whole_chars = 0
    for q in questions:
        ranked = pipeline.retrieve(q["question"], k=20)
        chunk_hits += bool(context_recall([c.text for c in ranked[:5]], q["answers"]))
        chunk_chars += sum(len(c.text) for c in ranked[:5])
        # The ceiling of any 5-article context: the whole text of the first 5 articles ranked.
        whole = [stitch(pipeline.lexical.span(d, 0, 10**9)) for d in list(dict.fromkeys(c.doc_id for c in ranked))[:5]]
        whole_hits += bool(context_recall(whole, q["answers"]))
        whole_chars += sum(len(t) for t in whole)
        for fill, cap in settings:
            t0 = time.perf_counter()
            passages = article_passages(pipeline.lexical, q["question"], ranked, 5, cap,
                                        lexical_fill=fill == "bm25")
            times[(fill, cap)].append((time.perf_counter() - t0) * 1000)
            found[(fill, cap)] += bool(context_recall([p.text for p in passages], q["answers"]))
            chars[(fill, cap)] += sum(len(p.text) for p in passages)
    n = len(questions)
    rows = []
    p1 = None
    if args.peer.exists():
        peer = json.loads(args.peer.read_text())
        s = peer.get("results", {}).get("rtqa2026", {}).get("summary", {}).get("llamaindex")
        if s and peer.get("results", {}).get("rtqa2026", {}).get("questions") == n:
            p1 = s
            rows.append(["P1 LlamaIndex default: top-5 nodes", "-", f"{100 * s['recall@5']:.1f}",
                         f"{s['context_chars_top5']:.0f}", "-", "-"])
    rows.append(["qa: top-5 chunks", "-", f"{100 * chunk_hits / n:.1f}", f"{chunk_chars / n:.0f}", "-",
                 f"{100 * (chunk_hits / n - p1['recall@5']):+.1f} pts" if p1 else "-"])
    rows.append(["qa: the whole text of the same 5 articles (ceiling)", "-", f"{100 * whole_hits / n:.1f}",
                 f"{whole_chars / n:.0f}", "-", f"{100 * (whole_hits / n - p1['recall@5']):+.1f} pts" if p1 else "-"])
    for fill, cap in settings:
        r = found[(fill, cap)] / n
        rows.append([f"qa: 5 article passages, fill {fill}", str(cap), f"{100 * r:.1f}",
                     f"{chars[(fill, cap)] / n:.0f}", f"{percentile(times[(fill, cap)], 95):.1f}",
                     f"{100 * (r - p1['recall@5']):+.1f} pts" if p1 else "-"])
    print(f"RealTime QA 2026, {n} questions; index {args.index}")
    print(table(rows, ["what the LLM would read", "max chars / passage", "context recall@5 (%)",
                       "chars (mean)", "build p95, ms", "vs P1"]))
    if p1 is None:
        print("(no P1 row: retrieval_bench.json missing or from a different question count)")
    write_json(args.json, {"questions": n, "index": str(args.index), "rows": rows})
    return 0


if __name__ == "__main__":
    sys.exit(main())
