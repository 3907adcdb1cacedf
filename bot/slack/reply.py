"""One answer message in a Slack thread, written while the pipeline produces it.

Streaming mode hands the text to slack_sdk's `ChatStream` (`WebClient.chat_stream()`), which buffers it and
calls chat.startStream / appendStream / stopStream. When Slack refuses to start a stream (a workspace
without streaming) or a stream breaks in the middle, the reply continues in update mode: it posts the text
and rewrites it with chat.update at most once per `update_interval`. An answer that arrives whole (the
offline answerer), or before the stream's first flush, is posted as one message with all its blocks.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

from slack_sdk.errors import SlackApiError
from slack_sdk.models.blocks import ContextBlock, MarkdownTextObject

from bot.slack import format as fmt
from bot.types import Answer

if TYPE_CHECKING:
    from slack_sdk import WebClient
    from slack_sdk.web.chat_stream import ChatStream

    from bot.slack.limits import Clock

__all__ = ["STREAMING_UNSUPPORTED", "Reply", "Target", "post_notice"]

log = logging.getLogger(__name__)

STREAM_CHUNK = 12_000  # Slack's limit on the markdown text of one chat.*Stream call
# chat.startStream errors that mean "streaming will not work for this app": stop trying it.
STREAMING_UNSUPPORTED = {
    "unknown_method", "not_allowed_token_type", "missing_scope", "method_deprecated", "not_implemented",
    "feature_not_enabled", "team_not_enabled", "invalid_auth",
}


@dataclass(frozen=True)
class Target:
    """Where an answer goes: a thread, and the person who asked (a stream is addressed to them)."""

    channel: str
    thread_ts: str
    user: str | None = None
    team: str | None = None


def post_notice(client: WebClient, channel: str, thread_ts: str | None, text: str) -> None:
    """Post a short message (error, slow down, usage) in the thread; it never counts as an answer."""
    text = fmt.strip_control(text)
    client.chat_postMessage(channel=channel, thread_ts=thread_ts, text=text, blocks=fmt.notice_blocks(text),
                            metadata=fmt.metadata(fmt.NOTICE_EVENT, {}))


def _error(exc: SlackApiError) -> str:
    return str(exc.response.get("error", "")) if exc.response is not None else ""


class Reply:
    """The answer message of one question, created when its first text is shown."""

    def __init__(self, client: WebClient, target: Target, question: str, *, streaming: bool = True,
                 buffer_size: int = 256, update_interval: float = 1.0, clock: Clock = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep,
                 on_streaming_unsupported: Callable[[str], None] = lambda error: None):
        self.client, self.target, self.question = client, target, question
        self.streaming = streaming
        self.buffer_size, self.update_interval = buffer_size, update_interval
        self._clock, self._sleep, self._on_unsupported = clock, sleep, on_streaming_unsupported
        self.text = ""  # all the answer text received so far
        self.stream: ChatStream | None = None
        self.streamed = ""  # the text handed to the stream (its leading blanks dropped)
        self._fed = 0  # how much of self.text the stream has been given
        self.ts: str | None = None  # the message, once there is one on screen
        self._last_write = -math.inf

    # -- while the answer is written ---------------------------------------------------------
    def append(self, text: str) -> None:
        """Add streamed answer text: to the stream, or to the message at the next update slot."""
        self.text += fmt.strip_control(text)
        if not self.text.strip():
            return  # nothing to show yet: a stream must not start with blank text
        if self.streaming:
            self._stream_more()
        elif self._clock() - self._last_write >= self.update_interval:
            self._show_partial()

    def _stream_more(self) -> None:
        if self.stream is None:
            t = self.target
            self.stream = self.client.chat_stream(channel=t.channel, thread_ts=t.thread_ts, recipient_team_id=t.team,
                                                  recipient_user_id=t.user, buffer_size=self.buffer_size)
            piece = self.text.lstrip()
        else:
            piece = self.text[self._fed:]
        self._fed = len(self.text)
        self.streamed += piece
        try:
            self._feed(piece)
        except SlackApiError as exc:
            self._leave_streaming(exc)
            self._show_partial()

    def _feed(self, text: str) -> None:
        # ChatStream sends its whole buffer in one call once it reaches buffer_size: keep that under Slack's limit.
        step = max(1, STREAM_CHUNK - self.buffer_size)
        for i in range(0, len(text), step):
            self.stream.append(markdown_text=text[i : i + step])  # type: ignore[union-attr]

    def _leave_streaming(self, exc: SlackApiError) -> None:
        """Continue this reply with chat.update: Slack refused the stream, or it broke half-way."""
        error = _error(exc)
        self.streaming = False
        if self.stream is None or self.stream.ts is None:  # chat.startStream itself failed
            if error in STREAMING_UNSUPPORTED:
                self._on_unsupported(error)
            else:
                log.warning("chat.startStream failed (%s): this answer uses chat.update", error or exc)
            return
        # The message exists (ChatStream.ts): chat.update can still put the answer in it.
        log.warning("streaming broke in the middle of an answer (%s): it continues with chat.update", error or exc)
        self.ts = self.stream.ts

    def _partial_blocks(self) -> list[dict]:
        writing = ContextBlock(block_id="qa_writing", elements=[MarkdownTextObject(text="_writing…_")]).to_dict()
        return fmt.answer_blocks(Answer(question=self.question, text=self.text)) + [writing]

    def _wait_for_update_slot(self) -> None:
        wait = self.update_interval - (self._clock() - self._last_write)
        if wait > 0:
            self._sleep(wait)

    def _show_partial(self) -> None:
        preview = fmt.to_mrkdwn(self.text)[: fmt.TEXT_LIMIT]
        if self.ts is None:
            # Marked as a notice until it is complete: a thread read meanwhile must not take it for an answer.
            response = self.client.chat_postMessage(
                channel=self.target.channel, thread_ts=self.target.thread_ts, text=preview,
                blocks=self._partial_blocks(), metadata=fmt.metadata(fmt.NOTICE_EVENT, {}))
            self.ts = response["ts"]
        else:
            self._wait_for_update_slot()
            self.client.chat_update(channel=self.target.channel, ts=self.ts, text=preview,
                                    blocks=self._partial_blocks())
        self._last_write = self._clock()

    # -- the end ----------------------------------------------------------------------------------
    def finish(self, answer: Answer, answer_id: int | None) -> None:
        """Show the final answer with its sources and feedback buttons."""
        meta = fmt.metadata(fmt.ANSWER_EVENT, {"answer_id": answer_id, "question": answer.question,
                                               "standalone": answer.standalone_question})
        if self.streaming and self.stream is not None and self.stream.ts is not None:
            try:
                self._stop_stream(answer, answer_id, meta)
                return
            except SlackApiError as exc:
                self._leave_streaming(exc)
        blocks = fmt.answer_blocks(answer, answer_id)
        if self.ts is None:  # nothing shown yet: one message with everything
            response = self.client.chat_postMessage(
                channel=self.target.channel, thread_ts=self.target.thread_ts, text=fmt.fallback_text(answer),
                blocks=blocks, metadata=meta, unfurl_links=False, unfurl_media=False,
            )
            self.ts = response["ts"]
            return
        self._wait_for_update_slot()
        self.client.chat_update(channel=self.target.channel, ts=self.ts, text=fmt.fallback_text(answer),
                                blocks=blocks, metadata=meta)
        self._last_write = self._clock()

    def _stop_stream(self, answer: Answer, answer_id: int | None, meta: dict) -> None:
        assert self.stream is not None
        final = fmt.answer_markdown(answer)
        rest = final[len(self.streamed):] if final.startswith(self.streamed) else None
        if rest:
            self._feed(rest)
        self.stream.stop(blocks=fmt.tail_blocks(answer, answer_id), metadata=meta)
        self.ts = self.stream.ts
        if rest is None:  # what was streamed is not what was kept (e.g. renumbered citations): replace it
            self.client.chat_update(channel=self.target.channel, ts=self.ts, text=fmt.fallback_text(answer),
                                    blocks=fmt.answer_blocks(answer, answer_id), metadata=meta)

    def fail(self, message: str) -> None:
        """End the reply with a friendly message instead of an answer."""
        message = fmt.strip_control(message)
        meta = fmt.metadata(fmt.NOTICE_EVENT, {})
        if self.streaming and self.stream is not None and self.stream.ts is not None:
            self.stream.stop(markdown_text=f"\n\n{message}", metadata=meta)
        elif self.ts is not None:
            self._wait_for_update_slot()
            self.client.chat_update(channel=self.target.channel, ts=self.ts, text=message,
                                    blocks=fmt.notice_blocks(fmt.escape(message)), metadata=meta)
        else:
            self.client.chat_postMessage(channel=self.target.channel, thread_ts=self.target.thread_ts, text=message,
                                         blocks=fmt.notice_blocks(fmt.escape(message)), metadata=meta)
