"""Fake Slack Web API server for tests that records every call (standard library only).

Usage::

    with FakeSlackAPI() as srv:
        client = slack_sdk.WebClient(token="xoxb-test", base_url=srv.base_url)
        srv.threads[("C1", "1700000000.000001")] = [{"user": "U1", "text": "hi", "ts": "..."}]
        ...
        (call,) = srv.wait_for("chat.postMessage")
        assert call["args"]["channel"] == "C1"
"""

from __future__ import annotations

import itertools
import json
import threading
from collections import defaultdict, deque
from http.server import BaseHTTPRequestHandler
from typing import Any, Callable
from urllib.parse import parse_qsl, urlsplit

from tests.fakes._http import BackgroundServer, LocalHTTPServer

__all__ = ["FakeSlackAPI"]

BOT_USER_ID = "UBOT"
BOT_ID = "BBOT"
TEAM_ID = "TFAKE"

# Free-text arguments are never JSON-decoded: a streamed chunk such as "[1]" must stay text.
_TEXT_ARGS = {"text", "markdown_text", "fallback", "status", "title"}


def _decode_arg(name: str, value: Any) -> Any:
    """Decode JSON-encoded structured args (blocks, attachments, metadata, ...)."""
    if name in _TEXT_ARGS or not isinstance(value, str) or value[:1] not in ("[", "{"):
        return value
    try:
        decoded = json.loads(value)
    except ValueError:
        return value
    return decoded if isinstance(decoded, (list, dict)) else value


def _chunks_text(args: dict) -> str:
    """Markdown text carried by a chat.*Stream call (markdown_text or markdown_text chunks)."""
    text = args.get("markdown_text") or ""
    for chunk in args.get("chunks") or []:
        if isinstance(chunk, dict) and chunk.get("type") == "markdown_text":
            text += chunk.get("text") or ""
    return text


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: LocalHTTPServer

    def log_message(self, format: str, *args: Any) -> None:
        """Keep test output quiet."""

    def setup(self) -> None:
        super().setup()
        self.server.track(self.connection)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.untrack(self.connection)

    def do_GET(self) -> None:
        self._handle()

    def do_POST(self) -> None:
        self._handle()

    def _handle(self) -> None:
        url = urlsplit(self.path)
        if url.path.startswith("/hooks/"):  # a response_url (slash commands, interactivity)
            args = {**self._body_args(), "_path": url.path}
            status, payload, headers = self.server.fake.handle_call("response_url", args, dict(self.headers))
            self._send(status, payload, headers)
            return
        if not url.path.startswith("/api/"):
            self._send(404, {"ok": False, "error": "unknown_method"})
            return
        method = url.path[len("/api/"):].strip("/")
        args: dict[str, Any] = dict(parse_qsl(url.query, keep_blank_values=True))
        args.update(self._body_args())
        args = {k: _decode_arg(k, v) for k, v in args.items()}
        status, payload, headers = self.server.fake.handle_call(method, args, dict(self.headers))
        try:
            self._send(status, payload, headers)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    def _body_args(self) -> dict[str, Any]:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        if not raw:
            return {}
        content_type = self.headers.get("Content-Type", "")
        if "application/json" in content_type:
            try:
                body = json.loads(raw)
            except ValueError:
                return {"_raw_body": raw.decode("utf-8", "replace")}
            return body if isinstance(body, dict) else {"_json_body": body}
        if "application/x-www-form-urlencoded" in content_type or not content_type:
            return dict(parse_qsl(raw.decode("utf-8"), keep_blank_values=True))
        # Multipart uploads etc. are out of scope; keep the bytes visible for debugging.
        return {"_raw_body": raw.decode("utf-8", "replace")}

    def _send(self, status: int, payload: dict, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)
        self.wfile.flush()


class FakeSlackAPI(BackgroundServer):
    """Slack-Web-API-compatible server on 127.0.0.1 that records calls and returns realistic payloads."""

    name = "FakeSlackAPI"

    def __init__(self) -> None:
        super().__init__()
        # Each call: {"method", "args", "headers", "response"}; appended under self._cond.
        self.calls: list[dict] = []
        # (channel, thread_ts) -> messages returned by conversations.replies; tests fill it.
        self.threads: dict[tuple[str, str], list[dict]] = {}
        # user id -> user object returned by users.info; unknown ids get a generated user.
        self.users: dict[str, dict] = {}
        # conversations.replies pages hold at most this many messages (and `limit`), with a next_cursor.
        self.replies_page_size: int | None = None
        self._cond = threading.Condition()
        self._failures: dict[str, deque] = defaultdict(deque)
        self._ts_counter = itertools.count(1)
        self._handlers: dict[str, Callable[[dict], dict]] = {
            "auth.test": self._auth_test,
            "chat.postMessage": self._post_message,
            "chat.update": self._update,
            "chat.postEphemeral": lambda a: {"message_ts": self.next_ts()},
            "chat.delete": lambda a: {"channel": a.get("channel"), "ts": a.get("ts")},
            "conversations.replies": self._replies,
            "chat.startStream": lambda a: {"channel": a.get("channel"), "ts": self.next_ts()},
            "chat.appendStream": lambda a: {"channel": a.get("channel"), "ts": a.get("ts")},
            "chat.stopStream": self._stop_stream,
            "users.info": self._users_info,
        }

    # -- lifecycle -----------------------------------------------------------------

    def _make_server(self) -> LocalHTTPServer:
        return LocalHTTPServer(_Handler, fake=self)

    # -- test-facing API -----------------------------------------------------------

    @property
    def base_url(self) -> str:
        """Base URL for `slack_sdk.WebClient(base_url=...)`, e.g. http://127.0.0.1:PORT/api/."""
        return f"http://127.0.0.1:{self.port}/api/"

    def hook_url(self, name: str = "commands/1") -> str:
        """A response_url served by this fake; what is posted to it is recorded as method "response_url"."""
        return f"http://127.0.0.1:{self.port}/hooks/{name}"

    def calls_to(self, method: str) -> list[dict]:
        """Recorded calls of one API method, in arrival order."""
        with self._cond:
            return [c for c in self.calls if c["method"] == method]

    def wait_for(self, method: str, count: int = 1, timeout: float = 10) -> list[dict]:
        """Block until `count` calls of `method` arrived and return them; AssertionError on timeout."""
        with self._cond:
            ok = self._cond.wait_for(lambda: len(self.calls_to(method)) >= count, timeout)
            if not ok:
                seen = [c["method"] for c in self.calls]
                raise AssertionError(
                    f"expected {count} call(s) to {method} within {timeout}s; calls so far: {seen}")
            return self.calls_to(method)

    def fail(self, method: str, error: str = "ratelimited", status: int = 200, times: int = 1) -> None:
        """Make the next `times` calls of `method` answer {"ok": false, "error": error}."""
        with self._cond:
            self._failures[method].extend([(error, status)] * times)

    def stream_text(self, channel: str, ts: str) -> str:
        """Markdown text streamed into message `ts` via chat.startStream/appendStream/stopStream."""
        with self._cond:
            calls = list(self.calls)
        text = ""
        for call in calls:
            args = call["args"]
            if call["method"] == "chat.startStream" and call["response"].get("ts") == ts:
                text += _chunks_text(args)
            elif call["method"] in ("chat.appendStream", "chat.stopStream") and \
                    args.get("channel") == channel and args.get("ts") == ts:
                text += _chunks_text(args)
        return text

    def next_ts(self) -> str:
        """Return a fresh message timestamp, unique and increasing (1700000000.000100, ...)."""
        micros = 100 * next(self._ts_counter)
        return f"{1700000000 + micros // 1_000_000}.{micros % 1_000_000:06d}"

    # -- request handling (called from handler threads) ----------------------------

    def handle_call(self, method: str, args: dict, headers: dict) -> tuple[int, dict, dict]:
        """Record one API call and build its (status, payload, headers) response."""
        call = {"method": method, "args": args, "headers": headers}
        with self._cond:
            failure = self._failures[method].popleft() if self._failures[method] else None
        if failure:
            error, status = failure
            payload: dict = {"ok": False, "error": error}
            # Slack sends Retry-After with 429s; slack_sdk's RateLimitErrorRetryHandler reads it.
            resp_headers = {"Retry-After": "1"} if status == 429 else {}
        else:
            status, resp_headers = 200, {}
            handler = self._handlers.get(method, lambda a: {})
            payload = {"ok": True, **handler(args)}
        call["response"] = payload
        with self._cond:
            self.calls.append(call)
            self._cond.notify_all()
        return status, payload, resp_headers

    def _auth_test(self, args: dict) -> dict:
        return {"url": "https://fake-team.slack.com/", "team": "Fake Team", "user": "fakebot",
                "team_id": TEAM_ID, "user_id": BOT_USER_ID, "bot_id": BOT_ID,
                "is_enterprise_install": False}

    def _post_message(self, args: dict) -> dict:
        ts = self.next_ts()
        message = {"type": "message", "subtype": None, "text": args.get("text", ""),
                   "user": BOT_USER_ID, "bot_id": BOT_ID, "team": TEAM_ID, "ts": ts}
        message = {k: v for k, v in message.items() if v is not None}
        for key in ("blocks", "attachments", "thread_ts", "metadata"):
            if key in args:
                message[key] = args[key]
        return {"channel": args.get("channel"), "ts": ts, "message": message}

    def _update(self, args: dict) -> dict:
        message = {"type": "message", "text": args.get("text", ""), "user": BOT_USER_ID,
                   "bot_id": BOT_ID}
        if "blocks" in args:
            message["blocks"] = args["blocks"]
        return {"channel": args.get("channel"), "ts": args.get("ts"),
                "text": args.get("text", ""), "message": message}

    def _replies(self, args: dict) -> dict:
        """One page of the thread: `limit` (and replies_page_size) messages from `cursor` (an offset here)."""
        messages = self.threads.get((args.get("channel"), args.get("ts")), [])
        size = int(args.get("limit") or 1000)
        if self.replies_page_size:
            size = min(size, self.replies_page_size)
        start = int(args.get("cursor") or 0)
        page, rest = messages[start : start + size], messages[start + size :]
        next_cursor = str(start + size) if rest else ""
        return {"messages": list(page), "has_more": bool(rest), "response_metadata": {"next_cursor": next_cursor}}

    def _stop_stream(self, args: dict) -> dict:
        ts = args.get("ts")
        return {"channel": args.get("channel"), "ts": ts,
                "message": {"type": "message", "user": BOT_USER_ID, "bot_id": BOT_ID, "ts": ts,
                            "text": self.stream_text(args.get("channel"), ts) + _chunks_text(args)}}

    def _users_info(self, args: dict) -> dict:
        user_id = args.get("user", "")
        user = self.users.get(user_id) or {
            "id": user_id, "team_id": TEAM_ID, "name": f"user-{user_id.lower()}",
            "real_name": f"User {user_id}", "is_bot": user_id == BOT_USER_ID,
            "profile": {"display_name": f"user-{user_id.lower()}", "real_name": f"User {user_id}"},
        }
        return {"user": user}
