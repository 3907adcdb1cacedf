#!/usr/bin/env python
"""Evaluation benchmark: wall time of `qa eval` on the seed question set, start-up included.

Builds the seed index (seeds/) into a fresh dir under bench/out/eval_bench/, then runs, as fresh
processes from the repository root,

  .venv/bin/qa eval eval/questions.jsonl --data-dir <seed index> --out <new dir>

--runs times (default 3) and reports the median (goal <= 10 s), with each run's exit code and what it
wrote. When `qa eval` does not exist (yet), it says so and exits 3. Results: bench/out/eval_bench.json.

  .venv/bin/python bench/eval_bench.py
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import OUT, QA, REPO, SEEDS, fresh_dir, machine, median, run_worker, table, timed_run, write_json  # noqa: E402

QUESTIONS = "eval/questions.jsonl"  # relative to the repository root, as in the documented command


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=3, help="timed `qa eval` runs (default 3)")
    ap.add_argument("--json", type=Path, default=OUT / "eval_bench.json", help="where to write the figures")
    args = ap.parse_args(argv)

    info = machine()
    work = fresh_dir(OUT / "eval_bench")
    seed_dir = work / "seed_index"

    _, probe, _ = timed_run([QA, "eval", "--help"])
    if probe.returncode != 0 or "Usage" not in (probe.stdout + probe.stderr):
        msg = f"`qa eval` is not available yet (exit {probe.returncode}): {(probe.stderr or probe.stdout).strip()[-300:]}"
        print(msg)
        write_json(args.json, {"benchmark": "eval_bench", "machine": info, "error": msg})
        return 3
    if (REPO / ".env").exists():
        print("note: a .env exists in the repository root; `qa eval` reads it (LLM settings there would change the run)")

    print("building the seed index ...", flush=True)
    build = run_worker("project-build", str(SEEDS), str(seed_dir), "articles", log=work / "workers.log")

    runs = []
    for i in range(args.runs):
        out = work / f"run{i + 1}"
        cmd = [QA, "eval", QUESTIONS, "--data-dir", str(seed_dir), "--out", str(out)]
        wall, proc, cpu = timed_run(cmd, cwd=REPO)
        summary = {}
        if (out / "summary.json").exists():
            try:
                summary = json.loads((out / "summary.json").read_text())
            except json.JSONDecodeError:
                pass
        rows = [json.loads(x) for x in (out / "results.jsonl").read_text().splitlines() if x.strip()] \
            if (out / "results.jsonl").exists() else []
        lat = [r.get("latency_ms") or 0 for r in rows]
        runs.append({"wall_s": wall, "cpu_s": cpu, "exit_code": proc.returncode, "questions": len(rows),
                     "sum_question_latency_s": sum(lat) / 1000, "files": sorted(p.name for p in out.glob("*")) if out.exists() else [],
                     "stderr_tail": (proc.stderr or "")[-600:], "summary_metrics": summary.get("metrics", summary)})
        print(f"  run {i + 1}: {wall:.2f} s wall, {cpu:.2f} s CPU, exit {proc.returncode}, {len(rows)} questions", flush=True)

    ok = [r for r in runs if r["exit_code"] in (0, 1)]  # 1 = a --fail-under threshold, none are given here
    walls = [r["wall_s"] for r in runs]
    med = median(walls)
    rows = [
        [f"`qa eval` wall, median of {args.runs}, s (start-up included)", f"{med:.2f}"],
        ["runs, wall s", ", ".join(f"{w:.2f}" for w in walls)],
        [f"CPU time (user + sys), median of {args.runs}, s", f"{median([r['cpu_s'] for r in runs]):.2f}"],
        ["questions answered per run", ", ".join(str(r["questions"]) for r in runs)],
        ["sum of per-question Pipeline latency, median, s", f"{median([r['sum_question_latency_s'] for r in runs]):.2f}"],
        ["exit codes", ", ".join(str(r["exit_code"]) for r in runs)],
    ]
    text = table(rows, ["metric", "value"])
    goal = f"`qa eval` <= 10 s: {med:.2f} s -> {'met' if med <= 10 and len(ok) == len(runs) else 'MISSED'}"
    print()
    print(text)
    print()
    print("goal: " + goal)
    if len(ok) != len(runs):
        print("some runs failed; stderr tails are in the JSON")
    write_json(args.json, {
        "benchmark": "eval_bench",
        "command": f"{QA} eval {QUESTIONS} --data-dir <seed index> --out <dir>  (cwd {REPO})",
        "machine": info,
        "seed_build": build,
        "runs": runs,
        "median_wall_s": med,
        "table_markdown": text,
        "goal": goal,
    })
    print(f"\nwrote {args.json}")
    return 0 if len(ok) == len(runs) else 1


if __name__ == "__main__":
    sys.exit(main())
