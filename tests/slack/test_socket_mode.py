"""Socket Mode end to end, offline: `run_bot` with SLACK_APP_TOKEN set, as `qa slack` runs it.

The bot's WebClient talks to FakeSlackAPI; `apps.connections.open` (called with the xapp- token) hands out the
URL of FakeSocketMode, a real WebSocket server on 127.0.0.1 that greets with `hello`, pushes `events_api` and
`slash_commands` envelopes and records the bot's acks. slack_bolt's default SocketModeHandler (the builtin,
dependency-free slack_sdk client) does the WebSocket side, unmodified except that `start()` waits on an event
that `close()` sets instead of blocking the thread forever, so that the test can stop the bot.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from contextlib import ExitStack
from dataclasses import dataclass
from typing import Any

import pytest

from bot.errors import QAError
from tests.conftest import make_settings
from tests.fakes.slack_api import BOT_USER_ID, TEAM_ID, FakeSlackAPI
from tests.fakes.slack_socket import FakeSocketMode
from tests.slack.conftest import BOT_TOKEN, Work, answers_in, block_texts, seed_titles

pytestmark = pytest.mark.timeout(60)

APP_TOKEN = "xapp-1-AQA-1234567890-fakeAppTokenDoNotLog"
CEO = "Who is the CEO of ADASpace?"


class SocketSlackAPI(FakeSlackAPI):
    """FakeSlackAPI whose `apps.connections.open` returns the fake Socket Mode server's URL."""

    def __init__(self, socket: FakeSocketMode):
        super().__init__()
        self._handlers["apps.connections.open"] = lambda args: {"url": socket.url}


@dataclass
class SocketBot:
    api: SocketSlackAPI
    ws: FakeSocketMode
    handler: Any  # the SocketModeHandler run_bot created
    thread: threading.Thread
    errors: list[BaseException]

    def idle(self, timeout: float = 15) -> int:
        """Wait until the work started by every envelope acked so far is done; the number of listener tasks."""
        return self.handler.work.wait(timeout)

    def mention(self, text: str, *, ts: str | None = None, user: str = "U1", channel: str = "C1",
                **envelope: Any) -> tuple[str, dict]:
        ts = ts or self.api.next_ts()
        event = {"type": "app_mention", "user": user, "text": f"<@{BOT_USER_ID}> {text}", "ts": ts,
                 "channel": channel, "event_ts": ts, "team": TEAM_ID}
        return ts, self.ws.events_api(event, **envelope)


@pytest.fixture
def start_socket_bot(seed_settings, tmp_path, monkeypatch):
    """start_socket_bot(api_failure=None) -> SocketBot: run_bot(settings with SLACK_APP_TOKEN) in a thread.

    At teardown the handler is closed; run_bot must then return and the bot must not reconnect.
    """
    import slack_bolt.adapter.socket_mode as socket_mode

    from bot.slack.app import run_bot

    handlers: list[Any] = []

    class StoppableHandler(socket_mode.SocketModeHandler):
        def __init__(self, *args: Any, **kwargs: Any):
            super().__init__(*args, **kwargs)
            self.stopped = threading.Event()
            self.work = Work(self.app.qa_executor)  # before any envelope arrives
            handlers.append(self)

        def start(self) -> None:  # BaseSocketModeHandler.start: connect(), then Event().wait() forever
            self.connect()
            self.stopped.wait()

        def close(self) -> None:
            # slack_sdk's close() joins threads that block with timeouts it does not let us set: the receiver
            # in recv() (3 s) and the message processor in queue.get() (1 s). Waking both at once saves ~4 s
            # per test. Reconnecting is off first, so the early end of the connection is not taken for a drop.
            self.client.auto_reconnect_enabled = False
            self.client.closed = True
            sock = getattr(self.client.current_session, "sock", None)
            if sock is not None:
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
            self.client.message_queue.put(None)  # None is skipped by the processor, which then sees `closed`
            super().close()
            self.stopped.set()

    monkeypatch.setattr(socket_mode, "SocketModeHandler", StoppableHandler)
    # run_bot installs the log scrubber and sets bot.slack's level: put both back afterwards
    slack_logger = logging.getLogger("bot.slack")
    monkeypatch.setattr(slack_logger, "level", slack_logger.level)
    root_filters = {h: list(h.filters) for h in logging.getLogger().handlers}
    started: list[SocketBot] = []
    stack = ExitStack()  # closed last: the fakes stay up while the bot stops

    def start(api_failure: str | None = None) -> SocketBot:
        ws = stack.enter_context(FakeSocketMode())
        api = stack.enter_context(SocketSlackAPI(ws))
        if api_failure:
            api.fail("apps.connections.open", api_failure)
        settings = make_settings(
            seed_settings.data_dir,
            slack_bot_token=BOT_TOKEN,
            slack_app_token=APP_TOKEN,  # no signing secret: Socket Mode needs none
            slack_api_url=api.base_url,
            feedback_db_url=f"sqlite:///{tmp_path / 'feedback.sqlite'}",
        )
        errors: list[BaseException] = []

        def run() -> None:
            try:
                run_bot(settings)
            except BaseException as exc:  # noqa: BLE001 - reported by the test
                errors.append(exc)

        thread = threading.Thread(target=run, name="qa-slack-socket-mode", daemon=True)
        thread.start()
        deadline = time.monotonic() + 30
        while not handlers and thread.is_alive() and time.monotonic() < deadline:
            time.sleep(0.02)
        assert handlers, f"run_bot did not start Socket Mode: {errors}"
        bot = SocketBot(api, ws, handlers[-1], thread, errors)
        started.append(bot)
        if not api_failure:
            ws.wait_connected(timeout=15)
        return bot

    with stack:
        try:
            yield start
        finally:
            for bot in started:
                bot.handler.close()
                bot.thread.join(10)
                bot.handler.app.qa_executor.shutdown(wait=True)
            for h, filters in root_filters.items():
                h.filters[:] = filters
        for bot in started:
            assert not bot.thread.is_alive(), "run_bot did not return after the handler was closed"
            assert not bot.errors, bot.errors
            if bot.ws.connects:  # it was connected: closing it disconnects for good (no auto-reconnect)
                bot.ws.wait_disconnected(timeout=5)
                assert len(bot.ws.connects) == len(bot.api.calls_to("apps.connections.open")) == 1


@pytest.fixture
def socket_bot(start_socket_bot) -> SocketBot:
    return start_socket_bot()


def assert_threaded_answer(call: dict, channel: str, thread_ts: str) -> None:
    args = call["args"]
    assert args["channel"] == channel
    assert args["thread_ts"] == thread_ts
    assert "[1]" in args["text"]
    blocks = args["blocks"]
    assert "[1]" in " ".join(block_texts(blocks, "section"))
    sources = block_texts(blocks, "context")
    assert sources[0] == "*Sources*"
    assert sources[1].startswith("*[1]* ")
    assert any(title in s for s in sources for title in seed_titles())
    assert args["metadata"]["event_type"] == "qa_answer"


# --- tests -------------------------------------------------------------------------------------------
def test_app_mention_envelope_is_acked_and_answered_once_in_its_thread(socket_bot):
    api, ws = socket_bot.api, socket_bot.ws
    assert not socket_bot.errors
    (open_call,) = api.calls_to("apps.connections.open")  # the app token opens the connection...
    assert open_call["headers"]["Authorization"] == f"Bearer {APP_TOKEN}"
    assert ws.connects[0]["path"].startswith("/link/?ticket=") and ws.connected == 1
    ts, envelope = socket_bot.mention(CEO)
    t0 = time.monotonic()
    envelope_id = ws.send(envelope)
    ack = ws.wait_for_ack(envelope_id, timeout=3)
    assert time.monotonic() - t0 < 3
    assert ack == {"envelope_id": envelope_id}

    socket_bot.idle()
    (call,) = api.calls_to("chat.postMessage")
    assert_threaded_answer(call, "C1", ts)
    assert call["headers"]["Authorization"] == f"Bearer {BOT_TOKEN}"  # ...the bot token does the rest
    methods = [c["method"] for c in api.calls]
    assert methods.index("reactions.add") < methods.index("chat.postMessage") < methods.index("reactions.remove")
    assert len(ws.acks(envelope_id)) == 1
    assert len(ws.connects) == 1  # no reconnect along the way


def test_redelivered_envelope_is_acked_but_not_answered_again(socket_bot):
    api, ws = socket_bot.api, socket_bot.ws
    ts, first = socket_bot.mention(CEO, event_id="EvSOCKET0001")
    ws.wait_for_ack(ws.send(first))
    api.wait_for("chat.postMessage", timeout=15)
    # Slack redelivers an event it thinks was not acked: same event_id, a new envelope, retry_attempt 1
    _, retry = socket_bot.mention(CEO, ts=ts, event_id="EvSOCKET0001", retry_attempt=1, retry_reason="timeout")
    assert ws.wait_for_ack(ws.send(retry)) == {"envelope_id": retry["envelope_id"]}
    assert socket_bot.idle() == 1  # the redelivery was dropped before any listener
    assert len(answers_in(api)) == 1
    assert len(api.calls_to("chat.postMessage")) == 1


def test_ask_slash_command_envelope_is_acked_and_answered_in_the_question_thread(socket_bot):
    api, ws = socket_bot.api, socket_bot.ws
    envelope = ws.slash_command("/ask", CEO, user="U3", channel="C1")
    t0 = time.monotonic()
    ack = ws.wait_for_ack(ws.send(envelope), timeout=3)
    assert time.monotonic() - t0 < 3
    assert ack == {"envelope_id": envelope["envelope_id"]}

    socket_bot.idle()
    question, answer = api.calls_to("chat.postMessage")
    assert question["args"]["channel"] == "C1" and "thread_ts" not in question["args"]
    assert question["args"]["text"] == f"<@U3> asked: {CEO}"
    assert_threaded_answer(answer, "C1", question["response"]["ts"])


def test_refused_app_token_is_a_clear_error_not_a_traceback(start_socket_bot):
    # e.g. the bot token (xoxb-) pasted as SLACK_APP_TOKEN: Slack answers not_allowed_token_type
    bot = start_socket_bot(api_failure="not_allowed_token_type")
    bot.thread.join(15)
    assert not bot.thread.is_alive()
    (error,) = bot.errors
    assert isinstance(error, QAError)
    assert "SLACK_APP_TOKEN" in error.user_message and "not_allowed_token_type" in error.user_message
    assert APP_TOKEN not in error.user_message
    assert not bot.ws.connects
    bot.errors.clear()
