"""Questions in messages: a mention in a channel (app_mention) or a direct message (message.im).

The answer goes into the message's thread; in a thread, the earlier turns are the conversation. A message
is answered at most once whatever the event that carried it: an app_mention and a message.im for the same
message share its channel and ts.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from bot.slack import format as fmt
from bot.slack.bot import USAGE, ack_now
from bot.slack.reply import Target, post_notice
from bot.slack.thread import read_thread

if TYPE_CHECKING:
    from slack_bolt import App
    from slack_sdk import WebClient

    from bot.slack.bot import SlackBot

__all__ = ["handle_message", "register"]

log = logging.getLogger(__name__)

# Message subtypes that carry a person's question; the others are edits, deletions, joins, bot messages...
QUESTION_SUBTYPES = (None, "thread_broadcast", "file_share")


def handle_message(bot: SlackBot, event: dict, context: Any, client: WebClient, kind: str) -> None:
    """A mention or a direct message: checks, then the answer in the message's thread."""
    channel, user, ts = event.get("channel"), event.get("user"), event.get("ts")
    if not channel or not ts or not user:
        return
    if event.get("bot_id") or event.get("subtype") == "bot_message" or user == context.bot_user_id:
        log.debug("ignored a %s from a bot in %s", kind, channel)
        return  # bots, including this one
    if not bot.claimed_messages.first((channel, ts)):
        log.debug("%s %s/%s already answered", kind, channel, ts)
        return
    thread_ts = event.get("thread_ts") or ts
    if not bot.channel_allowed(channel):
        log.info("ignored a %s in %s: not in the channel allowlist", kind, channel)
        client.chat_postEphemeral(channel=channel, user=user, thread_ts=thread_ts,
                                  text="I'm not enabled in this channel. " + bot.where_allowed())
        return
    verdict = bot.limiter.check(user)
    if not verdict.allowed:
        log.info("rate limited %s (%s)%s", user, kind, "" if verdict.tell else ": already told to slow down")
        if verdict.tell:
            post_notice(client, channel, thread_ts, bot.slow_down_text(user, verdict.retry_after))
        return
    question = fmt.clean_question(event.get("text") or "", context.bot_user_id)
    if not question:
        post_notice(client, channel, thread_ts, USAGE)
        return
    bot.react(client, channel, ts, add=True)
    try:
        conversation = None
        if thread_ts != ts:
            conversation = read_thread(client, channel, thread_ts, before_ts=ts, bot_user_id=context.bot_user_id,
                                       bot_id=context.bot_id)
        target = Target(channel, thread_ts, user, event.get("team") or context.team_id)
        bot.answer(client, target, question, conversation)
    finally:
        bot.react(client, channel, ts, add=False)


def register(app: App, bot: SlackBot) -> None:
    """Answer mentions and direct messages."""

    def answer_mention(event: dict, context: Any, client: WebClient) -> None:
        thread = event.get("thread_ts") or event.get("ts")
        bot.safely("answering a mention", client, event.get("channel"), thread,
                   lambda: handle_message(bot, event, context, client, "mention"))

    def answer_direct_message(event: dict, context: Any, client: WebClient) -> None:
        if event.get("channel_type") != "im":
            return  # channel messages that mention the bot arrive as app_mention
        if event.get("subtype") not in QUESTION_SUBTYPES:
            return
        thread = event.get("thread_ts") or event.get("ts")
        bot.safely("answering a direct message", client, event.get("channel"), thread,
                   lambda: handle_message(bot, event, context, client, "direct message"))

    app.event("app_mention")(ack=ack_now, lazy=[answer_mention])
    app.event("message")(ack=ack_now, lazy=[answer_direct_message])
