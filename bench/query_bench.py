#!/usr/bin/env python
"""Query benchmark: warm Pipeline.ask latency and cold `qa ask`, against the LlamaIndex default.

One run:
  warm, seed index (seeds/ built into a fresh dir under bench/out/query_bench/): Pipeline.ask over the
    77 questions of eval/questions.jsonl, 1 warm-up pass then 3 timed passes -> p50 / p95
    (goal p95 <= 250 ms with the trained reader, issue #12)
  warm, RealTime QA index (the --rtqa-articles corpus of index_bench.py, cached under bench/out/cache/,
    built there if missing): Pipeline.ask over up to 200 quiz questions (question_sentence of
    past/<year>/*_qa.jsonl) -> p50 / p95 (goal p95 <= 250 ms)
  context, same questions: LlamaIndex default `index.as_retriever(similarity_top_k=5).retrieve(q)`
    (retrieval only: LlamaIndex has no offline answerer; its RealTime QA store is index_bench's, if kept)
  cold: `qa ask "..." --data-dir <seed index>` (a fresh process, median of 5; goal <= 1.5 s) against a
    fresh process that loads a VectorStoreIndex from a Chroma store of the seeds with
    HuggingFaceEmbedding and retrieves top 5 (no answer: there is no offline answerer), interleaved.
Each measured side runs in its own subprocess. Results: a table on stdout and bench/out/query_bench.json.

  .venv/bin/python bench/query_bench.py --rtqa-articles 2000
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (LLAMA_COLD_RETRIEVE, OUT, PYTHON, QA, SEEDS, cache_dir, cold_runs, fresh_dir,  # noqa: E402
                     machine, median, percentile, print_report, ratio, run_worker, table, write_json)
from _corpus import materialize, quiz_questions, seed_questions  # noqa: E402

COLLECTION = "articles"
LLAMA_COLLECTION = "llamaindex"
COLD_QUESTION = "Who is the CEO of ADASpace?"


def stats(latencies: list[float]) -> dict:
    return {"n": len(latencies), "p50_ms": percentile(latencies, 50), "p95_ms": percentile(latencies, 95),
            "mean_ms": sum(latencies) / len(latencies), "max_ms": max(latencies)}


def fmt(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.1f}"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rtqa-articles", type=int, default=2000, help="articles of the RealTime QA index (default 2000; 0 = all)")
    ap.add_argument("--year", type=int, default=2026, help="RealTime QA year (default 2026)")
    ap.add_argument("--rtqa-questions", type=int, default=200, help="quiz questions to time (default 200)")
    ap.add_argument("--passes", type=int, default=3, help="timed passes after the warm-up pass (default 3)")
    ap.add_argument("--cold-runs", type=int, default=5, help="fresh processes per side for the cold start (default 5)")
    ap.add_argument("--skip-rtqa", action="store_true", help="only the seed index (no RealTime QA index)")
    ap.add_argument("--json", type=Path, default=OUT / "query_bench.json", help="where to write the figures")
    args = ap.parse_args(argv)

    info = machine()
    t_all = time.perf_counter()
    work = fresh_dir(OUT / "query_bench")
    log = work / "workers.log"
    seed_dir, seed_llama = work / "seed_index", work / "seed_llamaindex_chroma"

    print("building the seed index (this project) and the seed Chroma store (LlamaIndex default) ...", flush=True)
    seed_build = run_worker("project-build", str(SEEDS), str(seed_dir), COLLECTION, log=log)
    seed_llama_build = run_worker("llama-build", str(SEEDS), str(seed_llama), LLAMA_COLLECTION, log=log)

    qfile = work / "seed_questions.json"
    seed_qs = seed_questions()
    qfile.write_text(json.dumps(seed_qs))
    print(f"warm, seed index: {len(seed_qs)} questions, 1 warm-up + {args.passes} passes ...", flush=True)
    warm_seed = run_worker("project-warm", str(seed_dir), COLLECTION, str(qfile), str(args.passes), log=log)
    warm_seed_llama = run_worker("llama-warm", str(seed_llama), LLAMA_COLLECTION, str(qfile), str(args.passes), log=log)

    rtqa: dict = {}
    if not args.skip_rtqa:
        corpus, n, available = materialize(args.year, args.rtqa_articles or None)
        keep = cache_dir(args.year, n)
        print(f"RealTime QA index: {keep / 'project'} ({n} articles; built or brought up to date) ...", flush=True)
        rtqa_build = run_worker("project-build", str(corpus), str(keep / "project"), COLLECTION, log=log)
        rq = quiz_questions(args.year, args.rtqa_questions)
        rfile = work / "rtqa_questions.json"
        rfile.write_text(json.dumps(rq))
        print(f"warm, RealTime QA index: {len(rq)} questions, 1 warm-up + {args.passes} passes ...", flush=True)
        warm_rtqa = run_worker("project-warm", str(keep / "project"), COLLECTION, str(rfile), str(args.passes), log=log)
        warm_rtqa_llama = None
        if (keep / "llamaindex_chroma").exists():
            warm_rtqa_llama = run_worker("llama-warm", str(keep / "llamaindex_chroma"), LLAMA_COLLECTION, str(rfile),
                                         str(args.passes), log=log)
        rtqa = {"corpus": str(corpus), "articles": n, "available": available, "build": rtqa_build,
                "project": warm_rtqa, "llamaindex": warm_rtqa_llama}

    print(f"cold: {args.cold_runs} fresh processes per side, interleaved ...", flush=True)
    cold = cold_runs(
        {
            "project": [QA, "ask", COLD_QUESTION, "--data-dir", str(seed_dir)],
            "llamaindex": [PYTHON, "-c", LLAMA_COLD_RETRIEVE, str(seed_llama), LLAMA_COLLECTION, COLD_QUESTION],
        },
        args.cold_runs,
    )

    s_p, s_l = stats(warm_seed["latency_ms"]), stats(warm_seed_llama["latency_ms"])
    rows = [
        [f"warm p50, seed index ({len(seed_qs)} q x {args.passes}), ms", fmt(s_p["p50_ms"]), fmt(s_l["p50_ms"]),
         ratio(s_p["p50_ms"], s_l["p50_ms"])],
        ["warm p95, seed index, ms", fmt(s_p["p95_ms"]), fmt(s_l["p95_ms"]), ratio(s_p["p95_ms"], s_l["p95_ms"])],
    ]
    goals = [
        f"seed p95 <= 250 ms: {s_p['p95_ms']:.1f} ms -> {'met' if s_p['p95_ms'] <= 250 else 'MISSED'}",
    ]
    if rtqa:
        r_p = stats(rtqa["project"]["latency_ms"])
        r_l = stats(rtqa["llamaindex"]["latency_ms"]) if rtqa["llamaindex"] else None
        nq = rtqa["project"]["questions"]
        rows += [
            [f"warm p50, RealTime QA index ({rtqa['build']['chunks']} chunks; {nq} q x {args.passes}), ms",
             fmt(r_p["p50_ms"]), fmt(r_l and r_l["p50_ms"]), ratio(r_p["p50_ms"], r_l and r_l["p50_ms"])],
            ["warm p95, RealTime QA index, ms", fmt(r_p["p95_ms"]), fmt(r_l and r_l["p95_ms"]),
             ratio(r_p["p95_ms"], r_l and r_l["p95_ms"])],
        ]
        goals.append(f"RealTime QA p95 <= 250 ms: {r_p['p95_ms']:.1f} ms -> {'met' if r_p['p95_ms'] <= 250 else 'MISSED'}")
        rtqa["stats"] = {"project": r_p, "llamaindex": r_l}
    c_p, c_l = median(cold["project"]["wall_s"]), median(cold["llamaindex"]["wall_s"])
    cc_p, cc_l = median(cold["project"]["cpu_s"]), median(cold["llamaindex"]["cpu_s"])
    rows += [
        [f"cold, fresh process, median of {args.cold_runs}, s", f"{c_p:.2f}", f"{c_l:.2f}", ratio(c_p, c_l)],
        [f"cold CPU time (user + sys), median of {args.cold_runs}, s", f"{cc_p:.2f}", f"{cc_l:.2f}", ratio(cc_p, cc_l)],
    ]
    goals.append(f"cold `qa ask` <= 1.5 s: {c_p:.2f} s -> {'met' if c_p <= 1.5 else 'MISSED'}")
    header = ["metric", "this project (Pipeline.ask: retrieve + answer)",
              "LlamaIndex default (retrieve top 5 only)", "ratio (project / LlamaIndex)"]
    text = table(rows, header)
    notes = [
        "LlamaIndex has no offline answerer: its column is retrieval only (embed + Chroma top 5), so the "
        "project's column does more work (hybrid dense + BM25 retrieval, rerank and the trained reader's answer)",
        f"cold: project = `qa ask {COLD_QUESTION!r} --data-dir <seed index>` (prints the answer); LlamaIndex = "
        "python -c: load VectorStoreIndex from Chroma + HuggingFaceEmbedding, retrieve top 5",
        f"cold wall (s): project {[round(x, 2) for x in cold['project']['wall_s']]}, "
        f"LlamaIndex {[round(x, 2) for x in cold['llamaindex']['wall_s']]}",
        f"seed index: {seed_build['documents']} articles, {seed_build['chunks']} chunks (project), "
        f"{seed_llama_build['chunks']} nodes (LlamaIndex); abstained answers in the timed seed passes: "
        f"{warm_seed['abstained']} of {len(warm_seed['latency_ms'])}",
        f"load average at start {info['loadavg_start']}",
    ]
    print_report(text, goals, notes)
    write_json(args.json, {
        "benchmark": "query_bench",
        "command": "python bench/query_bench.py " + " ".join(sys.argv[1:] if argv is None else argv),
        "machine": info,
        "seed": {"build": seed_build, "llamaindex_build": seed_llama_build,
                 "project": warm_seed, "llamaindex": warm_seed_llama, "stats": {"project": s_p, "llamaindex": s_l}},
        "rtqa": rtqa,
        "cold": {"project": cold["project"], "llamaindex": cold["llamaindex"], "question": COLD_QUESTION,
                 "median_wall_s_project": c_p, "median_wall_s_llamaindex": c_l,
                 "median_cpu_s_project": cc_p, "median_cpu_s_llamaindex": cc_l},
        "table_markdown": text,
        "goals": goals,
        "notes": notes,
        "total_wall_s": time.perf_counter() - t_all,
    })
    print(f"\nwrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
