"""Held-out figures of a reader (train.evaluate), scored with the shipped model on rows written here."""

from __future__ import annotations

from bot.answer.span_reader import SpanReader
from train.evaluate import score

CONTEXT = "The Vltava river flows through Prague. The city is also known for its castle on the hill."


def _row(question, answers, answerable=True):
    return {"source": "squad", "question": question, "context": CONTEXT, "answers": answers, "answerable": answerable}


def test_score__the_sentence_holding_the_predicted_span_is_checked_for_a_gold_answer():
    rows = [
        _row("Which river flows through Prague?", ["Vltava", "Vltava river"]),
        # Labelled with the other sentence's word: the span's sentence does not hold it.
        _row("Which river flows through Prague?", ["castle"]),
        _row("Who founded the university of Prague?", [], answerable=False),
    ]
    figures = score(SpanReader(), rows, threshold=2.5)["squad"]
    assert figures["positives"] == 2 and figures["negatives"] == 1
    assert figures["exact_match"] == 0.5
    assert figures["sentence_holds_answer"] == 0.5
