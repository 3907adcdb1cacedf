#!/usr/bin/env python
"""Embedding memory: a word-piece budget per forward pass vs batches of 64 chunks, in one run.

Attention memory grows with batch x width^2, so 64 chunks of 256 word pieces make ONNX Runtime hold
far more than the model. Each side runs in its own fresh process (peak RSS is per process), the sides
alternate, and each figure is the median of --rounds:
  (a) encoder: MiniLMEncoder.encode on --chunks real news chunks (~200 word pieces, RealTime QA 2025
      article text, two sentence spans each as indexing asks), batch_size 64, with the budget
      (index.embedding.BATCH_TOKENS) vs without it; peak RSS and word pieces per second
  (b) whole build: `qa index` of one ~2.3 MB article (RealTime QA 2025 texts joined) into a fresh data
      dir, the same two settings; peak RSS and wall time (skip with --skip-build)

  .venv/bin/python bench/embed_memory.py
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import OUT, PYTHON, bench_env, fresh_dir, median, ratio, table, write_json  # noqa: E402
from _corpus import news_texts  # noqa: E402

ENCODE = r"""
import json, resource, sys, time
import index.embedding as E
from bot.config import Settings
if sys.argv[1] == "unbounded":
    E.BATCH_TOKENS = 1 << 30
texts = json.load(open(sys.argv[2]))
enc = E.MiniLMEncoder(Settings().model_cache_dir)
spans = [[(0, len(t) // 2), (len(t) // 2, len(t))] for t in texts]
pieces = sum(len(enc.count_tokens(t)) for t in texts)
t = time.perf_counter()
enc.encode(texts, batch_size=64, spans=spans)
dt = time.perf_counter() - t
print("BENCH_JSON " + json.dumps({"seconds": dt, "pieces": pieces,
      "peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024}))
"""

# A fresh parent per run, so that RUSAGE_CHILDREN's peak is this one `qa index` process.
BUILD = r"""
import json, resource, subprocess, sys, time
child = ("import sys, index.embedding as E\n"
         "if sys.argv[1] == 'unbounded': E.BATCH_TOKENS = 1 << 30\n"
         "from bot.cli import app\n"
         "app(['index', sys.argv[2], '--data-dir', sys.argv[3]])\n")
t = time.perf_counter()
proc = subprocess.run([sys.executable, "-c", child, *sys.argv[1:]], capture_output=True, text=True)
dt = time.perf_counter() - t
if proc.returncode:
    sys.exit(proc.stderr[-3000:])
print("BENCH_JSON " + json.dumps({"seconds": dt,
      "peak_rss_bytes": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024}))
"""


def chunks(texts: list[str], n: int, words: int = 150) -> list[str]:
    """n pieces of `words` words (~200 word pieces) cut from the texts."""
    out = []
    for t in texts:
        w = t.split()
        for i in range(0, len(w) - words, words):
            out.append(" ".join(w[i : i + words]))
            if len(out) == n:
                return out
    return out


def run(code: str, *args: str) -> dict:
    """One fresh process running code; its BENCH_JSON line."""
    import subprocess

    proc = subprocess.run([PYTHON, "-c", code, *args], capture_output=True, text=True, env=bench_env(),
                          cwd=Path(__file__).resolve().parent.parent)
    for line in proc.stdout.splitlines():
        if line.startswith("BENCH_JSON "):
            return json.loads(line[len("BENCH_JSON "):])
    raise SystemExit(f"worker failed ({proc.returncode}):\n{proc.stderr[-3000:]}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--chunks", type=int, default=384, help="chunks the encoder embeds per run (default 384)")
    ap.add_argument("--rounds", type=int, default=2, help="runs per side, alternating (default 2)")
    ap.add_argument("--skip-build", action="store_true", help="only the encoder part")
    args = ap.parse_args(argv)

    work = fresh_dir(OUT / "embed_memory")
    texts = news_texts()
    sample = work / "chunks.json"
    sample.write_text(json.dumps(chunks(texts, args.chunks)))
    sides = ("unbounded", "budget")
    enc: dict[str, list[dict]] = {s: [] for s in sides}
    for r in range(args.rounds):
        for s in sides:
            enc[s].append(run(ENCODE, s, str(sample)))
            print(f"encoder round {r + 1} {s}: {enc[s][-1]}", flush=True)

    build: dict[str, list[dict]] = {s: [] for s in sides}
    if not args.skip_build:
        folder = work / "one"
        folder.mkdir()
        big, size = [], 0
        for t in texts:
            big.append(t)
            size += len(t)
            if size > 2_300_000:
                break
        (folder / "big.txt").write_text("A long compilation of news\n\n" + "\n\n".join(big), encoding="utf-8")
        for r in range(args.rounds):
            for s in sides:
                build[s].append(run(BUILD, s, str(folder), str(fresh_dir(work / f"data-{s}"))))
                print(f"build round {r + 1} {s}: {build[s][-1]}", flush=True)

    def med(runs: list[dict], key: str) -> float:
        return median([x[key] for x in runs])

    rows = []
    pps = {s: median([x["pieces"] / x["seconds"] for x in enc[s]]) for s in sides}
    rss = {s: med(enc[s], "peak_rss_bytes") / 2**20 for s in sides}
    rows.append(["encoder peak RSS, MiB", f"{rss['budget']:.0f}", f"{rss['unbounded']:.0f}", ratio(rss["budget"], rss["unbounded"])])
    rows.append(["encoder word pieces / s", f"{pps['budget']:.0f}", f"{pps['unbounded']:.0f}", ratio(pps["budget"], pps["unbounded"])])
    if build["budget"]:
        b_rss = {s: med(build[s], "peak_rss_bytes") / 2**20 for s in sides}
        b_s = {s: med(build[s], "seconds") for s in sides}
        rows.append(["qa index of a 2.3 MB article: peak RSS, MiB", f"{b_rss['budget']:.0f}", f"{b_rss['unbounded']:.0f}",
                     ratio(b_rss["budget"], b_rss["unbounded"])])
        rows.append(["qa index of a 2.3 MB article: wall, s", f"{b_s['budget']:.1f}", f"{b_s['unbounded']:.1f}",
                     ratio(b_s["budget"], b_s["unbounded"])])
    from index.embedding import BATCH_TOKENS

    print(table(rows, [f"median of {args.rounds}", f"budget {BATCH_TOKENS} word pieces", "64 chunks a batch",
                       "ratio (budget / 64)"]))
    write_json(OUT / "embed_memory.json", {"encoder": enc, "build": build, "chunks": args.chunks})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
