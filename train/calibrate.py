"""Choose the reader's abstention threshold and how many chunks it reads, on validation data only.

    python -m train.calibrate [--model bot/models/reader] [--write]

Validation sets (never the measurement sets):
- `squad-val`: the 7 SQuAD articles of the validation split, indexed as a corpus, all their questions.
- `rtqa-val`: RealTime QA 2020-2024 questions of the validation quiz dates (train/data/val.jsonl),
  each question's evidence an article of one corpus.
Each question is asked twice through the real pipeline (hybrid retrieval + rerank): once as it is
(answerable), and once with every chunk of its gold document and every chunk holding an answer removed
from what the reader sees (unanswerable: related articles, no answer). For each reader depth, the
threshold maximises the expected share of questions handled right when --answerable-share of them
(default 0.75: most questions people ask are about what the articles say) are answerable:
share x (answered correctly | answerable) + (1 - share) x (abstained | unanswerable), averaged over the
two sets. `--write` stores the choice in the model's reader.json.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
DEPTHS = (3, 4, 5, 6, 8)


def _rtqa_val(data_dir: Path, val_file: Path, limit: int | None):
    """The RealTime QA validation questions and their evidence as a corpus (an eval Dataset)."""
    from eval.datasets import Dataset, _write_corpus
    from eval.questions import EvalQuestion, write_questions

    rows = [json.loads(x) for x in val_file.read_text(encoding="utf-8").splitlines() if x.strip()]
    rows = [r for r in rows if r["source"] == "realtimeqa" and r["answerable"]]
    if limit:
        rows = rows[:limit]
    docs, questions = {}, []
    for r in rows:
        doc_id = f"rtqa/{r['id']}.txt"
        docs[doc_id] = f"News quiz evidence {r['id'].split('_')[0]}\n\n{r['context']}\n"
        questions.append(EvalQuestion(r["id"], r["question"], tuple(r["answers"]), (doc_id,)))
    root = data_dir / "datasets" / "rtqa_val"
    _write_corpus(root / "corpus", docs)
    write_questions(root / "questions.jsonl", questions)
    return Dataset("rtqa-val", "rtqa_val", root, questions, len(docs))


PENALTIES = (0.0, 0.25, 0.5, 1.0, 2.0)


def observe(pipeline, answerer, questions, depth: int) -> list[dict]:
    """Per question, reader depth and rank penalty: the chosen margin and correctness (answerable), and
    the chosen margin with the gold document and every answer-holding chunk taken away (unanswerable)."""
    from eval.metrics import contains

    out = []
    for q in questions:
        chunks = pipeline.retrieve(q.question, k=depth + 8)
        found = answerer.find(q.question, chunks)
        bad = {c.id for c in chunks if c.doc_id in q.gold_docs or contains(c.text, q.answers)}
        kept = [c for c in chunks if c.id not in bad]
        kept_rank = {c.id: i for i, c in enumerate(kept)}
        rec = {"id": q.id}
        for p in PENALTIES:
            for n in DEPTHS:
                fa = answerer.order([f for f in found if f.rank < n], p)
                if fa:
                    text = answerer.compose(q.question, chunks[:n], fa).text
                    rec[f"a{n}/{p}"] = (fa[0].span.margin, bool(contains(text, q.answers)), len(text.split()))
                else:
                    rec[f"a{n}/{p}"] = (-1e9, False, 0)
                # Unanswerable: the same findings without the answer's chunks, ranked among what is left.
                fu = [replace(f, rank=kept_rank[f.chunk.id]) for f in found
                      if f.chunk.id in kept_rank and kept_rank[f.chunk.id] < n]
                fu = answerer.order(fu, p)
                rec[f"u{n}/{p}"] = fu[0].span.margin if fu else -1e9
        out.append(rec)
    return out


def sweep(records: list[dict], key: str) -> list[tuple[float, float, float, float]]:
    """(threshold, answered-correct rate, false-abstention rate, abstention rate) for candidate thresholds."""
    a = np.array([r[f"a{key}"][0] for r in records])
    ok = np.array([r[f"a{key}"][1] for r in records])
    u = np.array([r[f"u{key}"] for r in records])
    out = []
    for t in np.arange(-6.0, 8.01, 0.25):
        out.append((float(t), float(np.mean((a >= t) & ok)), float(np.mean(a < t)), float(np.mean(u < t))))
    return out


def main(argv: list[str] | None = None) -> None:
    """Run the calibration and print the table (and write reader.json with --write)."""
    from bot.config import load_settings
    from bot.pipeline import Pipeline
    from eval.datasets import prepare
    from eval.runner import index_dataset

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=None, help="reader model folder (default: the shipped one)")
    ap.add_argument("--data-dir", type=Path, default=Path(".qa-calibrate"))
    ap.add_argument("--val-file", type=Path, default=HERE / "data" / "val.jsonl")
    ap.add_argument("--limit", type=int, default=None, help="questions per set (a quick run)")
    ap.add_argument("--write", action="store_true", help="store the chosen threshold and depth in reader.json")
    ap.add_argument("--answerable-share", type=float, default=0.75,
                    help="the share of answerable questions the threshold is chosen for")
    ap.add_argument("--records", type=Path, default=None,
                    help="save the per-question observations here, or reuse them if the file exists")
    args = ap.parse_args(argv)

    settings = load_settings(data_dir=args.data_dir, offline_answerer="reader", reader_model=args.model)
    sets = [prepare("squad-val", args.data_dir, settings.shared_data_dir, args.limit),
            _rtqa_val(args.data_dir, args.val_file, args.limit)]
    results = {}
    if args.records and args.records.exists():
        results = json.loads(args.records.read_text())
        sets = []
    for ds in sets:
        s = index_dataset(ds, settings)
        pipeline = Pipeline.from_settings(s)
        answerer = pipeline.reader
        answerer.max_chunks = max(DEPTHS) + 8
        t0 = time.perf_counter()
        results[ds.name] = observe(pipeline, answerer, ds.questions, max(DEPTHS))
        print(f"{ds.name}: {len(ds.questions)} questions read in {time.perf_counter() - t0:.0f} s", flush=True)
    if args.records and sets:
        args.records.write_text(json.dumps(results))

    best = None
    print(f"{'depth':>5} {'penalty':>7} {'threshold':>9} | " + " | ".join(f"{n:^29}" for n in results))
    print(f"{'':>5} {'':>7} {'':>9} | " + " | ".join(f"{'correct':>9} {'false-abst':>10} {'abstain':>8}" for _ in results))
    for n in DEPTHS:
        for p in PENALTIES:
            key = f"{n}/{p}"
            tables = {name: sweep(recs, key) for name, recs in results.items()}
            w = args.answerable_share
            scores = [np.mean([w * tables[name][i][1] + (1 - w) * tables[name][i][3] for name in tables])
                      for i in range(len(next(iter(tables.values()))))]
            i = int(np.argmax(scores))
            t = next(iter(tables.values()))[i][0]
            cells = " | ".join(f"{tables[name][i][1]:>9.3f} {tables[name][i][2]:>10.3f} {tables[name][i][3]:>8.3f}"
                               for name in tables)
            print(f"{n:>5} {p:>7} {t:>9.2f} | {cells}   objective {scores[i]:.3f}", flush=True)
            if best is None or scores[i] > best[0] + (0.003 if n > best[1] else 0.0):  # depth must pay for itself
                best = (scores[i], n, t, p)
    _, n, t, p = best
    print(f"chosen: reader depth {n}, rank penalty {p}, threshold {t:.2f}")
    for name, recs in results.items():
        words = [r[f"a{n}/{p}"][2] for r in recs if r[f"a{n}/{p}"][0] >= t]
        print(f"  {name}: median answer {np.median(words) if words else 0:.0f} words")
    if args.write:
        from bot.answer.span_reader import SHIPPED_MODEL

        path = Path(args.model or SHIPPED_MODEL) / "reader.json"
        cfg = json.loads(path.read_text()) if path.exists() else {}
        cfg.update({"threshold": round(t, 2), "depth": n, "rank_penalty": p, "calibrated_on": sorted(results)})
        path.write_text(json.dumps(cfg, indent=2) + "\n")
        print("wrote", path)


if __name__ == "__main__":
    main()
