"""Answer -> Slack blocks: limits, mrkdwn, sources; Slack text -> question; threads -> conversations."""

from __future__ import annotations

import json

from bot.slack import format as fmt
from bot.slack.redact import add_secrets, scrub
from bot.slack.thread import conversation_from_thread
from bot.types import Answer, Chunk, Citation


def citation(n: int, title: str = "Srinagar Magazine", quote: str = "Wang Lei, CEO of ADASpace, praised it.") -> Citation:
    return Citation(n, f"00{n}_doc.txt", title, "2023-04-14", quote, f"00{n}_doc.txt#0")


def test_answer_blocks_keep_markers_and_list_sources():
    answer = Answer("q", "Wang Lei is the **CEO** of ADASpace [1].", (citation(1),))
    blocks = fmt.answer_blocks(answer, 42)
    assert [b["type"] for b in blocks] == ["section", "context", "actions"]
    assert blocks[0]["text"] == {"type": "mrkdwn", "text": "Wang Lei is the *CEO* of ADASpace [1]."}
    heading, source = blocks[1]["elements"]
    assert heading["text"] == "*Sources*"
    assert source["text"] == "*[1]* Srinagar Magazine · 2023-04-14\n>“Wang Lei, CEO of ADASpace, praised it.”"
    assert {e["value"] for e in blocks[2]["elements"]} == {"42"}
    assert fmt.fallback_text(answer) == "Wang Lei is the *CEO* of ADASpace [1]."


def test_long_answers_and_many_sources_stay_within_slack_limits():
    text = " ".join(f"Sentence number {i} says something rather long about the article [1]." for i in range(400))
    many = tuple(citation(n, title="T" * 500, quote="q" * 5000) for n in range(1, 26))
    blocks = fmt.answer_blocks(Answer("q", text, many), 7)
    assert len(blocks) <= fmt.MAX_BLOCKS
    sections = [b for b in blocks if b["type"] == "section"]
    assert len(sections) > 1 and all(len(b["text"]["text"]) <= 3000 for b in sections)
    assert " ".join(b["text"]["text"] for b in sections).split() == text.split()
    contexts = [b for b in blocks if b["type"] == "context"]
    assert len(contexts) == 3  # heading + 25 sources = 26 elements, 10 a block
    assert all(len(b["elements"]) <= 10 for b in contexts)
    assert all(len(e["text"]) <= 3000 for b in contexts for e in b["elements"])
    assert len({b["block_id"] for b in blocks}) == len(blocks)
    assert len(json.dumps(blocks)) < 100_000


def test_huge_answer_is_cut_to_fifty_blocks():
    blocks = fmt.answer_blocks(Answer("q", "word " * 200_000, (citation(1),)), 1)
    assert len(blocks) == fmt.MAX_BLOCKS
    assert blocks[-1]["type"] == "actions"


def test_abstention_without_citations_lists_the_closest_articles():
    chunks = tuple(Chunk(f"c{i}", f"doc{i % 2}", f"Title {i % 2}", None, "First sentence. Second one.", 0.1)
                   for i in range(4))
    answer = Answer("q", "I couldn't find that in the articles.", abstained=True, retrieved=chunks)
    (context,) = fmt.source_blocks(answer)
    texts = [e["text"] for e in context["elements"]]
    assert texts[0].startswith("*Closest sources*")
    assert texts[1:] == ["*[1]* Title 0\n>“First sentence. Second one.”", "*[2]* Title 1\n>“First sentence. Second one.”"]


def test_to_mrkdwn_escapes_and_converts_markdown():
    md = "# Result\n- **Bold** & <b>tags</b> [1]\n* see [the site](https://example.com/a?b=1&c=2) ~~old~~ [2]"
    assert fmt.to_mrkdwn(md) == (
        "*Result*\n• *Bold* &amp; &lt;b&gt;tags&lt;/b&gt; [1]\n"
        "• see <https://example.com/a?b=1&c=2|the site> ~old~ [2]"
    )


def test_clean_question_unwraps_slack_markup():
    text = "<@UBOT> what did <@U123> say about <#C9|general> &amp; <https://x.org|x.org>?  "
    assert fmt.clean_question(text, "UBOT") == "what did @U123 say about #general & x.org?"
    assert fmt.clean_question("<@UBOT>", "UBOT") == ""


def test_split_text_prefers_sentence_breaks():
    text = "First sentence here. " * 10
    pieces = fmt.split_text(text, 50)
    assert all(len(p) <= 50 for p in pieces)
    assert all(p.endswith(".") for p in pieces)


def test_feedback_ack_only_rewrites_our_own_blocks():
    ours = fmt.answer_blocks(Answer("q", "a [1]", (citation(1),)), 3)
    acked = fmt.with_feedback_ack(ours, "U1", "up")
    assert acked[:-1] == ours and acked[-1]["block_id"] == fmt.FEEDBACK_ACK_BLOCK_ID
    assert fmt.with_feedback_ack(acked, "U2", "down")[-1]["elements"][0]["text"].endswith("👎 not helpful")
    assert fmt.with_feedback_ack([{"type": "rich_text", "block_id": "abc"}, *ours], "U1", "up") is None


def test_conversation_from_thread_pairs_questions_with_this_bots_answers():
    messages = [
        {"ts": "1.1", "user": "U1", "text": "<@UBOT> Who runs ADASpace?"},
        {"ts": "1.2", "user": "UOTHER", "bot_id": "BOTHER", "text": "another bot"},
        {"ts": "1.3", "user": "UBOT", "bot_id": "BBOT", "text": "Wang Lei [1].",
         "metadata": {"event_type": "qa_answer", "event_payload": {"standalone": "Who runs ADASpace?"}}},
        {"ts": "1.4", "user": "U1", "text": "<@UBOT> and before?"},
        {"ts": "1.5", "user": "UBOT", "bot_id": "BBOT", "text": "Please slow down",
         "metadata": {"event_type": "qa_notice", "event_payload": {}}},
        {"ts": "1.6", "user": "UBOT", "bot_id": "BBOT", "text": "<@U2> asked: When was it founded?",
         "metadata": {"event_type": "qa_question", "event_payload": {"question": "When was it founded?"}}},
        {"ts": "1.7", "user": "UBOT", "bot_id": "BBOT", "text": "In 2018 [1]."},
        {"ts": "1.8", "user": "U1", "text": "<@UBOT> the current question"},
    ]
    conversation = conversation_from_thread(messages, bot_user_id="UBOT", bot_id="BBOT", before_ts="1.8")
    assert [(t.question, t.answer.text) for t in conversation.turns] == [
        ("Who runs ADASpace?", "Wang Lei [1]."), ("When was it founded?", "In 2018 [1].")]
    assert conversation.turns[0].standalone == "Who runs ADASpace?"


def test_scrub_removes_tokens_and_registered_secrets():
    add_secrets("s3cr3t-signing-value")
    text = "token xoxb-123-456-abc, app xapp-1-A-2-b, secret s3cr3t-signing-value"
    assert scrub(text) == "token [redacted], app [redacted], secret [redacted]"


def test_the_reader_span_is_bold_in_the_answer_section():
    a = Answer("q", "She received 49 of the 97 votes, well ahead. [1]", span="49 of the 97 votes")
    text = fmt.answer_blocks(a)[0]["text"]["text"]
    assert text == "She received *49 of the 97 votes*, well ahead. [1]"
    plain = fmt.answer_blocks(Answer("q", "A <b> & c [1]", span="<b>"))[0]["text"]["text"]
    assert plain == "A *&lt;b&gt;* &amp; c [1]"  # still escaped inside the bold
