"""Slack feedback -> a question set (eval/feedback.py), and `qa feedback export --only` that writes it."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from bot.cli import app
from bot.slack.feedback import FeedbackStore
from bot.types import Answer, Citation
from eval.feedback import feedback_questions
from eval.questions import load_questions

CITED = (Citation(1, "002_x.txt", "Srinagar Magazine", "2023-04-14", "Wang Lei, CEO of ADASpace, said.", "002_x.txt#3"),)


def answer(question: str, text: str = "Wang Lei [1].", abstained: bool = False) -> Answer:
    return Answer(question, text, () if abstained else CITED, abstained=abstained, latency_ms=12.5)


@pytest.fixture
def url(tmp_path):
    """A feedback database with one 👍 answer, one 👎, one 👍 abstention, one unvoted and one asked again."""
    url = f"sqlite:///{tmp_path / 'fb.sqlite'}"
    store = FeedbackStore(url)
    up = store.record_answer(answer("Who is the CEO of ADASpace?"))
    down = store.record_answer(answer("Where is ADASpace based?", "In Chengdu [1]."))
    no = store.record_answer(answer("Weather tomorrow?", "I couldn't find that in the articles.", abstained=True))
    store.record_answer(answer("Never voted?"))
    again = store.record_answer(answer("who is the CEO of ADASpace", "Wang Lei, CEO [1]."))
    tie = store.record_answer(answer("Who spoke first?", "Chen Bin [1]."))
    for aid, verdict, user in ((up, "up", "U1"), (down, "down", "U1"), (no, "up", "U1"), (again, "up", "U2"),
                               (tie, "up", "U1"), (tie, "down", "U2")):
        store.record_vote(aid, verdict, user=user)
    store.close()
    return url


def test_votes_become_references_and_review_items(url):
    store = FeedbackStore(url)
    qs = feedback_questions(store)
    assert [q.question for q in qs] == ["Where is ADASpace based?", "Weather tomorrow?", "who is the CEO of ADASpace",
                                        "Who spoke first?"]
    down, unanswerable, good, tie = qs
    assert good.answers == ("Wang Lei, CEO.",) and good.gold_docs == ("002_x.txt",) and good.answerable
    assert good.extra["verdict"] == "up" and good.extra["needs_review"] is False
    assert not unanswerable.answerable and unanswerable.answers == ()
    assert down.answers == () and down.gold_docs == () and down.extra["needs_review"] is True
    assert down.extra["bot_answer"] == "In Chengdu [1]." and down.extra["bot_cited_docs"] == ["002_x.txt"]
    assert tie.extra["verdict"] == "down" and tie.extra["votes"] == {"up": 1, "down": 1}  # a tie needs a person
    with pytest.raises(ValueError):
        feedback_questions(store, only="sideways")


@pytest.mark.parametrize("only, questions", [
    ("up", ["Weather tomorrow?", "who is the CEO of ADASpace"]),
    ("down", ["Where is ADASpace based?", "Who spoke first?"]),
])
def test_cli_export_only_writes_those_votes_as_a_loadable_set(url, tmp_path, only, questions):
    out = tmp_path / f"{only}.jsonl"
    env = {"QA_FEEDBACK_DB_URL": url, "QA_DATA_DIR": str(tmp_path / "data")}
    done = CliRunner().invoke(app, ["feedback", "export", str(out), "--only", only], env=env)
    assert done.exit_code == 0, done.output
    assert f"wrote {len(questions)} question(s)" in done.output
    assert [json.loads(line)["question"] for line in out.read_text().splitlines()] == questions
    loaded, problems = load_questions(out)
    assert [q.question for q in loaded] == questions and problems == []


def test_cli_export_only_refuses_an_unknown_choice(url, tmp_path):
    done = CliRunner().invoke(app, ["feedback", "export", str(tmp_path / "x.jsonl"), "--only", "sideways"],
                              env={"QA_FEEDBACK_DB_URL": url})
    assert done.exit_code == 2 and "sideways" in done.output
    assert not (tmp_path / "x.jsonl").exists()
