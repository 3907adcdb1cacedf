"""The Slack listeners, one module per event family, as in Slack's Bolt app templates.

    messages          app_mention and message.im: a question in a channel or a direct message
    ask_command       the /ask slash command
    feedback_buttons  the 👍 / 👎 buttons under an answer

Every listener is a Bolt *lazy* listener: its ack only acknowledges (Slack gets its answer within 3 s
whatever the pipeline is doing) and the work runs afterwards on the app's executor. Before any listener,
the dedup middleware drops repeated deliveries (a retried event, a replayed /ask). Requests that no listener
handles (an event type the app is subscribed to but does not use) are acknowledged too: a 404 would make
Slack retry them.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from slack_bolt import BoltResponse
from slack_bolt.error import BoltUnhandledRequestError

from bot.slack.limits import dedup_middleware
from bot.slack.listeners import ask_command, feedback_buttons, messages
from bot.slack.redact import scrub

if TYPE_CHECKING:
    from slack_bolt import App
    from slack_bolt.request import BoltRequest

    from bot.slack.bot import SlackBot

__all__ = ["register"]

log = logging.getLogger(__name__)


def register(app: App, bot: SlackBot) -> None:
    """Attach the dedup middleware, every listener and the error handler to a Bolt app.

    The app must be built with `raise_error_for_unhandled_request=True`, so that unhandled requests reach
    the error handler, which acknowledges them.
    """
    app.use(dedup_middleware(bot.deliveries))
    messages.register(app, bot)
    ask_command.register(app, bot)
    feedback_buttons.register(app, bot)

    @app.error
    def on_error(error: Exception, request: BoltRequest, response: BoltResponse) -> BoltResponse | None:
        if isinstance(error, BoltUnhandledRequestError):
            body = request.body if isinstance(request.body, dict) else {}
            kind = (body.get("event") or {}).get("type") or body.get("command") or body.get("type") or "request"
            log.debug("acknowledged a %s that no listener handles", kind)
            return BoltResponse(status=200, body="")
        log.error("Bolt error: %s: %s", type(error).__name__, scrub(str(error)))
        return None
