"""Postprocessors: steps between retrieval and the answerer that reorder the fused candidates.

LlamaIndex calls these node postprocessors; its rerankers need a cross-encoder or an LLM, neither of
which ships offline here, so the one rerank is by the offline answerer's own sentence evidence.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol

from bot.retrieval import relative_score_fusion
from bot.types import Chunk

if TYPE_CHECKING:
    import numpy as np

    from bot.answer.extractive import ExtractiveAnswerer


class Postprocessor(Protocol):
    """Reorders (or filters) ranked chunks; depth is how many candidates it wants from the retriever."""

    depth: int

    def process(self, question: str, chunks: Sequence[Chunk], vector: np.ndarray) -> list[Chunk]:
        """The chunks, reordered."""
        ...


class EvidenceRerank:
    """Chunks reordered by fused score + weight x their best sentence's evidence score.

    Retrieval scores whole chunks; the answerer's sentence score (meaning, overlap, proximity, answer
    type) says which chunk holds a sentence that answers. Measured on SQuAD and RealTime QA
    (docs/benchmarks.md), this second look at the candidates moves the gold article up.
    """

    def __init__(self, scorer: ExtractiveAnswerer, depth: int, weight: float):
        self.scorer = scorer
        self.depth = depth  # 0 turns the rerank off
        self.weight = weight

    def process(self, question: str, chunks: Sequence[Chunk], vector: np.ndarray) -> list[Chunk]:
        """The chunks, best evidence first (unchanged when off or with fewer than two)."""
        if self.depth <= 0 or len(chunks) < 2:
            return list(chunks)
        best: dict[str, float] = {}
        for s in self.scorer.score(question, chunks, vector):
            best[s.chunk.id] = max(best.get(s.chunk.id, s.score), s.score)
        if not best:
            return list(chunks)
        combined = relative_score_fusion(
            [[(c.id, c.score) for c in chunks], list(best.items())], [1.0, self.weight]
        )
        return sorted(chunks, key=lambda c: combined[c.id], reverse=True)
