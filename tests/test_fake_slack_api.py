"""Tests for the fake Slack Web API server, driven through the real `slack_sdk.WebClient`."""

import json
import threading

import pytest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from tests.fakes.slack_api import FakeSlackAPI

BLOCKS = [{"type": "section", "text": {"type": "mrkdwn", "text": "*Answer* [1]"}}]


@pytest.fixture
def srv():
    with FakeSlackAPI() as server:
        yield server


@pytest.fixture
def client(srv):
    return WebClient(token="xoxb-test", base_url=srv.base_url, timeout=5)


def test_base_url_has_trailing_slash(srv):
    assert srv.base_url == f"http://127.0.0.1:{srv.port}/api/"


def test_auth_test(srv, client):
    resp = client.auth_test()
    assert resp["user_id"] == "UBOT"
    assert resp["bot_id"] == "BBOT"
    (call,) = srv.calls_to("auth.test")
    assert call["headers"]["Authorization"] == "Bearer xoxb-test"


def test_post_message_records_decoded_blocks(srv, client):
    first = client.chat_postMessage(channel="C1", text="[1]", blocks=BLOCKS, thread_ts="1.000001")
    second = client.chat_postMessage(channel="C1", text="again")
    assert first["channel"] == "C1"
    assert first["message"]["text"] == "[1]"
    assert first["message"]["ts"] == first["ts"] == "1700000000.000100"
    assert float(second["ts"]) > float(first["ts"])
    call = srv.calls_to("chat.postMessage")[0]
    assert call["args"]["blocks"] == BLOCKS
    assert call["args"]["text"] == "[1]"  # free text is never JSON-decoded
    assert call["args"]["thread_ts"] == "1.000001"
    assert call["headers"]["Authorization"] == "Bearer xoxb-test"


def test_form_encoded_blocks_are_decoded(srv, client):
    # Form-encoded calls carry blocks as a JSON string; the fake decodes them.
    client.api_call("chat.postMessage", data={"channel": "C1", "text": "[2]", "blocks": json.dumps(BLOCKS)})
    call = srv.calls_to("chat.postMessage")[0]
    assert call["headers"]["Content-Type"].startswith("application/x-www-form-urlencoded")
    assert call["args"] == {"channel": "C1", "text": "[2]", "blocks": BLOCKS}


def test_post_ephemeral(srv, client):
    resp = client.chat_postEphemeral(channel="C1", user="U1", text="psst", blocks=BLOCKS)
    assert resp["message_ts"]
    assert srv.calls_to("chat.postEphemeral")[0]["args"]["blocks"] == BLOCKS


def test_chat_update(srv, client):
    posted = client.chat_postMessage(channel="C1", text="draft")
    resp = client.chat_update(channel="C1", ts=posted["ts"], text="final", blocks=BLOCKS)
    assert (resp["channel"], resp["ts"], resp["text"]) == ("C1", posted["ts"], "final")
    assert srv.calls_to("chat.update")[0]["args"]["blocks"] == BLOCKS


def test_conversations_replies_returns_scripted_thread(srv, client):
    thread = [{"type": "message", "user": "U1", "text": "question?", "ts": "1.000001"},
              {"type": "message", "user": "UBOT", "text": "answer", "ts": "1.000002"}]
    srv.threads[("C1", "1.000001")] = thread
    resp = client.conversations_replies(channel="C1", ts="1.000001")
    assert resp["messages"] == thread
    assert resp["has_more"] is False
    assert client.conversations_replies(channel="C1", ts="9.9")["messages"] == []


def test_misc_methods(srv, client):
    assert client.reactions_add(channel="C1", timestamp="1.1", name="eyes")["ok"]
    assert client.reactions_remove(channel="C1", timestamp="1.1", name="eyes")["ok"]
    assert client.assistant_threads_setStatus(channel_id="D1", thread_ts="1.1", status="is thinking...")["ok"]
    assert client.users_info(user="U1")["user"]["id"] == "U1"
    assert client.api_call("team.info")["ok"]
    assert srv.calls_to("reactions.add")[0]["args"]["name"] == "eyes"
    assert srv.calls_to("assistant.threads.setStatus")[0]["args"]["status"] == "is thinking..."


def test_wait_for(srv, client):
    threading.Timer(0.1, lambda: client.chat_postMessage(channel="C1", text="later")).start()
    (call,) = srv.wait_for("chat.postMessage", timeout=5)
    assert call["args"]["text"] == "later"


def test_wait_for_times_out(srv):
    with pytest.raises(AssertionError, match="chat.postMessage"):
        srv.wait_for("chat.postMessage", timeout=0.1)


@pytest.mark.parametrize("status", [200, 429])
def test_fail_raises_slack_api_error(srv, client, status):
    srv.fail("chat.postMessage", error="ratelimited", status=status)
    with pytest.raises(SlackApiError) as exc:
        client.chat_postMessage(channel="C1", text="hi")
    assert exc.value.response["error"] == "ratelimited"
    assert exc.value.response.status_code == status
    assert client.chat_postMessage(channel="C1", text="hi")["ok"]  # only the next call fails


def test_stream_methods_round_trip(srv, client):
    start = client.chat_startStream(channel="D1", thread_ts="1.000001", markdown_text="Hello")
    ts = start["ts"]
    assert client.chat_appendStream(channel="D1", ts=ts, markdown_text=" [1]")["ts"] == ts
    stop = client.chat_stopStream(channel="D1", ts=ts, blocks=BLOCKS)
    assert (stop["channel"], stop["ts"]) == ("D1", ts)
    assert srv.calls_to("chat.appendStream")[0]["args"]["markdown_text"] == " [1]"
    assert srv.calls_to("chat.stopStream")[0]["args"]["blocks"] == BLOCKS
    assert srv.stream_text("D1", ts) == "Hello [1]"


def test_chat_stream_helper(srv, client):
    # chat_stream buffers text and sends it as markdown_text chunks, not markdown_text.
    streamer = client.chat_stream(channel="D1", thread_ts="1.000001", buffer_size=5,
                                  recipient_team_id="TFAKE", recipient_user_id="U1")
    for piece in ["The answer ", "is ", "42 ", "[1]."]:
        streamer.append(markdown_text=piece)
    streamer.stop()
    assert srv.calls_to("chat.startStream")[0]["args"]["chunks"][0]["type"] == "markdown_text"
    assert srv.stream_text("D1", streamer.ts) == "The answer is 42 [1]."


def test_conversations_replies_pages_with_next_cursor(srv, client):
    thread = [{"type": "message", "user": "U1", "text": f"m{i}", "ts": f"1.00000{i}"} for i in range(5)]
    srv.threads[("C1", "1.000000")] = thread
    srv.replies_page_size = 2
    # slack_sdk follows the cursors; each step of the iteration is the same response object, on its next page
    pages = [page["messages"] for page in client.conversations_replies(channel="C1", ts="1.000000", limit=200)]
    assert [len(p) for p in pages] == [2, 2, 1]
    assert [m for p in pages for m in p] == thread
    assert [c["args"].get("cursor") for c in srv.calls_to("conversations.replies")] == [None, "2", "4"]


def test_response_url_posts_are_recorded(srv):
    from slack_sdk.webhook import WebhookClient

    resp = WebhookClient(srv.hook_url("commands/7")).send(text="psst", response_type="ephemeral")
    assert resp.status_code == 200
    (call,) = srv.calls_to("response_url")
    assert call["args"] == {"text": "psst", "response_type": "ephemeral", "_path": "/hooks/commands/7"}
