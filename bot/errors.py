"""Domain errors: each carries a message that is safe to show a user."""

from __future__ import annotations

# The base class and the store errors live in index/ (which must not import bot/);
# re-exported here so adapters import every domain error from one place.
from index.errors import CorpusMissing, IndexMissing, QAError, StoreUnavailable

__all__ = [
    "QAError",
    "BadQuestion",
    "CorpusMissing",
    "IndexMissing",
    "LLMUnavailable",
    "ReaderUnavailable",
    "StoreUnavailable",
]


class BadQuestion(QAError):
    """The question is empty, too long or otherwise unusable."""


class LLMUnavailable(QAError):
    """The configured LLM failed; callers usually fall back to the offline answer."""


class ReaderUnavailable(QAError):
    """The configured reader model cannot be loaded."""
