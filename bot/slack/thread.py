"""A Slack thread as the conversation so far: its earlier questions, each with this bot's answer."""

from __future__ import annotations

import logging
import math
from typing import TYPE_CHECKING

from slack_sdk.errors import SlackApiError

from bot.slack import format as fmt
from bot.types import Answer, Conversation

if TYPE_CHECKING:
    from slack_sdk import WebClient

__all__ = ["MAX_PAGES", "conversation_from_thread", "read_thread"]

log = logging.getLogger(__name__)

PAGE_SIZE = 200  # messages per conversations.replies call (Slack's recommended maximum)
MAX_PAGES = 5  # a thread longer than 1000 messages is answered from its first 1000


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
        if event_type == fmt.QUESTION_EVENT and ours:
            pending = str(payload.get("question") or "") or pending
            continue
        if ours:
            if event_type == fmt.NOTICE_EVENT or pending is None:
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


def read_thread(client: WebClient, channel: str, thread_ts: str, *, before_ts: str, bot_user_id: str | None,
                bot_id: str | None) -> Conversation | None:
    """The thread's earlier turns, or None when it has none or cannot be read (then the question stands alone)."""
    messages: list[dict] = []
    try:
        # A SlackResponse iterates over the pages itself, following response_metadata.next_cursor.
        pages = client.conversations_replies(channel=channel, ts=thread_ts, limit=PAGE_SIZE, include_all_metadata=True)
        for n, page in enumerate(pages, start=1):
            messages.extend(page.get("messages") or [])
            if n == MAX_PAGES:
                break
    except SlackApiError as exc:  # missing *:history scope, thread deleted...: answer without the context
        log.warning("cannot read thread %s/%s (%s): answering without it", channel, thread_ts,
                    exc.response.get("error"))
        return None
    conversation = conversation_from_thread(messages, bot_user_id=bot_user_id, bot_id=bot_id, before_ts=before_ts)
    return conversation if conversation.turns else None
