"""What reaches the bot that should not: unsigned, malformed, unknown or replayed requests, a wrong token."""

from __future__ import annotations

import json
import logging
from urllib.parse import urlencode

import pytest

from bot.errors import IndexMissing, QAError
from bot.slack.limits import LogThrottle
from tests.conftest import make_settings
from tests.slack.conftest import (
    BOT_TOKEN,
    SIGNING_SECRET,
    FailingPipeline,
    FakeClock,
    StreamingPipeline,
    answers_in,
    sign,
)

CEO = "Who is the CEO of ADASpace?"


def test_unsigned_or_malformed_requests_get_401_or_400_and_one_log_line(start_bot, slack_api, caplog, capfd):
    clock = FakeClock()
    bot = start_bot(rejections=LogThrottle(logging.getLogger("bot.slack.http"), clock=clock))
    with caplog.at_level(logging.DEBUG):
        unsigned = [bot.request("POST", "/slack/events", "not json at all", {"Content-Type": "application/json"})
                    for _ in range(50)]
        malformed = [
            bot.post("not json", "application/json"),
            bot.post("payload=%7Bbroken", "application/x-www-form-urlencoded"),
            bot.post("[1, 2]", "application/json"),
        ]
        not_utf8 = bot.post(b"\xff\xfe{}", "application/json")  # Slack signs UTF-8 text: this cannot be checked
        clock.advance(60)
        later = bot.request("POST", "/slack/events", "x", {"Content-Type": "text/plain"})
    assert {s.status for s in unsigned} == {401} and (not_utf8.status, later.status) == (401, 401)
    assert [s.status for s in malformed] == [400] * 3
    assert bot.idle() == 0  # nothing reached a listener
    assert [c["method"] for c in slack_api.calls] == ["auth.test"]
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 3, warnings  # a line per kind, then one a minute that counts the others
    assert warnings[0].startswith("rejected a request to /slack/events with HTTP 401: bad signature")
    assert "HTTP 400" in warnings[1] and "not a Slack payload" in warnings[1]
    assert "HTTP 401" in warnings[2] and "(50 more like this in the last 60 s)" in warnings[2]
    assert "Traceback" not in caplog.text and "Traceback" not in capfd.readouterr().err


def test_slack_url_verification_still_gets_its_challenge_back(start_bot):
    bot = start_bot()
    sent = bot.post(json.dumps({"type": "url_verification", "token": "t", "challenge": "3eZbrw1aBm2r"}),
                    "application/json")
    assert sent.status == 200 and json.loads(sent.body) == {"challenge": "3eZbrw1aBm2r"}


def test_event_types_without_a_listener_are_acknowledged_not_retried(start_bot, slack_api):
    bot = start_bot()
    reaction = bot.event({"type": "reaction_added", "user": "U1", "reaction": "eyes",
                          "item": {"type": "message", "channel": "C1", "ts": bot.new_ts()}})
    # the body of a signed block_actions click on a button the bot does not know
    click = {"type": "block_actions", "user": {"id": "U1"}, "trigger_id": "9.9.9", "team": {"id": "T"},
             "actions": [{"action_id": "somebody_elses_button", "block_id": "b", "type": "button"}]}
    button = bot.post(urlencode({"payload": json.dumps(click)}), "application/x-www-form-urlencoded")
    assert (reaction.status, button.status) == (200, 200)  # a 404 would make Slack deliver them again
    assert bot.idle() == 0
    assert [c["method"] for c in slack_api.calls] == ["auth.test"]


def test_a_replayed_ask_is_answered_once(start_bot, slack_api):
    bot = start_bot()
    body = urlencode(bot.command_form(CEO))
    headers = {"Content-Type": "application/x-www-form-urlencoded", **sign(body)}
    first = bot.request("POST", "/slack/events", body, headers)
    replay = bot.request("POST", "/slack/events", body, headers)  # the same signed request, within 5 minutes
    assert (first.status, replay.status) == (200, 200)
    assert bot.idle() == 1
    question, answer = slack_api.calls_to("chat.postMessage")
    assert question["args"]["text"] == f"<@U3> asked: {CEO}" and answer == answers_in(slack_api)[0]


def test_text_posted_to_slack_has_no_terminal_control_characters(start_bot, slack_api, seed_pipeline):
    final = "\x1b[1mWang Lei\x1b[0m is the CEO\x07 of ADASpace\x1b]0;pwned\x07 [1]."
    bot = start_bot(StreamingPipeline(seed_pipeline, final_text=final))
    bot.mention(CEO)
    failing = start_bot(FailingPipeline(seed_pipeline, IndexMissing("\x1b[31mNo index yet\x1b[0m\x08: run qa index")))
    failing.dm(CEO)
    bot.idle(), failing.idle()
    sent = json.dumps([c["args"] for c in slack_api.calls if c["method"] != "auth.test"])
    assert "\\u001b" not in sent and "\\u0007" not in sent and "\\b" not in sent and "pwned" not in sent
    (answer,) = answers_in(slack_api)
    assert answer["args"]["text"] == "Wang Lei is the CEO of ADASpace [1]."
    assert any(c["args"]["text"] == "No index yet: run qa index" for c in slack_api.calls_to("chat.postMessage"))


# --- start-up -----------------------------------------------------------------------------------------
@pytest.fixture
def run_bot_settings(slack_api, seed_settings, tmp_path, monkeypatch):
    """Settings for run_bot against the fake Slack API; run_bot's changes to logging are undone afterwards."""
    slack_logger = logging.getLogger("bot.slack")
    monkeypatch.setattr(slack_logger, "level", slack_logger.level)
    root_filters = {h: list(h.filters) for h in logging.getLogger().handlers}
    yield make_settings(seed_settings.data_dir, slack_bot_token=BOT_TOKEN, slack_signing_secret=SIGNING_SECRET,
                        slack_api_url=slack_api.base_url, feedback_db_url=f"sqlite:///{tmp_path / 'f.sqlite'}")
    for handler, filters in root_filters.items():
        handler.filters[:] = filters


def test_a_refused_bot_token_is_one_clear_line_before_anything_loads(run_bot_settings, slack_api, monkeypatch):
    from bot.pipeline import Pipeline
    from bot.slack.app import run_bot

    def must_not_load(*args, **kwargs):
        raise AssertionError("the pipeline was loaded before the token was checked")

    monkeypatch.setattr(Pipeline, "from_settings", must_not_load)
    slack_api.fail("auth.test", "invalid_auth")
    with pytest.raises(QAError) as raised:
        run_bot(run_bot_settings, port=0)
    message = raised.value.user_message
    assert message.startswith("Slack refused SLACK_BOT_TOKEN (invalid_auth)") and "xoxb-" in message
    assert "\n" not in message and BOT_TOKEN not in message and "docs/slack.md" in message


def test_bolt_does_not_warn_about_the_token_it_reads_itself(slack_api, seed_pipeline, tmp_path, monkeypatch, caplog):
    from bot.slack.app import build_app

    monkeypatch.setenv("SLACK_BOT_TOKEN", BOT_TOKEN)  # Bolt reads it when no token is passed; ours is in the client
    settings = make_settings(tmp_path, slack_bot_token=BOT_TOKEN, slack_api_url=slack_api.base_url)
    with caplog.at_level(logging.DEBUG):
        build_app(settings, seed_pipeline).qa_executor.shutdown()
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING], caplog.text
