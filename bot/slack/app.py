"""The Slack app: a Bolt `App` around the pipeline, served over HTTP (Events API) or Socket Mode.

    build_app(settings, pipeline)      -> slack_bolt.App (WebClient pointed at settings.slack_api_url)
    make_server(app, host, port)       -> a threading WSGI server: POST /slack/events, GET /health
    serve(app, host, port)             -> make_server(...).serve_forever()
    run_bot(settings, host, port)      -> what `qa slack` runs: Socket Mode when SLACK_APP_TOKEN is set, else HTTP

In HTTP mode every listener is lazy and the app runs with `process_before_response=True`: the ack runs in
the request's own thread before the response is written, so Slack's 3-second deadline never waits for the
pipeline or for a busy worker pool; the answering work then runs on the app's executor.
"""

from __future__ import annotations

import json
import logging
import sys
from concurrent.futures import ThreadPoolExecutor
from socketserver import ThreadingMixIn
from typing import TYPE_CHECKING, Any, Callable
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server as _make_wsgi_server

from slack_bolt import App
from slack_bolt.adapter.wsgi import SlackRequestHandler
from slack_sdk import WebClient
from slack_sdk.http_retry.builtin_handlers import RateLimitErrorRetryHandler

from bot.errors import QAError
from bot.slack.listeners import SlackBot, add_secrets, register, scrub

if TYPE_CHECKING:
    from bot.config import Settings
    from bot.slack.feedback import FeedbackStore

__all__ = ["EVENTS_PATH", "HEALTH_PATH", "build_app", "health", "install_log_scrubber", "make_server", "run_bot", "serve"]

log = logging.getLogger(__name__)

EVENTS_PATH = "/slack/events"
HEALTH_PATH = "/health"


def _secret(value: Any) -> str | None:
    if value is None:
        return None
    return value.get_secret_value() if hasattr(value, "get_secret_value") else str(value)


def _api_url(url: str) -> str:
    return url if url.endswith("/") else url + "/"


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
    (streaming, max_concurrent, stream_interval, update_interval). The bot state is `app.qa_bot`; the
    executor running the answers is `app.qa_executor`.
    Calls auth.test once (Bolt checks the token and learns the bot's user id).
    """
    token = _secret(settings.slack_bot_token)
    signing_secret = _secret(settings.slack_signing_secret)
    add_secrets(token, signing_secret, _secret(settings.slack_app_token))
    if client is None:
        if not token:
            raise QAError("SLACK_BOT_TOKEN is not set: see docs/slack.md to create the Slack app and get one.")
        client = WebClient(token=token, base_url=_api_url(settings.slack_api_url), timeout=30)
        client.retry_handlers.append(RateLimitErrorRetryHandler(max_retry_count=2))
    else:
        add_secrets(client.token)
    if store is None:
        from bot.slack.feedback import FeedbackStore

        store = FeedbackStore(settings.feedback_url)
    executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="qa-slack")
    app = App(
        name="qa",
        client=client,
        signing_secret=signing_secret or "",
        process_before_response=True,
        listener_executor=executor,
    )
    bot = register(app, pipeline, settings, store, **options)
    app.qa_bot = bot  # type: ignore[attr-defined]
    app.qa_executor = executor  # type: ignore[attr-defined] # shutdown(wait=True) lets answers in progress finish

    @app.error
    def _on_error(error: Exception, logger: logging.Logger) -> None:
        log.error("Bolt error: %s: %s", type(error).__name__, scrub(str(error)))

    return app


# --- HTTP --------------------------------------------------------------------------------------
def health(pipeline: Any, bot: SlackBot | None = None) -> dict:
    """What GET /health returns."""
    info = getattr(pipeline, "info", {}) or {}
    body = {"ok": True, "mode": getattr(pipeline, "mode", None), "index": info.get("index")}
    if bot is not None:
        body["streaming"] = bot.streaming
        body["feedback"] = bot.store is not None
    return body


class _ThreadingWSGIServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True
    # socketserver listens with a backlog of 5: a burst of Slack deliveries would be reset.
    request_queue_size = 128
    allow_reuse_address = True


class _QuietHandler(WSGIRequestHandler):
    timeout = 30  # a client that stops sending does not hold a thread forever

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - http.server's name
        log.debug("%s %s", self.address_string(), format % args)


def make_server(
    app: App,
    host: str = "0.0.0.0",
    port: int = 3000,
    *,
    path: str = EVENTS_PATH,
    health_check: Callable[[], dict] | None = None,
) -> WSGIServer:
    """A bound (not yet serving) threaded HTTP server: POST `path` to Bolt, GET /health; port 0 picks one."""
    bolt = SlackRequestHandler(app, path=path)
    health_check = health_check or (lambda: {"ok": True})

    def wsgi(environ: dict, start_response: Callable) -> Any:
        if environ.get("PATH_INFO") == HEALTH_PATH and environ.get("REQUEST_METHOD") in ("GET", "HEAD"):
            try:
                status, body = "200 OK", health_check()
            except Exception as exc:  # noqa: BLE001 - an unhealthy pipeline is a 503, not a crash
                status, body = "503 Service Unavailable", {"ok": False, "error": type(exc).__name__}
            data = json.dumps(body).encode()
            start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(data)))])
            return [data]
        return bolt(environ, start_response)

    return _make_wsgi_server(host, port, wsgi, server_class=_ThreadingWSGIServer, handler_class=_QuietHandler)


def serve(app: App, host: str = "0.0.0.0", port: int = 3000, *, path: str = EVENTS_PATH,
          health_check: Callable[[], dict] | None = None) -> None:
    """Serve the Events API until interrupted."""
    server = make_server(app, host, port, path=path, health_check=health_check)
    bound = server.server_address[1]
    print(f"Slack bot listening on http://{host}:{bound}{path} (health: {HEALTH_PATH}); Ctrl-C stops it",
          file=sys.stderr, flush=True)
    try:
        server.serve_forever(poll_interval=0.5)
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        executor = getattr(app, "qa_executor", None)
        if executor is not None:
            print("finishing the answers in progress…", file=sys.stderr, flush=True)
            executor.shutdown(wait=True)


# --- logging -----------------------------------------------------------------------------------
class _ScrubFilter(logging.Filter):
    """Rewrites every record so that no token or signing secret is written, tracebacks included."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a broken format string: keep the raw message
            message = str(record.msg)
        record.msg, record.args = scrub(message), None
        if record.exc_info:
            record.exc_text = scrub(logging.Formatter().formatException(record.exc_info))
            record.exc_info = None
        if record.stack_info:
            record.stack_info = scrub(record.stack_info)
        return True


def install_log_scrubber() -> None:
    """Scrub every handler of the root logger (where all library logs end up)."""
    root = logging.getLogger()
    if not root.handlers:
        logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    for handler in root.handlers:
        if not any(isinstance(f, _ScrubFilter) for f in handler.filters):
            handler.addFilter(_ScrubFilter())


# --- `qa slack` ----------------------------------------------------------------------------------
def run_bot(settings: Settings, host: str = "0.0.0.0", port: int = 3000) -> None:
    """Start the bot: Socket Mode when SLACK_APP_TOKEN is set, else the HTTP Events API on host:port."""
    from slack_bolt.error import BoltError
    from slack_sdk.errors import SlackClientError

    from bot.pipeline import Pipeline
    from bot.slack.feedback import FeedbackStore

    app_token = _secret(settings.slack_app_token)
    if not _secret(settings.slack_bot_token):
        raise QAError("SLACK_BOT_TOKEN is not set: see docs/slack.md to create the Slack app and get one.")
    if not app_token and not _secret(settings.slack_signing_secret):
        raise QAError("Set SLACK_SIGNING_SECRET (HTTP Events API) or SLACK_APP_TOKEN (Socket Mode): see docs/slack.md.")
    add_secrets(_secret(settings.slack_bot_token), _secret(settings.slack_signing_secret), app_token)
    install_log_scrubber()
    logging.getLogger("bot.slack").setLevel(min(logging.INFO, logging.getLogger().getEffectiveLevel()))

    pipeline = Pipeline.from_settings(settings)
    store = FeedbackStore(settings.feedback_url)
    try:
        app = build_app(settings, pipeline, store=store)
    except BoltError as exc:  # auth.test refused the token
        raise QAError(f"Slack refused the bot token: {scrub(str(exc))}") from None
    except (SlackClientError, OSError) as exc:
        raise QAError(f"Cannot reach the Slack API at {settings.slack_api_url} ({type(exc).__name__}).") from None
    print(f"answering with {pipeline.info.get('model', pipeline.mode)} over {pipeline.info.get('index', '?')}",
          file=sys.stderr, flush=True)

    if app_token:
        from slack_bolt.adapter.socket_mode import SocketModeHandler
        from slack_sdk.errors import SlackApiError

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
    serve(app, host, port, health_check=lambda: health(pipeline, app.qa_bot))
