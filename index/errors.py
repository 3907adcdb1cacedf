"""Errors of the indexing layer, each with a message that is safe to show a user.

`bot.errors.QAError` is the same base class, so adapters catch one type.
"""

from __future__ import annotations


class QAError(Exception):
    """Base of errors whose message may be shown to a user as it is."""

    def __init__(self, user_message: str):
        super().__init__(user_message)
        self.user_message = user_message


class CorpusMissing(QAError):
    """The articles directory does not exist or is not a directory."""


class StoreUnavailable(QAError):
    """The vector store (e.g. a Chroma server) cannot be reached or read."""


class IndexMissing(QAError):
    """There is no index to answer from yet."""


class CorpusEmpty(QAError):
    """The path holds no article the indexer can read."""


class IndexDamaged(QAError):
    """Files of the index are missing, unreadable or disagree; the message says which command repairs it."""


class EmbeddingMismatch(QAError):
    """The index was embedded with another model or precision than the settings ask for."""
