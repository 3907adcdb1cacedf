"""train/calibrate.py: the "cut" unanswerable variant and the answer gate's fit, on hand-made data."""

from __future__ import annotations

import re

import numpy as np

from bot.types import Chunk, Sentence
from train.calibrate import _objective, cut_answers, fit_gate


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
