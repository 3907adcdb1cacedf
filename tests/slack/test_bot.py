"""The Slack bot end to end: signed Events API requests over HTTP to the real Bolt app, Slack Web API faked."""

from __future__ import annotations

import json
import logging
import time
from concurrent.futures import ThreadPoolExecutor

from bot.errors import IndexMissing
from bot.slack import format as fmt
from bot.slack.bot import GENERIC_ERROR
from tests.slack.conftest import (
    BOT_ID,
    BOT_TOKEN,
    BOT_USER_ID,
    SIGNING_SECRET,
    FailingPipeline,
    FakeClock,
    SpyPipeline,
    StreamingPipeline,
    answers_in,
    block_texts,
    seed_titles,
)

CEO = "Who is the CEO of ADASpace?"
PRESIDENT = "Who is the president of Continental Hope Group?"


def assert_cited_answer(call: dict, channel: str, thread_ts: str) -> None:
    """One answer message: in the thread, [n] markers, a Sources block naming a seed article, 👍/👎 buttons."""
    args = call["args"]
    assert args["channel"] == channel
    assert args["thread_ts"] == thread_ts
    blocks = args["blocks"]
    answer = " ".join(block_texts(blocks, "section"))
    assert "[1]" in answer and "[1]" in args["text"]
    sources = block_texts(blocks, "context")
    assert sources[0] == "*Sources*"
    assert sources[1].startswith("*[1]* ")
    assert any(title in s for s in sources for title in seed_titles())
    actions = [b for b in blocks if b["type"] == "actions"]
    assert [e["action_id"] for e in actions[0]["elements"]] == ["qa_feedback_up", "qa_feedback_down"]
    assert all(len(t) <= 3000 for t in answer.split("\n"))


# --- answering ------------------------------------------------------------------------------------
def test_mention_gets_exactly_one_threaded_answer_with_sources(start_bot, slack_api):
    bot = start_bot()
    ts, sent = bot.mention(CEO)
    assert sent.status == 200 and sent.seconds < 3
    assert bot.idle() == 1
    (call,) = slack_api.calls_to("chat.postMessage")
    assert_cited_answer(call, "C1", ts)
    # working indicator: a reaction on the question, added before the answer and removed after it
    methods = [c["method"] for c in slack_api.calls]
    assert methods.index("reactions.add") < methods.index("chat.postMessage") < methods.index("reactions.remove")
    reaction = slack_api.calls_to("reactions.add")[0]["args"]
    assert (reaction["channel"], reaction["timestamp"], reaction["name"]) == ("C1", ts, "eyes")
    # the Slack token is sent as a header to the configured API URL, never in a payload
    assert call["headers"]["Authorization"] == f"Bearer {BOT_TOKEN}"


def test_direct_message_is_answered_in_its_thread(start_bot, slack_api):
    bot = start_bot()
    ts, sent = bot.dm(PRESIDENT)
    assert sent.status == 200
    (call,) = slack_api.wait_for("chat.postMessage")
    assert_cited_answer(call, "D1", ts)
    assert "Continental Hope Group" in call["args"]["text"]


def test_ask_slash_command_posts_the_question_and_answers_in_its_thread(start_bot, slack_api):
    bot = start_bot()
    sent = bot.command(CEO, user="U3")
    assert sent.status == 200 and sent.seconds < 3
    question, answer = slack_api.wait_for("chat.postMessage", 2)
    assert question["args"]["channel"] == "C1" and "thread_ts" not in question["args"]
    assert question["args"]["text"] == f"<@U3> asked: {CEO}"
    assert_cited_answer(answer, "C1", question["response"]["ts"])


def test_ask_where_the_bot_cannot_post_is_answered_privately(start_bot, slack_api):
    bot = start_bot()
    slack_api.fail("chat.postMessage", "not_in_channel")
    assert bot.command(CEO, user="U3", channel="C5").status == 200
    bot.idle()
    (reply,) = slack_api.calls_to("response_url")  # the command's response_url, not a channel message
    args = reply["args"]
    assert args["response_type"] == "ephemeral" and args["replace_original"] is False
    assert "[1]" in args["text"] and "Wang Lei" in args["text"]
    assert block_texts(args["blocks"], "context")[0] == "*Sources*"
    up = next(b for b in args["blocks"] if b["type"] == "actions")["elements"][0]
    stored = bot.store.answer(int(up["value"]))  # the buttons point at the stored answer
    assert stored["question"] == CEO and stored["channel"] == "C5" and stored["thread_ts"] is None
    assert not answers_in(slack_api)


def test_follow_up_in_thread_uses_the_earlier_turn(start_bot, slack_api, seed_pipeline):
    spy = SpyPipeline(seed_pipeline)
    bot = start_bot(spy)
    first_ts, _ = bot.mention(PRESIDENT, user="U1")
    (first,) = slack_api.wait_for("chat.postMessage")
    # Slack's copy of the thread so far: the question and the bot's answer (as chat.postMessage stored it)
    slack_api.threads[("C1", first_ts)] = [
        {"type": "message", "user": "U1", "text": f"<@{BOT_USER_ID}> {PRESIDENT}", "ts": first_ts},
        first["response"]["message"],
    ]
    follow_ts, sent = bot.mention("Which meeting was he invited to?", user="U1", thread_ts=first_ts)
    assert sent.status == 200
    second = slack_api.wait_for("chat.postMessage", 2)[1]
    (replies,) = slack_api.calls_to("conversations.replies")
    assert (replies["args"]["channel"], replies["args"]["ts"]) == ("C1", first_ts)
    question, conversation = spy.calls[1]
    assert question == "Which meeting was he invited to?"
    assert [t.question for t in conversation.turns] == [PRESIDENT]
    assert "[1]" in conversation.turns[0].answer.text
    assert second["args"]["thread_ts"] == first_ts
    assert "Continental Hope Group" in second["args"]["text"]  # the follow-up was resolved with the first turn
    stored = bot.store.answer(second["args"]["metadata"]["event_payload"]["answer_id"])
    assert "Continental Hope Group" in stored["standalone_question"]


def test_dm_thread_follow_up_needs_no_mention(start_bot, slack_api, seed_pipeline):
    spy = SpyPipeline(seed_pipeline)
    bot = start_bot(spy)
    first_ts, _ = bot.dm(PRESIDENT)
    (first,) = slack_api.wait_for("chat.postMessage")
    slack_api.threads[("D1", first_ts)] = [
        {"type": "message", "user": "U2", "text": PRESIDENT, "ts": first_ts},
        first["response"]["message"],
    ]
    bot.dm("Which meeting was he invited to?", thread_ts=first_ts)
    second = slack_api.wait_for("chat.postMessage", 2)[1]
    assert second["args"]["thread_ts"] == first_ts
    assert [t.question for t in spy.calls[1][1].turns] == [PRESIDENT]


def _thread_of(turns: list[tuple[str, str]], first_ts: float = 1690000000.0) -> list[dict]:
    """A thread as conversations.replies returns it: each question (a mention) followed by this bot's answer."""
    messages = []
    for i, (question, answer) in enumerate(turns):
        messages.append({"type": "message", "user": "U1", "text": f"<@{BOT_USER_ID}> {question}",
                         "ts": f"{first_ts + 2 * i:.6f}"})
        messages.append({"type": "message", "user": BOT_USER_ID, "bot_id": BOT_ID, "text": answer,
                         "ts": f"{first_ts + 2 * i + 1:.6f}",
                         "metadata": {"event_type": "qa_answer", "event_payload": {"question": question}}})
    return messages


def test_a_long_thread_is_read_page_by_page(start_bot, slack_api, seed_pipeline):
    spy = SpyPipeline(seed_pipeline)
    bot = start_bot(spy)
    turns = [(PRESIDENT, "Dr Chen Bin [1]."), (CEO, "Wang Lei [1]."), ("And his title?", "CEO [1].")]
    thread = _thread_of(turns)
    slack_api.threads[("C1", thread[0]["ts"])] = thread
    slack_api.replies_page_size = 2  # Slack may return fewer messages than asked, with a next_cursor
    bot.mention("Which meeting was he invited to?", thread_ts=thread[0]["ts"])
    bot.idle()
    cursors = [c["args"].get("cursor") for c in slack_api.calls_to("conversations.replies")]
    assert cursors == [None, "2", "4"]
    (_, conversation), = spy.calls
    assert [(t.question, t.answer.text) for t in conversation.turns] == turns
    (answer,) = answers_in(slack_api)
    assert answer["args"]["thread_ts"] == thread[0]["ts"]


def test_an_unreadable_thread_is_answered_without_its_context(start_bot, slack_api, seed_pipeline, caplog):
    spy = SpyPipeline(seed_pipeline)
    bot = start_bot(spy)
    thread = _thread_of([(PRESIDENT, "Dr Chen Bin [1].")])
    slack_api.threads[("C1", thread[0]["ts"])] = thread
    slack_api.fail("conversations.replies", "missing_scope")  # e.g. channels:history was not granted
    with caplog.at_level(logging.WARNING, logger="bot.slack"):
        bot.mention(CEO, thread_ts=thread[0]["ts"])
        bot.idle()
    assert spy.calls == [(CEO, None)]
    (answer,) = answers_in(slack_api)
    assert answer["args"]["thread_ts"] == thread[0]["ts"] and "Wang Lei" in answer["args"]["text"]
    assert "cannot read thread" in caplog.text and "missing_scope" in caplog.text


def test_abstention_says_so_and_lists_the_closest_sources(start_bot, slack_api):
    bot = start_bot()
    ts, _ = bot.mention("What will the weather be like in Chengdu tomorrow?")
    (call,) = slack_api.wait_for("chat.postMessage")
    blocks = call["args"]["blocks"]
    assert "couldn't find" in block_texts(blocks, "section")[0]
    context = block_texts(blocks, "context")
    assert context[0].startswith("*Closest sources*")
    assert len(context) >= 2


# --- streaming --------------------------------------------------------------------------------------
def test_streamed_answer_uses_slack_streaming_methods(start_bot, slack_api, seed_pipeline):
    bot = start_bot(StreamingPipeline(seed_pipeline), stream_buffer=40)
    ts, sent = bot.mention(CEO)
    assert sent.status == 200
    bot.idle()
    (stop,) = slack_api.calls_to("chat.stopStream")
    (start,) = slack_api.calls_to("chat.startStream")
    assert start["args"]["thread_ts"] == ts
    assert start["args"]["recipient_user_id"] == "U1" and start["args"]["recipient_team_id"]
    assert slack_api.calls_to("chat.appendStream"), "the answer arrives in several pieces"
    stream_ts = start["response"]["ts"]
    expected = seed_pipeline.ask(CEO).text
    assert slack_api.stream_text("C1", stream_ts) == expected
    assert "[1]" in expected
    tail = stop["args"]["blocks"]
    assert block_texts(tail, "context")[0] == "*Sources*"
    assert any(b["type"] == "actions" for b in tail)
    assert stop["args"]["metadata"]["event_type"] == "qa_answer"
    assert not slack_api.calls_to("chat.postMessage") and not slack_api.calls_to("chat.update")


def test_streamed_text_that_changed_at_the_end_is_replaced(start_bot, slack_api, seed_pipeline):
    final = "Wang Lei is the CEO of ADASpace [1]."
    bot = start_bot(StreamingPipeline(seed_pipeline, final_text=final), stream_buffer=20)
    bot.mention(CEO)
    slack_api.wait_for("chat.stopStream")
    (update,) = slack_api.wait_for("chat.update")
    span = seed_pipeline.ask(CEO).span  # the offline answer's span, bold wherever the text holds it
    assert block_texts(update["args"]["blocks"], "section") == [final.replace(span, f"*{span}*", 1)]


def test_falls_back_to_chat_update_once_a_second_without_streaming(start_bot, slack_api, seed_pipeline):
    clock = FakeClock()  # the words arrive 0.3 s apart on this clock; nothing really waits
    times: list[tuple[str, float]] = []
    record = slack_api.handle_call

    def timed(method, args, headers):
        times.append((method, clock()))
        return record(method, args, headers)

    slack_api.handle_call = timed
    slack_api.fail("chat.startStream", "unknown_method")
    bot = start_bot(StreamingPipeline(seed_pipeline, delay=0.3, clock=clock), stream_buffer=20, clock=clock,
                    sleep=clock.sleep)
    ts, _ = bot.mention(CEO)
    bot.idle()
    *partial, final = slack_api.calls_to("chat.update")
    assert partial, "the answer was shown while it was being written"
    assert all("qa_feedback" not in json.dumps(c["args"]) for c in partial)
    (placeholder,) = slack_api.calls_to("chat.postMessage")
    assert placeholder["args"]["thread_ts"] == ts
    writes = [t for m, t in times if m in ("chat.postMessage", "chat.update")]
    assert all(b - a >= 1.0 for a, b in zip(writes, writes[1:])), writes
    assert bot.bot.streaming is False  # unknown_method: streaming is off for good
    assert final["args"]["ts"] == placeholder["response"]["ts"]
    assert block_texts(final["args"]["blocks"], "context")[0] == "*Sources*"
    # a feedback click on a message made of our blocks is acknowledged in the message itself
    message = {**placeholder["response"]["message"], "blocks": final["args"]["blocks"]}
    bot.click(message, "C1", "qa_feedback_down")
    bot.idle()
    ack = slack_api.calls_to("chat.update")[-1]
    assert any("feedback recorded: 👎" in t for t in block_texts(ack["args"]["blocks"], "context"))
    assert block_texts(ack["args"]["blocks"], "section") == block_texts(final["args"]["blocks"], "section")


def test_slack_error_in_the_middle_of_a_stream_finishes_the_answer_with_chat_update(
        start_bot, slack_api, seed_pipeline, caplog):
    clock = FakeClock()
    slack_api.fail("chat.appendStream", "message_not_in_streaming_state")  # e.g. the stream expired
    bot = start_bot(StreamingPipeline(seed_pipeline, delay=0.3, clock=clock), stream_buffer=20, clock=clock,
                    sleep=clock.sleep)
    with caplog.at_level(logging.WARNING, logger="bot.slack"):
        ts, _ = bot.mention(CEO)
        bot.idle()
    (start,) = slack_api.calls_to("chat.startStream")
    stream_ts = start["response"]["ts"]
    assert not slack_api.calls_to("chat.stopStream") and not slack_api.calls_to("chat.postMessage")
    *partial, final = slack_api.calls_to("chat.update")
    assert partial and all(c["args"]["ts"] == stream_ts for c in partial + [final])
    assert final["args"]["metadata"]["event_type"] == "qa_answer"
    assert block_texts(final["args"]["blocks"], "section") == [fmt.answer_mrkdwn(seed_pipeline.ask(CEO))]
    assert block_texts(final["args"]["blocks"], "context")[0] == "*Sources*"
    assert GENERIC_ERROR not in json.dumps([c["args"] for c in slack_api.calls])
    assert "message_not_in_streaming_state" in caplog.text and "Traceback" not in caplog.text
    assert bot.bot.streaming is True  # one broken stream does not turn streaming off for the next answers


# --- deduplication -------------------------------------------------------------------------------
def test_retried_and_duplicated_events_get_no_second_answer(start_bot, slack_api):
    bot = start_bot()
    event_ts = bot.new_ts()
    first = bot.mention(CEO, ts=event_ts, event_id="EvONCE")[1]
    retry = bot.mention(CEO, ts=event_ts, event_id="EvONCE",
                        headers={"X-Slack-Retry-Num": "1", "X-Slack-Retry-Reason": "http_timeout"})[1]
    duplicate = bot.mention(CEO, ts=event_ts, event_id="EvONCE")[1]
    assert (first.status, retry.status, duplicate.status) == (200, 200, 200)
    assert retry.headers.get("x-slack-no-retry") == "1"
    assert bot.idle() == 1  # the repeats were dropped before any listener
    assert len(slack_api.calls_to("chat.postMessage")) == 1


def test_retry_whose_original_never_arrived_is_answered_once(start_bot, slack_api):
    bot = start_bot()
    ts = bot.new_ts()
    for n in ("1", "2"):
        assert bot.mention(CEO, ts=ts, event_id="EvLOST", headers={"X-Slack-Retry-Num": n})[1].status == 200
    assert bot.idle() == 1
    assert len(slack_api.calls_to("chat.postMessage")) == 1


def test_a_mention_is_not_also_answered_as_a_message(start_bot, slack_api):
    bot = start_bot()
    ts = bot.new_ts()
    bot.mention(CEO, ts=ts)
    # the same message delivered as a channel message event (if message.channels were subscribed)
    bot.event({"type": "message", "channel_type": "channel", "channel": "C1", "user": "U1",
               "text": f"<@{BOT_USER_ID}> {CEO}", "ts": ts, "event_ts": ts})
    # and a DM that also mentions the bot, delivered as message.im and as app_mention
    dm_ts, _ = bot.dm(f"<@{BOT_USER_ID}> {PRESIDENT}", channel="D7")
    bot.mention(PRESIDENT, channel="D7", ts=dm_ts, user="U2")
    bot.idle()
    assert sorted(c["args"]["channel"] for c in slack_api.calls_to("chat.postMessage")) == ["C1", "D7"]


# --- security ---------------------------------------------------------------------------------------
def test_bad_signature_and_stale_timestamp_are_rejected(start_bot, slack_api, caplog):
    bot = start_bot()
    with caplog.at_level(logging.WARNING, logger="bot.slack"):
        _, forged = bot.mention(CEO, secret="not-the-signing-secret")
        _, stale = bot.mention(CEO, timestamp=int(time.time()) - 10 * 60)
        unsigned = bot.request("POST", "/slack/events", json.dumps({"type": "event_callback"}),
                               {"Content-Type": "application/json"})
    assert (forged.status, stale.status, unsigned.status) == (401, 401, 401)
    # the rejection is synchronous: no listener task was started, and the log says why
    assert bot.idle() == 0
    assert [c["method"] for c in slack_api.calls] == ["auth.test"]  # only Bolt's token check at start-up
    (line,) = [r.getMessage() for r in caplog.records if "401" in r.getMessage()]  # one line a minute at most
    assert "bad signature" in line and "SLACK_SIGNING_SECRET" in line


def test_bots_including_itself_are_ignored(start_bot, slack_api):
    bot = start_bot()
    bot.event({"type": "message", "channel_type": "im", "channel": "D1", "user": BOT_USER_ID, "bot_id": BOT_ID,
               "text": "an answer of mine", "ts": bot.new_ts()})
    bot.event({"type": "message", "subtype": "bot_message", "channel_type": "im", "channel": "D1",
               "bot_id": "BOTHER", "text": CEO, "ts": bot.new_ts()})
    bot.event({"type": "app_mention", "channel": "C1", "user": "U5", "bot_id": "BOTHER",
               "text": f"<@{BOT_USER_ID}> {CEO}", "ts": bot.new_ts()})
    # Bolt drops the bot's own message before any listener; the other two reach theirs, which finish silently
    assert bot.idle() == 2
    assert not slack_api.calls_to("chat.postMessage")


def test_channel_allowlist(start_bot, slack_api):
    bot = start_bot(slack_allowed_channels="C1, C2")
    bot.mention(CEO, channel="C9", user="U4")
    (ephemeral,) = slack_api.wait_for("chat.postEphemeral")
    assert ephemeral["args"]["user"] == "U4" and "<#C1>" in ephemeral["args"]["text"]
    bot.mention(CEO, channel="C2")
    (call,) = slack_api.wait_for("chat.postMessage")
    assert call["args"]["channel"] == "C2"


def test_rate_limit_answers_a_burst_with_one_slow_down_per_window(start_bot, slack_api):
    clock = FakeClock()
    bot = start_bot(slack_rate_limit=2, clock=clock)
    threads = [bot.mention(CEO, user="U7")[0] for _ in range(6)]
    bot.idle()
    posts = slack_api.calls_to("chat.postMessage")
    slow = [c for c in posts if "slow down" in c["args"]["text"]]
    assert len(slow) == 1 and slow[0]["args"]["thread_ts"] in threads  # one, however long the burst
    assert "Ask again in 60 s" in slow[0]["args"]["text"]
    assert len(answers_in(slack_api)) == 2 and len(posts) == 3
    bot.mention(CEO, user="U8")  # other people are not affected
    bot.idle()
    assert len(answers_in(slack_api)) == 3
    clock.advance(60)  # a new window: answered again, and a new burst is told once more
    for _ in range(4):
        bot.mention(CEO, user="U7")
    bot.idle()
    assert len(answers_in(slack_api)) == 5
    assert len([c for c in slack_api.calls_to("chat.postMessage") if "slow down" in c["args"]["text"]]) == 2


def test_failing_pipeline_gives_a_friendly_message_and_logs_a_clean_traceback(
        start_bot, slack_api, seed_pipeline, caplog):
    boom = RuntimeError(f"boom with {BOT_TOKEN} and {SIGNING_SECRET} inside")
    bot = start_bot(FailingPipeline(seed_pipeline, boom))
    with caplog.at_level(logging.ERROR, logger="bot.slack"):
        ts, sent = bot.mention(CEO)
        bot.idle()
    (call,) = slack_api.calls_to("chat.postMessage")
    assert sent.status == 200
    assert call["args"]["thread_ts"] == ts and call["args"]["text"] == GENERIC_ERROR
    everything_sent = json.dumps([c["args"] for c in slack_api.calls])
    assert "Traceback" not in everything_sent and "boom" not in everything_sent
    assert "Traceback" in caplog.text and "RuntimeError" in caplog.text and "[redacted]" in caplog.text
    assert BOT_TOKEN not in caplog.text and SIGNING_SECRET not in caplog.text


def test_domain_error_shows_its_user_message(start_bot, slack_api, seed_pipeline):
    bot = start_bot(FailingPipeline(seed_pipeline, IndexMissing("There is no index yet: run `qa index`.")))
    bot.dm(CEO)
    (call,) = slack_api.wait_for("chat.postMessage")
    assert call["args"]["text"] == "There is no index yet: run `qa index`."


# --- feedback ---------------------------------------------------------------------------------------
def test_feedback_click_is_stored_acknowledged_and_exported(start_bot, slack_api, tmp_path):
    from typer.testing import CliRunner

    from bot.cli import app as cli

    bot = start_bot()
    ts, _ = bot.mention(CEO, user="U1")
    (answer,) = slack_api.wait_for("chat.postMessage")
    message = answer["response"]["message"]
    sent = bot.click(message, "C1", "qa_feedback_up", user="U9")
    assert sent.status == 200 and sent.seconds < 3
    (ack,) = slack_api.wait_for("chat.update")
    assert ack["args"]["ts"] == message["ts"]
    assert any("Thanks <@U9>, feedback recorded: 👍" in t for t in block_texts(ack["args"]["blocks"], "context"))

    (vote,) = bot.store.votes()
    assert vote["verdict"] == "up" and vote["user"] == "U9" and vote["asked_by"] == "U1"
    assert vote["question"] == CEO and "[1]" in vote["answer"]
    assert vote["channel"] == "C1" and vote["thread_ts"] == ts and vote["latency_ms"] > 0
    assert vote["citations"][0]["doc_id"].endswith(".txt")

    out = tmp_path / "from-slack.jsonl"
    result = CliRunner().invoke(cli, ["feedback", "export", str(out)],
                                env={"QA_FEEDBACK_DB_URL": bot.settings.feedback_url})
    assert result.exit_code == 0, result.output
    assert "wrote 1 question" in result.output
    (line,) = [json.loads(x) for x in out.read_text().splitlines()]
    assert line["question"] == CEO and line["verdict"] == "up" and line["answerable"] is True
    assert line["gold_docs"] == [vote["citations"][0]["doc_id"]]
    assert line["answers"] and "[1]" not in line["answers"][0] and "Wang Lei" in line["answers"][0]


def test_feedback_on_a_streamed_answer_is_acknowledged_privately(start_bot, slack_api, seed_pipeline):
    bot = start_bot(StreamingPipeline(seed_pipeline), stream_buffer=20)
    ts, _ = bot.mention(CEO)
    (stop,) = slack_api.wait_for("chat.stopStream")
    # Slack's version of a streamed message holds the streamed text in a block we did not build
    message = {"type": "message", "ts": stop["args"]["ts"], "thread_ts": ts, "user": BOT_USER_ID, "bot_id": BOT_ID,
               "blocks": [{"type": "rich_text", "block_id": "x1Y2", "elements": []}, *stop["args"]["blocks"]]}
    bot.click(message, "C1", "qa_feedback_down", user="U9")
    (ephemeral,) = slack_api.wait_for("chat.postEphemeral")
    assert ephemeral["args"]["user"] == "U9" and ephemeral["args"]["thread_ts"] == ts
    assert "👎" in ephemeral["args"]["text"]
    assert not slack_api.calls_to("chat.update")
    assert [v["verdict"] for v in bot.store.votes()] == ["down"]


# --- load -----------------------------------------------------------------------------------------------
def test_twenty_simultaneous_mentions_are_acked_in_time_and_answered_once(start_bot, slack_api):
    bot = start_bot()
    questions = [CEO, PRESIDENT] * 10
    stamps = [bot.new_ts() for _ in questions]

    def send(i: int):
        return bot.mention(questions[i], user=f"UL{i:02d}", ts=stamps[i])[1]

    with ThreadPoolExecutor(max_workers=20) as pool:
        results = list(pool.map(send, range(20)))
    assert [r.status for r in results] == [200] * 20
    assert max(r.seconds for r in results) < 3, [round(r.seconds, 2) for r in results]
    bot.idle(timeout=30)
    posts = slack_api.calls_to("chat.postMessage")
    assert len(posts) == 20
    assert sorted(c["args"]["thread_ts"] for c in posts) == sorted(stamps)
    assert all("[1]" in c["args"]["text"] for c in posts)


def test_health_endpoint(start_bot):
    bot = start_bot()
    sent = bot.request("GET", "/health")
    assert sent.status == 200
    body = json.loads(sent.body)
    assert body["ok"] is True and body["mode"] == "reader" and "documents" in body["index"]
    assert bot.request("GET", "/nope").status == 404


def test_slack_api_url_setting_points_the_web_client(slack_api, seed_pipeline, tmp_path, monkeypatch):
    from bot.config import Settings
    from bot.slack.app import build_app

    monkeypatch.setenv("SLACK_API_URL", slack_api.base_url.rstrip("/"))
    monkeypatch.setenv("SLACK_BOT_TOKEN", BOT_TOKEN)
    settings = Settings(_env_file=None, data_dir=tmp_path)
    app = build_app(settings, seed_pipeline)
    assert app.client.base_url == slack_api.base_url
    assert [c["method"] for c in slack_api.calls] == ["auth.test"]
