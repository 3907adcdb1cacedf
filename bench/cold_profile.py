#!/usr/bin/env python
"""Where the cold start of `qa ask` goes: phase timings and `python -X importtime`, on a seed index.

  1. phases (median of --runs fresh processes): interpreter start, each group of imports, opening the
     index (Pipeline.from_settings), answering one question, printing it
  2. `python -X importtime -m bot.cli ask ... --data-dir <seed index>` (median of --runs): import time per
     top-level package (sum of the `self` column of all its modules) and the slowest top-level imports
     (their `cumulative` column)
Environment as in the other benchmarks (offline, byte-code cached under bench/out/pycache).

  .venv/bin/python bench/cold_profile.py
"""

from __future__ import annotations

import argparse
import re
import sys
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import OUT, PYTHON, SEEDS, check, fresh_dir, machine, median, run_worker, table, timed_run, write_json  # noqa: E402

QUESTION = "Who is the CEO of ADASpace?"

PHASES = """\
import sys, time
t = [time.perf_counter()]
import typer, rich                                    # CLI framework
t.append(time.perf_counter())
from bot.config import Settings                      # pydantic, pydantic-settings
t.append(time.perf_counter())
from bot.pipeline import Pipeline                    # answerer, retrieval, types
t.append(time.perf_counter())
import numpy, onnxruntime, tokenizers                # the encoder's runtime
t.append(time.perf_counter())
import chromadb                                      # the vector store
t.append(time.perf_counter())
import bm25s, Stemmer                                # the BM25 side
t.append(time.perf_counter())
p = Pipeline.from_settings(Settings(_env_file=None, data_dir=sys.argv[1]))
t.append(time.perf_counter())
a = p.ask(sys.argv[2])
t.append(time.perf_counter())
from bot import render
render.print_answer(a)
t.append(time.perf_counter())
print("PHASES", " ".join(f"{b - a:.4f}" for a, b in zip(t, t[1:])), f"{t[-1] - t[0]:.4f}")
"""
PHASE_NAMES = ["import typer + rich", "import bot.config (pydantic)", "import bot.pipeline",
               "import numpy + onnxruntime + tokenizers", "import chromadb", "import bm25s + Stemmer",
               "Pipeline.from_settings (ONNX session, Chroma, BM25 open)", "pipeline.ask (first question)",
               "render the answer"]

_LINE = re.compile(r"^import time:\s+(\d+)\s+\|\s+(\d+)\s+\|(\s*)(\S+)")


def parse_importtime(stderr: str) -> tuple[dict[str, float], dict[str, float], float]:
    """(self ms per top-level package, cumulative ms of each top-level import, total ms)."""
    per_pkg: dict[str, float] = defaultdict(float)
    top: dict[str, float] = {}
    total = 0.0
    for line in stderr.splitlines():
        m = _LINE.match(line)
        if not m:
            continue
        self_us, cum_us, indent, name = int(m.group(1)), int(m.group(2)), m.group(3), m.group(4)
        per_pkg[name.split(".")[0]] += self_us / 1000
        total += self_us / 1000
        if len(indent) <= 1:  # a top-level import (nested ones are indented further)
            top[name] = top.get(name, 0) + cum_us / 1000
    return dict(per_pkg), top, total


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=5, help="fresh processes per measurement (default 5)")
    ap.add_argument("--top", type=int, default=12, help="rows of the import tables (default 12)")
    ap.add_argument("--json", type=Path, default=OUT / "cold_profile.json", help="where to write the figures")
    args = ap.parse_args(argv)

    info = machine()
    work = fresh_dir(OUT / "cold_profile")
    seed_dir = work / "seed_index"
    run_worker("project-build", str(SEEDS), str(seed_dir), "articles", log=work / "workers.log")

    # warm-up (byte-code and page cache), then the measured runs
    check(timed_run([PYTHON, "-c", PHASES, str(seed_dir), QUESTION])[1], "phase run")
    phases: list[list[float]] = []
    walls = []
    for _ in range(args.runs):
        wall, proc, _ = timed_run([PYTHON, "-c", PHASES, str(seed_dir), QUESTION])
        check(proc, "phase run")
        line = next(x for x in proc.stdout.splitlines() if x.startswith("PHASES "))
        values = [float(v) for v in line.split()[1:]]
        phases.append(values)
        walls.append(wall)
    med = [median([p[i] for p in phases]) for i in range(len(PHASE_NAMES) + 1)]
    wall = median(walls)
    rows = [[name, f"{1000 * med[i]:.0f}"] for i, name in enumerate(PHASE_NAMES)]
    rows.append(["interpreter start + exit (wall - in-process)", f"{1000 * (wall - med[-1]):.0f}"])
    rows.append(["total wall of the process", f"{1000 * wall:.0f}"])
    phase_table = table(rows, ["phase (median of %d fresh processes)" % args.runs, "ms"])

    pkgs: list[dict[str, float]] = []
    tops: list[dict[str, float]] = []
    totals = []
    cmd = [PYTHON, "-X", "importtime", "-m", "bot.cli", "ask", QUESTION, "--data-dir", str(seed_dir)]
    for _ in range(args.runs):
        _, proc, _ = timed_run(cmd)
        check(proc, "importtime run")
        per_pkg, top, total = parse_importtime(proc.stderr)
        pkgs.append(per_pkg)
        tops.append(top)
        totals.append(total)
    names = {k for d in pkgs for k in d}
    pkg_med = sorted(((median([d.get(k, 0.0) for d in pkgs]), k) for k in names), reverse=True)
    top_names = {k for d in tops for k in d}
    top_med = sorted(((median([d.get(k, 0.0) for d in tops]), k) for k in top_names), reverse=True)
    total_med = median(totals)
    pkg_table = table([[k, f"{v:.0f}", f"{100 * v / total_med:.0f} %"] for v, k in pkg_med[: args.top]],
                      ["package (all its modules, self time)", "ms", "share of all import time"])
    top_table = table([[k, f"{v:.0f}"] for v, k in top_med[: args.top]],
                      ["top-level import (cumulative)", "ms"])
    print(phase_table)
    print()
    print(f"-X importtime of `qa ask`: all imports {total_med:.0f} ms (median of {args.runs})")
    print(pkg_table)
    print()
    print(top_table)
    write_json(args.json, {
        "benchmark": "cold_profile", "machine": info, "question": QUESTION,
        "phases_s": phases, "phase_names": PHASE_NAMES, "walls_s": walls,
        "importtime_total_ms": totals,
        "importtime_per_package_ms_median": {k: v for v, k in pkg_med},
        "importtime_top_level_ms_median": {k: v for v, k in top_med},
        "tables": {"phases": phase_table, "packages": pkg_table, "top_level": top_table},
    })
    print(f"\nwrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
