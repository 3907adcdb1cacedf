"""bench/calibrate.py: how the abstention threshold is chosen from observed evidence scores."""

from __future__ import annotations

import importlib.util

from tests.conftest import ROOT

_spec = importlib.util.spec_from_file_location("calibrate", ROOT / "bench" / "calibrate.py")
calibrate = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(calibrate)


def test_threshold_maximises_unanswerable_abstention_within_the_allowed_rate():
    answerable = [0.5, 0.6, 0.7, 0.8]
    unanswerable = [0.1, 0.2, 0.55]
    # Catching 0.55 costs 0.5 (25 % of the answerable ones): allowed at 30 %, not at 0 %.
    assert calibrate.pick_threshold(answerable, unanswerable, max_rate=0.30) == 0.575
    assert calibrate.pick_threshold(answerable, unanswerable, max_rate=0.0) == 0.35  # middle of 0.2 .. 0.5


def test_no_answerable_question_is_given_up_for_nothing():
    # Same unanswerable recall below 0.36 and below 0.42; the wider gap (0.36-0.42) would lose 0.36.
    answerable = [0.36, 0.42, 0.5, 0.6, 0.7]
    unanswerable = [0.30, 0.33, 0.9]
    t = calibrate.pick_threshold(answerable, unanswerable, max_rate=0.25)
    assert 0.33 < t < 0.36
