"""The trained reader as the offline answerer, on the real seed index: behaviour, not exact wording."""

from __future__ import annotations

import json
import re

import pytest

from bot.answer import ABSTAIN_TEXT
from bot.answer.coverage import NO_COVER, Cover
from bot.answer.reader import (
    GATE_FEATURES,
    MAX_WORDS,
    AnswerGate,
    Found,
    ReaderAnswerer,
    asks_two_things,
    gate_features,
    sentence_bounds,
    trim_around,
)
from bot.errors import ReaderUnavailable
from bot.types import Chunk, Sentence

MARKER = re.compile(r"\[(\d+)\]")


def _chunk(text: str, doc: str = "a.txt", i: int = 0) -> Chunk:
    spans, start = [], 0
    for m in re.finditer(r"(?<=[.!?])\s+", text):
        spans.append(Sentence(start, m.start()))
        start = m.end()
    spans.append(Sentence(start, len(text)))
    return Chunk(f"{doc}#{i}", doc, "A title", "2025-01-01", text, 1.0, sentences=tuple(spans))


class Vocab:
    """An index's tokenizer with every term weighing the same."""

    def tokenize(self, texts):
        from index.lexical import tokenize

        return tokenize(texts)

    def idf(self, terms):
        return dict.fromkeys(terms, 1.0)


# --- pure helpers ---------------------------------------------------------------------
def test_trim_around__short_text_is_kept_whole():
    assert trim_around("A short sentence here.", 2, 7) == "A short sentence here."


@pytest.mark.parametrize("where", [0, 25, 49])
def test_trim_around__never_cuts_the_span_and_stays_near_the_limit(where):
    words = [f"w{i}" for i in range(50)]
    words[where] = "ANSWER"
    text = " ".join(words)
    start = text.index("ANSWER")
    out = trim_around(text, start, start + 6, max_words=20)
    assert "ANSWER" in out
    assert len(out.replace("…", "").split()) <= 20


def test_trim_around__a_span_longer_than_the_limit_is_shown_whole():
    text = " ".join(f"w{i}" for i in range(60))
    out = trim_around(text, 0, len(text), max_words=10)
    assert out == text


@pytest.mark.parametrize(
    "question, two",
    [
        ("How many votes did she get, and out of how many?", True),
        ("When and where was the agreement signed?", True),
        ("Who won the race and by how much?", True),
        ("Who is the CEO of ADASpace?", False),
        ("What is the capital and largest city of Peru?", False),
    ],
)
def test_asks_two_things(question, two):
    assert asks_two_things(question) is two


def test_sentence_bounds__covers_the_sentences_a_span_crosses():
    c = _chunk("First one here. Second one there. Third one.")
    a, b = sentence_bounds(c, c.text.index("here"), c.text.index("Second") + 3)
    assert c.text[a:b] == "First one here. Second one there."


def test_gate_features__are_the_best_finding_and_the_runner_up_margin():
    assert gate_features([(5.0, 1.0, 2), (3.0, 2.5, 0)]) == (5.0, 1.0, 2.0, 0.5)
    assert gate_features([(5.0, 1.0, 0)]) == (5.0, 1.0, 0.0, -10.0)  # nothing else found


def test_answer_gate__loads_only_for_the_features_it_was_fitted_on():
    cfg = {"features": list(GATE_FEATURES), "weights": [1.0, -1.0, -0.5, 0.0], "bias": -2.0}
    gate = AnswerGate.from_config(cfg)
    assert gate.score((6.0, 1.0, 0.0, -10.0)) == 3.0 and gate.score((3.0, 1.0, 2.0, 0.0)) == -1.0
    assert AnswerGate.from_config(None) is None and AnswerGate.from_config({}) is None
    assert AnswerGate.from_config({**cfg, "features": ["span_score", "null_score"]}) is None
    no_bias = {k: v for k, v in cfg.items() if k != "bias"}
    for broken in ({**cfg, "weights": [1.0]}, {**cfg, "weights": ["x"] * 4}, no_bias):
        with pytest.raises(ReaderUnavailable, match="malformed answer gate"):
            AnswerGate.from_config(broken)


# --- with the shipped model -----------------------------------------------------------
@pytest.fixture(scope="module")
def answerer(seed_pipeline):
    """The shipped model as the pipeline builds it: with an index's tokenizer and idf for coverage."""
    from bot.answer.span_reader import SpanReader

    return ReaderAnswerer(SpanReader(), vocab=seed_pipeline.lexical)


def test_answer__quotes_the_span_in_its_sentence_with_a_citation(answerer):
    chunks = [
        _chunk("Heavy rain flooded roads in the north. Schools were closed on Monday.", "weather.txt"),
        _chunk("The company was founded in 2015. Its chief executive, Wang Lei, spoke at the launch in Beijing.",
               "company.txt"),
    ]
    lenient = ReaderAnswerer(answerer.reader, threshold=-50)  # composition, whatever the calibrated threshold
    a = lenient.answer("Who is the chief executive of the company?", chunks)
    assert not a.abstained and a.mode == "reader"
    assert a.span and a.span in a.text and "Wang Lei" in a.span
    assert [int(n) for n in MARKER.findall(a.text)] == [1]
    assert a.citations[0].doc_id == "company.txt" and a.span in a.citations[0].quote


def test_answer__abstains_when_no_passage_answers(answerer):
    chunks = [_chunk("Heavy rain flooded roads in the north. Schools were closed on Monday.", "weather.txt")]
    a = answerer.answer("What was the final score of the cricket match in Mumbai?", chunks)
    assert a.abstained and a.text == ABSTAIN_TEXT
    assert a.citations and a.citations[0].doc_id == "weather.txt"  # the closest source, to read


def test_answer__threshold_decides_between_answering_and_abstaining(answerer):
    chunks = [_chunk("The bridge opened in 1932 after six years of work.", "bridge.txt")]
    q = "When did the bridge open?"
    found = answerer.find(q, chunks)
    margin = found[0].span.margin
    strict = ReaderAnswerer(answerer.reader, threshold=margin + 0.01)
    lenient = ReaderAnswerer(answerer.reader, threshold=margin - 0.01)
    assert strict.answer(q, chunks).abstained
    assert not lenient.answer(q, chunks).abstained


def test_answer__a_gate_in_reader_json_decides_unless_the_user_sets_a_threshold(answerer, tmp_path):
    from bot.answer.span_reader import SHIPPED_MODEL, SpanReader

    for name in ("model.onnx", "tokenizer.json"):
        (tmp_path / name).symlink_to(SHIPPED_MODEL / name)
    cfg = json.loads((SHIPPED_MODEL / "reader.json").read_text())
    gate = {"features": list(GATE_FEATURES), "weights": [0.0] * len(GATE_FEATURES), "bias": -1.0}  # never answers
    (tmp_path / "reader.json").write_text(json.dumps({**cfg, "gate": gate}))
    chunks = [_chunk("The bridge opened in 1932 after six years of work.", "bridge.txt")]
    q = "When did the bridge open?"
    assert not answerer.answer(q, chunks).abstained  # the shipped model (no gate) answers it
    gated = ReaderAnswerer(SpanReader(tmp_path))
    assert gated.gate == AnswerGate((0.0,) * len(GATE_FEATURES), -1.0) and gated.answer(q, chunks).abstained
    gated.gate = AnswerGate((0.0,) * len(GATE_FEATURES), 1.0)  # always answers
    assert "1932" in gated.answer(q, chunks).text
    # A threshold the user sets is the one rule, as documented for QA_READER_THRESHOLD.
    assert ReaderAnswerer(gated.reader, threshold=-50).gate is None


def test_answer__two_things_in_one_chunk_get_two_cited_sentences(answerer):
    chunk = _chunk("Judge Maria Lopez was elected to the county court in 2016 after a close race. "
                   "She hears civil cases in the east wing. Her term expires in 2028.", "court.txt")
    q = "When was Judge Lopez elected to the county court, and when does her term end?"
    a = answerer.answer(q, [chunk])
    assert not a.abstained and [int(n) for n in MARKER.findall(a.text)] == [1, 2]
    assert "2016" in a.text and "2028" in a.text
    assert [c.doc_id for c in a.citations] == ["court.txt", "court.txt"]
    assert a.citations[0].quote != a.citations[1].quote
    # One question, one thing: one sentence, however many the chunk could offer.
    one = answerer.answer("When was Judge Lopez elected to the county court?", [chunk])
    assert [int(n) for n in MARKER.findall(one.text)] == [1] and "2028" not in one.text


def test_answer__a_second_part_never_trims_the_first(answerer):
    long = ("From a tide pool in the national park, along the coast of the northern state, far from any town or "
            "harbour and well past the end of the road, the first case of the disease was reported in June 2013.")
    chunk = _chunk(long + " Soon, animals fell ill in Sitka, then off the coast of British Columbia.", "sea.txt")
    lenient = ReaderAnswerer(answerer.reader, threshold=-50)
    a = lenient.answer("Where and when was the first case of the disease reported?", [chunk])
    first = a.text.split(" [1]")[0]
    assert "2013" in first and len(first.split()) >= min(len(long.split()), MAX_WORDS) - 1


def test_answer__reads_only_max_chunks(answerer):
    filler = _chunk("Nothing relevant is said in this passage about anything.", "filler.txt")
    gold = _chunk("The treaty was signed by 42 countries in Vienna.", "treaty.txt")
    shallow = ReaderAnswerer(answerer.reader, threshold=-100, max_chunks=1)
    a = shallow.answer("How many countries signed the treaty?", [filler, gold])
    assert all(c.doc_id == "filler.txt" for c in a.citations)


def test_pipeline__reader_is_the_offline_default(seed_pipeline):
    a = seed_pipeline.ask("Who is the CEO of ADASpace?")
    assert seed_pipeline.mode == "reader" and a.mode == "reader"
    assert "Wang Lei" in a.text and a.citations[0].doc_id.endswith(".txt")
    assert len(a.text.split()) <= MAX_WORDS + 4


def test_pipeline__heuristic_answerer_is_still_selectable(seed_settings):
    from bot.pipeline import Pipeline

    p = Pipeline.from_settings(seed_settings.model_copy(update={"offline_answerer": "heuristic"}))
    assert p.mode == "extractive" and p.reader is None
    assert not p.ask("Who is the CEO of ADASpace?").abstained


def test_find__each_finding_carries_its_question_coverage_when_an_index_is_given(answerer, seed_pipeline):
    chunks = [_chunk("Rain fell all day. The bridge opened in 1932 after six years of work.", "bridge.txt")]
    q = "When did the bridge open?"
    assert ReaderAnswerer(answerer.reader).find(q, chunks)[0].cover == NO_COVER  # no index: no coverage
    cover = answerer.find(q, chunks)[0].cover
    assert cover.sentence == 1.0 and cover.near == 1.0  # "bridge" and "open" (stemmed) are both in it
    assert seed_pipeline.reader.vocab is seed_pipeline.lexical  # the pipeline hands its index over


def test_order__coverage_weights_from_reader_json_add_to_the_margin(answerer, tmp_path):
    from bot.answer.span_reader import SHIPPED_MODEL, Span, SpanReader

    for name in ("model.onnx", "tokenizer.json"):
        (tmp_path / name).symlink_to(SHIPPED_MODEL / name)
    cfg = json.loads((SHIPPED_MODEL / "reader.json").read_text())
    (tmp_path / "reader.json").write_text(json.dumps({**cfg, "coverage": {"sentence": 4.0, "near": 2.0},
                                                      "threshold": 9.0, "margin_threshold": 1.5}))
    reader = SpanReader(tmp_path)
    # The calibrated threshold is for the score with coverage; without an index the margin's own applies.
    assert ReaderAnswerer(reader, vocab=object()).threshold == 9.0 and ReaderAnswerer(reader).threshold == 1.5
    weighed = ReaderAnswerer(reader, threshold=3.0, rank_penalty=0.0)
    c = _chunk("Some text here.")
    strong = Found(c, Span(0, 0, 4, 5.0, 1.0), 0, 15)  # margin 4, covers nothing
    covered = Found(c, Span(0, 5, 9, 3.0, 1.0), 0, 15, cover=Cover(0.75, 1.0))  # margin 2, score 2 + 3 + 2
    assert weighed.score(covered) == 7.0 and [f.span.start for f in weighed.order([strong, covered])] == [5, 0]
    assert weighed.should_answer([covered]) and weighed.score(covered, weights=(0.0, 0.0, 0.0)) == 2.0 < 3.0
    (tmp_path / "reader.json").write_text(json.dumps({**cfg, "coverage": {"sentence": "x"}}))
    with pytest.raises(ReaderUnavailable, match="malformed coverage weights"):
        SpanReader(tmp_path)


def test_order__a_span_of_the_wrong_kind_pays_the_type_penalty_from_reader_json(tmp_path):
    from bot.answer.span_reader import SHIPPED_MODEL, Span, SpanReader

    for name in ("model.onnx", "tokenizer.json"):
        (tmp_path / name).symlink_to(SHIPPED_MODEL / name)
    cfg = json.loads((SHIPPED_MODEL / "reader.json").read_text())
    (tmp_path / "reader.json").write_text(json.dumps({**cfg, "coverage": {"sentence": 0.0, "near": 0.0},
                                                      "type_penalty": 5.0, "threshold": 1.0}))
    answerer = ReaderAnswerer(SpanReader(tmp_path), vocab=Vocab(), rank_penalty=0.0)
    c = _chunk("The fund raised $6 million last year. It ranked 89th among its peers.")
    found = answerer.covered("How much money did the fund raise?", [
        Found(c, Span(0, 48, 52, 6.0, 1.0), 38, 69),  # "89th": margin 5, the wrong kind
        Found(c, Span(0, 16, 26, 4.0, 1.0), 0, 37),  # "$6 million": margin 3
    ])
    assert [f.mismatch for f in found] == [True, False]
    assert [c.text[f.span.start : f.span.end] for f in answerer.order(found)] == ["$6 million", "89th"]
    assert answerer.score(found[0]) == 0.0 and not answerer.should_answer(answerer.order(found)[1:])
    plain = Found(c, Span(0, 48, 52, 6.0, 1.0), 38, 69)
    # A question asking two things may want two kinds of answer: no check.
    two = answerer.covered("In what year did the fund open, and how much money did it raise?", [plain])
    assert two[0].mismatch is False
    # Without an index (no coverage) the check is not made: its weight was calibrated with coverage.
    assert ReaderAnswerer(answerer.reader).covered("How much money did the fund raise?", [plain]) == [plain]
    (tmp_path / "reader.json").write_text(json.dumps({**cfg, "type_penalty": "high"}))
    with pytest.raises(ReaderUnavailable, match="malformed type_penalty"):
        SpanReader(tmp_path)
