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


def default_sigint() -> None:
    """preexec_fn for a process a test sends Ctrl-C to: a runner started in the background by a
    non-interactive shell ignores SIGINT, and an ignored signal stays ignored across exec."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_DFL)


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
        logger = logging.getLogger(name or None)
        if logger.level != level:  # each setLevel clears every logger's cache: only the changed ones
            logger.setLevel(level)
    stderr = result.stderr
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        stderr += "".join(traceback.format_exception(result.exception))  # what a process would print
    return Run(result.exit_code, result.stdout, stderr)


@pytest.fixture(scope="session")
def seed_settings(tmp_path_factory):
    """Settings whose data dir holds a finished index of seeds/ (embedded Chroma).

    Under pytest-xdist the first worker to get here builds it and every worker copies that build: one
    build (and, on a new machine, one model export) per run instead of one per worker.
    """
    import shutil

    from filelock import FileLock

    from index.indexer import Indexer

    base = tmp_path_factory.getbasetemp()
    shared = (base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base) / "seed-index-template"
    with FileLock(f"{shared}.lock"):
        if not (shared / "BUILT").exists():
            shutil.rmtree(shared, ignore_errors=True)
            Indexer.from_settings(make_settings(shared / "data")).build(SEEDS)
            (shared / "BUILT").touch()
    data = tmp_path_factory.mktemp("seed-index") / "data"
    shutil.copytree(shared / "data", data)
    return make_settings(data)


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


# Vectors the real model gave, by (model, text, sentence spans), for every test that opts in below.
_VECTORS: dict[tuple, tuple] = {}


@pytest.fixture
def reuse_vectors(request, monkeypatch):
    """Embed each distinct text once per session: the build tests index the same seed articles ~60 times.

    The vectors are the real model's, computed on first sight (batched with other new texts, so they can
    differ from a fresh build's in the last float digits, as any two batchings do). The tests that use
    this check what a build keeps, skips, resumes and repairs, not the vectors; encoding itself is
    tested in tests/test_embedding.py without it. A test marked `real_encode` opts out.
    """
    if request.node.get_closest_marker("real_encode"):
        return
    import numpy as np

    from index.embedding import MiniLMEncoder

    real = MiniLMEncoder.encode

    def encode(self, texts, batch_size=64, spans=None, batch_tokens=None):
        keys = [(self.name, t, None if spans is None else tuple(spans[i])) for i, t in enumerate(texts)]
        new = [i for i, k in enumerate(keys) if k not in _VECTORS]
        if new:
            got = real(self, [texts[i] for i in new], batch_size,
                       None if spans is None else [spans[i] for i in new], batch_tokens)
            vectors, per_span = got if spans is not None else (got, [None] * len(new))
            for j, i in enumerate(new):
                _VECTORS[keys[i]] = (vectors[j], per_span[j])
        out = np.stack([_VECTORS[k][0] for k in keys]) if keys else real(self, [], batch_size, spans, batch_tokens)
        if spans is None:
            return out
        return (out, [_VECTORS[k][1].copy() for k in keys]) if keys else out

    monkeypatch.setattr(MiniLMEncoder, "encode", encode)
