"""train/calibrate.py: the "cut" unanswerable variant, the answer gate's fit and the paired model comparison,
on hand-made data."""

from __future__ import annotations

import re

import numpy as np
import pytest

from bot.types import Chunk, Sentence
from train.calibrate import DEPTHS, PENALTIES, _objective, choose, cut_answers, fit_gate, paired_bootstrap


def _chunk(text: str) -> Chunk:
    spans = tuple(Sentence(m.start(), m.end()) for m in re.finditer(r"[^.\n]+\.", text))
    return Chunk("a#0", "a.txt", "Flood news", None, text, 1.0, sentences=spans)


def test_cut_answers__drops_the_answer_sentences_and_keeps_headings_and_the_rest():
    c = _chunk("Flood news\n\nThe mayor said 42 people were rescued. Rain fell all day in the town. "
               "Nobody knew when the river would go down again.")
    cut = cut_answers(c, ["42"])
    assert "42" not in cut.text and cut.text.startswith("Flood news\n\n")
    assert [cut.text[s.start : s.end].strip() for s in cut.sentences] == [
        "Rain fell all day in the town.", "Nobody knew when the river would go down again."]
    assert cut_answers(_chunk("The mayor said 42 people were rescued. It rained."), ["42"]) is None  # too little left


def test_fit_gate__learns_a_separating_rule_and_folds_the_threshold_into_the_bias():
    rng = np.random.default_rng(0)
    n = 300
    # Answered correctly when the span beats "no answer" and comes from the top chunk; the runner-up is noise.
    score = rng.normal(5, 2, 3 * n)
    null = rng.normal(3, 2, 3 * n)
    rank = rng.integers(0, 3, 3 * n).astype(float)
    runner = rng.normal(0, 2, 3 * n)
    kind = np.array(["a"] * n + ["u"] * n + ["c"] * n)
    y = ((kind == "a") & (score - null > 1) & (rank == 0)).astype(float)
    X = np.stack([score, null, rank, runner], 1)
    weights, bias = fit_gate({"set": (X, y, kind)}, share=0.75)
    assert weights[0] > 0 and weights[1] < 0 and weights[2] < 0
    s = X @ weights + bias
    best = max(_objective(s, y, kind, t, 0.75)[0] for t in np.linspace(s.min(), s.max(), 400))
    assert _objective(s, y, kind, 0.0, 0.75)[0] >= best - 1e-9  # the chosen threshold is the bias's zero


def _records(n: int, right: float, seed: int) -> dict[str, list[dict]]:
    """Calibration records of a model that answers a share `right` of n questions correctly (margin about 4)
    and gives its unanswerable variants margins about 0 (so a threshold near 2 separates them)."""
    rng = np.random.default_rng(seed)
    recs = []
    for i in range(n):
        ok = bool(rng.random() < right)
        margin = float(rng.normal(4, 1))
        rec = {"id": f"q{i}", "raw": {k: [(float(rng.normal(0, 1)), 0.0, 0)] for k in ("u", "c")}}
        rec["raw"]["a"] = [(margin, 0.0, 0)]
        rec.update({f"a{d}/{p}": (margin, ok, 20) for d in DEPTHS for p in PENALTIES})
        recs.append(rec)
    return {"val": recs}


def test_choose__picks_the_threshold_between_answerable_and_unanswerable_margins():
    objective, depth, threshold, _ = choose(_records(400, 1.0, 0), 0.75)
    assert depth == min(DEPTHS)  # deeper reading gains nothing here, so it does not pay for itself
    assert 1.0 <= threshold <= 3.0
    assert objective > 0.95


def test_paired_bootstrap__no_gain_for_the_same_model_a_clear_gain_for_a_better_one():
    base = _records(400, 0.7, 0)
    same = paired_bootstrap(base, base, 0.75, rounds=200)
    assert same["gain"] == 0 and same["low"] == same["high"] == 0 and same["p_no_gain"] == 1.0
    better = paired_bootstrap(base, _records(400, 0.9, 0), 0.75, rounds=200)
    assert better["gain"] > 0.1 and better["low"] > 0 and better["p_no_gain"] == 0.0
    with pytest.raises(ValueError, match="same val questions"):
        paired_bootstrap(base, _records(300, 0.9, 0), 0.75, rounds=10)
