"""Settings: defaults, environment, and checks across fields."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from bot.config import Settings


def test_fusion_weights_default_leave_half_to_bm25():
    s = Settings(_env_file=None)
    assert s.dense_weight + s.sentence_weight == pytest.approx(0.5)


def test_fusion_weights_over_one_are_refused_with_a_clear_message(monkeypatch):
    monkeypatch.setenv("QA_DENSE_WEIGHT", "0.8")
    monkeypatch.setenv("QA_SENTENCE_WEIGHT", "0.3")
    with pytest.raises(ValidationError, match="must be at most 1"):
        Settings(_env_file=None)
