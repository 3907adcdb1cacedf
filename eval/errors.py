"""Errors of evaluation: messages a user can act on (the CLI prints them as one `error:` line)."""

from __future__ import annotations

from bot.errors import QAError


class BadQuestionSet(QAError):
    """A question-set file has a malformed line."""
