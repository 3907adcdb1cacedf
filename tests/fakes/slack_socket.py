"""Fake Slack Socket Mode server: a real WebSocket endpoint on 127.0.0.1 (the `websockets` package, sync API).

Slack's Socket Mode: the app calls the Web API method `apps.connections.open` with its app-level token
(xapp-...), gets back a `wss://` URL, opens a WebSocket to it, receives `{"type": "hello", ...}`, then gets
envelopes (`events_api`, `slash_commands`, `interactive`) and acknowledges each one by sending back
`{"envelope_id": ..., "payload": ...?}` within 3 seconds.

Usage::

    with FakeSocketMode() as ws, FakeSlackAPI() as api:
        api.connections_url = ws.url          # see tests/slack/test_socket_mode.py
        ...                                   # start the bot
        ws.wait_connected()
        envelope_id = ws.send(ws.events_api({"type": "app_mention", ...}))
        ack = ws.wait_for_ack(envelope_id)
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from typing import Any

from websockets.exceptions import ConnectionClosed
from websockets.sync.server import Server, ServerConnection, serve

__all__ = ["FakeSocketMode"]

TEAM_ID = "TFAKE"
APP_ID = "AQA"


class FakeSocketMode:
    """Socket Mode server: sends `hello` on connect, pushes envelopes, records everything the app sends."""

    def __init__(self, team_id: str = TEAM_ID, app_id: str = APP_ID) -> None:
        self.team_id, self.app_id = team_id, app_id
        self.received: list[dict] = []  # every JSON message the app sent (acks), in arrival order
        self.connects: list[dict] = []  # {"path": ..., "headers": {...}} for each WebSocket handshake
        self._connections: list[ServerConnection] = []
        self._cond = threading.Condition()
        self._server: Server | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self) -> "FakeSocketMode":
        if self._server is None:
            self._server = serve(self._handle, "127.0.0.1", 0, close_timeout=1, ping_interval=None)
            self._thread = threading.Thread(target=self._server.serve_forever, name="FakeSocketMode", daemon=True)
            self._thread.start()
        return self

    def close(self) -> None:
        if self._server is None:
            return
        self._server.shutdown()
        assert self._thread is not None
        self._thread.join(timeout=5)
        self._server = None

    def __enter__(self) -> "FakeSocketMode":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("FakeSocketMode is not running")
        return self._server.socket.getsockname()[1]

    @property
    def url(self) -> str:
        """What `apps.connections.open` should return (ws://, not wss://: no TLS on 127.0.0.1)."""
        return f"ws://127.0.0.1:{self.port}/link/?ticket={uuid.uuid4()}&app_id={self.app_id}"

    # -- the connection ------------------------------------------------------------------------
    def _handle(self, ws: ServerConnection) -> None:
        request = ws.request
        with self._cond:
            self.connects.append({"path": request.path if request else None,
                                  "headers": dict(request.headers.raw_items()) if request else {}})
            self._connections.append(ws)
            self._cond.notify_all()
        try:
            ws.send(json.dumps({
                "type": "hello", "num_connections": 1,
                "debug_info": {"host": "applink-fake", "build_number": 1, "approximate_connection_time": 18060},
                "connection_info": {"app_id": self.app_id},
            }))
            for raw in ws:
                try:
                    message = json.loads(raw)
                except (TypeError, ValueError):
                    message = {"_raw": raw}
                with self._cond:
                    self.received.append(message)
                    self._cond.notify_all()
        except ConnectionClosed:
            pass
        finally:
            with self._cond:
                if ws in self._connections:
                    self._connections.remove(ws)
                self._cond.notify_all()

    def wait_connected(self, timeout: float = 10) -> None:
        """Block until an app is connected; AssertionError on timeout."""
        with self._cond:
            if not self._cond.wait_for(lambda: bool(self._connections), timeout):
                raise AssertionError(f"no Socket Mode connection within {timeout}s")

    def wait_disconnected(self, timeout: float = 10) -> None:
        with self._cond:
            if not self._cond.wait_for(lambda: not self._connections, timeout):
                raise AssertionError(f"the app is still connected after {timeout}s")

    @property
    def connected(self) -> int:
        with self._cond:
            return len(self._connections)

    def send(self, envelope: dict) -> str:
        """Send an envelope to the most recent connection; returns its envelope_id."""
        with self._cond:
            if not self._connections:
                raise AssertionError("no Socket Mode connection to send to")
            ws = self._connections[-1]
        ws.send(json.dumps(envelope))
        return envelope["envelope_id"]

    def acks(self, envelope_id: str) -> list[dict]:
        with self._cond:
            return [m for m in self.received if m.get("envelope_id") == envelope_id]

    def wait_for_ack(self, envelope_id: str, timeout: float = 3) -> dict:
        """The app's acknowledgement of an envelope (Slack redelivers what is not acked within 3 s)."""
        with self._cond:
            if not self._cond.wait_for(lambda: self.acks(envelope_id), timeout):
                raise AssertionError(f"envelope {envelope_id} not acknowledged within {timeout}s; "
                                     f"received: {self.received}")
            return self.acks(envelope_id)[0]

    # -- envelopes ------------------------------------------------------------------------------
    @staticmethod
    def _envelope(kind: str, payload: dict, **extra: Any) -> dict:
        return {"envelope_id": str(uuid.uuid4()), "type": kind, "payload": payload, **extra}

    def events_api(self, event: dict, *, event_id: str | None = None, retry_attempt: int = 0,
                   retry_reason: str = "", bot_user_id: str = "UBOT") -> dict:
        """An `events_api` envelope carrying an event_callback, as Slack sends it."""
        payload = {
            "token": "legacy-verification-token",
            "team_id": self.team_id,
            "api_app_id": self.app_id,
            "event": event,
            "type": "event_callback",
            "event_id": event_id or f"Ev{uuid.uuid4().hex[:10].upper()}",
            "event_time": int(time.time()),
            "authorizations": [{"enterprise_id": None, "team_id": self.team_id, "user_id": bot_user_id,
                                "is_bot": True, "is_enterprise_install": False}],
            "is_ext_shared_channel": False,
            "event_context": f"4-{uuid.uuid4().hex}",
        }
        return self._envelope("events_api", payload, accepts_response_payload=False,
                              retry_attempt=retry_attempt, retry_reason=retry_reason)

    def slash_command(self, command: str, text: str, *, user: str = "U3", channel: str = "C1") -> dict:
        """A `slash_commands` envelope, as Slack sends it (the payload is the HTTP form, as a JSON object)."""
        payload = {
            "token": "legacy-verification-token", "team_id": self.team_id, "team_domain": "fake",
            "channel_id": channel, "channel_name": "general", "user_id": user, "user_name": "someone",
            "command": command, "text": text, "api_app_id": self.app_id, "is_enterprise_install": "false",
            "response_url": "https://hooks.invalid/commands/1",
            # Slack gives every invocation its own trigger_id (the bot drops a repeated one as a replay).
            "trigger_id": f"{time.time_ns()}.{uuid.uuid4().int % 10**9}",
        }
        return self._envelope("slash_commands", payload, accepts_response_payload=True)
