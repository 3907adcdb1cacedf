"""The 👍 / 👎 buttons under an answer: the vote is stored, then acknowledged in the message or privately."""

from __future__ import annotations

import logging
import re
from typing import TYPE_CHECKING

from slack_sdk.errors import SlackApiError

from bot.slack import format as fmt
from bot.slack.bot import ack_now
from bot.slack.feedback import UnknownAnswer
from bot.slack.redact import log_failure

if TYPE_CHECKING:
    from slack_bolt import App
    from slack_sdk import WebClient

    from bot.slack.bot import SlackBot

__all__ = ["handle_feedback", "register"]

log = logging.getLogger(__name__)


def handle_feedback(bot: SlackBot, body: dict, action: dict, client: WebClient) -> None:
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
        client.chat_postEphemeral(channel=channel, user=user, thread_ts=thread_ts, text=fmt.strip_control(text))

    try:
        answer_id = int(action.get("value") or "")
    except ValueError:
        log.warning("feedback click with a malformed value %r", action.get("value"))
        return
    if bot.store is None:
        tell("Thanks! Feedback is not being recorded on this bot right now.")
        return
    try:
        bot.store.record_vote(answer_id, verdict, user=user)
    except UnknownAnswer as exc:
        tell(exc.user_message)
        return
    except Exception:  # noqa: BLE001
        log_failure(log, "storing a feedback vote")
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


def register(app: App, bot: SlackBot) -> None:
    """Record 👍 / 👎 clicks."""

    def record_feedback(body: dict, action: dict, client: WebClient) -> None:
        channel = (body.get("channel") or {}).get("id")
        message = body.get("message") or {}
        bot.safely("recording feedback", client, channel, message.get("thread_ts") or message.get("ts"),
                   lambda: handle_feedback(bot, body, action, client))

    app.action(re.compile(r"^qa_feedback_(up|down)$"))(ack=ack_now, lazy=[record_feedback])
