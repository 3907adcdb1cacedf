"""Shared fixtures: a real index of the seed articles, built once per test session."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SEEDS = ROOT / "seeds"

# Tests must never pick up a developer's .env or real credentials.
for _name in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "CHROMA_HOST", "SLACK_BOT_TOKEN", "SLACK_APP_TOKEN"):
    os.environ.pop(_name, None)


def make_settings(data_dir: Path, **overrides):
    """Settings for a test: explicit data dir, no .env file, no LLM unless asked."""
    from bot.config import Settings

    return Settings(_env_file=None, data_dir=data_dir, **overrides)


@pytest.fixture(scope="session")
def seed_settings(tmp_path_factory):
    """Settings whose data dir holds a finished index of seeds/ (embedded Chroma)."""
    from index.indexer import Indexer

    settings = make_settings(tmp_path_factory.mktemp("seed-index"))
    Indexer.from_settings(settings).build(SEEDS)
    return settings


@pytest.fixture(scope="session")
def seed_pipeline(seed_settings):
    """An offline Pipeline over the seed index."""
    from bot.pipeline import Pipeline

    return Pipeline.from_settings(seed_settings)


@pytest.fixture(scope="session")
def heuristic_pipeline(seed_settings):
    """An offline Pipeline over the seed index that answers with the heuristic sentence scorer."""
    from bot.pipeline import Pipeline

    return Pipeline.from_settings(seed_settings.model_copy(update={"offline_answerer": "heuristic"}))
