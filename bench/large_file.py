#!/usr/bin/env python
"""Peak memory of indexing the largest file `qa index` accepts, against the 1 GB budget, in one run.

The file: RealTime QA 2025 then 2026 article texts (each distinct text of at least 500 characters, in
file order) joined under one title line, up to --mib MiB (default: 64 KiB under the loader's 20 MiB
cap, i.e. the largest accepted file). Each side indexes it with `qa index <folder> --data-dir <fresh dir>`
in its own fresh process; peak RSS is the child's ru_maxrss (RSS is also sampled every 2 s, into the JSON):
  release  the shipped build: the ONNX session is dropped after embedding (index.build.RELEASE_AFTER)
  keep     --keep-side: the same build keeping the session (RELEASE_AFTER set past any build)

  .venv/bin/python bench/large_file.py [--mib 19.9] [--keep-side]
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import OUT, PYTHON, REPO, bench_env, fresh_dir, machine, table, write_json  # noqa: E402
from _corpus import news_texts  # noqa: E402

BUDGET = 10**9  # "under 1 GB"
# One process per side: `qa index`, with the session kept after embedding when asked.
INDEX = r"""
import sys
import index.build
if sys.argv[1] == "keep":
    index.build.RELEASE_AFTER = 1 << 62
from bot.cli import run
sys.argv = ["qa", "index", sys.argv[2], "--data-dir", sys.argv[3]]
run()
"""


def compilation(target: Path, limit: int) -> tuple[int, int]:
    """Write the joined file; (articles in it, bytes)."""
    parts = ["A long compilation of news"]
    size = len(parts[0]) + 2
    for text in dict.fromkeys(news_texts(("2025", "2026"))):  # each distinct text once, in order
        n = len(text.encode()) + 2
        if size + n > limit:
            break
        parts.append(text)
        size += n
    target.write_text("\n\n".join(parts), encoding="utf-8")
    return len(parts) - 1, target.stat().st_size


def one_side(side: str, folder: Path, data: Path) -> dict:
    """Index folder in a fresh process; peak RSS, RSS samples and wall time."""
    import psutil

    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    t0 = time.perf_counter()
    proc = subprocess.Popen([PYTHON, "-c", INDEX, side, str(folder), str(data)], cwd=REPO, env=bench_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    samples: list[tuple[float, int]] = []
    ps = psutil.Process(proc.pid)
    while proc.poll() is None:
        try:
            samples.append((time.perf_counter() - t0, ps.memory_info().rss))
        except psutil.Error:
            pass
        time.sleep(2)
    out, err = proc.communicate()
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"{side}: qa index failed ({proc.returncode}):\n{err[-2000:]}")
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024
    if peak <= before * 1024:
        peak = max(rss for _, rss in samples)  # an earlier child peaked higher: fall back to the samples
    return {"side": side, "peak_rss_bytes": peak, "seconds": wall, "summary": out.strip().splitlines()[-1:],
            "samples": samples[::5]}


def main(argv: list[str] | None = None) -> None:
    """Build the file, index it (each side in a fresh process), print the table."""
    from index.loaders import MAX_FILE_BYTES

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mib", type=float, default=(MAX_FILE_BYTES - 64 * 1024) / 2**20,
                    help="file size in MiB (default: 64 KiB under the 20 MiB cap)")
    ap.add_argument("--keep-side", action="store_true", help="also index with the session kept (twice the time)")
    args = ap.parse_args(argv)

    work = fresh_dir(OUT / "large_file")
    folder = work / "corpus"
    folder.mkdir()
    articles, size = compilation(folder / "compilation.txt", int(args.mib * 2**20))
    print(f"file: {size / 2**20:.2f} MiB, {articles} articles joined", flush=True)
    sides = ["release"] + (["keep"] if args.keep_side else [])
    results = []
    for side in sides:
        results.append(one_side(side, folder, fresh_dir(work / f"data-{side}")))
        r = results[-1]
        print(f"{side}: peak {r['peak_rss_bytes'] / 2**20:.0f} MiB, {r['seconds']:.0f} s, {r['summary']}", flush=True)

    def fmt(b: float) -> str:
        return f"{b / 2**20:.0f} MiB ({b / 1e9:.2f} GB)"

    rows = [["peak RSS", *(fmt(r["peak_rss_bytes"]) for r in results), f"{BUDGET / 2**20:.0f} MiB (1 GB)"],
            ["wall, s", *(f"{r['seconds']:.0f}" for r in results), ""]]
    if len(results) == 2:
        rows[0].insert(3, f"{results[0]['peak_rss_bytes'] / results[1]['peak_rss_bytes']:.2f}x")
        for row in rows[1:]:
            row.insert(3, "")
    header = ["", *sides, *(["release / keep"] if len(results) == 2 else []), "budget"]
    print()
    print(table(rows, header))
    verdict = "under" if results[0]["peak_rss_bytes"] < BUDGET else "OVER"
    print(f"\nshipped build: peak {verdict} the 1 GB budget")
    write_json(OUT / "large_file.json", {"file_bytes": size, "articles": articles, "results": results,
                                          "machine": machine()})


if __name__ == "__main__":
    main()
