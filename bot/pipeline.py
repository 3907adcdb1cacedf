"""The one answer pipeline: question (+ conversation) -> retrieved chunks -> Answer with citations.

Slack, the REPL and evaluation are thin adapters around `Pipeline.ask` / `Pipeline.stream`.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import replace
from typing import TYPE_CHECKING

from bot.answer.extractive import ABSTAIN_TEXT, ExtractiveAnswerer
from bot.errors import BadQuestion, IndexMissing
from bot.followup import carry_subject, subject_of  # noqa: F401 - subject_of re-exported
from bot.passages import article_passages, stitch
from bot.retrieval import HybridRetriever, relative_score_fusion
from bot.types import Answer, Chunk, Conversation, Delta, Filters, Question

if TYPE_CHECKING:
    import numpy as np

    from bot.config import Settings
    from index.lexical import LexicalIndex

def release_free_memory() -> None:
    """Hand the heap that opening the index freed back to the OS (glibc only; a no-op elsewhere).

    Parsing the ONNX model and opening Chroma free ~30 MB that glibc keeps in its arenas (the model
    loads on a second thread, which gets its own arena); on the 110k-chunk scale index this is the
    difference between a 568 and a 539 MiB query process.
    """
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def load_reader(settings: Settings):
    """The trained reader answerer the settings ask for, or None for the heuristic answerer.

    The shipped model is optional at run time (a checkout without it still answers, heuristically);
    a model the user named explicitly must load, or the error says why.
    """
    if settings.offline_answerer != "reader":
        return None
    from bot.answer.reader import ReaderAnswerer
    from bot.answer.span_reader import SHIPPED_MODEL, SpanReader

    if settings.reader_model is None and not (SHIPPED_MODEL / "model.onnx").exists():
        return None
    reader = SpanReader(settings.reader_model, settings.model_cache_dir)
    return ReaderAnswerer(reader, threshold=settings.reader_threshold, max_chunks=settings.reader_chunks)


class Pipeline:
    """Retrieve, then answer (LLM when configured, else extractive), with conversation context."""

    def __init__(
        self,
        retriever: HybridRetriever,
        extractive: ExtractiveAnswerer,
        llm=None,
        top_k: int = 5,
        max_question_chars: int = 4000,
        info: dict | None = None,
        rerank_depth: int = 0,
        rerank_weight: float = 1.0,
        llm_sources: int = 5,
        passage_chars: int = 0,
        reader=None,
    ):
        self.retriever = retriever
        self.extractive = extractive
        self.llm = llm
        self.top_k = top_k
        self.max_question_chars = max_question_chars
        self.info = info or {}
        self.rerank_depth = rerank_depth
        self.rerank_weight = rerank_weight
        self.llm_sources = llm_sources
        self.passage_chars = passage_chars
        # The offline answer: the trained reader when one is loaded, else the heuristic sentence scorer.
        self.reader = reader
        self.offline = reader or extractive

    @classmethod
    def from_settings(cls, settings: Settings) -> Pipeline:
        """Open the index named by settings and build the answerers it asks for."""
        from index.build import lexical_folder
        from index.embedding import MiniLMEncoder
        from index.lexical import LexicalIndex, SentenceVectors
        from index.store import ChromaStore

        # Loading the ONNX model is mostly native code that releases the GIL, so it overlaps with
        # importing and opening Chroma on the other core: ~0.25 s off every cold start.
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(2) as pool:
            pending = pool.submit(MiniLMEncoder, settings.model_cache_dir)
            pending_reader = pool.submit(load_reader, settings)
            store = ChromaStore.open(
                settings.data_dir, settings.collection, MiniLMEncoder.name, settings.chroma_host, settings.chroma_port
            )
            encoder = pending.result()
            reader = pending_reader.result()
        folder = lexical_folder(settings.data_dir, settings.collection, settings.chroma_host, settings.chroma_port)
        lexical = LexicalIndex.open(folder)
        if lexical is None:
            raise IndexMissing("The index is incomplete (no BM25 side yet): run `qa index` again.")
        sentence_vectors = SentenceVectors(folder, readonly=True)
        retriever = HybridRetriever(
            store, lexical, encoder, candidates=settings.candidates, fusion=settings.fusion,
            dense_weight=settings.dense_weight, sentence_vectors=sentence_vectors,
            sentence_weight=settings.sentence_weight,
        )
        extractive = ExtractiveAnswerer(encoder, lexical, sentence_vectors, threshold=settings.abstain_threshold)
        offline = reader or extractive
        llm = None
        if settings.llm_enabled:
            from bot.answer.llm import LLMAnswerer

            llm = LLMAnswerer.from_settings(settings, fallback=offline)
        offline_name = (f"offline reader ({reader.reader.name})" if reader
                        else "offline extractive (all-MiniLM-L6-v2 + BM25)")
        info = {
            "answerer": "llm" if llm else offline.mode,
            "model": settings.llm_model if llm else offline_name,
            "index": f"{settings.collection}: {lexical.meta.n_docs} documents, {lexical.meta.n_chunks} chunks",
            "backend": settings.backend,
        }
        release_free_memory()
        return cls(retriever, extractive, llm, settings.top_k, settings.max_question_chars, info,
                   rerank_depth=settings.rerank_depth, rerank_weight=settings.rerank_weight,
                   llm_sources=settings.llm_sources, passage_chars=settings.passage_chars, reader=reader)

    @property
    def lexical(self) -> LexicalIndex | None:
        """The BM25 side (also the chunk table used to show passages)."""
        return self.retriever.lexical

    @property
    def mode(self) -> str:
        """"llm", "reader" or "extractive" (the heuristic offline answerer)."""
        return "llm" if self.llm else self.offline.mode

    # --- steps ------------------------------------------------------------------
    def check(self, question: Question | str) -> Question:
        """The question as a Question, or BadQuestion when it is empty or too long."""
        q = Question(question) if isinstance(question, str) else question
        text = q.text.strip() if isinstance(q.text, str) else ""
        if not text:
            raise BadQuestion("Please ask a question: it was empty.")
        if len(text) > self.max_question_chars:
            raise BadQuestion(
                f"That question is {len(text):,} characters long; please keep it under {self.max_question_chars:,}."
            )
        return replace(q, text=text)

    def standalone(self, question: str, conversation: Conversation | None) -> str:
        """The question rewritten to stand alone, given the conversation so far."""
        if not conversation or not conversation.turns:
            return question
        previous = conversation.last.standalone or conversation.last.question
        if self.llm:
            return self.llm.condense(question, conversation)
        return carry_subject(question, previous)

    def retrieve(
        self, text: str, filters: Filters = Filters(), k: int | None = None, vector: np.ndarray | None = None
    ) -> list[Chunk]:
        """The k (default top_k) best chunks for a standalone question: fused retrieval, then the rerank."""
        k = k or self.top_k
        if vector is None:
            vector = self.retriever.encoder.encode_one(text)
        chunks = self.retriever.retrieve(text, max(k, self.rerank_depth), filters, vector)
        return self.rerank(text, chunks, vector)[:k]

    def rerank(self, text: str, chunks: list[Chunk], vector: np.ndarray) -> list[Chunk]:
        """Chunks reordered by fused score + rerank_weight x their best sentence's evidence score.

        Retrieval scores whole chunks; the answerer's sentence score (meaning, overlap, proximity,
        answer type) says which chunk holds a sentence that answers. Measured on SQuAD and RealTime QA
        (docs/benchmarks.md), this second look at the candidates moves the gold article up. LlamaIndex's
        rerank postprocessors need a cross-encoder or an LLM; neither ships offline here.
        """
        if self.rerank_depth <= 0 or len(chunks) < 2:
            return chunks
        best: dict[str, float] = {}
        for s in self.extractive.score(text, chunks, vector):
            best[s.chunk.id] = max(best.get(s.chunk.id, s.score), s.score)
        if not best:
            return chunks
        combined = relative_score_fusion(
            [[(c.id, c.score) for c in chunks], list(best.items())], [1.0, self.rerank_weight]
        )
        return sorted(chunks, key=lambda c: combined[c.id], reverse=True)

    def sources(self, text: str, filters: Filters = Filters(), vector: np.ndarray | None = None) -> tuple[list[Chunk], list[Chunk]]:
        """(chunks, sources) for an LLM: the top_k ranked chunks, and passages of the best articles.

        Sources are article passages (bot.passages) built from the whole reranked candidate list;
        with passage_chars 0 (or no chunk table) they are the chunks themselves.
        """
        if self.passage_chars <= 0 or self.lexical is None:
            chunks = self.retrieve(text, filters, vector=vector)
            return chunks, chunks
        ranked = self.retrieve(text, filters, k=max(self.top_k, self.rerank_depth), vector=vector)
        passages = article_passages(self.lexical, text, ranked, self.llm_sources, self.passage_chars)
        return ranked[: self.top_k], passages

    def _finish(self, answer: Answer, q: Question, standalone: str, t0: float) -> Answer:
        return replace(
            answer,
            question=q.text,
            standalone_question=standalone if standalone != q.text else None,
            latency_ms=(time.perf_counter() - t0) * 1000,
        )

    def _no_chunks(self, q: Question) -> Answer:
        note = "no article matches the filters" if not q.filters.is_empty() else "the index is empty"
        return Answer(question=q.text, text=ABSTAIN_TEXT, abstained=True, mode=self.mode, note=note)

    # --- entry points -------------------------------------------------------------
    def ask(self, question: Question | str, conversation: Conversation | None = None) -> Answer:
        """Answer one question; the conversation (if any) gives follow-ups their context."""
        t0 = time.perf_counter()
        q = self.check(question)
        standalone = self.standalone(q.text, conversation)
        vector = self.retriever.encoder.encode_one(standalone)
        if self.llm:
            chunks, sources = self.sources(standalone, q.filters, vector)
        else:
            chunks = self.retrieve(standalone, q.filters, vector=vector)
        if not chunks:
            return self._finish(self._no_chunks(q), q, standalone, t0)
        if self.llm:
            answer = self.llm.answer(standalone, chunks, sources)
        else:
            answer = self.offline.answer(standalone, chunks, vector)
        return self._finish(answer, q, standalone, t0)

    def stream(self, question: Question | str, conversation: Conversation | None = None) -> Iterator[Delta | Answer]:
        """Like ask, but yields text deltas as an LLM produces them; the last item is the Answer."""
        t0 = time.perf_counter()
        q = self.check(question)
        if not self.llm:
            yield self.ask(q, conversation)
            return
        standalone = self.standalone(q.text, conversation)
        chunks, sources = self.sources(standalone, q.filters)
        if not chunks:
            yield self._finish(self._no_chunks(q), q, standalone, t0)
            return
        for item in self.llm.stream(standalone, chunks, sources):
            if isinstance(item, Answer):
                yield self._finish(item, q, standalone, t0)
            else:
                yield item

    def passage(self, chunk_id: str, radius: int = 0) -> str:
        """The text around a chunk (for `/open N`): the chunk and `radius` neighbours each side."""
        if self.lexical is None:
            return ""
        found = self.lexical.by_ids([chunk_id]).get(chunk_id)
        if found is None:
            return ""
        return stitch(self.lexical.neighbours(found.doc_id, found.position, radius))
