"""The reader's training data: cut, BM25-ranked and question-swapped negatives, and how an epoch samples
the negative kinds."""

from __future__ import annotations

import random

from train.prepare import CUT_ALL_MIN_WORDS, bm25_negatives, swap_negatives, without_answer_sentences
from train.reader import examples_for_epoch


def _row(i, question, context, answer, title, source="squad", split="train"):
    return {"id": f"q{i}", "source": source, "split": split, "question": question, "group": f"q{i}",
            "title": title, "answers": [answer], "context": context, "answer_start": context.find(answer),
            "answer_text": answer, "answerable": True}


ROWS = [
    _row(1, "Which river flows through the old city of Prague?", "The Vltava river flows through Prague.", "Vltava",
         "Prague"),
    _row(2, "Which river flows through the city of Budapest?", "The Danube river flows through the city of "
         "Budapest, the capital.", "Danube", "Budapest"),
    _row(3, "When was the Budapest metro opened?", "The Budapest metro opened in 1896.", "1896", "Budapest"),
    _row(4, "Who painted the Mona Lisa?", "Leonardo painted the Mona Lisa in Florence.", "Leonardo", "Art"),
    _row(5, "Which river flows through Vienna?", "The Danube flows through Vienna too.", "Danube", "Vienna",
         split="val"),
]


def test_bm25_negatives__the_closest_passage_of_another_subject_that_lacks_the_answer():
    negs = {n["id"]: n for n in bm25_negatives(ROWS)}
    # Prague's river question: the Budapest river passage ranks first and lacks "Vltava".
    assert negs["q1-bm250"]["context"].startswith("The Danube river flows through the city of Budapest")
    assert not negs["q1-bm250"]["answerable"] and negs["q1-bm250"]["answer_start"] == -1
    # Budapest's river question never gets a Budapest passage (same subject), nor one holding "Danube".
    assert "Budapest" not in negs["q2-bm250"]["context"]
    assert "Danube" not in negs["q2-bm250"]["context"]
    # The metro question shares words only with the other Budapest passage: no negative rather than a random one.
    assert "q3-bm250" not in negs
    # Splits never mix: the one val question has no other val passage to be paired with.
    assert "q5-bm250" not in negs
    assert all(n["split"] == "train" for n in negs.values())


def test_examples_for_epoch__bm25_news_negatives_are_sampled_not_all_taken():
    pos = [_row(i, "q?", "ctx answer", "answer", "", source="realtimeqa") for i in range(10)]
    own = [{**p, "id": f"{p['id']}-cut", "answerable": False} for p in pos[:2]]
    bm25 = [{**p, "id": f"{p['id']}-bm250", "answerable": False} for p in pos]
    out = examples_for_epoch(pos + own + bm25, random.Random(0), neg_ratio=0.6, news_repeat=1)
    negs = [r for r in out if not r["answerable"]]
    assert len(negs) == 6  # 0.6 x 10 positives
    assert sum("-cut" in r["id"] for r in negs) == 2  # the news quiz's own negatives: all of them
    assert sum("-bm25" in r["id"] for r in negs) == 4  # BM25 ones: sampled to fill the rest


def test_without_answer_sentences__min_words_sets_how_short_a_cut_passage_may_be():
    context = "The Budapest metro opened in 1896. It was the second in the world. Its first line runs north east."
    assert without_answer_sentences(context, ["1896"]) is None  # 13 words left: under the default 25
    rest = without_answer_sentences(context, ["1896"], min_words=CUT_ALL_MIN_WORDS)
    assert rest == "It was the second in the world. Its first line runs north east."
    # A passage whose every sentence holds the answer leaves nothing to cut to.
    assert without_answer_sentences("It opened in 1896. In 1896 it ran.", ["1896"], min_words=1) is None


def test_swap_negatives__a_word_tying_question_to_answer_swapped_for_one_the_passage_lacks():
    negs = swap_negatives(ROWS, 1.0, random.Random(0))
    by_id = {n["id"]: n for n in negs}
    assert set(by_id) <= {"q1-swap", "q2-swap", "q3-swap", "q4-swap"}  # training questions only
    assert len(by_id) >= 3
    for n in negs:
        src = next(r for r in ROWS if f"{r['id']}-swap" == n["id"])
        assert not n["answerable"] and n["answer_start"] == -1 and n["context"] == src["context"]
        before, after = src["question"].split(), n["question"].split()
        changed = [(a, b) for a, b in zip(before, after) if a != b]
        # One word changed (not the first), same length, a word its answer's sentence holds ...
        assert len(before) == len(after) and len(changed) == 1 and before[0] == after[0]
        old, new = (w.strip("?") for w in changed[0])
        assert old.lower() in src["context"].lower()
        # ... for another question's word of the same kind that the passage lacks.
        assert new.lower() not in src["context"].lower()
        assert old[0].isupper() == new[0].isupper()
    # A share of 0 adds nothing; the same seed gives the same negatives.
    assert swap_negatives(ROWS, 0.0, random.Random(0)) == []
    assert swap_negatives(ROWS, 1.0, random.Random(0)) == negs


def test_examples_for_epoch__swapped_news_negatives_are_sampled_not_all_taken():
    pos = [_row(i, "q?", "ctx answer", "answer", "", source="realtimeqa") for i in range(10)]
    swap = [{**p, "id": f"{p['id']}-swap", "answerable": False} for p in pos]
    out = examples_for_epoch(pos + swap, random.Random(0), neg_ratio=0.3, news_repeat=1)
    assert sum("-swap" in r["id"] for r in out) == 3  # the epoch keeps its size
