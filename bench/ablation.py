"""Ablation: what each retrieval / answering change is worth, on data it was not tuned on.

Runs the same Pipeline four ways, in one process, over the same questions:

  session-1     vector 0.4 / BM25 0.6, no sentence channel, no proximity, no rerank, threshold 0.338
  +sentence     vector 0.3 / best sentence 0.2 / BM25 0.5 (HybridRetriever.sentence_weight)
  +proximity    the above + the answerer's proximity term (W_PROXIMITY 0.2), threshold 0.348
  +rerank       the above + the top 20 fused chunks re-ranked by their best sentence's evidence score
                (bot.postprocess.EvidenceRerank, weight 1.0): the current default

on the seed question set (the set the weights were chosen on), a random sample of SQuAD dev questions and
the RealTime QA 2026 quiz (held out). The SQuAD and RealTime QA indexes are the ones
bench/retrieval_bench.py caches under bench/out/retrieval/cache/ (run it first); the seed index is built
with `qa index seeds/ --data-dir DIR`.

  .venv/bin/python bench/ablation.py --seed-data-dir /tmp/qfinal --squad-sample 3000

Metrics: hit@1 / hit@5 of the gold document among the top-20 chunks (distinct documents, in order),
answer correctness (an acceptable answer in the offline answer, eval.metrics.contains), abstention rate.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

CACHE = REPO / "bench" / "out" / "retrieval" / "cache"
QUESTIONS = REPO / "bench" / "out" / "retrieval" / "retrieval_bench"
VARIANTS = {
    "session-1": {"dense": 0.4, "sentence": 0.0, "proximity": 0.0, "threshold": 0.338, "rerank": 0},
    "+sentence": {"dense": 0.3, "sentence": 0.2, "proximity": 0.0, "threshold": 0.338, "rerank": 0},
    "+proximity": {"dense": 0.3, "sentence": 0.2, "proximity": 0.2, "threshold": 0.348, "rerank": 0},
    "+rerank": {"dense": 0.3, "sentence": 0.2, "proximity": 0.2, "threshold": 0.348, "rerank": 20},
}


def load_questions(name: str, args) -> list[dict]:
    """The questions of one dataset as dicts with question / answers / gold_docs."""
    if name == "seed":
        rows = [json.loads(line) for line in (REPO / "eval" / "questions.jsonl").read_text().splitlines() if line.strip()]
        return [r for r in rows if r.get("answers")]
    rows = json.loads((QUESTIONS / f"questions_{name}.json").read_text())
    if name == "squad" and args.squad_sample < len(rows):
        rows = random.Random(args.seed).sample(rows, args.squad_sample)
    return rows


def measure(pipeline, questions: list[dict], variant: dict) -> dict:
    """Retrieval and answer metrics of one variant over the questions."""
    import bot.answer.extractive as extractive
    from eval.metrics import contains, hit_at_k

    r = pipeline.retriever
    r.dense_weight, r.sentence_weight = variant["dense"], variant["sentence"]
    extractive.W_PROXIMITY = variant["proximity"]
    pipeline.extractive.threshold = variant["threshold"]
    pipeline.postprocessors[0].depth = variant["rerank"]  # the EvidenceRerank step
    h1 = h5 = n_gold = correct = abstained = 0
    times = []
    for q in questions:
        t0 = time.perf_counter()
        vector = r.encoder.encode_one(q["question"])
        chunks = pipeline.retrieve(q["question"], k=20, vector=vector)
        answer = pipeline.extractive.answer(q["question"], chunks[: pipeline.options.top_k], vector)
        times.append((time.perf_counter() - t0) * 1000)
        docs = [c.doc_id for c in chunks]
        gold = set(q.get("gold_docs") or ())
        if gold:
            n_gold += 1
            h1 += hit_at_k(docs, gold, 1)
            h5 += hit_at_k(docs, gold, 5)
        abstained += answer.abstained
        correct += (not answer.abstained) and contains(answer.text, q["answers"])
    times.sort()
    n = len(questions)
    return {"n": n, "hit@1": 100 * h1 / max(n_gold, 1), "hit@5": 100 * h5 / max(n_gold, 1),
            "correct": 100 * correct / n, "abstain": 100 * abstained / n, "p50_ms": times[n // 2]}


def main(argv: list[str] | None = None) -> int:
    """Print one table row per dataset and variant."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seed-data-dir", type=Path, default=None, help="index of seeds/ (skip the seed set if absent)")
    ap.add_argument("--squad-sample", type=int, default=3000)
    ap.add_argument("--seed", type=int, default=2, help="random seed of the SQuAD sample")
    ap.add_argument("--datasets", default="seed,squad,rtqa2026")
    args = ap.parse_args(argv)

    from bot.config import Settings
    from bot.pipeline import Pipeline

    dirs = {"seed": args.seed_data_dir, "squad": CACHE / "squad" / "project", "rtqa2026": CACHE / "rtqa2026" / "project"}
    print("| dataset | variant | questions | hit@1 | hit@5 | answer correct (%) | abstained (%) | p50 ms |")
    print("|---|---|---|---|---|---|---|---|")
    for name in args.datasets.split(","):
        if dirs.get(name) is None or not Path(dirs[name]).exists():
            print(f"| {name} | (no index at {dirs.get(name)}: skipped) |||||||", flush=True)
            continue
        pipeline = Pipeline.from_settings(Settings(_env_file=None, data_dir=dirs[name]))
        questions = load_questions(name, args)
        for label, variant in VARIANTS.items():
            m = measure(pipeline, questions, variant)
            print(f"| {name} | {label} | {m['n']} | {m['hit@1']:.1f} | {m['hit@5']:.1f} | {m['correct']:.1f} | "
                  f"{m['abstain']:.1f} | {m['p50_ms']:.1f} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
