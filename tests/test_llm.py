"""Tests for bot.answer.llm.LLMAnswerer: the real openai client over HTTP against FakeOpenAI."""

from __future__ import annotations

from dataclasses import replace

import logging
import socket
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import pytest

from bot.answer.citations import validate
from bot.answer.llm import ABSTAIN_TEXT, LLMAnswerer
from bot.config import Settings
from bot.types import Answer, Chunk, Citation, Conversation, Delta, Sentence
from tests.fakes.openai_server import FakeOpenAI, InvalidJSON, Reply, Slow, Status, StreamThenDrop

REPO = Path(__file__).resolve().parents[1]
API_KEY = "sk-test-SECRET-0123456789"
FALLBACK_NOTE = "; showing the extractive answer"


def make_chunk(chunk_id: str, doc_id: str, title: str, date: str | None, *sentences: str, score: float = 0.5) -> Chunk:
    """A chunk whose text is the sentences joined by spaces, with exact sentence spans."""
    spans, pos = [], 0
    for s in sentences:
        spans.append(Sentence(pos, pos + len(s)))
        pos += len(s) + 1
    return Chunk(chunk_id, doc_id, title, date, " ".join(sentences), score, 0, pos - 1, tuple(spans))


ECB = make_chunk(
    "ecb#0", "2024/03/ecb", "ECB holds rates", "2024-03-07",
    "The European Central Bank kept interest rates at 4% on Thursday.",
    "Inflation in the euro area slowed to 2.6% in February.",
    score=0.9,
)
STORM = make_chunk(
    "storm#0", "2024/03/storm", "Storm hits coast", "2024-03-05",
    "A storm flooded the northern coast overnight.",
    "Thousands of homes lost power.",
    score=0.7,
)
CHUNKS = [ECB, STORM]
QUESTION = "What did the ECB decide?"
GOOD = "The ECB kept rates at 4% on Thursday [1]. Separately, thousands of homes lost power [2]."


class FirstSentence:
    """Stand-in for the offline answerer: the first chunk's first sentence, cited as [1]."""

    mode = "extractive"

    def __init__(self) -> None:
        self.calls = 0

    def answer(self, question: str, chunks: Sequence[Chunk], vector=None) -> Answer:
        """Answer extractively from the first chunk."""
        self.calls += 1
        if not chunks:
            return Answer(question=question, text=ABSTAIN_TEXT, abstained=True, mode="extractive")
        c = chunks[0]
        quote = c.sentence_texts()[0]
        cite = Citation(1, c.doc_id, c.title, c.date, quote, c.id, c.score)
        return Answer(question=question, text=f"{quote} [1]", citations=(cite,), mode="extractive",
                      retrieved=tuple(chunks))


@pytest.fixture
def srv():
    with FakeOpenAI() as server:
        yield server


def make(base_url: str, timeout: float = 2.0, max_retries: int = 0) -> LLMAnswerer:
    return LLMAnswerer(model="fake-model", base_url=base_url, api_key=API_KEY, temperature=0.0,
                       timeout=timeout, max_retries=max_retries, fallback=FirstSentence())


def assert_fell_back(answer: Answer, note: str) -> None:
    assert answer.mode == "extractive"
    assert answer.text == ECB.sentence_texts()[0] + " [1]"
    assert answer.note == note
    assert "\n" not in answer.note and "Traceback" not in answer.note and API_KEY not in answer.note


def dead_url() -> str:
    # Bind then close: nothing listens on the port afterwards, so connecting is refused.
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1"


# -- normal answers ----------------------------------------------------------------------------


def test_answer_with_valid_citations(srv):
    srv.script(Reply(GOOD))
    llm = make(srv.base_url)
    answer = llm.answer(QUESTION, CHUNKS)
    assert answer.mode == "llm"
    assert answer.text == GOOD
    assert answer.note is None and not answer.abstained
    assert [(c.n, c.doc_id, c.chunk_id) for c in answer.citations] == [
        (1, "2024/03/ecb", "ecb#0"), (2, "2024/03/storm", "storm#0"),
    ]
    assert answer.citations[0].quote == "The European Central Bank kept interest rates at 4% on Thursday."
    assert answer.citations[1].quote == "Thousands of homes lost power."
    assert answer.retrieved == answer.passages == tuple(CHUNKS)  # without a passage step it reads the chunks
    assert llm.fallback.calls == 0


def test_answer_reads_passages_and_keeps_the_ranked_chunks_apart(srv):
    srv.script(Reply(GOOD))
    passage = replace(CHUNKS[0], text=CHUNKS[0].text + " More of the article.", sentences=())
    llm = LLMAnswerer(model="fake-model", base_url=srv.base_url, api_key=API_KEY, temperature=0.0, timeout=2.0,
                      max_retries=0, fallback=FirstSentence(), passages=lambda q, chunks: [passage])
    answer = llm.answer(QUESTION, CHUNKS)
    assert "More of the article." in srv.requests[-1]["messages"][0]["content"]
    assert answer.retrieved == tuple(CHUNKS) and answer.passages == (passage,)


def test_prompt_numbers_the_sources(srv):
    make(srv.base_url).answer(QUESTION, CHUNKS)
    request = srv.requests[0]
    assert request["model"] == "fake-model"
    assert request["temperature"] == 0.0
    system, user = request["messages"]
    assert system["role"] == "system" and user == {"role": "user", "content": QUESTION}
    assert "[1] ECB holds rates (2024-03-07): The European Central Bank kept interest rates" in system["content"]
    assert "[2] Storm hits coast (2024-03-05): A storm flooded" in system["content"]
    assert ABSTAIN_TEXT in system["content"]


def test_citations_are_renumbered_to_the_right_chunks(srv):
    srv.script(Reply("Homes lost power [2]. Rates held at 4% [1]."))
    answer = make(srv.base_url).answer(QUESTION, CHUNKS)
    assert answer.text == "Homes lost power [1]. Rates held at 4% [2]."
    assert [c.chunk_id for c in answer.citations] == ["storm#0", "ecb#0"]


def test_abstention(srv):
    srv.script(Reply("I couldn\u2019t find that in the articles."))
    llm = make(srv.base_url)
    answer = llm.answer("Who won the cup?", CHUNKS)
    assert answer.abstained and answer.mode == "llm"
    assert answer.text == ABSTAIN_TEXT and answer.citations == ()
    assert llm.fallback.calls == 0


def test_citations_to_missing_sources_are_removed_and_counted(srv):
    srv.script(Reply("Rates held at 4% [1][7]. Inflation slowed [9]."))
    answer = make(srv.base_url).answer(QUESTION, CHUNKS)
    assert answer.mode == "llm"
    assert answer.text == "Rates held at 4% [1]. Inflation slowed."
    assert answer.note == "removed 2 citations to missing sources"
    assert [c.chunk_id for c in answer.citations] == ["ecb#0"]


@pytest.mark.parametrize("reply", ["Rates held at 4% [7].", "Rates held at 4%."])
def test_answer_without_valid_citation_falls_back(srv, reply):
    srv.script(Reply(reply))
    answer = make(srv.base_url).answer(QUESTION, CHUNKS)
    assert_fell_back(answer, "LLM answer had no valid citation" + FALLBACK_NOTE)


def test_empty_chunks_do_not_call_the_llm(srv):
    llm = make(srv.base_url)
    assert llm.answer(QUESTION, []).mode == "extractive"
    assert list(llm.stream(QUESTION, [])) == [FirstSentence().answer(QUESTION, [])]
    assert srv.requests == []


# -- faults ------------------------------------------------------------------------------------


EMPTY_CHOICES = {"id": "chatcmpl-x", "object": "chat.completion", "created": 0, "model": "fake-model", "choices": []}


@pytest.mark.parametrize(
    "step, reason",
    [
        (Status(429), "rate limited, HTTP 429"),
        (Status(500), "server error, HTTP 500"),
        (Status(503), "server error, HTTP 503"),
        (Status(401), "bad credentials, HTTP 401"),
        (InvalidJSON(), "malformed response"),
        (Status(200, body=EMPTY_CHOICES), "empty response"),
        (Reply(""), "empty response"),
        (Slow(10), "timeout after 0.5 s"),
    ],
    ids=["429", "500", "503", "401", "invalid-json", "empty-choices", "empty-text", "timeout"],
)
def test_llm_failures_fall_back_with_a_note(srv, caplog, step, reason):
    srv.script(step)
    with caplog.at_level(logging.WARNING, logger="bot.answer.llm"):
        answer = make(srv.base_url, timeout=0.5).answer(QUESTION, CHUNKS)
    assert_fell_back(answer, f"LLM unavailable ({reason})" + FALLBACK_NOTE)
    assert any(r.levelno == logging.WARNING and reason in r.getMessage() for r in caplog.records)


def test_429_then_success_with_one_retry(srv):
    # retry-after-ms keeps the client's backoff short.
    srv.script(Status(429, headers={"retry-after-ms": "10"}), Reply(GOOD))
    answer = make(srv.base_url, max_retries=1).answer(QUESTION, CHUNKS)
    assert answer.mode == "llm" and answer.text == GOOD
    assert len(srv.requests) == 2


def test_dead_server_falls_back():
    llm = make(dead_url())
    reason = "LLM unavailable (cannot connect to the LLM server)" + FALLBACK_NOTE
    assert_fell_back(llm.answer(QUESTION, CHUNKS), reason)
    items = list(llm.stream(QUESTION, CHUNKS))
    assert len(items) == 1
    assert_fell_back(items[0], reason)
    conversation = Conversation()
    conversation.add("What did the ECB decide?", FirstSentence().answer(QUESTION, CHUNKS))
    assert llm.condense("And in June?", conversation) == "And in June?"


# -- streaming ---------------------------------------------------------------------------------


def test_stream_yields_deltas_then_the_validated_answer(srv):
    raw = "Homes lost power overnight [2]. The ECB kept rates at 4% [1][5]."
    srv.script(Reply(raw))
    items = list(make(srv.base_url).stream(QUESTION, CHUNKS))
    *deltas, final = items
    assert len(deltas) > 3 and all(isinstance(d, Delta) for d in deltas)
    assert "".join(d.text for d in deltas) == raw
    assert isinstance(final, Answer) and final.mode == "llm"
    assert final.text == validate(raw, CHUNKS)[0] == "Homes lost power overnight [1]. The ECB kept rates at 4% [2]."
    assert [c.chunk_id for c in final.citations] == ["storm#0", "ecb#0"]
    assert final.note == "removed 1 citation to a missing source"
    assert srv.requests[0]["stream"] is True


def test_stream_that_drops_midway_falls_back(srv):
    srv.script(StreamThenDrop("The ECB kept interest rates at 4% on Thursday, the bank said [1]."))
    *deltas, final = make(srv.base_url).stream(QUESTION, CHUNKS)
    assert deltas and all(isinstance(d, Delta) for d in deltas)
    assert final.mode == "extractive"
    assert final.note == "LLM stream interrupted (connection lost)" + FALLBACK_NOTE


def test_stream_error_before_any_delta_falls_back(srv):
    srv.script(Status(500))
    items = list(make(srv.base_url).stream(QUESTION, CHUNKS))
    assert len(items) == 1
    assert_fell_back(items[0], "LLM unavailable (server error, HTTP 500)" + FALLBACK_NOTE)


def test_stream_without_citation_falls_back(srv):
    srv.script(Reply("Rates were kept unchanged this week."))
    *deltas, final = make(srv.base_url).stream(QUESTION, CHUNKS)
    assert len(deltas) > 1
    assert_fell_back(final, "LLM answer had no valid citation" + FALLBACK_NOTE)


# -- condense ----------------------------------------------------------------------------------


def test_condense_uses_the_conversation(srv):
    conversation = Conversation()
    conversation.add(QUESTION, Answer(question=QUESTION, text="The ECB kept rates at 4% [1].", mode="llm"))
    srv.script(Reply("What will the ECB decide about interest rates in June?\n"))
    standalone = make(srv.base_url).condense("And in June?", conversation)
    assert standalone == "What will the ECB decide about interest rates in June?"
    prompt = srv.requests[0]["messages"][-1]["content"]
    assert QUESTION in prompt and "The ECB kept rates at 4%." in prompt and "And in June?" in prompt
    assert "stream" not in srv.requests[0] or not srv.requests[0]["stream"]


def test_condense_failure_or_no_history_keeps_the_question(srv):
    conversation = Conversation()
    llm = make(srv.base_url)
    assert llm.condense("And in June?", conversation) == "And in June?"
    assert srv.requests == []  # nothing to resolve against: no call
    conversation.add(QUESTION)
    srv.script(Status(500))
    assert llm.condense("And in June?", conversation) == "And in June?"


# -- construction ------------------------------------------------------------------------------


def test_from_settings(srv):
    settings = Settings(openai_api_key=API_KEY, openai_base_url=srv.base_url, llm_model="gpt-4o-mini",
                        llm_temperature=0.2, llm_timeout=3.0, llm_max_retries=0)
    srv.script(Reply(GOOD))
    llm = LLMAnswerer.from_settings(settings, FirstSentence())
    assert (llm.model, llm.base_url, llm.timeout, llm.max_retries) == ("gpt-4o-mini", srv.base_url, 3.0, 0)
    assert API_KEY not in repr(llm)
    assert llm.answer(QUESTION, CHUNKS).mode == "llm"
    assert srv.requests[0]["model"] == "gpt-4o-mini" and srv.requests[0]["temperature"] == 0.2


def test_import_is_cheap():
    # The openai package is slow to import; it must wait until the first LLM call.
    code = "import sys, bot.answer.llm, bot.answer.citations; sys.exit('openai' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], cwd=REPO).returncode == 0


# -- one deadline, bounded replies, inert text ---------------------------------------------------------


def test_a_stalled_llm_is_given_up_at_the_timeout_whatever_the_retries(srv):
    """Guards against: each of the 1 + 2 attempts waited the whole timeout (a 30 s setting took 96 s)."""
    import time

    srv.script(Slow(10), Slow(10), Slow(10))
    t0 = time.monotonic()
    answer = make(srv.base_url, timeout=1.0, max_retries=2).answer(QUESTION, CHUNKS)
    elapsed = time.monotonic() - t0
    assert_fell_back(answer, "LLM unavailable (timeout after 1.0 s)" + FALLBACK_NOTE)
    assert elapsed < 1.8, elapsed


def test_a_stream_that_stalls_midway_is_cut_at_the_deadline(srv):
    import time

    from tests.fakes.openai_server import StreamThenStall

    srv.script(StreamThenStall("The ECB kept interest rates at 4% on Thursday, the bank said [1].", seconds=10))
    t0 = time.monotonic()
    *deltas, final = make(srv.base_url, timeout=1.0).stream(QUESTION, CHUNKS)
    assert time.monotonic() - t0 < 1.8
    assert deltas and final.note == "LLM stream interrupted (timeout after 1.0 s)" + FALLBACK_NOTE


def test_a_runaway_reply_is_cut(srv):
    from bot.answer.llm import MAX_ANSWER_CHARS

    runaway = "The ECB kept rates at 4% [1]. " * 8000  # 240,000 characters
    srv.script(Reply(runaway), Reply(runaway))
    answer = make(srv.base_url).answer(QUESTION, CHUNKS)
    assert answer.mode == "llm" and len(answer.text) <= MAX_ANSWER_CHARS + 2 and answer.text.endswith("…")
    assert "answer cut at 4,000 characters" in answer.note
    *deltas, final = make(srv.base_url).stream(QUESTION, CHUNKS)
    assert sum(len(d.text) for d in deltas) < MAX_ANSWER_CHARS + 100  # the stream was closed, not read to the end
    assert len(final.text) <= MAX_ANSWER_CHARS + 2


def test_an_abstention_beside_a_cited_claim_keeps_the_claim_and_its_source(srv):
    srv.script(Reply("I couldn't find that in the articles. However, the ECB kept rates at 4% on Thursday [1]."))
    answer = make(srv.base_url).answer("Did the ECB cut rates in May?", CHUNKS)
    assert not answer.abstained  # guards against: a bare abstention, the cited claim and its source dropped
    assert [c.chunk_id for c in answer.citations] == ["ecb#0"] and "4%" in answer.text


def test_escape_sequences_in_llm_replies_never_reach_the_output(srv):
    hostile = "The ECB \x1b[2J\x1b]0;pwned\x07kept rates \x1b[31mat 4%\x1b[0m [1].\r"
    srv.script(Reply(hostile), Reply(hostile))
    answer = make(srv.base_url).answer(QUESTION, CHUNKS)
    assert answer.text == "The ECB kept rates at 4% [1]."
    *deltas, final = make(srv.base_url).stream(QUESTION, CHUNKS)
    streamed = "".join(d.text for d in deltas)
    assert "\x1b" not in streamed and "\x07" not in streamed and final.text == answer.text
