"""What the Slack listeners share: the pipeline, the feedback store, the limits, and the answer flow.

`SlackBot.answer` is the one place where a question becomes a reply in a thread: it runs `Pipeline.stream`
and hands the text to a `Reply`; a `QAError` ends in its user message, anything else in `GENERIC_ERROR`
(the traceback goes to the log, scrubbed of secrets).
"""

from __future__ import annotations

import logging
import math
import threading
import time
from typing import TYPE_CHECKING, Any, Callable

from slack_sdk.errors import SlackApiError

from bot.errors import QAError
from bot.slack.limits import RateLimiter, SeenOnce
from bot.slack.redact import log_failure
from bot.slack.reply import Reply, Target, post_notice
from bot.types import Answer, Conversation, Delta

if TYPE_CHECKING:
    from slack_sdk import WebClient

    from bot.config import Settings
    from bot.slack.feedback import FeedbackStore
    from bot.slack.limits import Clock

__all__ = ["GENERIC_ERROR", "USAGE", "SlackBot", "ack_now"]

log = logging.getLogger(__name__)

WORKING_REACTION = "eyes"
GENERIC_ERROR = (
    "Sorry, something went wrong while I was answering. It has been logged; please try again in a moment."
)
USAGE = "Ask me a question about the news articles, e.g. `/ask Who is the president of …?` or mention me with it."


def ack_now(ack: Callable[[], None]) -> None:
    """The ack of every listener: acknowledge at once, the work runs afterwards as a lazy listener."""
    ack()


class SlackBot:
    """State shared by the listeners: pipeline, feedback store, dedup memories, rate limiter, streaming mode."""

    def __init__(
        self,
        pipeline: Any,
        settings: Settings,
        store: FeedbackStore | None = None,
        *,
        streaming: bool = True,
        max_concurrent: int = 4,
        stream_buffer: int = 256,
        update_interval: float = 1.0,
        dedup_ttl: float = 3600.0,
        clock: Clock = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ):
        self.pipeline = pipeline
        self.store = store
        self.streaming = streaming
        self.stream_buffer = stream_buffer  # characters ChatStream gathers before each chat.*Stream call
        self.update_interval = update_interval
        self.allowed_channels = {c.strip() for c in settings.slack_allowed_channels.split(",") if c.strip()}
        self.rate_limit = settings.slack_rate_limit
        self.limiter = RateLimiter(settings.slack_rate_limit, 60.0, clock=clock)
        self.deliveries = SeenOnce(dedup_ttl, clock=clock)  # event ids and trigger ids already received
        self.claimed_messages = SeenOnce(dedup_ttl, clock=clock)  # (channel, ts) of the messages being answered
        self.slots = threading.BoundedSemaphore(max_concurrent)
        self._clock, self._sleep = clock, sleep  # injectable: tests move a fake clock instead of waiting

    # -- checks and texts -------------------------------------------------------------------------
    def channel_allowed(self, channel: str) -> bool:
        """True when no allowlist is set, the channel is on it, or it is a direct message."""
        return not self.allowed_channels or channel in self.allowed_channels or channel.startswith("D")

    def where_allowed(self) -> str:
        """The sentence that tells people where the bot answers."""
        channels = ", ".join(f"<#{c}>" for c in sorted(self.allowed_channels))
        return f"Ask me in {channels} or in a direct message."

    def slow_down_text(self, user: str, wait: float) -> str:
        """The friendly rate-limit message."""
        return (f"Please slow down a little, <@{user}>: I answer up to {self.rate_limit} questions a minute per "
                f"person. Ask again in {max(1, math.ceil(wait))} s.")

    def streaming_unsupported(self, error: str) -> None:
        """chat.startStream is not offered to this app: every later answer uses chat.update."""
        self.streaming = False
        log.warning("Slack streaming is unavailable (%s): answers will use chat.update", error)

    # -- Slack helpers ------------------------------------------------------------------------------
    def react(self, client: WebClient, channel: str, ts: str, add: bool) -> None:
        """Add or remove the 👀 "working on it" reaction; a failure is only logged (it is cosmetic)."""
        try:
            if add:
                client.reactions_add(channel=channel, timestamp=ts, name=WORKING_REACTION)
            else:
                client.reactions_remove(channel=channel, timestamp=ts, name=WORKING_REACTION)
        except SlackApiError as exc:  # missing reactions:write, already reacted...
            log.debug("reaction %s failed: %s", "add" if add else "remove", exc.response.get("error"))

    def safely(self, what: str, client: WebClient, channel: str | None, thread_ts: str | None,
               func: Callable[[], None]) -> None:
        """Run a listener body; any failure is logged and ends in a friendly message in the thread."""
        try:
            func()
        except Exception:  # noqa: BLE001 - the last line of defence: Slack users never see a traceback
            log_failure(log, what)
            if channel:
                try:
                    post_notice(client, channel, thread_ts, GENERIC_ERROR)
                except Exception:  # noqa: BLE001 - Slack itself may be what failed
                    log_failure(log, "posting the error message")

    # -- answers ------------------------------------------------------------------------------------
    def answer(self, client: WebClient, target: Target, question: str, conversation: Conversation | None) -> None:
        """Run the pipeline and write its answer into the thread (or a friendly failure message)."""
        reply = Reply(client, target, question, streaming=self.streaming, buffer_size=self.stream_buffer,
                      update_interval=self.update_interval, clock=self._clock, sleep=self._sleep,
                      on_streaming_unsupported=self.streaming_unsupported)
        try:
            final: Answer | None = None
            with self.slots:
                for item in self.pipeline.stream(question, conversation):
                    if isinstance(item, Delta):
                        reply.append(item.text)
                    else:
                        final = item
            if final is None:
                raise RuntimeError("the pipeline ended without an answer")
            answer_id = self.record(final, user=target.user, channel=target.channel, thread_ts=target.thread_ts,
                                    team=target.team)
            reply.finish(final, answer_id)
            if answer_id is not None and reply.ts:
                try:
                    self.store.set_message_ts(answer_id, reply.ts)  # type: ignore[union-attr]
                except Exception:  # noqa: BLE001 - bookkeeping only
                    log_failure(log, "storing the answer's message ts")
        except QAError as exc:
            log.info("question not answered: %s", exc.user_message)
            reply.fail(exc.user_message)
        except Exception:  # noqa: BLE001 - logged with traceback; the user gets a friendly message
            log_failure(log, "answering a question")
            reply.fail(GENERIC_ERROR)

    def record(self, answer: Answer, **where: Any) -> int | None:
        """Store the answer for feedback; its id (for the buttons), or None without a store or on failure."""
        if self.store is None:
            return None
        try:
            return self.store.record_answer(answer, **where)
        except Exception:  # noqa: BLE001 - no feedback buttons is better than no answer
            log_failure(log, "storing the answer for feedback")
            return None
