#!/usr/bin/env python
"""float32 vs int8 embeddings (QA_EMBED_PRECISION), side by side: speed, retrieval, answers, build.

Subcommands (each prints its table; `report` gathers everything into one):
  speed     word pieces embedded per second by both models on the same RealTime QA 2026 chunks, in one
            process, alternating rounds (the machine is shared: the ratio is the figure), plus the cosine
            between the two models' vectors
  query     the seed index built at each precision: warm Pipeline.ask p50 / p95 over the 77 seed questions
            (1 warm-up + 3 timed passes, each precision in its own process) and cold `qa ask` (fresh
            processes, the two precisions interleaved, median of --cold-runs)
  newsqa    `qa eval --dataset newsqa-dev` once per precision, each into its own data dir
            (bench/out/precision/newsqa-<precision>/): hit@1 / hit@5 / MRR and the offline answer figures
  report    the tables: retrieval and answers on SQuAD (10,570 questions) and RealTime QA 2026 from
            bench/retrieval_bench.py's two result files, newsqa-dev from `newsqa`, the RealTime QA 2026 build
            (float32, int8 and LlamaIndex's default) and the decision rule of the default: int8 only if every
            retrieval figure is within 0.5 points of float32 or better

  .venv/bin/python bench/retrieval_bench.py --parts squad,rtqa --precision int8 --rebuild   # int8 + P1, one run
  .venv/bin/python bench/retrieval_bench.py --parts squad,rtqa --precision float32           # float32 (P1 reused)
  .venv/bin/python bench/embed_precision.py speed
  .venv/bin/python bench/embed_precision.py query
  .venv/bin/python bench/embed_precision.py newsqa
  .venv/bin/python bench/embed_precision.py report
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (OUT, PYTHON, QA, REPO, SEEDS, bench_env, cold_runs, fresh_dir, machine,  # noqa: E402
                     median, percentile, run_worker, table, write_json)

HERE = OUT / "precision"
RETRIEVAL = OUT / "retrieval"
PRECISIONS = ("float32", "int8")


def texts_for_speed(n: int) -> list[str]:
    """n chunks of ~150 words from RealTime QA 2026 articles (news of every length)."""
    from bot.config import Settings
    from eval.datasets import prepare

    ds = prepare("realtimeqa-2026", OUT / "retrieval" / "data", Settings(_env_file=None).shared_data_dir)
    texts: list[str] = []
    for f in sorted(ds.corpus_dir.rglob("*.txt")):
        words = f.read_text(encoding="utf-8", errors="replace").split()
        texts += [" ".join(words[i : i + 150]) for i in range(0, min(len(words), 600), 150)]
        if len(texts) >= n:
            break
    return texts[:n]


def speed(args) -> dict:
    """Word pieces per second of both models on the same texts, alternating rounds in one process."""
    import numpy as np

    from bot.config import Settings
    from index.embedding import MiniLMEncoder

    cache = Settings(_env_file=None).model_cache_dir
    texts = texts_for_speed(args.texts)
    encoders = {p: MiniLMEncoder(cache, precision=p) for p in PRECISIONS}
    rates: dict[str, list[float]] = {p: [] for p in PRECISIONS}
    vectors = {}
    for _ in range(args.rounds):
        for p, enc in encoders.items():
            enc.pieces_embedded = 0
            t0 = time.perf_counter()
            vectors[p] = enc.encode(texts)
            rates[p].append(enc.pieces_embedded / (time.perf_counter() - t0))
    cos = (vectors["float32"] * vectors["int8"]).sum(axis=1)
    out = {"texts": len(texts), "word_pieces": encoders["int8"].pieces_embedded, "rounds": args.rounds,
           "rates": rates, "median": {p: statistics.median(r) for p, r in rates.items()},
           "ratio_per_round": [b / a for a, b in zip(rates["float32"], rates["int8"])],
           "cosine_mean": float(cos.mean()), "cosine_min": float(cos.min()),
           "cosine_p05": float(np.percentile(cos, 5)), "machine": machine(),
           "threads": encoders["int8"].session.get_session_options().intra_op_num_threads}
    out["ratio"] = statistics.median(out["ratio_per_round"])
    write_json(HERE / "speed.json", out)
    print(table([[p, f"{out['median'][p]:,.0f}", ", ".join(f"{r:,.0f}" for r in rates[p])] for p in PRECISIONS],
                ["precision", "word pieces / s (median)", "per round"]))
    print(f"int8 / float32: {out['ratio']:.2f}x (per round: {', '.join(f'{r:.2f}' for r in out['ratio_per_round'])}); "
          f"cosine of the two models' vectors: mean {out['cosine_mean']:.4f}, 5th percentile {out['cosine_p05']:.4f}, "
          f"min {out['cosine_min']:.4f} ({len(texts)} chunks, {out['word_pieces']:,} word pieces)")
    return out


def query(args) -> dict:
    """Warm and cold query latency on the seed index, one index per precision."""
    from _corpus import seed_questions

    qpath = HERE / "seed_questions.json"
    qpath.write_text(json.dumps(seed_questions()))
    out: dict = {"machine": machine(), "warm": {}, "builds": {}}
    cold_cmds = {}
    for p in PRECISIONS:
        data = fresh_dir(HERE / f"seed-{p}")
        env = {"QA_EMBED_PRECISION": p}
        out["builds"][p] = run_worker("project-build", str(SEEDS), str(data), "articles", env=env)
        warm = run_worker("project-warm", str(data), "articles", str(qpath), str(args.passes), env=env)
        out["warm"][p] = {"p50_ms": percentile(warm["latency_ms"], 50), "p95_ms": percentile(warm["latency_ms"], 95),
                          "peak_rss_bytes": warm["peak_rss_bytes"], "questions": warm["questions"]}
        # bench_env() drops QA_ variables, so the precision goes in as `env` in front of the command.
        cold_cmds[p] = ["env", f"QA_EMBED_PRECISION={p}", QA, "ask", "Who is the CEO of ADASpace?", "--data-dir", str(data)]
    cold = cold_runs(cold_cmds, args.cold_runs)
    out["cold"] = {p: {"median_wall_s": median(cold[p]["wall_s"]), "wall_s": cold[p]["wall_s"]} for p in PRECISIONS}
    write_json(HERE / "query.json", out)
    report_query(out)
    return out


def report_query(out: dict) -> None:
    """The query rows of both precisions."""
    rows = []
    for p in PRECISIONS:
        w, c = out["warm"][p], out["cold"][p]
        rows.append([p, f"{w['p50_ms']:.1f} / {w['p95_ms']:.1f}", f"{w['peak_rss_bytes'] / 2**20:.0f}",
                     f"{c['median_wall_s']:.2f}", ", ".join(f"{x:.2f}" for x in c["wall_s"])])
    print("\n## Seed index: warm `Pipeline.ask` (77 questions x passes) and cold `qa ask`\n")
    print(table(rows, ["precision", "warm p50 / p95, ms", "warm process peak RSS, MiB", "cold qa ask median, s",
                       "cold runs, s"]))
    a, b = (out["cold"][p]["median_wall_s"] for p in PRECISIONS)
    wa, wb = (out["warm"][p]["p95_ms"] for p in PRECISIONS)
    print(f"int8 / float32: cold {b / a:.2f}x, warm p95 {wb / wa:.2f}x (goal: no worse, i.e. <= 1.0x within noise)")


def newsqa(args) -> None:
    """`qa eval --dataset newsqa-dev` at each precision, each with its own fresh data dir."""
    import shutil

    for p in PRECISIONS:
        data = HERE / f"newsqa-{p}"
        shutil.rmtree(data, ignore_errors=True)
        env = {**bench_env(), "QA_EMBED_PRECISION": p}
        cmd = [PYTHON, "-m", "bot.cli", "eval", "--dataset", "newsqa-dev", "--data-dir", str(data / "index"),
               "--out", str(data / "eval")]
        print("$ QA_EMBED_PRECISION=" + p, " ".join(cmd[2:]), flush=True)
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, env=env, cwd=REPO, capture_output=True, text=True)
        if proc.returncode != 0:
            raise SystemExit(f"qa eval failed at {p}:\n{proc.stderr[-3000:]}")
        print(f"  {time.perf_counter() - t0:.0f} s", flush=True)
    report_newsqa()


def _summary(p: str) -> dict | None:
    path = HERE / f"newsqa-{p}" / "eval" / "summary.json"
    return json.loads(path.read_text()) if path.exists() else None


NEWSQA_KEYS = [("hit@1", "hit@1"), ("hit@5", "hit@5"), ("mrr", "MRR"), ("context_recall", "context recall"), ("correctness", "answer facts (correctness)"),
               ("abstention_recall", "abstains on unanswerable"), ("false_abstention", "abstains on answerable"),
               ("citation_hit", "cites a gold article")]


def _metric(summary: dict, key: str):
    for where in (summary, summary.get("metrics", {}), summary.get("summary", {})):
        if isinstance(where, dict) and key in where and isinstance(where[key], (int, float)):
            return where[key]
    return None


def report_newsqa() -> list[str]:
    """The newsqa-dev rows; returns the retrieval figures' deltas as goal lines."""
    s = {p: _summary(p) for p in PRECISIONS}
    if not all(s.values()):
        print("newsqa-dev: no results yet (run `bench/embed_precision.py newsqa`)")
        return []
    rows, checks = [], []
    for key, label in NEWSQA_KEYS:
        vals = [_metric(s[p], key) for p in PRECISIONS]
        if None in vals:
            continue
        rows.append([label, *(f"{100 * v:.1f}" for v in vals), f"{100 * (vals[1] - vals[0]):+.1f}"])
        if key in ("hit@1", "hit@5", "mrr", "context_recall"):
            checks.append(("newsqa-dev " + label, vals[0], vals[1]))
    print("\n## newsqa-dev (60 answerable + 15 unanswerable questions, 60 articles), `qa eval --dataset newsqa-dev`\n")
    print(table(rows, ["metric (%)", "float32", "int8", "int8 - float32 (pts)"]))
    return checks


def report(args) -> None:
    """Everything side by side, and the decision rule for the default."""
    res: dict[str, dict] = {}
    sources = {"float32": [RETRIEVAL / "retrieval_bench.json"],
               "int8": args.int8_json or [RETRIEVAL / "retrieval_bench_int8.json"]}
    for p in PRECISIONS:
        res[p] = {}
        for path in sources[p]:  # later files win, part by part
            if Path(path).exists():
                res[p].update(json.loads(Path(path).read_text())["results"])
                print(f"{p}: {path}")
    checks: list[tuple[str, float, float]] = []
    for part, label in (("squad", "SQuAD v1.1 dev, 10,570 questions"), ("rtqa2026", "RealTime QA 2026, 420 questions")):
        if not all(part in res[p] for p in PRECISIONS):
            print(f"{label}: no results for both precisions yet")
            continue
        a, b = (res[p][part]["summary"]["project"] for p in PRECISIONS)
        rows = []
        for key, name, is_retrieval in (("hit@1", "hit@1", True), ("hit@5", "hit@5", True), ("mrr@10", "MRR@10", True),
                                        ("recall@5", "context recall@5", True), ("correct", "offline answer correct", False),
                                        ("abstain_rate", "offline answer abstains", False)):
            if key in a and key in b:
                rows.append([name, f"{100 * a[key]:.1f}", f"{100 * b[key]:.1f}", f"{100 * (b[key] - a[key]):+.1f}"])
                if is_retrieval:
                    checks.append((f"{part} {name}", a[key], b[key]))
        rows.append(["retrieval p50 / p95, ms", f"{a['p50_ms']:.1f} / {a['p95_ms']:.1f}",
                     f"{b['p50_ms']:.1f} / {b['p95_ms']:.1f}", ""])
        rows.append(["query process peak RSS, MiB", f"{a['peak_rss_bytes'] / 2**20:.0f}",
                     f"{b['peak_rss_bytes'] / 2**20:.0f}", ""])
        print(f"\n## {label}: this project's retrieval and offline answers (bench/retrieval_bench.py)\n")
        print(table(rows, ["metric (%)", "float32", "int8", "int8 - float32 (pts)"]))
    checks += report_newsqa()
    if (HERE / "query.json").exists():
        report_query(json.loads((HERE / "query.json").read_text()))

    if all("rtqa2026" in res[p] for p in PRECISIONS):
        builds = {p: res[p]["rtqa2026"]["builds"]["project"] for p in PRECISIONS}
        p1 = res["int8"]["rtqa2026"]["builds"]["llamaindex"]
        rows = []
        for p in PRECISIONS:
            bd = builds[p]
            rows.append([f"this project, {p}", f"{bd['build_s']:.0f}", f"{bd['build_cpu_s']:.0f}",
                         f"{bd.get('word_pieces', 0):,}", f"{bd.get('word_pieces_per_s', 0):,.0f}",
                         f"{p1['build_s'] / bd['build_s']:.2f}x", bd.get("status", "")])
        rows.append(["P1 LlamaIndex default", f"{p1['build_s']:.0f}", f"{p1['build_cpu_s']:.0f}", "", "", "1.00x",
                     p1.get("status", "")])
        print("\n## RealTime QA 2026 index build (2,960 articles, all text embedded by this project)\n")
        print(table(rows, ["build", "wall s", "CPU s", "word pieces embedded", "word pieces / s of embedding",
                           "speed vs P1 (P1 s / s)", "status"]))
        wp = [builds[p].get("word_pieces_per_s") for p in PRECISIONS]
        if all(wp):
            print(f"\nword pieces / s during the build: int8 / float32 = {wp[1] / wp[0]:.2f}x (goal >= 1.8x); "
                  f"int8 build vs P1 built in the same run: {p1['build_s'] / builds['int8']['build_s']:.2f}x (goal >= 1.0x)")
    speed_path = HERE / "speed.json"
    if speed_path.exists():
        sp = json.loads(speed_path.read_text())
        print(f"microbenchmark (`speed`): int8 / float32 word pieces per second {sp['ratio']:.2f}x "
              f"({sp['median']['float32']:,.0f} vs {sp['median']['int8']:,.0f}); vector cosine mean {sp['cosine_mean']:.4f}")
    if checks:
        worst = min(checks, key=lambda c: c[2] - c[1])
        ok = all(b - a >= -0.005 for _, a, b in checks)
        print(f"\nDefault rule (every retrieval figure of int8 within 0.5 points of float32 or better): "
              f"{'HOLDS' if ok else 'FAILS'}; largest drop {100 * (worst[2] - worst[1]):+.1f} pts ({worst[0]}) "
              f"over {len(checks)} figures")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    sp = sub.add_parser("speed", help="word pieces per second of both models, alternating rounds")
    sp.add_argument("--texts", type=int, default=400)
    sp.add_argument("--rounds", type=int, default=3)
    qp = sub.add_parser("query", help="warm and cold query latency on the seed index at both precisions")
    qp.add_argument("--passes", type=int, default=3)
    qp.add_argument("--cold-runs", type=int, default=7)
    sub.add_parser("newsqa", help="qa eval --dataset newsqa-dev at both precisions")
    rp = sub.add_parser("report", help="every figure side by side, and the default rule")
    rp.add_argument("--int8-json", type=Path, nargs="*", default=None,
                    help="int8 result files of retrieval_bench.py (default bench/out/retrieval/retrieval_bench_int8.json)")
    args = ap.parse_args(argv)
    HERE.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    {"speed": speed, "query": query, "newsqa": newsqa, "report": report}[args.cmd](args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
