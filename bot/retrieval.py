"""Hybrid retrieval: Chroma vector search + BM25 (+ the best sentence of each candidate), fused."""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np

from bot.types import Chunk, Filters, Sentence
from index.embedding import MiniLMEncoder
from index.lexical import LexicalIndex
from index.sentence_vectors import SentenceVectors
from index.store import ChromaStore, StoredChunk

log = logging.getLogger(__name__)

RRF_K = 60  # the constant from Cormack et al. (2009), also LlamaIndex's default


def parse_spans(spans: str) -> tuple[Sentence, ...]:
    """Sentence offsets from their stored "s-e,s-e" form."""
    out = []
    for part in spans.split(","):
        if "-" in part:
            s, e = part.split("-", 1)
            out.append(Sentence(int(s), int(e)))
    return tuple(out)


def to_chunk(stored: StoredChunk, score: float) -> Chunk:
    """The pipeline's Chunk for a stored one."""
    return Chunk(
        id=stored.id,
        doc_id=stored.doc_id,
        title=stored.title,
        date=stored.date,
        text=stored.text,
        score=score,
        start=stored.start,
        end=stored.end,
        sentences=parse_spans(stored.sentences),
    )


def reciprocal_rank_fusion(rankings: Sequence[Sequence[str]], k: int = RRF_K) -> dict[str, float]:
    """RRF scores of ids over several rankings: sum of 1 / (k + rank), ranks counted from 1.

    LlamaIndex's QueryFusionRetriever has a reciprocal-rank mode too, but importing llama_index.core
    costs ~1.9 s here, more than the whole cold-start budget of a query (1.5 s). Its formula differs in
    detail: it counts ranks from 0, and breaks ties in its own order (here: the caller sorts by score).
    """
    scores: dict[str, float] = {}
    for ranking in rankings:
        for rank, chunk_id in enumerate(ranking, start=1):
            scores[chunk_id] = scores.get(chunk_id, 0.0) + 1.0 / (k + rank)
    return scores


def relative_score_fusion(
    rankings: Sequence[Sequence[tuple[str, float]]], weights: Sequence[float] | None = None
) -> dict[str, float]:
    """Min-max normalise each retriever's scores and add them, weighted (after LlamaIndex's "relative_score" mode).

    Unlike RRF it keeps how far ahead a hit is: a chunk that BM25 ranks first by a wide margin
    but that vector search misses still comes out near the top.
    """
    weights = weights or [1.0 / len(rankings)] * len(rankings)
    fused: dict[str, float] = {}
    for ranking, weight in zip(rankings, weights):
        if not ranking:
            continue
        scores = [s for _, s in ranking]
        lo, hi = min(scores), max(scores)
        for chunk_id, score in ranking:
            norm = (score - lo) / (hi - lo) if hi > lo else 1.0
            fused[chunk_id] = fused.get(chunk_id, 0.0) + weight * norm
    return fused


def best_sentence_scores(
    ids: Sequence[str], vector: np.ndarray, sentence_vectors: SentenceVectors
) -> list[tuple[str, float]]:
    """Each chunk's best sentence cosine with the question (chunks without stored vectors are left out)."""
    stored = sentence_vectors.get(list(ids))
    return [(i, float((stored[i] @ vector).max())) for i in ids if i in stored and len(stored[i])]


def _default(name: str):
    """The default of a Settings field (bot/config.py), read without reading the environment."""
    from bot.config import Settings

    return Settings.model_fields[name].default


class HybridRetriever:
    """Vector + BM25 retrieval over one index; returns the pipeline's Chunk type.

    With relative-score fusion a third signal joins when the index has sentence vectors: the
    candidate's best single sentence against the question. A 200-word-piece chunk vector averages
    every sentence in it, so a one-line answer ("Shen Wei, Founder of Vivo") inside a chunk about
    something else ranks low on the vector side; its own sentence vector does not. Only the
    candidates of the other two retrievers are rescored, so it costs one SQLite read, not a search.
    """

    def __init__(
        self,
        store: ChromaStore,
        lexical: LexicalIndex | None,
        encoder: MiniLMEncoder,
        candidates: int | None = None,
        fusion: str | None = None,
        keep_top: int = 1,
        dense_weight: float | None = None,
        sentence_vectors: SentenceVectors | None = None,
        sentence_weight: float | None = None,
    ):
        self.store = store
        self.lexical = lexical
        self.encoder = encoder
        # Unset knobs take the Settings defaults: one source of truth for every default.
        self.candidates = _default("candidates") if candidates is None else candidates
        self.fusion = _default("fusion") if fusion is None else fusion
        self.keep_top = keep_top
        self.dense_weight = _default("dense_weight") if dense_weight is None else dense_weight
        self.sentence_vectors = sentence_vectors
        weight = _default("sentence_weight") if sentence_weight is None else sentence_weight
        self.sentence_weight = weight if sentence_vectors is not None else 0.0
        meta = getattr(lexical, "meta", None)
        if meta is not None:
            stored = store.count()
            if stored != meta.n_chunks:
                # A run killed between writing the store and rebuilding BM25, or one still running.
                # Answers stay right (BM25 hits the store lacks are dropped), but the user should know.
                log.warning("the index is out of step (%d chunks in Chroma, %d in BM25): run `qa index` to "
                            "bring it up to date", stored, meta.n_chunks)

    def allowed_docs(self, filters: Filters) -> list[str] | None:
        """Article ids that pass the filters, or None when unfiltered."""
        if filters.is_empty() or self.lexical is None:
            return None
        return self.lexical.doc_ids(filters.doc_prefix, filters.since, filters.until)

    def retrieve(
        self, text: str, k: int, filters: Filters = Filters(), vector: np.ndarray | None = None
    ) -> list[Chunk]:
        """The k best chunks for text, best first; score is the fused score."""
        allowed = self.allowed_docs(filters)
        if allowed is not None and not allowed:
            return []
        if vector is None:
            vector = self.encoder.encode_one(text)
        n = max(self.candidates, k)
        dense = self.store.query(vector, n, doc_ids=allowed)
        sparse = self.lexical.search(text, n, doc_ids=allowed) if self.lexical else []
        # The BM25 side can lag behind the store (a run killed before rebuilding it): never answer
        # from a chunk the store no longer holds, such as one of a removed article.
        dense_ids = {c.id for c, _ in dense}
        unconfirmed = [c.id for c, _ in sparse if c.id not in dense_ids]
        if unconfirmed:
            held = self.store.existing(unconfirmed) | dense_ids
            sparse = [(c, s) for c, s in sparse if c.id in held]
        by_id: dict[str, StoredChunk] = {c.id: c for c, _ in sparse}
        by_id.update({c.id: c for c, _ in dense})  # the store's copy is authoritative
        if self.fusion == "rrf":
            fused = reciprocal_rank_fusion([[c.id for c, _ in dense], [c.id for c, _ in sparse]])
        else:
            rankings = [[(c.id, s) for c, s in dense], [(c.id, s) for c, s in sparse]]
            weights = [self.dense_weight, 1.0 - self.dense_weight - self.sentence_weight]
            if self.sentence_weight > 0:
                rankings.append(best_sentence_scores(list(by_id), vector, self.sentence_vectors))
                weights.append(self.sentence_weight)
            fused = relative_score_fusion(rankings, weights)
        ranked = sorted(fused, key=fused.get, reverse=True)
        # Fusion can bury a hit that only one retriever finds, however far ahead it is (RRF gives
        # BM25's clear #1 less than two mediocre shared hits). Each retriever's top hits always stay.
        keep = [c.id for c, _ in dense[: self.keep_top]] + [c.id for c, _ in sparse[: self.keep_top]]
        best = list(dict.fromkeys(keep))[:k]
        best += [i for i in ranked if i not in best][: k - len(best)]
        best.sort(key=fused.get, reverse=True)
        return [to_chunk(by_id[i], fused[i]) for i in best]
