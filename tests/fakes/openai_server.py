"""Fake OpenAI-compatible chat completions server for tests (standard library only).

Usage::

    with FakeOpenAI() as srv:
        srv.script(Status(429), Reply("second try works"))
        client = openai.OpenAI(base_url=srv.base_url, api_key="test", max_retries=0)
        ...
        assert srv.requests[0]["messages"][-1]["content"] == "question"
"""

from __future__ import annotations

import itertools
import json
import re
import socket
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler

from typing import Any, Callable

from tests.fakes._http import BackgroundServer, LocalHTTPServer

__all__ = [
    "FakeOpenAI",
    "InvalidJSON",
    "Reply",
    "Slow",
    "Status",
    "StreamThenDrop",
    "StreamThenStall",
    "default_responder",
]


@dataclass(frozen=True)
class Reply:
    """Answer the request with this text (streamed or not, as the request asks)."""

    text: str


@dataclass(frozen=True)
class Status:
    """Answer with an HTTP error status; body defaults to an OpenAI-style error object."""

    code: int
    body: Any = None  # dict/list -> JSON, str/bytes -> sent verbatim, None -> default error
    headers: dict[str, str] | None = None


@dataclass(frozen=True)
class Slow:
    """Wait `seconds` before answering with `text`."""

    seconds: float
    text: str = "Slow answer."


@dataclass(frozen=True)
class InvalidJSON:
    """Answer 200 with content-type application/json and a body that is not JSON."""

    body: bytes = b'{"id": "chatcmpl-broken", "choices": [ this is not json'


@dataclass(frozen=True)
class StreamThenDrop:
    """Start an SSE stream, send part of `text`, then drop the connection without [DONE]."""

    text: str = "This answer will be cut"


@dataclass(frozen=True)
class StreamThenStall:
    """Start an SSE stream, send part of `text`, then send nothing for `seconds` (a stalled model)."""

    text: str = "This answer will stall"
    seconds: float = 10.0


Step = Reply | Status | Slow | InvalidJSON | StreamThenDrop | StreamThenStall


def default_responder(request: dict) -> str:
    """Return the canned answer used when no step is scripted."""
    return "Default answer [1]."


# Error type/code pairs mirroring what api.openai.com returns, so client code that
# inspects `err.body["type"]` or `err.code` sees realistic values.
_ERRORS = {
    400: ("invalid_request_error", None, "Bad request"),
    401: ("invalid_request_error", "invalid_api_key", "Incorrect API key provided"),
    403: ("invalid_request_error", "unsupported_country_region_territory", "Forbidden"),
    404: ("invalid_request_error", "model_not_found", "The model does not exist"),
    429: ("requests", "rate_limit_exceeded", "Rate limit reached, please try again later"),
    500: ("server_error", None, "The server had an error while processing your request"),
    503: ("server_error", None, "The engine is currently overloaded"),
}


def _error_body(code: int) -> dict:
    err_type, err_code, message = _ERRORS.get(code, ("server_error", None, f"Fake error {code}"))
    return {"error": {"message": message, "type": err_type, "param": None, "code": err_code}}


def _split_deltas(text: str) -> list[str]:
    """Split text into word-sized pieces (keeping whitespace) so streams have many deltas."""
    return re.findall(r"\S+\s*|\s+", text)


def _count_tokens(text: str) -> int:
    return len(text.split())


@dataclass
class _State:
    """Mutable server state shared between the FakeOpenAI facade and handler threads."""

    responder: Callable[[dict], str]
    lock: threading.Lock = field(default_factory=threading.Lock)
    steps: deque = field(default_factory=deque)
    requests: list = field(default_factory=list)
    stopping: threading.Event = field(default_factory=threading.Event)
    ids: itertools.count = field(default_factory=lambda: itertools.count(1))


class _Handler(BaseHTTPRequestHandler):
    # HTTP/1.1 so streams use chunked encoding like the real API; that is also what
    # lets StreamThenDrop look like a truncated body rather than a clean EOF.
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

    # -- routing -------------------------------------------------------------------

    def do_GET(self) -> None:
        if self.path.rstrip("/") == "/v1/models":
            data = [{"id": m, "object": "model", "created": 1700000000, "owned_by": "fake"}
                    for m in ("gpt-4o-mini", "gpt-4o", "fake-model")]
            self._send_json(200, {"object": "list", "data": data})
        else:
            self._send_json(404, _error_body(404))

    def do_POST(self) -> None:
        raw = self._read_body()
        if self.path.split("?")[0].rstrip("/") != "/v1/chat/completions":
            self._send_json(404, _error_body(404))
            return
        try:
            request = json.loads(raw or b"null")
        except ValueError:
            self._send_json(400, _error_body(400))
            return
        if not isinstance(request, dict):
            self._send_json(400, _error_body(400))
            return
        state = self.server.state
        with state.lock:
            state.requests.append(request)
            step = state.steps.popleft() if state.steps else None
        try:
            self._answer(request, step)
        except (BrokenPipeError, ConnectionResetError):
            # The client gave up (e.g. its timeout fired); nothing left to do.
            self.close_connection = True

    # -- answering -----------------------------------------------------------------

    def _answer(self, request: dict, step: Step | None) -> None:
        state = self.server.state
        if isinstance(step, Status):
            body = _error_body(step.code) if step.body is None else step.body
            self._send_json(step.code, body, step.headers)
            return
        if isinstance(step, InvalidJSON):
            self._send_raw(200, step.body, "application/json")
            return
        if isinstance(step, Slow):
            # Event.wait instead of time.sleep so close() interrupts the delay.
            if state.stopping.wait(step.seconds):
                self.close_connection = True
                return
            text = step.text
        elif isinstance(step, (Reply, StreamThenDrop, StreamThenStall)):
            text = step.text
        else:
            text = state.responder(request)

        completion_id = f"chatcmpl-fake-{next(state.ids)}"
        model = request.get("model") or "fake-model"
        if isinstance(step, StreamThenDrop):
            self._stream(request, completion_id, model, text, drop=True)
        elif isinstance(step, StreamThenStall):
            self._stream(request, completion_id, model, text, stall=step.seconds)
        elif request.get("stream"):
            self._stream(request, completion_id, model, text)
        else:
            self._send_json(200, self._completion(request, completion_id, model, text))

    @staticmethod
    def _usage(request: dict, text: str) -> dict:
        prompt = sum(_count_tokens(str(m.get("content") or "")) for m in request.get("messages", []))
        completion = _count_tokens(text)
        return {"prompt_tokens": prompt, "completion_tokens": completion,
                "total_tokens": prompt + completion}

    def _completion(self, request: dict, completion_id: str, model: str, text: str) -> dict:
        return {
            "id": completion_id,
            "object": "chat.completion",
            "created": int(time.time()),
            "model": model,
            "choices": [{
                "index": 0,
                "message": {"role": "assistant", "content": text, "refusal": None},
                "logprobs": None,
                "finish_reason": "stop",
            }],
            "usage": self._usage(request, text),
            "system_fingerprint": "fp_fake",
        }

    def _stream(self, request: dict, completion_id: str, model: str, text: str,
                drop: bool = False, stall: float = 0.0) -> None:
        created = int(time.time())

        def chunk(delta: dict, finish_reason: str | None = None) -> dict:
            return {"id": completion_id, "object": "chat.completion.chunk", "created": created,
                    "model": model, "system_fingerprint": "fp_fake",
                    "choices": [{"index": 0, "delta": delta, "logprobs": None,
                                 "finish_reason": finish_reason}]}

        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream; charset=utf-8")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()

        pieces = _split_deltas(text)
        if drop or stall:
            # Send roughly half the answer, then hang up without the terminating chunk.
            pieces = pieces[: max(1, len(pieces) // 2)]
        self._sse(chunk({"role": "assistant", "content": ""}))
        for piece in pieces:
            self._sse(chunk({"content": piece}))
        if drop:
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        if stall:
            self.server.state.stopping.wait(stall)  # close() ends the stall early
            self.close_connection = True
            return
        self._sse(chunk({}, "stop"))
        if (request.get("stream_options") or {}).get("include_usage"):
            usage_chunk = chunk({})
            usage_chunk["choices"] = []
            usage_chunk["usage"] = self._usage(request, text)
            self._sse(usage_chunk)
        self._write_chunk(b"data: [DONE]\n\n")
        self._write_chunk(b"")  # zero-length chunk ends the chunked body

    def _sse(self, payload: dict) -> None:
        self._write_chunk(b"data: " + json.dumps(payload).encode() + b"\n\n")

    def _write_chunk(self, data: bytes) -> None:
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()

    # -- plumbing ------------------------------------------------------------------

    def _read_body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _send_json(self, code: int, body: Any, headers: dict[str, str] | None = None) -> None:
        if isinstance(body, (dict, list)):
            data = json.dumps(body).encode()
        elif isinstance(body, str):
            data = body.encode()
        else:
            data = bytes(body)
        self._send_raw(code, data, "application/json", headers)

    def _send_raw(self, code: int, data: bytes, content_type: str,
                  headers: dict[str, str] | None = None) -> None:
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("x-request-id", f"req_fake_{id(self):x}")
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)
        self.wfile.flush()


class FakeOpenAI(BackgroundServer):
    """OpenAI-wire-compatible chat completions server on 127.0.0.1 with scriptable faults."""

    name = "FakeOpenAI"

    def __init__(self, responder: Callable[[dict], str] = default_responder):
        super().__init__()
        self._state = _State(responder=responder)

    # -- lifecycle -----------------------------------------------------------------

    def _make_server(self) -> LocalHTTPServer:
        return LocalHTTPServer(_Handler, state=self._state)

    def _before_close(self) -> None:
        self._state.stopping.set()  # interrupts Slow steps

    # -- test-facing API -----------------------------------------------------------

    @property
    def base_url(self) -> str:
        """Base URL for `openai.OpenAI(base_url=...)`, e.g. http://127.0.0.1:PORT/v1."""
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def requests(self) -> list[dict]:
        """JSON bodies received on /v1/chat/completions, in arrival order (live list)."""
        return self._state.requests

    @property
    def responder(self) -> Callable[[dict], str]:
        """Function `request_json -> answer text` used when no step is scripted."""
        return self._state.responder

    @responder.setter
    def responder(self, func: Callable[[dict], str]) -> None:
        self._state.responder = func

    def script(self, *steps: Step) -> None:
        """Queue steps; each chat completion request consumes one, then the responder is used."""
        with self._state.lock:
            self._state.steps.extend(steps)

    @property
    def pending_steps(self) -> int:
        """Number of scripted steps not consumed yet."""
        with self._state.lock:
            return len(self._state.steps)
