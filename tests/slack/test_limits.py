"""The bot's limits on a fake clock: dedup memory, rate limit, log throttle."""

from __future__ import annotations

import logging

from bot.slack.limits import LogThrottle, RateLimiter, SeenOnce, Verdict
from tests.slack.conftest import FakeClock


def test_seen_once__forgets_a_key_after_its_ttl():
    clock = FakeClock()
    seen = SeenOnce(ttl=300, clock=clock)
    assert seen.first("Ev1") and not seen.first("Ev1")
    clock.advance(299)
    assert not seen.first("Ev1") and "Ev1" in seen
    clock.advance(1)
    assert "Ev1" not in seen and seen.first("Ev1")


def test_seen_once__is_bounded():
    seen = SeenOnce(ttl=60, maxsize=3, clock=FakeClock())
    for key in "abcd":
        seen.first(key)
    assert "a" not in seen and len(seen) == 3  # the oldest went first


def test_rate_limiter__sliding_window_and_one_refusal_to_tell():
    clock = FakeClock()
    limiter = RateLimiter(2, window=60, clock=clock)
    assert limiter.check("u").allowed
    clock.advance(30)
    assert limiter.check("u").allowed
    first, second = limiter.check("u"), limiter.check("u")
    assert (first.allowed, first.retry_after, first.tell) == (False, 30, True)
    assert (second.allowed, second.tell) == (False, False)  # told once per window, not once per message
    assert limiter.check("v").allowed  # other people are not affected
    clock.advance(30)  # the first request left the window
    assert limiter.check("u").allowed
    assert limiter.check("u") == Verdict(False, 30, tell=False)  # still within the window of the first refusal
    clock.advance(30)
    assert limiter.check("u").allowed
    assert limiter.check("u").tell is True  # a minute after the first refusal: told again


def test_log_throttle__one_line_per_interval_then_a_count_of_the_rest(caplog):
    clock = FakeClock()
    throttle = LogThrottle(logging.getLogger("bot.slack.test"), every=60, clock=clock)
    with caplog.at_level(logging.WARNING, logger="bot.slack.test"):
        assert [throttle.warning("signature", "rejected") for _ in range(200)].count(True) == 1
        assert throttle.warning("malformed", "bad body")  # each kind has its own line
        clock.advance(60)
        throttle.warning("signature", "rejected")
    assert [r.getMessage() for r in caplog.records] == [
        "rejected", "bad body", "rejected (199 more like this in the last 60 s)"]
