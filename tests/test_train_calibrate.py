"""train/calibrate.py: the "cut" unanswerable variant, the answer gate's fit and the paired model comparison,
on hand-made data."""

from __future__ import annotations

import copy
import re

import numpy as np
import pytest

from bot.types import Chunk, Sentence
from train.calibrate import (
    DEPTHS,
    NO_COVERAGE,
    OK,
    RECORDS_VERSION,
    THRESHOLDS,
    _margins,
    _objective,
    _score,
    _top,
    across_sets,
    choose,
    choose_type_penalty,
    cut_answers,
    fit_gate,
    paired_bootstrap,
    sweep,
)


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


def _records(n: int, right: float, seed: int, cover: bool = False) -> dict[str, list[dict]]:
    """Calibration records of a model that answers a share `right` of n questions correctly (margin about 4)
    and gives its unanswerable variants margins about 0 (so a threshold near 2 separates them). With
    `cover`, margins say nothing (all about 2) and the question coverage of the sentence tells them apart."""
    rng = np.random.default_rng(seed)
    recs = []
    for i in range(n):
        ok = bool(rng.random() < right)
        margin, noise = (2.0, 0.3) if cover else (4.0, 1.0)
        un = 2.0 if cover else 0.0
        rec = {"id": f"q{i}", "version": RECORDS_VERSION,
               "raw": {k: [[float(rng.normal(un, noise)), 0.0, 0, 0.2 if cover else 0.5, 0.5, 0.0]] for k in ("u", "c")}}
        rec["raw"]["a"] = [[float(rng.normal(margin, noise)), 0.0, 0, 0.9 if cover else 0.5, 0.5, 0.0, ok, 20]]
        recs.append(rec)
    return {"val": recs}


def test_choose__picks_the_threshold_between_answerable_and_unanswerable_margins():
    objective, depth, threshold, _, weights = choose(_records(400, 1.0, 0), 0.75)
    assert depth == min(DEPTHS)  # deeper reading gains nothing here, so it does not pay for itself
    assert weights == (0.0, 0.0, 0.0)  # nor does coverage that is the same everywhere
    assert 1.0 <= threshold <= 3.0
    assert objective > 0.95


def test_choose__weighs_coverage_when_it_separates_what_the_margin_does_not():
    records = _records(400, 1.0, 0, cover=True)
    objective, _, threshold, _, weights = choose(records, 0.75)
    assert weights[0] > 0 and objective > 0.95
    plain = choose(records, 0.75, weights=NO_COVERAGE)
    assert plain[4] == (0.0, 0.0, 0.0) and plain[0] < 0.9
    gain = paired_bootstrap(records, records, 0.75, rounds=200, base_weights=NO_COVERAGE)
    assert gain["gain"] > 0.05 and gain["low"] > 0
    rows = across_sets({"one": records["val"], "two": _records(400, 1.0, 1, cover=True)["val"]}, 0.75)
    assert all(r["coverage"][0] > r["margin"][0] + 0.05 for r in rows)


def test_records_of_an_older_calibrate_are_refused():
    old = _records(10, 1.0, 0)
    for r in old["val"]:
        r.pop("version")
    with pytest.raises(ValueError, match="older train.calibrate"):
        choose(old, 0.75)


def test_paired_bootstrap__no_gain_for_the_same_model_a_clear_gain_for_a_better_one():
    base = _records(400, 0.7, 0)
    same = paired_bootstrap(base, base, 0.75, rounds=200)
    assert same["gain"] == 0 and same["low"] == same["high"] == 0 and same["p_no_gain"] == 1.0
    better = paired_bootstrap(base, _records(400, 0.9, 0), 0.75, rounds=200)
    assert better["gain"] > 0.1 and better["low"] > 0 and better["p_no_gain"] == 0.0
    with pytest.raises(ValueError, match="same val questions"):
        paired_bootstrap(base, _records(300, 0.9, 0), 0.75, rounds=10)


def test_choose__coverage_may_not_cost_answers_unless_allowed():
    """Coverage that wins the objective by abstaining on some answerable questions is refused by default."""
    rng = np.random.default_rng(0)
    recs = []
    for i in range(400):
        low = i % 10 == 0  # one answerable question in ten has a sentence that covers nothing of the question
        rec = {"id": f"q{i}", "version": RECORDS_VERSION,
               "raw": {k: [[float(rng.normal(3, 1)), 0.0, 0, 0.0, 0.0, 0.0]] for k in ("u", "c")}}
        # Margins say nothing (answerable and not alike), so the margin alone answers everything.
        rec["raw"]["a"] = [[float(rng.normal(3, 1)), 0.0, 0, 0.0 if low else 1.0, 0.0, 0.0, True, 20]]
        recs.append(rec)
    records = {"val": recs}
    _, n0, t0, p0, w0 = choose(records, 0.75, weights=NO_COVERAGE)
    baseline = sweep(recs, n0, p0, w0)[int(np.argmin(np.abs(THRESHOLDS - t0)))][2]

    def false_abstention(choice):
        _, n, t, p, w = choice
        return sweep(recs, n, p, w)[int(np.argmin(np.abs(THRESHOLDS - t)))][2]

    free = choose(records, 0.75, cap_false_abstention=False)
    assert baseline == 0.0
    assert free[4] != (0.0, 0.0, 0.0) and false_abstention(free) > 0.05
    capped = choose(records, 0.75)
    assert false_abstention(capped) == 0.0 and free[0] > capped[0]
    # Caps given from outside (another setting's false abstention) replace the margin-alone bar.
    loose = choose(records, 0.75, caps={"val": 1.0})
    assert loose[:4] == free[:4] and false_abstention(choose(records, 0.75, caps={"val": 0.0})) == 0.0


def test_choose__weighs_the_type_penalty_when_mismatched_spans_are_the_wrong_ones():
    """Each answerable question's best span is the wrong kind (and wrong) and a runner-up of the right kind is
    right; unanswerable variants find only wrong-kind spans. Only the type penalty tells them apart."""
    rng = np.random.default_rng(0)
    recs = []
    for i in range(300):
        wrong_kind = [float(rng.normal(5, 0.5)), 0.0, 0, 0.5, 0.5, 1.0]
        rec = {"id": f"q{i}", "version": RECORDS_VERSION,
               "raw": {k: [list(wrong_kind)] for k in ("u", "c")}}
        rec["raw"]["a"] = [wrong_kind + [False, 20], [float(rng.normal(4, 0.5)), 0.0, 1, 0.5, 0.5, 0.0, True, 20]]
        recs.append(rec)
    records = {"val": recs}
    plain = choose(records, 0.75)
    assert plain[4][2] == 0.0 and plain[0] < 0.5  # the grid itself leaves the type penalty out
    penalty, gain = choose_type_penalty(records, 0.75, plain, cap=False)
    assert penalty > 0 and gain["low"] > 0
    assert choose(records, 0.75, weights=((*plain[4][:2], penalty),), cap_false_abstention=False)[0] > 0.95
    untyped = copy.deepcopy(records)
    for r in untyped["val"]:  # no span of the wrong kind anywhere: no penalty
        for k in ("a", "u", "c"):
            for f in r["raw"][k]:
                f[5] = 0.0
    assert choose_type_penalty(untyped, 0.75, choose(untyped, 0.75)) == (0.0, None)


def test_margins__the_vectorised_choice_is_the_one_reader_order_makes():
    rng = np.random.default_rng(1)
    recs = []
    for i in range(200):
        raw = {k: [[float(rng.normal(3, 3)), float(rng.normal(0, 1)), int(r), float(rng.random()),
                    float(rng.random()), float(rng.random() < 0.3)] for r in rng.permutation(6)[: rng.integers(0, 5)]]
               for k in ("u", "c")}
        raw["a"] = [[float(rng.normal(3, 3)), float(rng.normal(0, 1)), int(r), float(rng.random()), float(rng.random()),
                     float(rng.random() < 0.3), bool(rng.random() < 0.5), 20] for r in rng.permutation(6)[: rng.integers(0, 5)]]
        recs.append({"id": f"q{i}", "version": RECORDS_VERSION, "raw": raw})
    for n, p, w in ((3, 2.0, (4.0, 4.0, 2.0)), (5, 0.0, (0.0, 0.0, 0.0)), (8, 1.0, (16.0, 0.0, 8.0))):
        a, ok, u, c = _margins(recs, n, p, w)
        for col, k in ((a, "a"), (u, "u"), (c, "c")):
            tops = [_top(r["raw"][k], n, p, w) for r in recs]
            assert np.allclose(col, [_score(f, w) if f is not None else -1e9 for f in tops])
            if k == "a":
                assert list(ok) == [bool(f is not None and f[OK]) for f in tops]


def test_observe__records_each_finding_with_its_span_and_retype_rechecks_answer_types(seed_pipeline):
    from bot.answer.answer_type import mismatch
    from eval.questions import EvalQuestion
    from train.calibrate import observe, retype

    answerer = seed_pipeline.reader
    questions = [EvalQuestion("q26", "How many satellites is ADASpace to deliver to Asia Satellite Telecommunications?",
                              ("180",), ("002_0c73d536360565c7.txt",)),
                 EvalQuestion("q30", "Who is the chief executive of ADASpace?", ("Wang Lei",), ("002_0c73d536360565c7.txt",))]
    records = observe(seed_pipeline, answerer, questions, depth=3)
    assert [r["version"] for r in records] == [RECORDS_VERSION] * 2
    for r, q in zip(records, questions):
        assert r["question"] == q.question and r["raw"]["a"]
        for k in ("a", "u", "c"):
            assert len(r["spans"][k]) == len(r["raw"][k]) == len(r["sentences"][k])
            assert all(span in sentence for span, sentence in zip(r["spans"][k], r["sentences"][k]))
            for f in r["raw"][k]:
                f[5] = 9.0
    assert records[0]["raw"]["a"][0][OK] is True  # "180" is in the answer composed from the best finding
    retype({"val": records})
    for r in records:
        for k in ("a", "u", "c"):
            assert [f[5] for f in r["raw"][k]] == [float(mismatch(r["question"], s)) for s in r["spans"][k]]
