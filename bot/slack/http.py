"""The HTTP side of the Slack bot (Events API): POST /slack/events to Bolt, GET /health.

The signature is checked before anything reads the body: a request that is not signed with the signing
secret gets 401, a signed body that is not a Slack payload gets 400, each with one warning line in the log
(at most one a minute per kind, the next one counting those held back) and never a traceback. Only what
passes reaches Bolt, which checks the signature again with its own middleware.
"""

from __future__ import annotations

import io
import json
import logging
import sys
from socketserver import ThreadingMixIn
from typing import TYPE_CHECKING, Any, Callable, Iterable
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server as _make_wsgi_server

from slack_bolt.adapter.wsgi import SlackRequestHandler
# Bolt's own body parser: a body that passes it here cannot fail inside Bolt's request constructor.
from slack_bolt.request.internals import parse_body
from slack_sdk.signature import SignatureVerifier

from bot.slack.limits import LogThrottle
from bot.slack.redact import log_failure

if TYPE_CHECKING:
    from slack_bolt import App

    from bot.slack.bot import SlackBot

__all__ = ["EVENTS_PATH", "HEALTH_PATH", "health", "make_server", "serve"]

log = logging.getLogger(__name__)

EVENTS_PATH = "/slack/events"
HEALTH_PATH = "/health"
MAX_BODY = 1 << 20  # Slack's payloads are a few kilobytes; anything near a megabyte is not from Slack

BAD_SIGNATURE = ("rejected a request to {path} with HTTP 401: bad signature (a wrong SLACK_SIGNING_SECRET, "
                 "a server clock off by more than 5 minutes, or not sent by Slack)")
MALFORMED = "rejected a request to {path} with HTTP {status}: {why}"


def health(pipeline: Any, bot: SlackBot | None = None) -> dict:
    """What GET /health returns."""
    info = getattr(pipeline, "info", {}) or {}
    body = {"ok": True, "mode": getattr(pipeline, "mode", None), "index": info.get("index")}
    if bot is not None:
        body["streaming"] = bot.streaming
        body["feedback"] = bot.store is not None
    return body


def _respond(start_response: Callable, status: str, body: dict, content_type: str = "application/json") -> list[bytes]:
    data = json.dumps(body).encode()
    start_response(status, [("Content-Type", content_type), ("Content-Length", str(len(data)))])
    return [data]


class SlackEndpoint:
    """A WSGI app: verify the signature, check the body, then hand the request to Bolt."""

    def __init__(self, app: App, signing_secret: str, *, path: str = EVENTS_PATH,
                 health_check: Callable[[], dict] | None = None, rejections: LogThrottle | None = None):
        self.path = path
        self.bolt = SlackRequestHandler(app, path=path)
        self.verifier = SignatureVerifier(signing_secret)
        self.health_check = health_check or (lambda: {"ok": True})
        self.rejections = rejections or LogThrottle(log)

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        method, path = environ.get("REQUEST_METHOD"), environ.get("PATH_INFO")
        if path == HEALTH_PATH and method in ("GET", "HEAD"):
            try:
                return _respond(start_response, "200 OK", self.health_check())
            except Exception as exc:  # noqa: BLE001 - an unhealthy pipeline is a 503, not a crash
                return _respond(start_response, "503 Service Unavailable", {"ok": False, "error": type(exc).__name__})
        if path != self.path or method != "POST":
            return _respond(start_response, "404 Not Found", {"error": "not found"})
        try:
            length = max(0, int(environ.get("CONTENT_LENGTH") or 0))
        except ValueError:
            self.rejections.warning("size", MALFORMED.format(path=path, status=400, why="a bad Content-Length"))
            return _respond(start_response, "400 Bad Request", {"error": "invalid request"})
        if length > MAX_BODY:
            self.rejections.warning("size", MALFORMED.format(path=path, status=413, why=f"a body of {length} bytes"))
            return _respond(start_response, "413 Payload Too Large", {"error": "invalid request"})
        body = environ["wsgi.input"].read(length) if length else b""
        if not self._signed(body, environ):
            self.rejections.warning("signature", BAD_SIGNATURE.format(path=path))
            return _respond(start_response, "401 Unauthorized", {"error": "invalid request"})
        try:
            content_type = (environ.get("CONTENT_TYPE") or "").split(";")[0].strip() or None
            payload = parse_body(body.decode("utf-8"), content_type)
            if not isinstance(payload, dict):
                raise ValueError("not a JSON object")
        except ValueError as exc:  # UnicodeDecodeError and JSONDecodeError are ValueErrors
            why = f"the body is not a Slack payload ({type(exc).__name__})"
            self.rejections.warning("malformed", MALFORMED.format(path=path, status=400, why=why))
            return _respond(start_response, "400 Bad Request", {"error": "invalid request"})
        environ["wsgi.input"], environ["CONTENT_LENGTH"] = io.BytesIO(body), str(len(body))
        try:
            return self.bolt(environ, start_response)
        except Exception:  # noqa: BLE001 - Bolt answers its own errors; this is the last line of defence
            log_failure(log, "handling a Slack request")
            return _respond(start_response, "500 Internal Server Error", {"error": "internal error"})

    def _signed(self, body: bytes, environ: dict) -> bool:
        timestamp = environ.get("HTTP_X_SLACK_REQUEST_TIMESTAMP")
        signature = environ.get("HTTP_X_SLACK_SIGNATURE")
        try:
            return self.verifier.is_valid(body, timestamp, signature)
        except ValueError:  # a timestamp that is not a number
            return False


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
    signing_secret: str,
    path: str = EVENTS_PATH,
    health_check: Callable[[], dict] | None = None,
    rejections: LogThrottle | None = None,
) -> WSGIServer:
    """A bound (not yet serving) threaded HTTP server: POST `path` to Bolt, GET /health; port 0 picks one."""
    endpoint = SlackEndpoint(app, signing_secret, path=path, health_check=health_check, rejections=rejections)
    return _make_wsgi_server(host, port, endpoint, server_class=_ThreadingWSGIServer, handler_class=_QuietHandler)


def serve(app: App, host: str = "0.0.0.0", port: int = 3000, *, signing_secret: str, path: str = EVENTS_PATH,
          health_check: Callable[[], dict] | None = None) -> None:
    """Serve the Events API until interrupted, then let the answers in progress finish."""
    server = make_server(app, host, port, signing_secret=signing_secret, path=path, health_check=health_check)
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
