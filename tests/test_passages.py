"""Article passages over the real seed index: grouping, order, size limit, stitching."""

from __future__ import annotations

from bot.passages import GAP, article_passages, stitch

QUESTION = "Who is the CEO of ADASpace?"


def _ranked(pipeline, k=20):
    return pipeline.retrieve(QUESTION, k=k)


def test_one_passage_per_article_in_first_rank_order(seed_pipeline):
    ranked = _ranked(seed_pipeline)
    passages = article_passages(seed_pipeline.lexical, QUESTION, ranked, max_articles=5, max_chars=4000)
    first_seen = list(dict.fromkeys(c.doc_id for c in ranked))
    assert [p.doc_id for p in passages] == first_seen[:5]
    best = {}
    for c in ranked:
        best.setdefault(c.doc_id, c)
    for p in passages:
        assert p.id == best[p.doc_id].id and p.score == best[p.doc_id].score
        assert best[p.doc_id].text in p.text


def test_max_articles_limits_the_passages(seed_pipeline):
    ranked = _ranked(seed_pipeline)
    passages = article_passages(seed_pipeline.lexical, QUESTION, ranked, max_articles=2, max_chars=4000)
    assert len(passages) == 2
    assert len({p.doc_id for p in passages}) == 2


def test_passage_holds_more_than_its_best_chunk_and_respects_the_limit(seed_pipeline):
    ranked = _ranked(seed_pipeline)
    lexical = seed_pipeline.lexical
    for max_chars in (1500, 2500, 4000):
        for p in article_passages(lexical, QUESTION, ranked, max_articles=5, max_chars=max_chars):
            # Overlapping chunks are counted whole against the limit, so the stitched text is shorter.
            assert len(p.text) <= max_chars or len(p.text) == len(lexical.by_ids([p.id])[p.id].text)
    wide = article_passages(lexical, QUESTION, ranked, max_articles=1, max_chars=4000)[0]
    assert len(wide.text) > len(ranked[0].text) + 500


def test_tiny_limit_gives_the_best_chunk_alone(seed_pipeline):
    ranked = _ranked(seed_pipeline)
    for p in article_passages(seed_pipeline.lexical, QUESTION, ranked, max_articles=5, max_chars=10):
        assert p.text == seed_pipeline.lexical.by_ids([p.id])[p.id].text


def test_window_adds_neighbours_of_a_lone_hit(seed_pipeline):
    lexical = seed_pipeline.lexical
    hit = next(c for c in _ranked(seed_pipeline) if c.id.endswith("#3"))
    alone = article_passages(lexical, QUESTION, [hit], 1, 10_000, window=0, lexical_fill=False)[0]
    wide = article_passages(lexical, QUESTION, [hit], 1, 10_000, window=1, lexical_fill=False)[0]
    assert alone.text == hit.text
    stored = lexical.by_ids([hit.id])[hit.id]
    assert wide.text == stitch(lexical.neighbours(hit.doc_id, stored.position, 1))


def test_non_adjacent_parts_are_joined_with_a_gap(seed_pipeline):
    lexical = seed_pipeline.lexical
    doc = "002_0c73d536360565c7.txt"
    parts = lexical.by_ids([f"{doc}#1", f"{doc}#7"])
    from bot.types import Chunk

    hits = [Chunk(id=s.id, doc_id=s.doc_id, title=s.title, date=s.date, text=s.text, score=1.0) for s in parts.values()]
    p = article_passages(lexical, QUESTION, hits, 1, 10_000, window=0, lexical_fill=False)[0]
    assert p.text == parts[f"{doc}#1"].text + GAP + parts[f"{doc}#7"].text


def test_no_chunks_no_passages(seed_pipeline):
    assert article_passages(seed_pipeline.lexical, QUESTION, [], 5, 4000) == []


def test_lexical_fill_prefers_the_chunk_sharing_the_question_words_over_a_neighbour(seed_pipeline):
    from bot.types import Chunk

    lexical = seed_pipeline.lexical
    doc = "002_0c73d536360565c7.txt"
    n = lexical.by_ids([f"{doc}#0"])[f"{doc}#0"].n_chunks
    parts = {s.position: s for s in lexical.span(doc, 0, n - 1)}
    # A word that occurs in one far chunk of the article only (not in the hit or its neighbours).
    words = {p: set(lexical.tokenize([s.text])[0]) for p, s in parts.items()}
    far = max(parts)
    unique = sorted(words[far] - set().union(*(w for p, w in words.items() if p != far)))
    assert unique, "the last chunk of article 002 has no word of its own"
    hit = parts[0]
    chunk = Chunk(id=hit.id, doc_id=doc, title=hit.title, date=hit.date, text=hit.text, score=1.0)
    cap = len(hit.text) + len(parts[far].text)
    question = f"What about {unique[0]}?"
    filled = article_passages(lexical, question, [chunk], 1, cap)[0]
    assert filled.text == hit.text + GAP + parts[far].text
    plain = article_passages(lexical, question, [chunk], 1, len(hit.text) + len(parts[1].text), lexical_fill=False)[0]
    assert plain.text == stitch([hit, parts[1]])


def test_passage_sentences_are_sentences_of_the_chunk_they_are_attributed_to(seed_pipeline):
    lexical = seed_pipeline.lexical
    ranked = _ranked(seed_pipeline)
    passages = article_passages(lexical, QUESTION, ranked, max_articles=5, max_chars=4000)
    assert any(len(p.parts) > 1 for p in passages)
    for p in passages:
        assert p.sentences
        for span in p.sentences:
            sentence = p.text[span.start : span.end]
            source = lexical.by_ids([p.chunk_id_at(span.start)])[p.chunk_id_at(span.start)]
            assert source.doc_id == p.doc_id
            assert sentence in source.text, (p.id, sentence[:60])
        # Every word of the passage outside the gaps belongs to some sentence or to the chunk joins.
        covered = sum(span.end - span.start for span in p.sentences)
        assert covered > 0.8 * len(p.text)


def test_chunk_id_at_maps_offsets_to_parts():
    from bot.types import Chunk

    c = Chunk(id="a#2", doc_id="a", title="t", date=None, text="x" * 30, score=1.0, parts=((0, "a#1"), (10, "a#2"), (20, "a#5")))
    assert [c.chunk_id_at(i) for i in (0, 9, 10, 19, 20, 29)] == ["a#1", "a#1", "a#2", "a#2", "a#5", "a#5"]
    plain = Chunk(id="b#0", doc_id="b", title="t", date=None, text="y", score=1.0)
    assert plain.chunk_id_at(0) == "b#0"
