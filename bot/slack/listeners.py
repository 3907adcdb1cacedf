"""Slack listeners: mentions, direct messages, `/ask` and the feedback buttons, on top of `Pipeline.stream`.

Every listener is a Bolt *lazy* listener: the ack function only acknowledges (so Slack gets its answer within
3 s whatever the pipeline is doing) and the work runs afterwards on the app's executor.

Before any listener runs, `SlackBot.dedup` (a global middleware, after Bolt's signature check) drops
repeated deliveries: an event id already seen, which is how a Slack retry (`X-Slack-Retry-Num`) of an event
we received shows up. A message is also answered at most once whatever the event that carried it
(an `app_mention` and a `message.im` for the same message share its channel and ts).

Then, per question: bots (including this one) are ignored, the channel allowlist and the per-user rate limit
are checked, an 👀 reaction shows that the bot is working, a thread's earlier turns become the conversation,
and the answer is streamed (`chat.startStream` / `appendStream` / `stopStream`) when the pipeline yields text
as it goes, or falls back to `chat.update` at most once a second when Slack's streaming methods fail.
Any failure ends in a friendly message in the thread and a logged, secret-free traceback.
"""

from __future__ import annotations

import logging
import math
import re
import threading
import time
import traceback
from collections import OrderedDict, deque
from typing import TYPE_CHECKING, Any, Callable

from slack_bolt import App, BoltResponse
from slack_sdk.errors import SlackApiError

from bot.errors import QAError
from bot.slack import format as fmt
from bot.slack.feedback import UnknownAnswer
from bot.types import Answer, Conversation, Delta

if TYPE_CHECKING:
    from slack_bolt.request import BoltRequest
    from slack_sdk import WebClient

    from bot.config import Settings
    from bot.slack.feedback import FeedbackStore

__all__ = [
    "GENERIC_ERROR",
    "RateLimiter",
    "SlackBot",
    "TTLSet",
    "add_secrets",
    "conversation_from_thread",
    "register",
    "scrub",
]

log = logging.getLogger(__name__)

ASK_COMMAND = "/ask"
WORKING_REACTION = "eyes"
GENERIC_ERROR = (
    "Sorry, something went wrong while I was answering. It has been logged; please try again in a moment."
)
USAGE = "Ask me a question about the news articles, e.g. `/ask Who is the president of …?` or mention me with it."
STREAM_CHUNK = 12_000  # characters of markdown_text per chat.*Stream call
ANSWER_EVENT = "qa_answer"  # message metadata of an answer
QUESTION_EVENT = "qa_question"  # message metadata of a question the bot posted for /ask
NOTICE_EVENT = "qa_notice"  # message metadata of errors, slow-down and other notices
# chat.startStream errors that mean "streaming will not work for this app": stop trying it.
STREAMING_UNSUPPORTED = {
    "unknown_method", "not_allowed_token_type", "missing_scope", "method_deprecated", "not_implemented",
    "feature_not_enabled", "team_not_enabled", "invalid_auth",
}


# --- secrets never reach the log ----------------------------------------------------------
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


def _log_failure(what: str) -> None:
    """Log the exception being handled, with its traceback, scrubbed (never with exc_info: handlers would not scrub it)."""
    log.error("%s failed:\n%s", what, scrub(traceback.format_exc()).rstrip())


# --- small thread-safe helpers ---------------------------------------------------------------
class TTLSet:
    """A bounded set whose members expire: `add` is True only the first time a key is seen within the TTL."""

    def __init__(self, ttl: float = 3600.0, maxsize: int = 10_000):
        self.ttl, self.maxsize = ttl, maxsize
        self._items: OrderedDict[Any, float] = OrderedDict()
        self._lock = threading.Lock()

    def add(self, key: Any) -> bool:
        now = time.monotonic()
        with self._lock:
            while self._items:  # insertion order is expiry order (one TTL for all)
                oldest, expires = next(iter(self._items.items()))
                if expires > now:
                    break
                del self._items[oldest]
            if key in self._items:
                return False
            self._items[key] = now + self.ttl
            while len(self._items) > self.maxsize:
                self._items.popitem(last=False)
            return True

    def __contains__(self, key: Any) -> bool:
        with self._lock:
            expires = self._items.get(key)
            return expires is not None and expires > time.monotonic()

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)


class RateLimiter:
    """At most `limit` requests per key in any `window` seconds (sliding window)."""

    def __init__(self, limit: int, window: float = 60.0):
        self.limit, self.window = limit, window
        self._hits: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def allow(self, key: str) -> tuple[bool, float]:
        """(True, 0) and count the request, or (False, seconds until the next one is allowed)."""
        now = time.monotonic()
        with self._lock:
            if len(self._hits) > 10_000:  # forget idle keys so memory stays bounded
                for k in [k for k, q in self._hits.items() if not q or q[-1] <= now - self.window]:
                    del self._hits[k]
            hits = self._hits.setdefault(key, deque())
            while hits and hits[0] <= now - self.window:
                hits.popleft()
            if len(hits) >= self.limit:
                return False, hits[0] + self.window - now
            hits.append(now)
            return True, 0.0


# --- threads -> conversations ----------------------------------------------------------------
def _ts(message: dict) -> float:
    try:
        return float(message.get("ts") or 0)
    except ValueError:
        return 0.0


def conversation_from_thread(
    messages: list[dict], *, bot_user_id: str | None, bot_id: str | None, before_ts: str | None = None
) -> Conversation:
    """The earlier turns of a Slack thread: each question followed by this bot's answer becomes a Turn.

    Questions are the people's messages (the bot's mention removed) and the questions the bot posted for
    `/ask`; answers are this bot's messages, except its notices (errors, slow down). Messages at or after
    `before_ts` (the question being answered) are left out.
    """
    conversation = Conversation()
    limit = float(before_ts) if before_ts else math.inf
    pending: str | None = None
    for m in sorted(messages, key=_ts):
        if _ts(m) >= limit:
            continue
        meta = m.get("metadata") or {}
        event_type = meta.get("event_type")
        payload = meta.get("event_payload") or {}
        ours = bool((bot_id and m.get("bot_id") == bot_id) or (bot_user_id and m.get("user") == bot_user_id))
        if event_type == QUESTION_EVENT and ours:
            pending = str(payload.get("question") or "") or pending
            continue
        if ours:
            if event_type == NOTICE_EVENT or pending is None:
                continue
            text = (m.get("text") or "").strip()
            if text:
                standalone = payload.get("standalone") or None
                conversation.add(pending, Answer(question=pending, text=text, standalone_question=standalone))
            pending = None
            continue
        if m.get("bot_id") or m.get("subtype") not in (None, "thread_broadcast", "file_share"):
            continue  # other bots, joins, edits...
        question = fmt.clean_question(m.get("text") or "", bot_user_id)
        if question:
            pending = question
    return conversation


# --- one answer message ----------------------------------------------------------------------
class Reply:
    """The answer message of one question, created on the first text to show.

    Streaming mode uses chat.startStream / appendStream / stopStream; update mode posts the first text and
    then rewrites it with chat.update no more than once per `update_interval`. Streaming falls back to update
    mode when chat.startStream fails. An answer that arrives whole (the offline answerer) is posted as one
    message with its blocks.
    """

    def __init__(self, bot: SlackBot, client: WebClient, channel: str, thread_ts: str, user: str | None,
                 team: str | None, question: str):
        self.bot, self.client = bot, client
        self.channel, self.thread_ts, self.user, self.team, self.question = channel, thread_ts, user, team, question
        self.streaming = bot.streaming
        self.ts: str | None = None
        self.shown = ""  # text already on screen (streaming: markdown sent; update mode: text rendered)
        self.pending = ""  # text received but not yet sent
        self.last_write = 0.0  # time.monotonic() of the last chat.* write to the message

    # -- low-level writes ---------------------------------------------------------------------
    def _start_stream(self, text: str) -> bool:
        try:
            response = self.client.chat_startStream(
                channel=self.channel, thread_ts=self.thread_ts, markdown_text=text or None,
                recipient_team_id=self.team, recipient_user_id=self.user,
            )
        except SlackApiError as exc:
            self.bot.stream_failed(exc)
            self.streaming = False
            return False
        self.ts = response["ts"]
        return True

    def _append_stream(self, text: str) -> None:
        for i in range(0, len(text), STREAM_CHUNK):
            self.client.chat_appendStream(channel=self.channel, ts=self.ts, markdown_text=text[i : i + STREAM_CHUNK])

    def _partial_blocks(self, text: str) -> list[dict]:
        blocks = fmt.answer_blocks(Answer(question=self.question, text=text))
        return blocks + [{"type": "context", "block_id": "qa_writing",
                          "elements": [{"type": "mrkdwn", "text": "_writing…_"}]}]

    def _wait_for_update_slot(self) -> None:
        wait = self.bot.update_interval - (time.monotonic() - self.last_write)
        if wait > 0:
            time.sleep(wait)

    # -- public ---------------------------------------------------------------------------------
    def append(self, text: str) -> None:
        """Add streamed answer text; sent when the previous write is old enough."""
        self.pending += text
        interval = self.bot.stream_interval if self.streaming else self.bot.update_interval
        if self.pending.strip() and time.monotonic() - self.last_write >= interval:
            self._flush()

    def _flush(self) -> None:
        text, self.pending = self.pending, ""
        if self.streaming:
            if self.ts is None:
                if self._start_stream(text[:STREAM_CHUNK]):
                    self._append_stream(text[STREAM_CHUNK:])
                    self.shown += text
                    self.last_write = time.monotonic()
                    return
                # streaming unavailable: continue as update mode with the same text
            else:
                self._append_stream(text)
                self.shown += text
                self.last_write = time.monotonic()
                return
        self.shown += text
        blocks = self._partial_blocks(self.shown)
        preview = fmt.to_mrkdwn(self.shown)[: fmt.TEXT_LIMIT]
        if self.ts is None:
            response = self.client.chat_postMessage(channel=self.channel, thread_ts=self.thread_ts, text=preview,
                                                    blocks=blocks, metadata=_meta(NOTICE_EVENT, {}))
            self.ts = response["ts"]
        else:
            self._wait_for_update_slot()
            self.client.chat_update(channel=self.channel, ts=self.ts, text=preview, blocks=blocks)
        self.last_write = time.monotonic()

    def finish(self, answer: Answer, answer_id: int | None) -> None:
        """Show the final answer with its sources and feedback buttons."""
        meta = _meta(ANSWER_EVENT, {"answer_id": answer_id, "question": answer.question,
                                    "standalone": answer.standalone_question})
        if self.ts is None:  # nothing shown yet: one message with everything
            response = self.client.chat_postMessage(
                channel=self.channel, thread_ts=self.thread_ts, text=fmt.fallback_text(answer),
                blocks=fmt.answer_blocks(answer, answer_id), metadata=meta, unfurl_links=False, unfurl_media=False,
            )
            self.ts = response["ts"]
            return
        if self.streaming:
            final = fmt.answer_markdown(answer)
            sent = self.shown.lstrip()
            rest = final[len(sent):] if final.startswith(sent) else None
            if rest and len(rest) > STREAM_CHUNK:
                self._append_stream(rest[:-STREAM_CHUNK])
                rest = rest[-STREAM_CHUNK:]
            self.client.chat_stopStream(channel=self.channel, ts=self.ts, markdown_text=rest or None,
                                        blocks=fmt.tail_blocks(answer, answer_id), metadata=meta)
            if rest is None:  # what was streamed is not what was kept (e.g. renumbered citations): replace it
                self.client.chat_update(channel=self.channel, ts=self.ts, text=fmt.fallback_text(answer),
                                        blocks=fmt.answer_blocks(answer, answer_id), metadata=meta)
            return
        self._wait_for_update_slot()
        self.client.chat_update(channel=self.channel, ts=self.ts, text=fmt.fallback_text(answer),
                                blocks=fmt.answer_blocks(answer, answer_id), metadata=meta)
        self.last_write = time.monotonic()

    def fail(self, message: str) -> None:
        """End the reply with a friendly message instead of an answer."""
        meta = _meta(NOTICE_EVENT, {})
        if self.ts is None:
            self.client.chat_postMessage(channel=self.channel, thread_ts=self.thread_ts, text=message,
                                         blocks=fmt.notice_blocks(fmt.escape(message)), metadata=meta)
        elif self.streaming:
            self.client.chat_stopStream(channel=self.channel, ts=self.ts, markdown_text=f"\n\n{message}", metadata=meta)
        else:
            self._wait_for_update_slot()
            self.client.chat_update(channel=self.channel, ts=self.ts, text=message,
                                    blocks=fmt.notice_blocks(fmt.escape(message)), metadata=meta)


def _meta(event_type: str, payload: dict) -> dict:
    """Message metadata (values must be strings, numbers or booleans: None is left out)."""
    return {"event_type": event_type, "event_payload": {k: v for k, v in payload.items() if v is not None}}


# --- the bot ---------------------------------------------------------------------------------
class SlackBot:
    """State shared by the listeners: pipeline, feedback store, dedup caches, rate limiter."""

    def __init__(
        self,
        pipeline: Any,
        settings: Settings,
        store: FeedbackStore | None = None,
        *,
        streaming: bool = True,
        max_concurrent: int = 4,
        stream_interval: float = 0.5,
        update_interval: float = 1.0,
        dedup_ttl: float = 3600.0,
    ):
        self.pipeline = pipeline
        self.store = store
        self.streaming = streaming
        self.stream_interval = stream_interval
        self.update_interval = update_interval
        self.allowed_channels = {c.strip() for c in settings.slack_allowed_channels.split(",") if c.strip()}
        self.rate_limit = settings.slack_rate_limit
        self.limiter = RateLimiter(settings.slack_rate_limit, 60.0)
        self.seen_events = TTLSet(dedup_ttl)
        self.claimed_messages = TTLSet(dedup_ttl)
        self.slots = threading.BoundedSemaphore(max_concurrent)

    # -- middleware -----------------------------------------------------------------------------
    def dedup(self, request: BoltRequest, next: Callable[[], BoltResponse]) -> BoltResponse:  # noqa: A002 - Bolt's name
        """Global middleware: a delivery of an event id already seen (a retry or a duplicate) is acked and dropped."""
        body = request.body if isinstance(request.body, dict) else {}
        event_id = body.get("event_id")
        retry = (request.headers.get("x-slack-retry-num") or [None])[0]
        if event_id and not self.seen_events.add(event_id):
            reason = (request.headers.get("x-slack-retry-reason") or ["duplicate"])[0]
            log.info("dropped a repeated delivery of event %s (retry %s, %s)", event_id, retry or "-", reason)
            return BoltResponse(status=200, body="", headers={"x-slack-no-retry": "1"})
        if retry and retry != "0":  # Socket Mode marks every first delivery as retry_attempt 0
            # A retry whose original never arrived here (lost, or before a restart): this is its first delivery.
            log.info("processing retry %s of event %s: the original delivery was not received", retry, event_id)
        return next()

    # -- checks -----------------------------------------------------------------------------------
    def channel_allowed(self, channel: str) -> bool:
        """True when no allowlist is set, the channel is on it, or it is a direct message."""
        return not self.allowed_channels or channel in self.allowed_channels or channel.startswith("D")

    def stream_failed(self, exc: SlackApiError) -> None:
        """chat.startStream failed: fall back to chat.update for this answer, and for good if unsupported."""
        error = str(exc.response.get("error", "")) if exc.response is not None else ""
        if error in STREAMING_UNSUPPORTED:
            self.streaming = False
            log.warning("Slack streaming is unavailable (%s): answers will use chat.update", error)
        else:
            log.warning("chat.startStream failed (%s): this answer uses chat.update", error or exc)

    def _slow_down_text(self, user: str, wait: float) -> str:
        return (f"Please slow down a little, <@{user}>: I answer up to {self.rate_limit} questions a minute per "
                f"person. Ask again in {max(1, math.ceil(wait))} s.")

    # -- Slack helpers --------------------------------------------------------------------------
    def notice(self, client: WebClient, channel: str, thread_ts: str | None, text: str) -> None:
        """Post a short message (error, slow down) in the thread."""
        client.chat_postMessage(channel=channel, thread_ts=thread_ts, text=text,
                                blocks=fmt.notice_blocks(text), metadata=_meta(NOTICE_EVENT, {}))

    def _react(self, client: WebClient, channel: str, ts: str, add: bool) -> None:
        try:
            if add:
                client.reactions_add(channel=channel, timestamp=ts, name=WORKING_REACTION)
            else:
                client.reactions_remove(channel=channel, timestamp=ts, name=WORKING_REACTION)
        except SlackApiError as exc:  # missing reactions:write, already reacted...: cosmetic only
            log.debug("reaction %s failed: %s", "add" if add else "remove", exc.response.get("error"))

    def safely(self, what: str, client: WebClient, channel: str | None, thread_ts: str | None,
               func: Callable[[], None]) -> None:
        """Run a listener body; any failure is logged and ends in a friendly message in the thread."""
        try:
            func()
        except Exception:  # noqa: BLE001 - the last line of defence: Slack users never see a traceback
            _log_failure(what)
            if channel:
                try:
                    self.notice(client, channel, thread_ts, GENERIC_ERROR)
                except Exception:  # noqa: BLE001 - Slack itself may be what failed
                    _log_failure("posting the error message")

    # -- questions ------------------------------------------------------------------------------
    def thread_conversation(self, client: WebClient, channel: str, thread_ts: str, before_ts: str,
                            bot_user_id: str | None, bot_id: str | None) -> Conversation | None:
        """The thread's earlier turns (conversations.replies), or None when they cannot be read."""
        messages: list[dict] = []
        cursor = None
        try:
            for _ in range(5):  # at most 1000 messages
                response = client.conversations_replies(channel=channel, ts=thread_ts, limit=200, cursor=cursor,
                                                        include_all_metadata=True)
                messages.extend(response.get("messages") or [])
                cursor = (response.get("response_metadata") or {}).get("next_cursor")
                if not response.get("has_more") or not cursor:
                    break
        except SlackApiError as exc:
            log.warning("cannot read thread %s/%s (%s): answering without it", channel, thread_ts,
                        exc.response.get("error"))
            return None
        conversation = conversation_from_thread(messages, bot_user_id=bot_user_id, bot_id=bot_id,
                                                before_ts=before_ts)
        return conversation if conversation.turns else None

    def answer(self, client: WebClient, *, channel: str, thread_ts: str, question: str,
               conversation: Conversation | None, user: str | None, team: str | None) -> None:
        """Run the pipeline and write its answer into the thread (or a friendly failure message)."""
        reply = Reply(self, client, channel, thread_ts, user, team, question)
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
            answer_id = self._record(final, user=user, channel=channel, thread_ts=thread_ts, team=team)
            reply.finish(final, answer_id)
            if answer_id is not None and reply.ts:
                try:
                    self.store.set_message_ts(answer_id, reply.ts)
                except Exception:  # noqa: BLE001 - bookkeeping only
                    _log_failure("storing the answer's message ts")
        except QAError as exc:
            log.info("question not answered: %s", exc.user_message)
            reply.fail(exc.user_message)
        except Exception:  # noqa: BLE001 - logged with traceback; the user gets a friendly message
            _log_failure("answering a question")
            reply.fail(GENERIC_ERROR)

    def _record(self, answer: Answer, **where: Any) -> int | None:
        if self.store is None:
            return None
        try:
            return self.store.record_answer(answer, **where)
        except Exception:  # noqa: BLE001 - no feedback buttons is better than no answer
            _log_failure("storing the answer for feedback")
            return None

    def handle_message(self, event: dict, context: Any, client: WebClient, kind: str) -> None:
        """A mention or a direct message: checks, then the answer in the message's thread."""
        channel, user, ts = event.get("channel"), event.get("user"), event.get("ts")
        if not channel or not ts or not user:
            return
        if event.get("bot_id") or event.get("subtype") == "bot_message" or user == context.bot_user_id:
            return  # bots, including this one
        if not self.claimed_messages.add((channel, ts)):
            log.debug("%s %s/%s already answered", kind, channel, ts)
            return
        thread_ts = event.get("thread_ts") or ts
        if not self.channel_allowed(channel):
            log.info("ignored a %s in %s: not in the channel allowlist", kind, channel)
            client.chat_postEphemeral(channel=channel, user=user, thread_ts=thread_ts,
                                      text="I'm not enabled in this channel. " + self._where_allowed())
            return
        ok, wait = self.limiter.allow(user)
        if not ok:
            log.info("rate limited %s (%s)", user, kind)
            self.notice(client, channel, thread_ts, self._slow_down_text(user, wait))
            return
        question = fmt.clean_question(event.get("text") or "", context.bot_user_id)
        if not question:
            self.notice(client, channel, thread_ts, USAGE)
            return
        self._react(client, channel, ts, add=True)
        try:
            conversation = None
            if thread_ts != ts:
                conversation = self.thread_conversation(client, channel, thread_ts, ts, context.bot_user_id,
                                                        context.bot_id)
            self.answer(client, channel=channel, thread_ts=thread_ts, question=question, conversation=conversation,
                        user=user, team=event.get("team") or context.team_id)
        finally:
            self._react(client, channel, ts, add=False)

    def _where_allowed(self) -> str:
        channels = ", ".join(f"<#{c}>" for c in sorted(self.allowed_channels))
        return f"Ask me in {channels} or in a direct message."

    def handle_ask(self, command: dict, context: Any, client: WebClient, respond: Callable) -> None:
        """`/ask question`: post the question in the channel, then answer it in that message's thread."""
        channel, user, team = command.get("channel_id"), command.get("user_id"), command.get("team_id")
        question = fmt.clean_question(command.get("text") or "", context.bot_user_id)
        if not question:
            respond(text=USAGE, response_type="ephemeral")
            return
        if not self.channel_allowed(channel):
            respond(text="I'm not enabled in this channel. " + self._where_allowed(), response_type="ephemeral")
            return
        ok, wait = self.limiter.allow(user)
        if not ok:
            respond(text=self._slow_down_text(user, wait), response_type="ephemeral")
            return
        try:
            posted = client.chat_postMessage(
                channel=channel, text=f"<@{user}> asked: {fmt.escape(question)}",
                metadata=_meta(QUESTION_EVENT, {"question": question, "user": user}),
            )
        except SlackApiError as exc:  # not in the channel, a DM between other people...: answer privately
            log.info("cannot post in %s (%s): answering /ask privately", channel, exc.response.get("error"))
            self._answer_privately(respond, question, user=user, channel=channel, team=team)
            return
        ts = posted["ts"]
        self.claimed_messages.add((channel, ts))
        self._react(client, channel, ts, add=True)
        try:
            self.answer(client, channel=channel, thread_ts=ts, question=question, conversation=None,
                        user=user, team=team)
        finally:
            self._react(client, channel, ts, add=False)

    def _answer_privately(self, respond: Callable, question: str, **where: Any) -> None:
        try:
            with self.slots:
                answer = self.pipeline.ask(question)
        except QAError as exc:
            respond(text=exc.user_message, response_type="ephemeral")
            return
        except Exception:  # noqa: BLE001
            _log_failure("answering /ask privately")
            respond(text=GENERIC_ERROR, response_type="ephemeral")
            return
        answer_id = self._record(answer, thread_ts=None, **where)
        respond(text=fmt.fallback_text(answer), blocks=fmt.answer_blocks(answer, answer_id),
                response_type="ephemeral", replace_original=False)

    # -- feedback ---------------------------------------------------------------------------------
    def handle_feedback(self, body: dict, action: dict, client: WebClient) -> None:
        """A 👍 / 👎 click: store the vote, then acknowledge it on the message (or privately)."""
        verdict = "up" if action.get("action_id") == fmt.FEEDBACK_UP else "down"
        user = (body.get("user") or {}).get("id")
        container = body.get("container") or {}
        channel = (body.get("channel") or {}).get("id") or container.get("channel_id")
        message = body.get("message") or {}
        ts = message.get("ts") or container.get("message_ts")
        thread_ts = message.get("thread_ts") or container.get("thread_ts") or ts
        label = fmt.VERDICT_LABEL[verdict]

        def tell(text: str) -> None:
            client.chat_postEphemeral(channel=channel, user=user, thread_ts=thread_ts, text=text)

        try:
            answer_id = int(action.get("value") or "")
        except ValueError:
            log.warning("feedback click with a malformed value %r", action.get("value"))
            return
        if self.store is None:
            tell("Thanks! Feedback is not being recorded on this bot right now.")
            return
        try:
            self.store.record_vote(answer_id, verdict, user=user)
        except UnknownAnswer as exc:
            tell(exc.user_message)
            return
        except Exception:  # noqa: BLE001
            _log_failure("storing a feedback vote")
            tell("Sorry, I couldn't record your feedback just now. Please try again later.")
            return
        log.info("feedback %s on answer %s from %s", verdict, answer_id, user)
        blocks = fmt.with_feedback_ack(message.get("blocks") or [], user, verdict)
        if blocks is not None and channel and ts:
            try:
                client.chat_update(channel=channel, ts=ts, text=message.get("text") or "answer", blocks=blocks)
                return
            except SlackApiError as exc:
                log.info("cannot update the answer message (%s): acknowledging privately", exc.response.get("error"))
        tell(f"Thanks, your feedback is recorded: {label}")


def _ack(ack: Callable) -> None:
    ack()


def register(app: App, pipeline: Any, settings: Settings, store: FeedbackStore | None = None,
             **options: Any) -> SlackBot:
    """Attach the bot's middleware and listeners to a Bolt app; returns the shared SlackBot state."""
    bot = SlackBot(pipeline, settings, store, **options)
    app.use(bot.dedup)

    def answer_mention(event: dict, context: Any, client: WebClient) -> None:
        thread = event.get("thread_ts") or event.get("ts")
        bot.safely("answering a mention", client, event.get("channel"), thread,
                   lambda: bot.handle_message(event, context, client, "mention"))

    def answer_direct_message(event: dict, context: Any, client: WebClient) -> None:
        if event.get("channel_type") != "im":
            return  # channel messages that mention the bot arrive as app_mention
        if event.get("subtype") not in (None, "thread_broadcast", "file_share"):
            return  # edits, deletions, joins, bot messages
        thread = event.get("thread_ts") or event.get("ts")
        bot.safely("answering a direct message", client, event.get("channel"), thread,
                   lambda: bot.handle_message(event, context, client, "direct message"))

    def answer_ask(command: dict, context: Any, client: WebClient, respond: Callable) -> None:
        def run() -> None:
            bot.handle_ask(command, context, client, respond)

        try:
            run()
        except Exception:  # noqa: BLE001 - never a traceback in Slack
            _log_failure("answering /ask")
            try:
                respond(text=GENERIC_ERROR, response_type="ephemeral")
            except Exception:  # noqa: BLE001
                _log_failure("posting the /ask error message")

    def record_feedback(body: dict, action: dict, client: WebClient) -> None:
        channel = (body.get("channel") or {}).get("id")
        message = body.get("message") or {}
        bot.safely("recording feedback", client, channel, message.get("thread_ts") or message.get("ts"),
                   lambda: bot.handle_feedback(body, action, client))

    app.event("app_mention")(ack=_ack, lazy=[answer_mention])
    app.event("message")(ack=_ack, lazy=[answer_direct_message])
    app.command(ASK_COMMAND)(ack=_ack, lazy=[answer_ask])
    app.action(re.compile(r"^qa_feedback_(up|down)$"))(ack=_ack, lazy=[record_feedback])
    return bot
