"""Limits of the Slack bot: repeated deliveries dropped, questions per person per minute, log lines per minute.

Every class takes a `clock` (seconds, monotonic) so that tests can move time instead of waiting for it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Hashable

from cachetools import TTLCache
from slack_bolt import BoltResponse

if TYPE_CHECKING:
    from slack_bolt.request import BoltRequest

__all__ = ["Clock", "LogThrottle", "RateLimiter", "SeenOnce", "Verdict", "dedup_middleware"]

log = logging.getLogger(__name__)

Clock = Callable[[], float]


class SeenOnce:
    """A bounded, thread-safe memory of keys that expire after `ttl` seconds."""

    def __init__(self, ttl: float = 3600.0, maxsize: int = 10_000, clock: Clock = time.monotonic):
        # TTLCache evicts expired keys first, then the least recently used: memory stays bounded under a flood.
        self._keys: TTLCache = TTLCache(maxsize=maxsize, ttl=ttl, timer=clock)
        self._lock = threading.Lock()  # TTLCache itself is not thread-safe

    def first(self, key: Hashable) -> bool:
        """True only the first time `key` is seen within the TTL (and remember it)."""
        with self._lock:
            if key in self._keys:
                return False
            self._keys[key] = True
            return True

    def __contains__(self, key: Hashable) -> bool:
        with self._lock:
            return key in self._keys

    def __len__(self) -> int:
        with self._lock:
            self._keys.expire()
            return len(self._keys)


@dataclass(frozen=True)
class Verdict:
    """The rate limiter's answer: allowed, or refused with the seconds to wait and whether to tell the person."""

    allowed: bool
    retry_after: float = 0.0
    tell: bool = False  # the first refusal of a window: say "slow down" once, not once per message


class RateLimiter:
    """At most `limit` requests per key in any `window` seconds (sliding window); one "slow down" per window."""

    def __init__(self, limit: int, window: float = 60.0, *, maxsize: int = 10_000, clock: Clock = time.monotonic):
        self.limit, self.window, self._clock = limit, window, clock
        # A key's entry expires one window after its last request, when all its hits would be stale anyway.
        self._hits: TTLCache = TTLCache(maxsize=maxsize, ttl=window, timer=clock)
        self._told = SeenOnce(ttl=window, maxsize=maxsize, clock=clock)
        self._lock = threading.Lock()

    def check(self, key: str) -> Verdict:
        """Count the request if it is allowed; otherwise say how long to wait and whether this is the first refusal."""
        now = self._clock()
        with self._lock:
            hits: deque[float] = self._hits.get(key) or deque()
            while hits and hits[0] <= now - self.window:
                hits.popleft()
            if len(hits) >= self.limit:
                self._hits[key] = hits
                return Verdict(False, hits[0] + self.window - now, self._told.first(key))
            hits.append(now)
            self._hits[key] = hits
            return Verdict(True)


class LogThrottle:
    """At most one warning per `every` seconds for each kind; the next one says how many were held back.

    A flood of bad requests must not flood the log, yet the first one must be there to find.
    """

    def __init__(self, logger: logging.Logger, every: float = 60.0, clock: Clock = time.monotonic):
        self.logger, self.every, self._clock = logger, every, clock
        self._state: dict[str, tuple[float, int]] = {}  # kind -> (time of the last line, lines held back since)
        self._lock = threading.Lock()

    def warning(self, kind: str, message: str) -> bool:
        """Log `message` unless a line of this kind was logged less than `every` seconds ago; True if logged."""
        now = self._clock()
        with self._lock:
            last, held = self._state.get(kind, (None, 0))
            if last is not None and now - last < self.every:
                self._state[kind] = (last, held + 1)
                return False
            self._state[kind] = (now, 0)
        if held:
            message += f" ({held} more like this in the last {now - last:.0f} s)"
        self.logger.warning("%s", message)
        return True


def dedup_middleware(seen: SeenOnce) -> Callable[..., BoltResponse]:
    """A Bolt global middleware that acknowledges and drops a delivery already seen.

    Events are known by their event_id (a Slack retry, X-Slack-Retry-Num, carries the same one); slash
    commands and button clicks by their trigger_id, which a replayed request repeats.
    """

    def dedup(request: BoltRequest, next: Callable[[], BoltResponse]) -> BoltResponse:  # noqa: A002 - Bolt's name
        body: dict[str, Any] = request.body if isinstance(request.body, dict) else {}
        event_id, trigger_id = body.get("event_id"), body.get("trigger_id")
        retry = (request.headers.get("x-slack-retry-num") or [None])[0]
        if event_id and not seen.first(("event", event_id)):
            reason = (request.headers.get("x-slack-retry-reason") or ["duplicate"])[0]
            log.info("dropped a repeated delivery of event %s (retry %s, %s)", event_id, retry or "-", reason)
            return BoltResponse(status=200, body="", headers={"x-slack-no-retry": "1"})
        if not event_id and trigger_id and not seen.first(("trigger", trigger_id)):
            what = body.get("command") or body.get("type") or "request"
            log.info("dropped a repeated %s (trigger %s): a replayed request", what, trigger_id)
            return BoltResponse(status=200, body="")
        if retry and retry != "0":  # Socket Mode marks every first delivery as retry_attempt 0
            # A retry whose original never arrived here (lost, or before a restart): this is its first delivery.
            log.info("processing retry %s of event %s: the original delivery was not received", retry, event_id)
        return next()

    return dedup
