"""Hybrid retrieval: the fusion formulas, and HybridRetriever on the real seed index."""

from __future__ import annotations

from datetime import date

import numpy as np
import pytest

from bot.retrieval import (
    RRF_K,
    HybridRetriever,
    best_sentence_scores,
    reciprocal_rank_fusion,
    relative_score_fusion,
)
from bot.types import Filters
from index.store import StoredChunk

ADASPACE = "What satellite product did ADASpace debut?"
GENERAL = "What happened at the meeting with the companies?"


# --- fusion formulas ------------------------------------------------------------------
def test_rrf_sums_reciprocal_ranks_with_k_60():
    scores = reciprocal_rank_fusion([["a", "b", "c"], ["b", "c", "d"]])
    assert RRF_K == 60
    assert scores == pytest.approx(
        {"a": 1 / 61, "b": 1 / 62 + 1 / 61, "c": 1 / 63 + 1 / 62, "d": 1 / 63}
    )
    assert sorted(scores, key=scores.get, reverse=True) == ["b", "c", "a", "d"]


def test_rrf_custom_k_and_empty_rankings():
    assert reciprocal_rank_fusion([["x", "y"], []], k=1) == pytest.approx({"x": 1 / 2, "y": 1 / 3})
    assert reciprocal_rank_fusion([[], []]) == {}


def test_relative_fusion_min_max_normalises_and_weights():
    dense = [("a", 3.0), ("b", 2.0), ("c", 1.0)]
    sparse = [("b", 10.0), ("d", 0.0)]
    # Default weights: 1/2 each; a=(1.0)/2, b=(0.5+1.0)/2, c=0, d=0.
    assert relative_score_fusion([dense, sparse]) == pytest.approx({"a": 0.5, "b": 0.75, "c": 0.0, "d": 0.0})
    # Explicit weights.
    assert relative_score_fusion([dense, sparse], weights=[0.8, 0.2]) == pytest.approx(
        {"a": 0.8, "b": 0.8 * 0.5 + 0.2, "c": 0.0, "d": 0.0}
    )


def test_relative_fusion_single_score_and_empty_ranking():
    # One hit (hi == lo) normalises to 1.0; an empty ranking adds nothing.
    assert relative_score_fusion([[("only", 0.3)], []]) == pytest.approx({"only": 0.5})


# --- keep_top: each retriever's top hit survives fusion (constructed case) -----------------
def _stored(cid: str) -> StoredChunk:
    return StoredChunk(cid, cid.split("#")[0], "T", None, f"text of {cid}", 0, 10, 0, 1, "h", "0-10")


class _FakeStore:
    def __init__(self, ids, also_held=()):
        self.ids = ids
        self.held = set(ids) | set(also_held)  # every chunk the store holds (the vector side ranks only ids)

    def query(self, vector, k, doc_ids=None):
        return [(_stored(i), 1.0 - 0.01 * n) for n, i in enumerate(self.ids)][:k]

    def existing(self, ids):
        return self.held & set(ids)


class _FakeLexical:
    def __init__(self, ids):
        self.ids = ids

    def search(self, text, k, doc_ids=None):
        return [(_stored(i), 10.0 - n) for n, i in enumerate(self.ids)][:k]


class _FakeEncoder:
    def encode_one(self, text):
        return np.zeros(384, dtype=np.float32)


def _constructed(keep_top: int) -> HybridRetriever:
    shared = [f"s{i}#0" for i in range(6)]
    # BM25's clear #1 "x" is unknown to the vector side; the shared hits outscore it under RRF.
    return HybridRetriever(_FakeStore(shared, also_held=["x#0"]), _FakeLexical(["x#0", *shared]), _FakeEncoder(),
                           keep_top=keep_top, fusion="rrf")


def test_constructed_case_rrf_alone_would_bury_bm25_top_hit():
    ids = [c.id for c in _constructed(keep_top=0).retrieve("q", 3)]
    assert "x#0" not in ids  # the case really exercises keep_top


def test_each_retrievers_top_hit_survives_fusion_constructed():
    got = _constructed(keep_top=1).retrieve("q", 3)
    ids = [c.id for c in got]
    assert len(ids) == 3
    assert "x#0" in ids  # BM25's #1
    assert "s0#0" in ids  # the vector side's #1
    scores = [c.score for c in got]
    assert scores == sorted(scores, reverse=True)  # still best-first by fused score


# --- the seed index -----------------------------------------------------------------
@pytest.fixture(scope="module")
def retriever(seed_pipeline) -> HybridRetriever:
    return seed_pipeline.retriever


def test_adaspace_question_returns_article_002_first(retriever):
    got = retriever.retrieve(ADASPACE, 5)
    assert got, "no chunks retrieved"
    assert got[0].doc_id.startswith("002_")
    scores = [c.score for c in got]
    assert scores == sorted(scores, reverse=True)
    assert len({c.id for c in got}) == len(got)


def test_rrf_fusion_on_seed_index_also_ranks_002_first(retriever):
    relative = HybridRetriever(retriever.store, retriever.lexical, retriever.encoder, fusion="rrf")
    got = relative.retrieve(ADASPACE, 5)
    assert got[0].doc_id.startswith("002_")


def test_bm25_top_hit_is_among_results_on_seed_index(retriever):
    query = "chlor-alkali industry praised contribution"
    bm25_top = retriever.lexical.search(query, 20)[0][0].id
    dense_top = retriever.store.query(retriever.encoder.encode_one(query), 20)[0][0].id
    ids = [c.id for c in retriever.retrieve(query, 3)]
    assert bm25_top in ids
    assert dense_top in ids


def test_doc_prefix_filter_returns_only_that_article(retriever):
    got = retriever.retrieve(GENERAL, 8, Filters(doc_prefix="003"))
    assert got
    assert all(c.doc_id.startswith("003") for c in got)


def test_since_2020_returns_only_002(retriever):
    got = retriever.retrieve(GENERAL, 8, Filters(since=date(2020, 1, 1)))
    assert got
    assert {c.doc_id[:3] for c in got} == {"002"}


def test_until_2019_excludes_002_and_undated(retriever):
    got = retriever.retrieve(ADASPACE, 8, Filters(until=date(2019, 12, 31)))
    assert got
    docs = {c.doc_id[:3] for c in got}
    assert docs <= {"003", "004"}  # 000 and 001 have no date; 002 is from 2023
    assert all(c.date and c.date <= "2019-12-31" for c in got)


def test_prefix_matching_nothing_returns_empty(retriever):
    assert retriever.retrieve(ADASPACE, 8, Filters(doc_prefix="zzz-no-such-doc")) == []


# --- the best-sentence channel ------------------------------------------------------------
VIVO = "Who founded Vivo?"
VIVO_CHUNK = "003_1c4934fb60e6f169.txt#0"  # "... Shen Wei, Founder of Vivo ..." in a chunk listing many people


def test_best_sentence_scores_take_each_chunks_best_sentence(retriever):
    vector = retriever.encoder.encode_one(VIVO)
    scores = dict(best_sentence_scores([VIVO_CHUNK, "no-such-chunk#0"], vector, retriever.sentence_vectors))
    assert set(scores) == {VIVO_CHUNK}  # unknown ids are left out, not scored 0
    stored = retriever.sentence_vectors.get([VIVO_CHUNK])[VIVO_CHUNK]
    assert scores[VIVO_CHUNK] == pytest.approx(float((stored @ vector).max()))
    assert len(stored) > 1 and scores[VIVO_CHUNK] > float((stored @ vector).mean()) + 0.05


def test_sentence_channel_finds_a_one_line_answer_the_chunk_vector_misses(retriever):
    without = HybridRetriever(retriever.store, retriever.lexical, retriever.encoder, dense_weight=0.3, sentence_weight=0.2)
    assert without.sentence_weight == 0.0  # no sentence vectors given: the channel is off
    assert VIVO_CHUNK not in [c.id for c in without.retrieve(VIVO, 8)]  # the case really needs the channel
    got = [c.id for c in retriever.retrieve(VIVO, 8)]
    assert retriever.sentence_weight > 0
    assert VIVO_CHUNK in got  # within the 8 chunks the answerer reads


def test_bm25_hits_of_an_article_the_store_no_longer_holds_are_never_returned(tmp_path, seed_settings, caplog):
    """A run killed after removing an article from Chroma but before rebuilding BM25 left the old
    BM25 side in place: its rows for the removed article must not be served."""
    import logging
    import shutil

    from bot.pipeline import Pipeline
    from tests.conftest import make_settings

    data = tmp_path / "data"
    shutil.copytree(seed_settings.data_dir, data)
    settings = make_settings(data)
    pipeline = Pipeline.from_settings(settings)
    assert any(c.doc_id.startswith("002_") for c in pipeline.retriever.retrieve(ADASPACE, 5))
    pipeline.retriever.store.delete_docs(["002_0c73d536360565c7.txt"])  # what the killed run got done
    with caplog.at_level(logging.WARNING, logger="bot.retrieval"):
        reopened = Pipeline.from_settings(settings)
    assert "out of step" in caplog.text and "qa index" in caplog.text
    for retriever in (pipeline.retriever, reopened.retriever):
        got = retriever.retrieve(ADASPACE, 8)
        assert got and not any(c.doc_id.startswith("002_") for c in got)
    answer = reopened.ask("Who is the CEO of ADASpace?")
    assert not any(c.doc_id.startswith("002_") for c in answer.citations)
