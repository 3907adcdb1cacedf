"""Tests for the fake OpenAI server, driven through the real `openai` client."""

import json
import threading
import time

import httpx
import openai
import pytest

from tests.fakes.openai_server import FakeOpenAI, InvalidJSON, Reply, Slow, Status, StreamThenDrop

MESSAGES = [{"role": "user", "content": "What is the answer?"}]


@pytest.fixture
def srv():
    with FakeOpenAI() as server:
        yield server


def make_client(srv: FakeOpenAI, timeout: float = 5.0) -> openai.OpenAI:
    return openai.OpenAI(base_url=srv.base_url, api_key="test", max_retries=0, timeout=timeout)


def ask(client: openai.OpenAI, **kwargs):
    return client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, **kwargs)


def test_base_url_points_at_localhost_v1(srv):
    assert srv.base_url == f"http://127.0.0.1:{srv.port}/v1"


def test_default_completion(srv):
    resp = ask(make_client(srv))
    assert resp.object == "chat.completion"
    assert resp.model == "gpt-4o-mini"
    assert resp.choices[0].message.role == "assistant"
    assert resp.choices[0].message.content == "Default answer [1]."
    assert resp.choices[0].finish_reason == "stop"
    assert resp.usage.completion_tokens == 3


def test_scripted_reply_then_custom_responder(srv):
    srv.script(Reply("scripted"))
    srv.responder = lambda req: "echo: " + req["messages"][-1]["content"]
    client = make_client(srv)
    assert ask(client).choices[0].message.content == "scripted"
    assert ask(client).choices[0].message.content == "echo: What is the answer?"
    assert srv.pending_steps == 0


def test_streamed_completion_reassembles(srv):
    text = "The quick brown fox jumps over the lazy dog [2]."
    srv.script(Reply(text))
    chunks = list(ask(make_client(srv), stream=True, stream_options={"include_usage": True}))
    deltas = [c.choices[0].delta.content for c in chunks if c.choices and c.choices[0].delta.content]
    assert len(deltas) > 3  # several small deltas, not one blob
    assert "".join(deltas) == text
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices]
    assert finishes[-1] == "stop"
    assert chunks[-1].usage.completion_tokens == len(text.split())
    assert all(c.object == "chat.completion.chunk" for c in chunks)


def test_rate_limit_raises_rate_limit_error(srv):
    srv.script(Status(429))
    with pytest.raises(openai.RateLimitError) as exc:
        ask(make_client(srv))
    assert exc.value.status_code == 429
    assert exc.value.code == "rate_limit_exceeded"


def test_custom_status_body_and_headers(srv):
    body = {"error": {"message": "bad key", "type": "invalid_request_error", "code": "invalid_api_key"}}
    srv.script(Status(401, body=body, headers={"x-custom": "yes"}))
    with pytest.raises(openai.AuthenticationError) as exc:
        ask(make_client(srv))
    assert exc.value.code == "invalid_api_key"
    assert "bad key" in exc.value.message
    assert exc.value.response.headers["x-custom"] == "yes"


def test_server_error_raises_internal_server_error(srv):
    srv.script(Status(500))
    with pytest.raises(openai.InternalServerError):
        ask(make_client(srv))


def test_slow_past_timeout_raises_timeout(srv):
    srv.script(Slow(30))
    started = time.monotonic()
    with pytest.raises(openai.APITimeoutError):
        ask(make_client(srv, timeout=0.3))
    assert time.monotonic() - started < 5


def test_slow_does_not_block_other_requests(srv):
    srv.script(Slow(0.5, "slow one"))
    client = make_client(srv)
    results = {}
    slow = threading.Thread(target=lambda: results.update(slow=ask(client)))
    slow.start()
    while not srv.requests:  # make sure the Slow step was taken by the first request
        time.sleep(0.01)
    started = time.monotonic()
    assert ask(client).choices[0].message.content == "Default answer [1]."
    assert time.monotonic() - started < 0.4
    slow.join(5)
    assert results["slow"].choices[0].message.content == "slow one"


def test_close_interrupts_slow_step():
    srv = FakeOpenAI().start()
    srv.script(Slow(60))
    client = make_client(srv, timeout=0.2)
    with pytest.raises(openai.APITimeoutError):
        ask(client)
    started = time.monotonic()
    srv.close()
    assert time.monotonic() - started < 2


def test_invalid_json_raises_decode_error(srv):
    # openai 2.x does not wrap this: the raw json.JSONDecodeError (a ValueError) escapes.
    srv.script(InvalidJSON())
    with pytest.raises(json.JSONDecodeError):
        ask(make_client(srv))


def test_stream_then_drop_raises_after_partial_deltas(srv):
    srv.script(StreamThenDrop("one two three four five six"))
    deltas = []
    # The truncated chunked body surfaces mid-iteration as httpx's error (openai 2) or wrapped as a
    # connection error (newer clients).
    with pytest.raises((httpx.RemoteProtocolError, openai.APIConnectionError)):
        for chunk in ask(make_client(srv), stream=True):
            deltas.append(chunk.choices[0].delta.content or "")
    assert "".join(deltas) == "one two three "


def test_requests_are_recorded(srv):
    client = make_client(srv)
    ask(client, temperature=0.1)
    ask(client, stream=True).close()
    assert len(srv.requests) == 2
    assert srv.requests[0]["messages"] == MESSAGES
    assert srv.requests[0]["temperature"] == 0.1
    assert srv.requests[1]["stream"] is True


def test_models_list(srv):
    ids = [m.id for m in make_client(srv).models.list()]
    assert "gpt-4o-mini" in ids
