"""The offline extractive answerer on the real seed index: behaviour, not exact wording."""

from __future__ import annotations

import json
import re
import statistics

import pytest

from bot.answer.extractive import ABSTAIN_TEXT, MAX_WORDS, analyse, proximity
from index.lexical import tokenize
from tests.conftest import ROOT, SEEDS

MARKER = re.compile(r"\[(\d+)\]")


def _questions() -> list[dict]:
    with open(ROOT / "eval" / "questions.jsonl", encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


@pytest.fixture(scope="module")
def eval_answers(heuristic_pipeline):
    """Every eval question answered once: (question record, Answer)."""
    return [(q, heuristic_pipeline.ask(q["question"])) for q in _questions()]


# --- analyse --------------------------------------------------------------------------
def _stem(word: str) -> str:
    return tokenize([word])[0][0]


@pytest.mark.parametrize(
    "question, kind",
    [
        ("How many satellites will ADASpace deliver?", "number"),
        ("How many people attended the forum?", "number"),
        ("How much is the contract worth?", "money"),
        ("What is the contract worth?", "money"),
        ("What is the retail price of the MoGo 2 projector?", "money"),
        ("How old is Chen Bin?", "age"),
        ("When was the association set up?", "date"),
        ("What year was the association set up?", "date"),
        ("Who is the chief executive of ADASpace?", "name"),
        ("Where was InnoEX 2023 held?", "place"),
        ("Which city hosted the exchange?", "place"),
    ],
)
def test_analyse_kinds(question, kind):
    assert analyse(question, tokenize).kind == kind


def test_analyse_how_many_records_counted_stems():
    need = analyse("How many satellites will ADASpace deliver?", tokenize)
    assert need.kind == "number"
    assert _stem("satellites") in need.counted
    need = analyse("How many visitors attended InnoEX 2023?", tokenize)
    assert _stem("visitors") in need.counted


def test_analyse_open_question_has_no_kind():
    need = analyse("What is the multi-modal AI operating system called?", tokenize)
    assert need.kind is None
    assert not need.counted


# --- answers and citations ------------------------------------------------------------
def test_answers_have_markers_that_map_one_to_one_to_citations(eval_answers):
    answered = [(q, a) for q, a in eval_answers if not a.abstained]
    assert len(answered) >= 40
    for q, a in answered:
        markers = [int(n) for n in MARKER.findall(a.text)]
        ns = [c.n for c in a.citations]
        assert ns == list(range(1, len(ns) + 1)), q["id"]
        assert sorted(markers) == ns, f"{q['id']}: markers {markers} vs citations {ns}"


def test_citation_quotes_are_exact_substrings_of_chunk_and_seed_file(heuristic_pipeline, eval_answers):
    checked = 0
    for q, a in eval_answers:
        for c in a.citations:
            chunk = heuristic_pipeline.lexical.by_ids([c.chunk_id])[c.chunk_id]
            assert chunk.doc_id == c.doc_id
            assert c.quote and c.quote in chunk.text, f"{q['id']}: quote not in chunk {c.chunk_id}"
            source = (SEEDS / c.doc_id).read_text(encoding="utf-8")
            assert c.quote in source, f"{q['id']}: quote not in {c.doc_id}"
            checked += 1
    assert checked >= 40


def test_answerable_answers_are_short(eval_answers):
    lengths = [len(a.text.split()) for q, a in eval_answers if q["answerable"] and not a.abstained]
    assert lengths
    assert statistics.median(lengths) <= 40


def test_unrelated_question_abstains_with_closest_sources(heuristic_pipeline):
    a = heuristic_pipeline.ask("How do I cook mapo tofu?")
    assert a.abstained
    assert a.text == ABSTAIN_TEXT
    assert 1 <= len(a.citations) <= 3
    assert len({c.doc_id for c in a.citations}) == len(a.citations)
    assert [c.n for c in a.citations] == list(range(1, len(a.citations) + 1))


def test_number_question_without_a_number_in_the_articles_abstains(heuristic_pipeline):
    a = heuristic_pipeline.ask("How many visitors attended InnoEX 2023 in total?")
    assert a.abstained
    assert a.text == ABSTAIN_TEXT
    assert len(a.citations) <= 3


def test_number_question_with_a_number_answers_with_it(heuristic_pipeline):
    a = heuristic_pipeline.ask("How many communications and remote sensing satellites is ADASpace to deliver?")
    assert not a.abstained
    assert "180" in a.text
    assert a.citations[0].doc_id.startswith("002_")


# --- trim -------------------------------------------------------------------------------
LONG = (
    "Under the framework agreement signed in Hong Kong on Wednesday afternoon, after months of negotiation "
    "between the two sides, the Chengdu company ADASpace will deliver 180 remote sensing satellites to its "
    "partner, while the partner will build ground stations in several provinces, train hundreds of engineers, "
    "and share imagery with research institutes across the country."
)


def _pieces(trimmed: str) -> list[str]:
    return [p.strip() for p in trimmed.split("…") if p.strip()]


def test_trim_keeps_short_text_unchanged(heuristic_pipeline):
    short = "ADASpace will deliver 180 satellites."
    assert heuristic_pipeline.extractive.trim(short, "How many satellites?") == short


def test_trim_keeps_the_answer_clause_of_a_long_sentence(heuristic_pipeline):
    assert len(LONG.split()) > MAX_WORDS + 10
    out = heuristic_pipeline.extractive.trim(LONG, "How many satellites will ADASpace deliver?")
    assert "180 remote sensing satellites" in out
    assert len(out.replace("…", " ").split()) <= MAX_WORDS
    for piece in _pieces(out):
        assert piece.rstrip(",;:") in LONG  # clauses are cut, never rewritten


def test_trim_place_question_keeps_the_place_clause(heuristic_pipeline):
    out = heuristic_pipeline.extractive.trim(LONG, "Where was the framework agreement signed?")
    assert "Hong Kong" in out
    assert len(out.replace("…", " ").split()) <= MAX_WORDS


def test_trim_without_clause_breaks_cuts_to_max_words(heuristic_pipeline):
    out = heuristic_pipeline.extractive.trim(" ".join(["word"] * 50), "anything?")
    assert out.endswith("…")
    assert len(out.replace("…", " ").split()) == MAX_WORDS


# --- stored sentence vectors ---------------------------------------------------------
def test_answering_uses_stored_sentence_vectors(heuristic_pipeline, monkeypatch):
    encoder = heuristic_pipeline.extractive.encoder
    assert encoder is heuristic_pipeline.retriever.encoder
    real_encode = encoder.encode
    calls: list[list[str]] = []

    def counting_encode(texts, *args, **kwargs):
        calls.append(list(texts))
        return real_encode(texts, *args, **kwargs)

    monkeypatch.setattr(encoder, "encode", counting_encode)
    question = "Who is the chief executive of ADASpace?"
    answer = heuristic_pipeline.ask(question)
    assert not answer.abstained
    assert calls, "the question itself should be encoded"
    assert all(texts == [question] for texts in calls), f"sentences were re-encoded: {calls}"
    # Every retrieved chunk has its sentence vectors in the store, one per sentence.
    stored = heuristic_pipeline.extractive.sentence_vectors.get([c.id for c in answer.retrieved])
    for chunk in answer.retrieved:
        assert chunk.id in stored
        assert len(stored[chunk.id]) == len(chunk.sentence_texts())


# --- proximity ----------------------------------------------------------------------------
def test_proximity_is_the_densest_window_of_question_terms():
    idf = {"prais": 3.0, "contribut": 2.0, "industri": 0.5}
    terms = set(idf)
    spread = ["prais", "x", "x", "x", "x", "x", "x", "x", "x", "contribut", "x", "industri"]
    close = ["x", "prais", "x", "contribut", "x", "industri", "x"]
    assert proximity(close, terms, idf) == pytest.approx(5.5)
    assert proximity(spread, terms, idf) == pytest.approx(3.0)  # prais alone; contribut+industri is 2.5
    assert proximity(spread, terms, idf, window=12) == pytest.approx(5.5)
    assert proximity(["x", "y"], terms, idf) == 0.0
    assert proximity(["prais", "prais"], terms, idf) == pytest.approx(3.0)  # distinct terms count once


def test_answer_inside_a_long_sentence_is_found_by_proximity(heuristic_pipeline):
    # The answer sits in a 40-word sentence whose vector is far from the question; the question's
    # words packed together ("praised our outstanding contribution to the chlor-alkali industry") win.
    # Scored among the sentences of the article that holds it (which chunks retrieval ranks first depends
    # on chunk boundaries, not on proximity).
    from bot.types import Filters

    q = "To which industry did the visiting officials praise the company's contribution?"
    chunks = heuristic_pipeline.retrieve(q, Filters(doc_prefix="004_"))
    a = heuristic_pipeline.extractive.answer(q, chunks)
    assert not a.abstained
    assert "chlor-alkali" in a.text
    assert a.citations[0].doc_id.startswith("004_")
