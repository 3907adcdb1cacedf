"""Calibrate the offline answerer's abstention threshold on a question set.

Runs the pipeline with the threshold at 0, records the evidence score of each answer, and picks the
threshold that makes the most unanswerable questions abstain while at most `--max-answerable-abstain`
of the answerable ones do; it is placed in the middle of the widest such gap between two scores.

    .venv/bin/python bench/calibrate.py --data-dir .qa [--questions eval/questions.jsonl]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def evidence_scores(pipeline, questions: list[dict]) -> tuple[list[float], list[float]]:
    """Best evidence score per question (0 when nothing eligible), split into answerable / not."""
    pipeline.extractive.threshold = 0.0
    answerable, unanswerable = [], []
    for q in questions:
        a = pipeline.ask(q["question"])
        score = 0.0 if a.abstained or not a.citations else a.citations[0].score
        (answerable if q.get("answerable", True) else unanswerable).append(score)
    return answerable, unanswerable


def pick_threshold(answerable: list[float], unanswerable: list[float], max_rate: float) -> float:
    """The threshold with the best unanswerable abstention whose answerable abstention is <= max_rate.

    Among thresholds with the same recall it takes the one losing the fewest answerable questions,
    then the middle of the widest gap between two observed scores, so a small shift in scores
    doesn't flip the outcome.
    """
    cuts = sorted({0.0, *answerable, *unanswerable})
    best = (-1.0, 0, -1.0, 0.0)  # recall, -answerable abstaining, gap, threshold
    for lo, hi in zip(cuts, cuts[1:] + [cuts[-1] + 0.1]):
        t = (lo + hi) / 2
        lost = sum(s < t for s in answerable)
        if lost <= max_rate * len(answerable):
            recall = sum(s < t for s in unanswerable) / max(len(unanswerable), 1)
            # An answerable question given up for no unanswerable one gained is a pure loss, so
            # fewer lost answers beat a wider gap.
            best = max(best, (recall, -lost, hi - lo, t))
    return round(best[3], 3)


def main() -> None:
    """Print the calibrated threshold and what it does on the question set."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", type=Path, default=Path(".qa"))
    parser.add_argument("--questions", type=Path, default=Path("eval/questions.jsonl"))
    parser.add_argument("--max-answerable-abstain", type=float, default=0.02)
    args = parser.parse_args()

    from bot.config import Settings
    from bot.pipeline import Pipeline

    pipeline = Pipeline.from_settings(Settings(data_dir=args.data_dir))
    questions = [json.loads(line) for line in args.questions.read_text().splitlines() if line.strip()]
    answerable, unanswerable = evidence_scores(pipeline, questions)
    t = pick_threshold(answerable, unanswerable, args.max_answerable_abstain)
    print(f"threshold {t}")
    print(f"answerable abstaining: {sum(s < t for s in answerable)}/{len(answerable)}")
    print(f"unanswerable abstaining: {sum(s < t for s in unanswerable)}/{len(unanswerable)}")
    print("lowest answerable scores:", sorted(round(s, 3) for s in answerable)[:5])
    print("highest unanswerable scores:", sorted(round(s, 3) for s in unanswerable)[-4:])


if __name__ == "__main__":
    main()
