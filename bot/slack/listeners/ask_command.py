"""The /ask slash command: the bot posts the question in the channel, then answers in that message's thread.

Where the bot cannot post (it is not in the channel, or it is a DM between other people) it answers
privately, with an ephemeral reply through the command's response_url.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, Callable

from slack_sdk.errors import SlackApiError

from bot.errors import QAError
from bot.slack import format as fmt
from bot.slack.bot import GENERIC_ERROR, USAGE, ack_now
from bot.slack.redact import log_failure
from bot.slack.reply import Target

if TYPE_CHECKING:
    from slack_bolt import App
    from slack_sdk import WebClient

    from bot.slack.bot import SlackBot

__all__ = ["ASK_COMMAND", "handle_ask", "register"]

log = logging.getLogger(__name__)

ASK_COMMAND = "/ask"


def _tell(respond: Callable, text: str) -> None:
    respond(text=fmt.strip_control(text), response_type="ephemeral")


def handle_ask(bot: SlackBot, command: dict, context: Any, client: WebClient, respond: Callable) -> None:
    """`/ask question`: post the question in the channel, then answer it in that message's thread."""
    channel, user, team = command.get("channel_id"), command.get("user_id"), command.get("team_id")
    question = fmt.clean_question(command.get("text") or "", context.bot_user_id)
    if not question:
        _tell(respond, USAGE)
        return
    if not bot.channel_allowed(channel):
        _tell(respond, "I'm not enabled in this channel. " + bot.where_allowed())
        return
    verdict = bot.limiter.check(user)
    if not verdict.allowed:  # privately, every time: only the person who asked sees it
        _tell(respond, bot.slow_down_text(user, verdict.retry_after))
        return
    try:
        posted = client.chat_postMessage(
            channel=channel, text=f"<@{user}> asked: {fmt.escape(question)}",
            metadata=fmt.metadata(fmt.QUESTION_EVENT, {"question": question, "user": user}),
        )
    except SlackApiError as exc:  # not in the channel, a DM between other people...: answer privately
        log.info("cannot post in %s (%s): answering /ask privately", channel, exc.response.get("error"))
        answer_privately(bot, respond, question, user=user, channel=channel, team=team)
        return
    ts = posted["ts"]
    bot.claimed_messages.first((channel, ts))  # its message event, if subscribed, must not answer it again
    bot.react(client, channel, ts, add=True)
    try:
        bot.answer(client, Target(channel, ts, user, team), question, conversation=None)
    finally:
        bot.react(client, channel, ts, add=False)


def answer_privately(bot: SlackBot, respond: Callable, question: str, **where: Any) -> None:
    """Answer in an ephemeral message through the command's response_url."""
    try:
        with bot.slots:
            answer = bot.pipeline.ask(question)
    except QAError as exc:
        _tell(respond, exc.user_message)
        return
    except Exception:  # noqa: BLE001
        log_failure(log, "answering /ask privately")
        _tell(respond, GENERIC_ERROR)
        return
    answer_id = bot.record(answer, thread_ts=None, **where)
    respond(text=fmt.fallback_text(answer), blocks=fmt.answer_blocks(answer, answer_id),
            response_type="ephemeral", replace_original=False)


def register(app: App, bot: SlackBot) -> None:
    """Answer /ask."""

    def answer_ask(command: dict, context: Any, client: WebClient, respond: Callable) -> None:
        try:
            handle_ask(bot, command, context, client, respond)
        except Exception:  # noqa: BLE001 - never a traceback in Slack
            log_failure(log, "answering /ask")
            try:
                _tell(respond, GENERIC_ERROR)
            except Exception:  # noqa: BLE001
                log_failure(log, "posting the /ask error message")

    app.command(ASK_COMMAND)(ack=ack_now, lazy=[answer_ask])
