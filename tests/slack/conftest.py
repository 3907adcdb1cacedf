"""Slack test harness: the real Bolt app over real HTTP on 127.0.0.1, its WebClient pointed at FakeSlackAPI.

Requests are signed exactly as Slack signs them (HMAC-SHA256 of `v0:{timestamp}:{body}` with the signing
secret), so the endpoint's and Bolt's verification check them.

Tests never wait for quiet: `BotServer.idle()` waits until every lazy listener started by the requests sent so
far has finished (Bolt submits them to the app's executor before the HTTP response is written), and time-based
limits take a `FakeClock`.
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import json
import threading
import time
import uuid
from concurrent.futures import Executor, Future, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator
from urllib.parse import urlencode

import pytest

from bot.types import Answer, Delta
from tests.conftest import make_settings
from tests.fakes.slack_api import BOT_ID, BOT_USER_ID, TEAM_ID, FakeSlackAPI

BOT_TOKEN = "xoxb-111-222-testtokenDoNotLog"
SIGNING_SECRET = "5f0c7e1a9b2d4c6e8f0a1b3c5d7e9f11"
SEEDS = Path(__file__).resolve().parents[2] / "seeds"

def seed_titles() -> set[str]:
    """The titles of the seed articles (their first non-empty line)."""
    titles = set()
    for path in SEEDS.glob("*.txt"):
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                titles.add(line.strip())
                break
    return titles


def sign(body: str | bytes, timestamp: int | None = None, secret: str = SIGNING_SECRET) -> dict[str, str]:
    """Slack's request-signing headers for a body."""
    ts = str(int(time.time()) if timestamp is None else timestamp)
    raw = body if isinstance(body, bytes) else body.encode()
    digest = hmac.new(secret.encode(), f"v0:{ts}:".encode() + raw, hashlib.sha256).hexdigest()
    return {"X-Slack-Request-Timestamp": ts, "X-Slack-Signature": f"v0={digest}"}


class FakeClock:
    """A monotonic clock that moves only when told to."""

    def __init__(self, start: float = 1000.0):
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds

    sleep = advance  # what the bot calls to wait for its next chat.update slot


class Work:
    """The tasks submitted to an executor (Bolt's lazy listeners), so that a test can wait for all of them."""

    def __init__(self, executor: Executor):
        self.futures: list[Future] = []
        self._lock = threading.Lock()
        submit = executor.submit

        def tracked(*args: Any, **kwargs: Any) -> Future:
            future = submit(*args, **kwargs)
            with self._lock:
                self.futures.append(future)
            return future

        executor.submit = tracked  # type: ignore[method-assign]

    def wait(self, timeout: float = 15) -> int:
        """Block until every task submitted so far has finished; the number of tasks, re-raising a task's error."""
        with self._lock:
            futures = list(self.futures)
        done, pending = wait(futures, timeout)
        assert not pending, f"{len(pending)} listener task(s) still running after {timeout} s"
        for future in done:
            future.result()
        return len(futures)


def new_trigger_id() -> str:
    """A fresh trigger_id: Slack gives every command invocation and click its own."""
    return f"{time.time_ns()}.{uuid.uuid4().int % 10**9}.{uuid.uuid4().hex[:12]}"


@dataclass
class Sent:
    """What the bot's HTTP endpoint answered to one request."""

    status: int
    body: str
    seconds: float
    headers: dict[str, str] = field(default_factory=dict)


class BotServer:
    """The Bolt app served over HTTP on 127.0.0.1 in a background thread."""

    def __init__(self, app, server, settings, store, slack_api: FakeSlackAPI):
        self.app, self.server, self.settings, self.store = app, server, settings, store
        self.slack_api = slack_api
        self.bot = app.qa_bot
        self.port = server.server_address[1]
        self.work = Work(app.qa_executor)
        self.thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def new_ts(self) -> str:
        """A fresh message ts, in the same increasing sequence as the messages the fake Slack API creates."""
        return self.slack_api.next_ts()

    def idle(self, timeout: float = 15) -> int:
        """Wait until the work started by every request sent so far is done; the number of listener tasks."""
        return self.work.wait(timeout)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)
        self.app.qa_executor.shutdown(wait=True)  # answers in progress finish while the fake Slack API is up

    # -- raw HTTP --------------------------------------------------------------------------
    def request(self, method: str, path: str, body: str | bytes = "", headers: dict[str, str] | None = None) -> Sent:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        t0 = time.perf_counter()
        try:
            conn.request(method, path, body=body if isinstance(body, bytes) else body.encode(), headers=headers or {})
            resp = conn.getresponse()
            data = resp.read().decode()
            return Sent(resp.status, data, time.perf_counter() - t0, dict(resp.getheaders()))
        finally:
            conn.close()

    def post(self, body: str | bytes, content_type: str, *, timestamp: int | None = None, secret: str = SIGNING_SECRET,
             headers: dict[str, str] | None = None) -> Sent:
        h = {"Content-Type": content_type, **sign(body, timestamp, secret), **(headers or {})}
        return self.request("POST", "/slack/events", body, h)

    # -- Slack payloads ---------------------------------------------------------------------
    def event(self, event: dict, *, event_id: str | None = None, headers: dict[str, str] | None = None,
              **kw: Any) -> Sent:
        body = {
            "token": "legacy-verification-token",
            "team_id": TEAM_ID,
            "api_app_id": "AQA",
            "event": event,
            "type": "event_callback",
            "event_id": event_id or f"Ev{uuid.uuid4().hex[:10].upper()}",
            "event_time": int(time.time()),
            "authorizations": [{"enterprise_id": None, "team_id": TEAM_ID, "user_id": BOT_USER_ID,
                                "is_bot": True, "is_enterprise_install": False}],
        }
        return self.post(json.dumps(body), "application/json", headers=headers, **kw)

    def mention(self, text: str, *, user: str = "U1", channel: str = "C1", ts: str | None = None,
                thread_ts: str | None = None, **kw: Any) -> tuple[str, Sent]:
        ts = ts or self.new_ts()
        event = {"type": "app_mention", "user": user, "text": f"<@{BOT_USER_ID}> {text}", "ts": ts,
                 "channel": channel, "event_ts": ts, "team": TEAM_ID}
        if thread_ts:
            event["thread_ts"] = thread_ts
        return ts, self.event(event, **kw)

    def dm(self, text: str, *, user: str = "U2", channel: str = "D1", ts: str | None = None,
           thread_ts: str | None = None, **kw: Any) -> tuple[str, Sent]:
        ts = ts or self.new_ts()
        event = {"type": "message", "channel_type": "im", "user": user, "text": text, "ts": ts,
                 "channel": channel, "event_ts": ts, "team": TEAM_ID}
        if thread_ts:
            event["thread_ts"] = thread_ts
        return ts, self.event(event, **kw)

    def command(self, text: str, *, user: str = "U3", channel: str = "C1", command: str = "/ask") -> Sent:
        """A slash command, as Slack posts it (form-encoded)."""
        return self.post(urlencode(self.command_form(text, user=user, channel=channel, command=command)),
                         "application/x-www-form-urlencoded")

    def command_form(self, text: str, *, user: str = "U3", channel: str = "C1", command: str = "/ask") -> dict:
        form = {"token": "legacy", "team_id": TEAM_ID, "team_domain": "fake", "channel_id": channel,
                "channel_name": "general", "user_id": user, "user_name": "someone", "command": command,
                "text": text, "api_app_id": "AQA", "response_url": self.slack_api.hook_url("commands/1"),
                "trigger_id": new_trigger_id()}
        return form

    def click(self, message: dict, channel: str, action_id: str, *, user: str = "U9") -> Sent:
        """A block_actions payload for a click on the feedback button `action_id` of `message`."""
        actions = next(b for b in message["blocks"] if b.get("block_id") == "qa_feedback")
        button = next(e for e in actions["elements"] if e["action_id"] == action_id)
        payload = {
            "type": "block_actions",
            "user": {"id": user, "username": "voter", "team_id": TEAM_ID},
            "api_app_id": "AQA",
            "token": "legacy",
            "container": {"type": "message", "message_ts": message["ts"], "channel_id": channel,
                          "is_ephemeral": False, "thread_ts": message.get("thread_ts")},
            "trigger_id": new_trigger_id(),
            "team": {"id": TEAM_ID, "domain": "fake"},
            "channel": {"id": channel, "name": "general"},
            "message": message,
            "response_url": self.slack_api.hook_url("actions/1"),
            "actions": [{"action_id": action_id, "block_id": "qa_feedback", "value": button["value"],
                         "type": "button", "action_ts": str(time.time())}],
        }
        return self.post(urlencode({"payload": json.dumps(payload)}), "application/x-www-form-urlencoded")


# --- pipelines wrapped for tests ------------------------------------------------------------------
class SpyPipeline:
    """The real pipeline, recording each question and the conversation it came with."""

    def __init__(self, real):
        self.real, self.calls = real, []
        self.mode, self.info = real.mode, real.info

    def ask(self, question, conversation=None):
        self.calls.append((question, conversation))
        return self.real.ask(question, conversation)

    def stream(self, question, conversation=None):
        self.calls.append((question, conversation))
        yield from self.real.stream(question, conversation)


class FailingPipeline:
    """A pipeline whose every answer raises `error`."""

    def __init__(self, real, error: Exception):
        self.real, self.error = real, error
        self.mode, self.info = real.mode, real.info

    def ask(self, question, conversation=None):
        raise self.error

    def stream(self, question, conversation=None):
        raise self.error
        yield  # pragma: no cover - makes this a generator like the real one


class StreamingPipeline:
    """The real answer, delivered word by word with a delay, as an LLM would stream it.

    With a FakeClock the delay moves that clock instead of sleeping.
    """

    def __init__(self, real, delay: float = 0.01, final_text: str | None = None, clock: FakeClock | None = None):
        self.real, self.delay, self.final_text, self.clock = real, delay, final_text, clock
        self.mode, self.info = "llm", real.info

    def ask(self, question, conversation=None):
        return self.real.ask(question, conversation)

    def stream(self, question, conversation=None) -> Iterator[Delta | Answer]:
        answer = self.real.ask(question, conversation)
        words = answer.text.split(" ")
        for i, word in enumerate(words):
            if self.clock is not None:
                self.clock.advance(self.delay)
            else:
                time.sleep(self.delay)
            yield Delta(word if i == 0 else " " + word)
        if self.final_text is not None:
            from dataclasses import replace

            answer = replace(answer, text=self.final_text)
        yield answer


# --- fixtures --------------------------------------------------------------------------------------
@pytest.fixture
def slack_api() -> Iterator[FakeSlackAPI]:
    with FakeSlackAPI() as srv:
        yield srv


@pytest.fixture
def start_bot(slack_api, seed_settings, seed_pipeline, tmp_path):
    """start_bot(pipeline=None, rejections=None, settings overrides..., **SlackBot options) -> BotServer."""
    from bot.slack.app import build_app
    from bot.slack.feedback import FeedbackStore
    from bot.slack.http import health, make_server

    started: list[BotServer] = []
    bot_options = {"streaming", "max_concurrent", "stream_buffer", "update_interval", "dedup_ttl", "clock", "sleep"}

    def start(pipeline=None, rejections=None, **overrides) -> BotServer:
        options = {k: overrides.pop(k) for k in list(overrides) if k in bot_options}
        settings = make_settings(
            seed_settings.data_dir,
            slack_bot_token=BOT_TOKEN,
            slack_signing_secret=SIGNING_SECRET,
            slack_api_url=slack_api.base_url,
            feedback_db_url=f"sqlite:///{tmp_path / 'feedback.sqlite'}",
            **overrides,
        )
        store = FeedbackStore(settings.feedback_url)
        pipeline = pipeline or seed_pipeline
        app = build_app(settings, pipeline, store=store, **options)
        server = make_server(app, "127.0.0.1", 0, signing_secret=SIGNING_SECRET, rejections=rejections,
                             health_check=lambda: health(pipeline, app.qa_bot))
        bot = BotServer(app, server, settings, store, slack_api)
        started.append(bot)
        return bot

    yield start
    for bot in started:
        bot.close()


def answers_in(srv: FakeSlackAPI, channel: str | None = None) -> list[dict]:
    """chat.postMessage calls that carry an answer (they have the feedback buttons or Sources)."""
    found = []
    for call in srv.calls_to("chat.postMessage"):
        meta = call["args"].get("metadata") or {}
        if meta.get("event_type") == "qa_answer" and (channel is None or call["args"].get("channel") == channel):
            found.append(call)
    return found


def block_texts(blocks: list[dict], kind: str) -> list[str]:
    """Every mrkdwn text of the blocks of one type."""
    texts = []
    for block in blocks:
        if block.get("type") != kind:
            continue
        if kind == "section":
            texts.append(block["text"]["text"])
        elif kind == "context":
            texts.extend(e.get("text", "") for e in block["elements"])
    return texts


__all__ = ["BOT_ID", "BOT_TOKEN", "BOT_USER_ID", "SIGNING_SECRET", "TEAM_ID", "FakeClock", "Work", "answers_in",
           "block_texts", "new_trigger_id", "seed_titles", "sign"]
