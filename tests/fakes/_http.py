"""What the fake HTTP servers share: a threaded server on 127.0.0.1 that can drop its connections,
and the start/close/context-manager lifecycle around it."""

from __future__ import annotations

import socket
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class LocalHTTPServer(ThreadingHTTPServer):
    """ThreadingHTTPServer on a free 127.0.0.1 port that tracks (and can cut) open connections."""

    daemon_threads = True
    request_queue_size = 128  # the default backlog of 5 resets bursts of concurrent clients
    # Don't join handler threads on close: keep-alive connections held by a client pool would
    # otherwise block shutdown. Open sockets are shut down instead.
    block_on_close = False

    def __init__(self, handler: type[BaseHTTPRequestHandler], **attrs: Any):
        super().__init__(("127.0.0.1", 0), handler)
        for name, value in attrs.items():
            setattr(self, name, value)  # what the handler reads from self.server (state, fake, ...)
        self._conns: set[socket.socket] = set()
        self._conns_lock = threading.Lock()

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Ignore clients dropping keep-alive connections (timeouts, pool cleanup): normal in tests."""
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)

    def track(self, conn: socket.socket) -> None:
        """Remember an open client connection."""
        with self._conns_lock:
            self._conns.add(conn)

    def untrack(self, conn: socket.socket) -> None:
        """Forget a closed client connection."""
        with self._conns_lock:
            self._conns.discard(conn)

    def close_connections(self) -> None:
        """Shut down every open client connection."""
        with self._conns_lock:
            conns = list(self._conns)
        for conn in conns:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


class BackgroundServer:
    """start()/close()/`with` lifecycle of a LocalHTTPServer served from a daemon thread."""

    name = "FakeServer"

    def __init__(self) -> None:
        self._server: LocalHTTPServer | None = None
        self._thread: threading.Thread | None = None

    def _make_server(self) -> LocalHTTPServer:
        raise NotImplementedError

    def _before_close(self) -> None:
        """Hook: wake anything that waits inside a handler."""

    def start(self):
        """Bind a free port and serve in a daemon thread."""
        if self._server is None:
            self._server = self._make_server()
            self._thread = threading.Thread(
                target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name=self.name, daemon=True
            )
            self._thread.start()
        return self

    def close(self) -> None:
        """Stop serving and drop open connections."""
        if self._server is None:
            return
        self._before_close()
        self._server.shutdown()
        self._server.close_connections()
        self._server.server_close()
        assert self._thread is not None
        self._thread.join(timeout=5)
        self._server = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def port(self) -> int:
        """TCP port the server listens on."""
        if self._server is None:
            raise RuntimeError(f"{self.name} is not running")
        return self._server.server_address[1]
