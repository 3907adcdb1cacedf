#!/usr/bin/env python
"""Offline answer quality: the trained reader beside the heuristic sentence scorer, on held-out sets.

One run, both answerers over the same index and the same retrieval, per dataset:
  newsqa-dev       60 answerable + 15 unanswerable questions on 60 news articles, scored by `must` groups
                   (facts, abstention recall, false abstention, citations to a gold article, median words)
  squad-test       the 7 SQuAD articles the reader never saw (all their questions): gold answer inside the
                   answer at <= 40 words, span exact match / F1
  realtimeqa-2026  2026 news quiz questions over the 2,960 articles retrieved for them: answer correctness
  seed             eval/questions.jsonl (the CI gate) on seeds/
Every dataset is a measurement set: the reader was trained and calibrated on other data (train/).

  .venv/bin/python bench/answer_bench.py [--datasets newsqa-dev,squad-test,realtimeqa-2026,seed] [--data-dir DIR]

Prints one table and writes bench/out/answer_bench.json (summary per dataset and answerer).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import OUT, QUESTIONS, SEEDS, machine, write_json  # noqa: E402

ANSWERERS = ("reader", "heuristic")
ROWS = [
    ("facts / correctness", "correctness"),
    ("abstention recall", "abstention_recall"),
    ("false abstention", "false_abstention"),
    ("cites a gold article", "citation_hit"),
    ("span exact match", "span_em"),
    ("span F1", "span_f1"),
    ("median answer words", "median_words"),
    ("hit@1 (retrieval)", "hit@1"),
    ("latency p50 ms", "latency_p50_ms"),
    ("latency p95 ms", "latency_p95_ms"),
]


def run_set(name: str, data_dir: Path, limit: int | None) -> dict:
    """Both answerers' summaries for one dataset."""
    from rich.console import Console

    from bot.config import load_settings
    from bot.pipeline import Pipeline
    from eval.runner import index_dataset, run_questions, summary_of

    base = load_settings(data_dir=data_dir)
    if name == "seed":
        from eval.datasets import Dataset
        from eval.questions import load_questions

        questions, _ = load_questions(QUESTIONS)
        ds = Dataset("seed", "seed", SEEDS.parent, questions, 5)
        ds_corpus = SEEDS
        settings = index_seed(base.model_copy(update={"collection": "seed"}), ds_corpus)
    else:
        from eval.datasets import prepare

        ds = prepare(name, data_dir, base.shared_data_dir, limit)
        settings = index_dataset(ds, base, Console(stderr=True))
    out = {}
    for answerer in ANSWERERS:
        pipeline = Pipeline.from_settings(settings.model_copy(update={"offline_answerer": answerer}))
        t0 = time.perf_counter()
        rows = run_questions(pipeline, ds.questions, None, Console(stderr=True))
        summary = summary_of(rows, seconds=round(time.perf_counter() - t0, 1), answerer=pipeline.mode,
                             model=pipeline.info.get("model"))
        words = [r["metrics"]["answer_words"] for r in rows if not r["abstained"]]
        summary["metrics"]["median_words"] = statistics.median(words) if words else None
        out[answerer] = summary
        print(f"{name} / {answerer}: {len(rows)} questions in {summary['run']['seconds']} s", file=sys.stderr)
    return out


def index_seed(settings, corpus: Path):
    """The seed articles indexed into their own collection (reused when unchanged)."""
    from index.build import build_index, lexical_folder
    from index.embedding import MiniLMEncoder
    from index.store import ChromaStore

    encoder = MiniLMEncoder(settings.model_cache_dir)
    store = ChromaStore.open(settings.data_dir, settings.collection, encoder.name, create=True)
    build_index(corpus, store, lexical_folder(settings.data_dir, settings.collection), encoder,
                settings.chunk_size, settings.chunk_overlap)
    return settings


def fmt(v) -> str:
    if v is None:
        return "n/a"
    return f"{v:.3f}" if isinstance(v, float) and abs(v) <= 1.0 else f"{v:.1f}" if isinstance(v, float) else str(v)


def main(argv: list[str] | None = None) -> int:
    """Run the datasets and print reader vs heuristic."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--datasets", default="newsqa-dev,squad-test,realtimeqa-2026,seed")
    ap.add_argument("--data-dir", type=Path, default=OUT / "answer_bench")
    ap.add_argument("--limit", type=int, default=None, help="questions per dataset (a quick run)")
    ap.add_argument("--json", type=Path, default=OUT / "answer_bench.json")
    args = ap.parse_args(argv)
    info = machine()
    results = {}
    for name in args.datasets.split(","):
        results[name] = run_set(name, args.data_dir, args.limit)
        write_json(args.json, {"machine": info, "results": results})  # a long run keeps what it measured
    for name, res in results.items():
        n = res["reader"]["counts"].get("pass_rate")
        print(f"\n{name} ({n} questions)")
        print(f"  {'metric':<22} {'reader':>9} {'heuristic':>10}")
        for label, key in ROWS:
            r, h = (res[a]["metrics"].get(key) for a in ANSWERERS)
            if r is None and h is None:
                continue
            print(f"  {label:<22} {fmt(r):>9} {fmt(h):>10}")
        kinds = res["reader"].get("by_kind")
        if kinds:
            hk = res["heuristic"].get("by_kind", {})
            print("  pass rate by kind: " + ", ".join(
                f"{k} {v['pass_rate']:.2f}/{hk.get(k, {}).get('pass_rate', 0):.2f} (n={v['n']})" for k, v in kinds.items()))
    write_json(args.json, {"machine": info, "results": results})
    print(f"\nwrote {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
