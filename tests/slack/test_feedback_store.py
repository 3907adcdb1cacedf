"""The feedback store (SQLAlchemy) and its question-set export."""

from __future__ import annotations

import json

import pytest

from bot.slack.feedback import FeedbackStore, UnknownAnswer
from bot.types import Answer, Citation

CITED = (Citation(1, "002_x.txt", "Srinagar Magazine", "2023-04-14", "Wang Lei, CEO of ADASpace, said.", "002_x.txt#3"),)


@pytest.fixture
def store(tmp_path):
    s = FeedbackStore(f"sqlite:///{tmp_path / 'sub' / 'fb.sqlite'}")
    yield s
    s.close()


def answer(question: str, text: str = "Wang Lei [1].", abstained: bool = False) -> Answer:
    return Answer(question, text, () if abstained else CITED, abstained=abstained, latency_ms=12.5)


def read(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_votes_are_stored_with_their_answer_and_replaced_per_user(store):
    aid = store.record_answer(answer("Who is the CEO?"), user="U1", channel="C1", thread_ts="1.1")
    store.record_vote(aid, "up", user="U2")
    vote = store.record_vote(aid, "down", user="U2")  # changed their mind
    assert vote["verdict"] == "down"
    store.record_vote(aid, "up", user="U3")
    votes = store.votes(aid)
    assert [(v["user"], v["verdict"]) for v in votes] == [("U2", "down"), ("U3", "up")]
    v = votes[0]
    assert (v["question"], v["answer"], v["channel"], v["thread_ts"], v["latency_ms"], v["asked_by"]) == \
        ("Who is the CEO?", "Wang Lei [1].", "C1", "1.1", 12.5, "U1")
    assert v["citations"][0]["doc_id"] == "002_x.txt"
    with pytest.raises(UnknownAnswer):
        store.record_vote(999, "up", user="U2")
    with pytest.raises(ValueError):
        store.record_vote(aid, "meh", user="U2")


def test_export_writes_a_question_set(store, tmp_path):
    up = store.record_answer(answer("Who is the CEO of ADASpace?"))
    down = store.record_answer(answer("Where is ADASpace based?", "In Chengdu [1]."))
    no = store.record_answer(answer("Weather tomorrow?", "I couldn't find that in the articles.", abstained=True))
    store.record_answer(answer("Never voted?"))
    again = store.record_answer(answer("who is the CEO of ADASpace", "Wang Lei, CEO [1]."))
    store.record_vote(up, "up", user="U1")
    store.record_vote(down, "down", user="U1")
    store.record_vote(no, "up", user="U1")
    store.record_vote(again, "up", user="U2")

    out = tmp_path / "out" / "qs.jsonl"
    assert store.export_questions(out) == 3
    lines = read(out)
    assert [line["question"] for line in lines] == ["Where is ADASpace based?", "Weather tomorrow?",
                                                    "who is the CEO of ADASpace"]
    down_line, unanswerable, good = lines
    assert good == {**good, "id": f"slack-{again}", "answers": ["Wang Lei, CEO."], "gold_docs": ["002_x.txt"],
                    "answerable": True, "verdict": "up", "needs_review": False}
    assert unanswerable["answerable"] is False and unanswerable["answers"] == [] and unanswerable["verdict"] == "up"
    assert down_line["answers"] == [] and down_line["gold_docs"] == [] and down_line["needs_review"] is True
    assert down_line["bot_answer"] == "In Chengdu [1]." and down_line["bot_cited_docs"] == ["002_x.txt"]
    assert len({line["id"] for line in lines}) == 3

    assert store.export_questions(out, only="down") == 1
    assert [line["verdict"] for line in read(out)] == ["down"]


def test_bad_url_is_a_friendly_error():
    from bot.errors import StoreUnavailable

    with pytest.raises(StoreUnavailable) as err:
        FeedbackStore("postgresql+nosuchdriver://user:hunter2@db/qa")
    assert "hunter2" not in err.value.user_message


def test_export_loads_as_an_eval_question_set(store, tmp_path):
    questions = pytest.importorskip("eval.questions")
    good = store.record_answer(answer("Who is the CEO of ADASpace?"))
    bad = store.record_answer(answer("Weather tomorrow?", "I couldn't find that in the articles.", abstained=True))
    store.record_vote(good, "up", user="U1")
    store.record_vote(bad, "down", user="U1")
    out = tmp_path / "qs.jsonl"
    store.export_questions(out)
    loaded, problems = questions.load_questions(out)
    assert problems == []
    assert [(q.question, q.answers, q.gold_docs, q.answerable) for q in loaded] == [
        ("Who is the CEO of ADASpace?", ("Wang Lei.",), ("002_x.txt",), True),
        ("Weather tomorrow?", (), (), True),
    ]
    assert loaded[1].extra["needs_review"] is True
