"""Shared fixtures: a real index of the seed articles, built once per test session."""

from __future__ import annotations

import logging
import os
import sys
import traceback
from dataclasses import dataclass
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


def default_embedding() -> tuple[str, str]:
    """(precision, recorded model name) of the embedding that default settings index with."""
    from bot.config import Settings
    from index.embedding import model_identity

    precision = Settings.model_fields["embed_precision"].default
    return precision, model_identity(precision)


@dataclass(frozen=True)
class Run:
    """What a `qa` run left: exit status, stdout, stderr."""

    returncode: int
    stdout: str
    stderr: str


def qa_in_process(args: list[str], env: dict[str, str], cwd, monkeypatch) -> Run:
    """`qa ...` through typer's CliRunner, as `run()` would call it (global options first).

    `qa ask` ends with os._exit to skip interpreter teardown; here it becomes a normal exit once output is flushed.
    """
    from typer.testing import CliRunner

    import bot.cli as cli

    def exit_now(code: int) -> None:
        sys.stdout.flush()
        sys.stderr.flush()
        raise SystemExit(code)

    levels = {name: logging.getLogger(name).level for name in ("", *logging.root.manager.loggerDict)}
    with monkeypatch.context() as m:
        m.setattr(cli, "_exit_now", exit_now)
        m.chdir(cwd)  # no .env here
        for name in [k for k in os.environ if k.startswith(("OPENAI_", "CHROMA_", "QA_"))]:
            m.delenv(name)
        result = CliRunner().invoke(cli.app, cli._global_options_first(args), env=env, prog_name="qa")
    for name, level in levels.items():  # -v and `qa index` tune loggers of this (shared) process
        logging.getLogger(name or None).setLevel(level)
    stderr = result.stderr
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        stderr += "".join(traceback.format_exception(result.exception))  # what a process would print
    return Run(result.exit_code, result.stdout, stderr)


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
