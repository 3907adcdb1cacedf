"""Secrets never reach the log: tokens and the signing secret become [redacted], tracebacks included."""

from __future__ import annotations

import logging
import re
import threading
import traceback

__all__ = ["add_secrets", "install_log_scrubber", "log_failure", "scrub"]

_TOKEN = re.compile(r"\b(?:xox[a-z]|xapp)-[A-Za-z0-9-]+")
_secrets: set[str] = set()
_secrets_lock = threading.Lock()


def add_secrets(*values: str | None) -> None:
    """Remember secret values (tokens, signing secret) that `scrub` must remove."""
    with _secrets_lock:
        _secrets.update(v for v in values if v and len(v) >= 6)


def scrub(text: str) -> str:
    """The text with known secrets and anything shaped like a Slack token replaced by [redacted]."""
    with _secrets_lock:
        secrets = sorted(_secrets, key=len, reverse=True)
    for secret in secrets:
        text = text.replace(secret, "[redacted]")
    return _TOKEN.sub("[redacted]", text)


def log_failure(logger: logging.Logger, what: str) -> None:
    """Log the exception being handled with its traceback, scrubbed.

    Never with exc_info: a handler without the scrub filter would write the raw traceback.
    """
    logger.error("%s failed:\n%s", what, scrub(traceback.format_exc()).rstrip())


class _ScrubFilter(logging.Filter):
    """Rewrites every record so that no token or signing secret is written, tracebacks included."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a broken format string: keep the raw message
            message = str(record.msg)
        record.msg, record.args = scrub(message), None
        if record.exc_info:
            record.exc_text = scrub(logging.Formatter().formatException(record.exc_info))
            record.exc_info = None
        if record.stack_info:
            record.stack_info = scrub(record.stack_info)
        return True


def install_log_scrubber() -> None:
    """Scrub every handler of the root logger (where all library logs end up)."""
    root = logging.getLogger()
    if not root.handlers:
        logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    for handler in root.handlers:
        if not any(isinstance(f, _ScrubFilter) for f in handler.filters):
            handler.addFilter(_ScrubFilter())
