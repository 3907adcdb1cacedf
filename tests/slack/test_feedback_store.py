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


def test_bad_url_is_a_friendly_error():
    from bot.errors import StoreUnavailable

    with pytest.raises(StoreUnavailable) as err:
        FeedbackStore("postgresql+nosuchdriver://user:hunter2@db/qa")
    assert "hunter2" not in err.value.user_message
