"""bot/answer/coverage.py: the idf-weighted share of the question an answer's sentence holds, with the
real BM25 tokenizer (stop words, stemming)."""

from __future__ import annotations

from bot.answer.coverage import NO_COVER, Cover, covers
from index.lexical import tokenize


class Vocab:
    """The lexical index's two calls: its real tokenizer, and idf from a small table (rare words weigh more)."""

    def __init__(self, idf: dict[str, float]):
        self._idf = idf

    def tokenize(self, texts):
        return tokenize(texts)

    def idf(self, terms):
        return {t: self._idf.get(t, 1.0) for t in terms}


Q = "When did the bridge in Vienna open?"


def test_covers__weighs_each_question_term_by_its_idf_in_sentence_and_neighbourhood():
    vocab = Vocab({"vienna": 3.0, "bridg": 2.0, "open": 1.0})
    out = covers(vocab, Q, [
        ("The bridge opened in 1932.", "The bridge opened in 1932. It spans the river in Vienna."),
        ("Vienna has many bridges, all opened long ago.", "Vienna has many bridges, all opened long ago."),
        ("Rain fell all day.", "Rain fell all day."),
    ])
    assert out[0] == Cover(sentence=3 / 6, near=1.0)  # stemmed: "opened" counts for "open"
    assert out[1] == Cover(1.0, 1.0)
    assert out[2] == NO_COVER


def test_covers__nothing_to_cover_gives_zero_and_nothing_to_score_gives_nothing():
    vocab = Vocab({})
    assert covers(vocab, "What is it?", [("It is a bridge.", "It is a bridge.")]) == [NO_COVER]  # stop words only
    assert covers(vocab, Q, []) == []


def test_covers__a_second_part_is_weighed_against_what_the_first_left_unanswered():
    vocab = Vocab({"judg": 2.0, "lopez": 3.0, "elect": 1.0, "term": 2.0, "end": 2.0})
    q = "When was Judge Lopez elected, and when does her term end?"
    second = ("Her term ends in 2028.", "Her term ends in 2028.")
    whole = covers(vocab, q, [second])[0]
    rest = covers(vocab, q, [second], answered="Judge Lopez was elected in 2016.")[0]
    assert whole.sentence == 4 / 10 and rest.sentence == 1.0
