"""Tests for bot.answer.citations.validate: marker parsing, renumbering and quotes."""

from bot.answer.citations import strip_markers, validate
from bot.types import Chunk, Sentence


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
    "Analysts expect a first cut in June.",
    score=0.9,
)
STORM = make_chunk(
    "storm#0", "2024/03/storm", "Storm hits coast", "2024-03-05",
    "A storm flooded the northern coast overnight.",
    "Thousands of homes lost power.",
    score=0.7,
)
CHUNKS = [ECB, STORM]


def test_valid_markers_map_to_their_chunks():
    text, cites, dropped = validate("Rates stayed at 4% [1]. Homes lost power [2].", CHUNKS)
    assert text == "Rates stayed at 4% [1]. Homes lost power [2]."
    assert dropped == 0
    assert [(c.n, c.doc_id, c.chunk_id, c.title, c.date, c.score) for c in cites] == [
        (1, "2024/03/ecb", "ecb#0", "ECB holds rates", "2024-03-07", 0.9),
        (2, "2024/03/storm", "storm#0", "Storm hits coast", "2024-03-05", 0.7),
    ]


def test_renumbers_by_first_appearance():
    text, cites, dropped = validate("Homes lost power [2]. Rates held [1]. Power is back [2].", CHUNKS)
    assert text == "Homes lost power [1]. Rates held [2]. Power is back [1]."
    assert [c.chunk_id for c in cites] == ["storm#0", "ecb#0"]
    assert [c.n for c in cites] == [1, 2]
    assert dropped == 0


def test_grouped_and_adjacent_markers():
    text, cites, _ = validate("Both happened [2, 1]. Again [1][2].", CHUNKS)
    assert text == "Both happened [1, 2]. Again [2][1]."
    assert [c.chunk_id for c in cites] == ["storm#0", "ecb#0"]


def test_missing_sources_are_removed_and_counted():
    text, cites, dropped = validate("Rates held [1][7]. Inflation slowed [9]. Power [0, 2].", CHUNKS)
    assert text == "Rates held [1]. Inflation slowed. Power [2]."
    assert dropped == 3
    assert [c.chunk_id for c in cites] == ["ecb#0", "storm#0"]


def test_only_invalid_markers_leave_no_citation():
    text, cites, dropped = validate("Rates held [3]. Nothing else [4, 5].", CHUNKS)
    assert (text, cites, dropped) == ("Rates held. Nothing else.", [], 3)


def test_no_markers():
    assert validate("Just text.", CHUNKS) == ("Just text.", [], 0)
    assert validate("", CHUNKS) == ("", [], 0)


def test_repeated_and_duplicate_markers_give_one_citation_per_chunk():
    text, cites, _ = validate("Rates held [1, 1]. Inflation slowed [1].", CHUNKS)
    assert text == "Rates held [1]. Inflation slowed [1]."
    assert len(cites) == 1


def test_quote_is_the_best_supporting_sentence():
    _, cites, _ = validate("Inflation slowed to 2.6% in February [1].", CHUNKS)
    assert cites[0].quote == "Inflation in the euro area slowed to 2.6% in February."
    _, cites, _ = validate("The first rate cut is expected in June [1].", CHUNKS)
    assert cites[0].quote == "Analysts expect a first cut in June."


def test_quote_uses_the_sentence_holding_the_marker():
    # The marker after the full stop belongs to the first answer sentence, not the second.
    _, cites, _ = validate("Homes lost power. [2] The northern coast flooded.", CHUNKS)
    assert cites[0].quote == "Thousands of homes lost power."


def test_quote_falls_back_to_first_sentence():
    _, cites, _ = validate("Something unrelated entirely [2].", CHUNKS)
    assert cites[0].quote == "A storm flooded the northern coast overnight."


def test_chunk_without_sentence_spans_quotes_its_text():
    bare = Chunk("x#0", "x", "X", None, "  One whole passage without spans.  ", 0.1)
    _, cites, _ = validate("Passage [1].", [bare])
    assert cites[0].quote == "One whole passage without spans."
    assert cites[0].date is None


def test_strip_markers():
    assert strip_markers("Rates held [1, 2]. Power [3].") == "Rates held. Power."
