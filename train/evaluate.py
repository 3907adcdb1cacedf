"""Held-out figures of a reader model on the prepared splits (the numbers in its model card).

    python -m train.evaluate [--model bot/models/reader] [--split test] [--compare train/runs/reader/model-float.onnx]

Per source (SQuAD articles / RealTime QA quiz dates never trained on): span exact match and F1 on the
answerable examples (the gold passage given), how often the sentence holding the predicted span holds a
gold answer (what the bot shows: the span in its sentence), and on the negatives (same-subject passages
without the answer) how often "no answer" wins at the model's calibrated threshold for the span margin
alone (no index, so no question coverage: reader.json's margin_threshold). With --compare, the
same figures for a second ONNX file (e.g. the float model beside the int8 one) and the largest logit
difference.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent


def read_best(reader, row: dict) -> tuple:
    """The reader's best span in the row's passage (or None), its text, and the sentence(s) holding it."""
    from train.prepare import sentences

    spans = reader.read(row["question"], [row["context"]])
    best = max(spans, key=lambda s: s.margin) if spans else None
    if best is None:
        return None, "", ""
    text = row["context"][best.start : best.end]
    covering = [(a, b) for a, b in sentences(row["context"]) if a < best.end and b > best.start]
    return best, text, row["context"][covering[0][0] : covering[-1][1]] if covering else text


def score(reader, rows: list[dict], threshold: float) -> dict:
    """EM / F1 and answer-in-sentence on positives, abstention accuracy on negatives, per source."""
    from eval.metrics import contains, normalize, token_f1

    out: dict[str, dict] = {}
    t0 = time.perf_counter()
    for source in sorted({r["source"] for r in rows}):
        em, f1, in_sentence, pos_answered, neg_abstain = [], [], [], [], []
        for r in (x for x in rows if x["source"] == source):
            best, text, sentence = read_best(reader, r)
            answered = best is not None and best.margin >= threshold
            if r["answerable"]:
                em.append(any(normalize(text) == normalize(a) for a in r["answers"]))
                f1.append(token_f1(text, r["answers"]))
                in_sentence.append(bool(contains(sentence, r["answers"])))
                pos_answered.append(answered)
            else:
                neg_abstain.append(not answered)
        out[source] = {
            "positives": len(em), "exact_match": round(float(np.mean(em)), 4), "f1": round(float(np.mean(f1)), 4),
            "sentence_holds_answer": round(float(np.mean(in_sentence)), 4),
            "answered_at_threshold": round(float(np.mean(pos_answered)), 4),
            "negatives": len(neg_abstain), "no_answer_at_threshold": round(float(np.mean(neg_abstain)), 4),
        }
    out["seconds"] = round(time.perf_counter() - t0, 1)
    return out


def main(argv: list[str] | None = None) -> None:
    """Print the held-out figures as JSON."""
    from bot.answer.span_reader import SHIPPED_MODEL, SpanReader

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=str(SHIPPED_MODEL))
    ap.add_argument("--split", default="test", choices=["val", "test"])
    ap.add_argument("--data", type=Path, default=HERE / "data")
    ap.add_argument("--limit", type=int, default=0, help="examples per split (0 = all)")
    ap.add_argument("--compare", default=None, help="a second ONNX file to score the same way")
    args = ap.parse_args(argv)
    rows = [json.loads(x) for x in (args.data / f"{args.split}.jsonl").read_text(encoding="utf-8").splitlines() if x]
    if args.limit:
        rows = rows[: args.limit]
    reader = SpanReader(args.model)
    # Gold passages, no index: the threshold calibrated for the span margin alone (bot.answer.coverage).
    result = {"model": args.model, "split": args.split, "threshold": reader.margin_threshold,
              "figures": score(reader, rows, reader.margin_threshold)}
    if args.compare:
        with tempfile.TemporaryDirectory() as tmp:
            for f in Path(args.model).iterdir():
                if f.name != "model.onnx":
                    shutil.copy(f, Path(tmp) / f.name)
            shutil.copy(args.compare, Path(tmp) / "model.onnx")
            other = SpanReader(tmp)
            result["compare"] = {"model": args.compare, "figures": score(other, rows, reader.margin_threshold)}
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
