#!/usr/bin/env python
"""Indexing benchmark: this project's build_index (ONNX MiniLM) vs the LlamaIndex default pipeline.

One run, on the same RealTime QA article folder:
  (a) this project: fresh data dir, build_index -> chunks, seconds, chunks/s, peak RSS; then the
      re-run on the unchanged corpus (seconds and % of the full run; goal <= 5 %)
  (b) LlamaIndex default: SimpleDirectoryReader -> VectorStoreIndex.from_documents into a Chroma
      PersistentClient collection with HuggingFaceEmbedding(bundled all-MiniLM-L6-v2, cpu)
  cold start, median of N fresh processes, the two sides interleaved: this project opens its index
  (Pipeline.from_settings) and embeds one question (goal <= 1.5 s); LlamaIndex loads the index from
  its Chroma store with HuggingFaceEmbedding and embeds one question.
Each side runs in its own subprocess, so peak RSS (ru_maxrss) is per side. The built indexes are
kept under bench/out/cache/ for bench/query_bench.py. Results: a table on stdout and
bench/out/index_bench.json.

  .venv/bin/python bench/index_bench.py --articles 2000 --year 2026
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (LLAMA_COLD_EMBED, OUT, PROJECT_COLD, PYTHON, cache_dir, cold_runs, fresh_dir,  # noqa: E402
                     machine, median, mib, print_report, ratio, run_worker, table, write_json)
from _corpus import materialize, quiz_questions  # noqa: E402

COLLECTION = "articles"  # the project's default, so `qa ask --data-dir <cache dir>` works on it
LLAMA_COLLECTION = "llamaindex"


def cold_only(args, n: int, question: str) -> int:
    """Cold start of both sides on the cached indexes of an earlier full run (fresh processes, interleaved)."""
    keep = cache_dir(args.year, n)
    project_dir, llama_dir = keep / "project", keep / "llamaindex_chroma"
    if not (project_dir.exists() and llama_dir.exists()):
        print(f"no cached indexes in {keep}: run without --cold-only first", file=sys.stderr)
        return 2
    print(f"cold start: {args.cold_runs} fresh processes per side, interleaved ...", flush=True)
    cold = cold_runs(
        {
            "project": [PYTHON, "-c", PROJECT_COLD, str(project_dir), COLLECTION, question],
            "llamaindex": [PYTHON, "-c", LLAMA_COLD_EMBED, str(llama_dir), LLAMA_COLLECTION, question],
        },
        args.cold_runs,
    )
    rows = []
    for what, key in (("wall", "wall_s"), ("CPU (user + sys)", "cpu_s")):
        p, l = median(cold["project"][key]), median(cold["llamaindex"][key])
        rows.append([f"cold start {what}: open index + embed 1 question, median, s", f"{p:.2f}", f"{l:.2f}", ratio(p, l)])
    print(table(rows, ["metric", "this project", "LlamaIndex default", "ratio (project / LlamaIndex)"]))
    wall = median(cold["project"]["wall_s"])
    print(f"goal: cold start <= 1.5 s: {wall:.2f} s -> {'met' if wall <= 1.5 else 'MISSED'}")
    print(f"runs (wall s): project {[round(x, 2) for x in cold['project']['wall_s']]}, "
          f"LlamaIndex {[round(x, 2) for x in cold['llamaindex']['wall_s']]}")
    print(f"load average at start {info_load()}")
    write_json(args.json.with_name("index_bench_cold.json"), {"question": question, "cold": cold})
    return 0


def info_load() -> list[float]:
    """The 1/5/15-minute load averages."""
    return [round(x, 2) for x in os.getloadavg()]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--articles", type=int, default=2000, help="cap on the number of articles (default 2000; 0 = all of the year)")
    ap.add_argument("--year", type=int, default=2026, help="RealTime QA year with retrieval files: 2025 or 2026 (default 2026)")
    ap.add_argument("--cold-runs", type=int, default=5, help="fresh processes per side for the cold start (default 5)")
    ap.add_argument("--json", type=Path, default=OUT / "index_bench.json", help="where to write the figures")
    ap.add_argument("--cold-only", action="store_true",
                    help="only the cold start, on the indexes a full run kept in bench/out/cache/ (no build figures)")
    args = ap.parse_args(argv)

    info = machine()
    t_all = time.perf_counter()
    corpus, n, available = materialize(args.year, args.articles or None)
    print(f"corpus: {corpus} ({n} of {available} RealTime QA {args.year} articles)", flush=True)
    question = quiz_questions(args.year, 1)[0]

    if args.cold_only:
        return cold_only(args, n, question)

    work = fresh_dir(OUT / "index_bench" / f"rtqa{args.year}_a{n}")
    project_dir, llama_dir = work / "project", work / "llamaindex_chroma"
    log = work / "workers.log"

    print("(a) this project: full build ...", flush=True)
    full = run_worker("project-build", str(corpus), str(project_dir), COLLECTION, log=log)
    print(f"    {full['chunks']} chunks in {full['build_s']:.1f} s", flush=True)
    print("(a) this project: re-run on the unchanged corpus ...", flush=True)
    rerun = run_worker("project-build", str(corpus), str(project_dir), COLLECTION, log=log)
    print(f"    {rerun['chunks_written']} chunks embedded, {rerun['build_s']:.2f} s", flush=True)
    print("(b) LlamaIndex default: full build ...", flush=True)
    llama = run_worker("llama-build", str(corpus), str(llama_dir), LLAMA_COLLECTION, log=log)
    print(f"    {llama['chunks']} nodes in {llama['build_s']:.1f} s", flush=True)

    print(f"cold start: {args.cold_runs} fresh processes per side, interleaved ...", flush=True)
    cold = cold_runs(
        {
            "project": [PYTHON, "-c", PROJECT_COLD, str(project_dir), COLLECTION, question],
            "llamaindex": [PYTHON, "-c", LLAMA_COLD_EMBED, str(llama_dir), LLAMA_COLLECTION, question],
        },
        args.cold_runs,
    )

    # Keep the indexes for query_bench.py (replacing an older copy).
    keep = cache_dir(args.year, n)
    keep.mkdir(parents=True, exist_ok=True)
    for src, name in ((project_dir, "project"), (llama_dir, "llamaindex_chroma")):
        if (keep / name).exists():
            shutil.rmtree(keep / name)
        shutil.move(str(src), str(keep / name))

    p_cps = full["chunks"] / full["build_s"]
    l_cps = llama["chunks"] / llama["build_s"]
    rerun_pct = 100 * rerun["build_s"] / full["build_s"]
    cold_p, cold_l = median(cold["project"]["wall_s"]), median(cold["llamaindex"]["wall_s"])
    cpu_p, cpu_l = median(cold["project"]["cpu_s"]), median(cold["llamaindex"]["cpu_s"])
    seen = llama["node_wordpieces_seen_by_model"] / max(llama["node_wordpieces_total"], 1)
    rows = [
        ["articles indexed", full["documents"], llama["documents"], ratio(full["documents"], llama["documents"])],
        ["chunks (nodes)", full["chunks"], llama["chunks"], ratio(full["chunks"], llama["chunks"])],
        ["full build, s (read + chunk + embed + write)", f"{full['build_s']:.1f}", f"{llama['build_s']:.1f}",
         ratio(full["build_s"], llama["build_s"])],
        ["chunks/s", f"{p_cps:.1f}", f"{l_cps:.1f}", ratio(p_cps, l_cps)],
        ["articles/s", f"{full['documents'] / full['build_s']:.2f}", f"{llama['documents'] / llama['build_s']:.2f}",
         ratio(full["documents"] / full["build_s"], llama["documents"] / llama["build_s"])],
        ["peak RSS of the build process", mib(full["peak_rss_bytes"]), mib(llama["peak_rss_bytes"]),
         ratio(full["peak_rss_bytes"], llama["peak_rss_bytes"])],
        ["full build CPU time, s (user + sys)", f"{full['build_cpu_s']:.1f}", f"{llama['build_cpu_s']:.1f}",
         ratio(full["build_cpu_s"], llama["build_cpu_s"])],
        ["build process wall, s (incl. imports + model load)", f"{full['process_wall_s']:.1f}",
         f"{llama['process_wall_s']:.1f}", ratio(full["process_wall_s"], llama["process_wall_s"])],
        ["re-run on unchanged corpus, s", f"{rerun['build_s']:.2f}", "n/a (from_documents re-embeds all)", "n/a"],
        ["re-run as % of full build", f"{rerun_pct:.1f} %", "n/a", "n/a"],
        [f"cold start: open index + embed 1 question, median of {args.cold_runs}, s", f"{cold_p:.2f}",
         f"{cold_l:.2f}", ratio(cold_p, cold_l)],
        [f"cold start CPU time (user + sys), median of {args.cold_runs}, s", f"{cpu_p:.2f}", f"{cpu_l:.2f}",
         ratio(cpu_p, cpu_l)],
    ]
    text = table(rows, ["metric", "this project", "LlamaIndex default", "ratio (project / LlamaIndex)"])
    goals = [
        f"re-run <= 5 % of full build: {rerun_pct:.1f} % -> {'met' if rerun_pct <= 5 else 'MISSED'}",
        f"cold start <= 1.5 s: {cold_p:.2f} s -> {'met' if cold_p <= 1.5 else 'MISSED'}",
    ]
    notes = [
        f"project chunks: {full['chunk_size']} word pieces, overlap {full['chunk_overlap']}, ONNX Runtime "
        f"{full['onnx_threads']} threads, batch {full['embed_batch_size']}; also writes BM25 + sentence vectors",
        f"LlamaIndex default: SentenceSplitter 1024 tiktoken tokens / overlap 200, HuggingFaceEmbedding batch "
        f"{llama['embed_batch_size']}, max_length {llama['embed_max_length']}, torch {llama['torch_threads']} threads; "
        f"{llama['nodes_longer_than_window']} of {llama['chunks']} nodes exceed the model's window, so the model "
        f"sees {100 * seen:.0f} % of the node text (median node {llama['node_wordpieces_median']} word pieces)",
        f"cold-start wall (s): project {[round(x, 2) for x in cold['project']['wall_s']]}, "
        f"LlamaIndex {[round(x, 2) for x in cold['llamaindex']['wall_s']]}",
        f"question used for the cold start: {question!r}",
        f"load average at start {info['loadavg_start']}",
    ]
    print_report(text, goals, notes)

    write_json(args.json, {
        "benchmark": "index_bench",
        "command": "python bench/index_bench.py " + " ".join(sys.argv[1:] if argv is None else argv),
        "machine": info,
        "corpus": {"path": str(corpus), "articles": n, "available": available, "year": args.year},
        "project_full": full,
        "project_rerun": rerun,
        "project_rerun_pct_of_full": rerun_pct,
        "llamaindex": llama,
        "cold_start": {"project": cold["project"], "llamaindex": cold["llamaindex"],
                       "median_wall_s_project": cold_p, "median_wall_s_llamaindex": cold_l,
                       "median_cpu_s_project": cpu_p, "median_cpu_s_llamaindex": cpu_l, "question": question},
        "table_markdown": text,
        "goals": goals,
        "notes": notes,
        "kept_indexes": str(keep),
        "total_wall_s": time.perf_counter() - t_all,
    })
    print(f"\nwrote {args.json}; indexes kept in {keep}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
