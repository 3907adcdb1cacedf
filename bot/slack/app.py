"""The Slack app: a Bolt `App` around the pipeline, served over HTTP (Events API) or Socket Mode.

    make_client(settings)              -> the WebClient (pointed at settings.slack_api_url)
    check_token(client, settings)      -> auth.test, or one clear QAError
    build_app(settings, pipeline)      -> slack_bolt.App with every listener registered (bot/slack/listeners/)
    run_bot(settings, host, port)      -> what `qa slack` runs: Socket Mode when SLACK_APP_TOKEN is set, else HTTP

The HTTP server is in bot/slack/http.py. In HTTP mode every listener is lazy and the app runs with
`process_before_response=True`: the ack runs in the request's own thread before the response is written,
so Slack's 3-second deadline never waits for the pipeline or for a busy worker pool; the answering work
then runs on the app's executor.
"""

from __future__ import annotations

import logging
import sys
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from slack_bolt import App
from slack_bolt.logger.messages import warning_client_prioritized_and_token_skipped
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.http_retry.builtin_handlers import RateLimitErrorRetryHandler

from bot.errors import QAError
from bot.slack import listeners
from bot.slack.bot import SlackBot
from bot.slack.http import health, serve
from bot.slack.redact import add_secrets, install_log_scrubber, scrub

if TYPE_CHECKING:
    from bot.config import Settings
    from bot.slack.feedback import FeedbackStore

__all__ = ["build_app", "check_token", "make_client", "run_bot"]

log = logging.getLogger(__name__)

SETUP_GUIDE = "docs/slack.md"


def _secret(value: Any) -> str | None:
    if value is None:
        return None
    return value.get_secret_value() if hasattr(value, "get_secret_value") else str(value)


def _api_url(url: str) -> str:
    return url if url.endswith("/") else url + "/"


class _DropMessage(logging.Filter):
    """Drops one exact log message."""

    def __init__(self, message: str):
        super().__init__()
        self.message = message

    def filter(self, record: logging.LogRecord) -> bool:
        return record.getMessage() != self.message


def _quiet_bolt() -> None:
    # Bolt falls back to reading SLACK_BOT_TOKEN itself and then warns that the client we give it wins; the
    # client is ours on purpose (it talks to SLACK_API_URL), so the warning is noise.
    bolt_log = logging.getLogger("slack_bolt.App")
    if not any(isinstance(f, _DropMessage) for f in bolt_log.filters):
        bolt_log.addFilter(_DropMessage(warning_client_prioritized_and_token_skipped()))


def make_client(settings: Settings) -> WebClient:
    """The bot's WebClient: SLACK_BOT_TOKEN, SLACK_API_URL, and a retry when Slack answers 429."""
    token = _secret(settings.slack_bot_token)
    if not token:
        raise QAError(f"SLACK_BOT_TOKEN is not set: see {SETUP_GUIDE} to create the Slack app and get one.")
    client = WebClient(token=token, base_url=_api_url(settings.slack_api_url), timeout=30)
    client.retry_handlers.append(RateLimitErrorRetryHandler(max_retry_count=2))
    return client


def check_token(client: WebClient, settings: Settings) -> dict:
    """auth.test with the bot token: its result, or a one-line QAError that says what to fix."""
    try:
        return client.auth_test().data  # type: ignore[return-value]
    except SlackApiError as exc:  # invalid_auth, token_revoked, not_allowed_token_type...
        error = exc.response.get("error") if exc.response is not None else None
        raise QAError(f"Slack refused SLACK_BOT_TOKEN ({scrub(str(error or exc))}): it must be the Bot User OAuth "
                      f"Token (xoxb-...) from OAuth & Permissions; see {SETUP_GUIDE}.") from None
    except (SlackClientError, OSError) as exc:
        raise QAError(f"Cannot reach the Slack API at {settings.slack_api_url} ({type(exc).__name__}).") from None


def build_app(
    settings: Settings,
    pipeline: Any,
    client: WebClient | None = None,
    *,
    store: FeedbackStore | None = None,
    workers: int = 32,
    **options: Any,
) -> App:
    """A Bolt app answering with `pipeline`; its WebClient talks to `settings.slack_api_url`.

    `store` defaults to a FeedbackStore at `settings.feedback_url`. `options` go to `SlackBot`
    (streaming, max_concurrent, stream_buffer, update_interval, dedup_ttl, clock, sleep). The bot state is
    `app.qa_bot`; the executor running the answers is `app.qa_executor`.
    Calls auth.test once (Bolt checks the token and learns the bot's user id).
    """
    signing_secret = _secret(settings.slack_signing_secret)
    add_secrets(_secret(settings.slack_bot_token), signing_secret, _secret(settings.slack_app_token))
    if client is None:
        client = make_client(settings)
    add_secrets(client.token)
    if store is None:
        from bot.slack.feedback import FeedbackStore

        store = FeedbackStore(settings.feedback_url)
    _quiet_bolt()
    executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="qa-slack")
    app = App(
        name="qa",
        client=client,
        signing_secret=signing_secret or "",
        process_before_response=True,
        listener_executor=executor,
        raise_error_for_unhandled_request=True,  # so that listeners' error handler acknowledges them (no 404)
    )
    bot = SlackBot(pipeline, settings, store, **options)
    listeners.register(app, bot)
    app.qa_bot = bot  # type: ignore[attr-defined]
    app.qa_executor = executor  # type: ignore[attr-defined] # shutdown(wait=True) lets answers in progress finish
    return app


# --- `qa slack` ----------------------------------------------------------------------------------
def run_bot(settings: Settings, host: str = "0.0.0.0", port: int = 3000) -> None:
    """Start the bot: Socket Mode when SLACK_APP_TOKEN is set, else the HTTP Events API on host:port."""
    from slack_bolt.error import BoltError

    from bot.pipeline import Pipeline
    from bot.slack.feedback import FeedbackStore

    app_token = _secret(settings.slack_app_token)
    signing_secret = _secret(settings.slack_signing_secret)
    if not _secret(settings.slack_bot_token):
        raise QAError(f"SLACK_BOT_TOKEN is not set: see {SETUP_GUIDE} to create the Slack app and get one.")
    if not app_token and not signing_secret:
        raise QAError("Set SLACK_SIGNING_SECRET (HTTP Events API) or SLACK_APP_TOKEN (Socket Mode): "
                      f"see {SETUP_GUIDE}.")
    add_secrets(_secret(settings.slack_bot_token), signing_secret, app_token)
    install_log_scrubber()
    logging.getLogger("bot.slack").setLevel(min(logging.INFO, logging.getLogger().getEffectiveLevel()))

    # The token first: a wrong one is then the first and only line, before loading the pipeline (and its
    # libraries' messages) for nothing.
    client = make_client(settings)
    check_token(client, settings)
    pipeline = Pipeline.from_settings(settings)
    store = FeedbackStore(settings.feedback_url)
    try:
        app = build_app(settings, pipeline, client, store=store)
    except BoltError as exc:  # auth.test refused the token after all (revoked meanwhile)
        raise QAError(f"Slack refused SLACK_BOT_TOKEN: {scrub(str(exc))}; see {SETUP_GUIDE}.") from None
    except (SlackClientError, OSError) as exc:
        raise QAError(f"Cannot reach the Slack API at {settings.slack_api_url} ({type(exc).__name__}).") from None
    print(f"answering with {pipeline.info.get('model', pipeline.mode)} over {pipeline.info.get('index', '?')}",
          file=sys.stderr, flush=True)

    if app_token:
        from slack_bolt.adapter.socket_mode import SocketModeHandler

        print("Slack bot starting in Socket Mode; Ctrl-C stops it", file=sys.stderr, flush=True)
        handler = SocketModeHandler(app, app_token)
        try:
            handler.start()  # apps.connections.open with the app token, then the WebSocket; blocks
        except KeyboardInterrupt:
            pass
        except SlackApiError as exc:  # a revoked token, a bot token (xoxb-) given as the app token...
            error = exc.response.get("error") if exc.response is not None else None
            raise QAError(f"Slack refused the app token (SLACK_APP_TOKEN): {scrub(str(error or exc))}. It must be an "
                          "app-level token (xapp-...) with the connections:write scope.") from None
        except (SlackClientError, OSError) as exc:
            raise QAError(f"Cannot reach the Slack API at {settings.slack_api_url} ({type(exc).__name__}).") from None
        finally:
            handler.close()  # stop receiving, then let the answers in progress finish
            app.qa_executor.shutdown(wait=True)  # type: ignore[attr-defined]
        return
    serve(app, host, port, signing_secret=signing_secret or "", health_check=lambda: health(pipeline, app.qa_bot))
