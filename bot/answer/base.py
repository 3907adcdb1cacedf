"""The answerer interface: the extractive, reader and LLM answerers all take the ranked chunks and give an Answer.

The pipeline is retriever -> postprocessors -> answerer (LlamaIndex's retrieve, postprocess, synthesize);
an answerer that can stream also has `stream`, whose last item is the Answer.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Protocol

from bot.types import Answer, Chunk, Delta

if TYPE_CHECKING:
    import numpy as np


class Answerer(Protocol):
    """Answers a standalone question from ranked chunks (best first); vector is the question's embedding."""

    mode: str

    def answer(self, question: str, chunks: Sequence[Chunk], vector: np.ndarray | None = None) -> Answer:
        """An Answer with [n] citations into the chunks, or an abstention."""
        ...


class StreamingAnswerer(Answerer, Protocol):
    """An answerer that can also yield its text as it is written."""

    def stream(self, question: str, chunks: Sequence[Chunk], vector: np.ndarray | None = None) -> Iterator[Delta | Answer]:
        """Delta pieces, then the final Answer as the last item."""
        ...


class TopK:
    """An answerer that reads only the first k of the ranked chunks it is given.

    The pipeline hands answerers every postprocessed candidate, because an LLM's article passages are
    made from all of them; the offline answerers (and an LLM reading chunks, not passages) read the top k.
    """

    def __init__(self, answerer: Answerer, k: int):
        self.answerer = answerer
        self.k = k

    @property
    def mode(self) -> str:
        """The wrapped answerer's mode."""
        return self.answerer.mode

    def answer(self, question: str, chunks: Sequence[Chunk], vector: np.ndarray | None = None) -> Answer:
        """The wrapped answerer's answer from the first k chunks."""
        return self.answerer.answer(question, chunks[: self.k], vector)

    def stream(self, question: str, chunks: Sequence[Chunk], vector: np.ndarray | None = None) -> Iterator[Delta | Answer]:
        """The wrapped answerer's stream from the first k chunks (one Answer when it cannot stream)."""
        stream = getattr(self.answerer, "stream", None)
        if stream is None:
            yield self.answer(question, chunks, vector)
        else:
            yield from stream(question, chunks[: self.k], vector)
