"""The one answer pipeline: question (+ conversation) -> retrieved chunks -> Answer with citations.

Slack, the REPL and evaluation are thin adapters around `Pipeline.ask` / `Pipeline.stream`.
"""

from __future__ import annotations

import time
import unicodedata
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from bot.answer.base import Answerer, TopK
from bot.answer.extractive import ABSTAIN_TEXT, ExtractiveAnswerer
from bot.errors import BadQuestion, IndexMissing
from bot.followup import carry_subject, subject_of  # noqa: F401 - subject_of re-exported
from bot.passages import ArticlePassages, stitch
from bot.postprocess import EvidenceRerank, Postprocessor
from bot.retrieval import HybridRetriever
from bot.types import Answer, Chunk, Conversation, Delta, Filters, Question

if TYPE_CHECKING:
    import numpy as np

    from bot.answer.llm import LLMAnswerer
    from bot.answer.reader import ReaderAnswerer
    from bot.config import Settings
    from index.lexical import LexicalIndex


def load_span_reader(settings: Settings):
    """The trained span reader the settings ask for, or None for the heuristic answerer.

    The shipped model is optional at run time (a checkout without it still answers, heuristically);
    a model the user named explicitly must load, or the error says why.
    """
    if settings.offline_answerer != "reader":
        return None
    from bot.answer.span_reader import SHIPPED_MODEL, SpanReader

    if settings.reader_model is None and not (SHIPPED_MODEL / "model.onnx").exists():
        return None
    return SpanReader(settings.reader_model, settings.model_cache_dir)


@dataclass(frozen=True)
class PipelineOptions:
    """The pipeline's knobs. No defaults here: Settings holds them, and from_settings is the one way in."""

    top_k: int  # ranked chunks the offline answerers read (and Answer.retrieved holds)
    max_question_chars: int
    rerank_depth: int  # fused candidates re-ranked by sentence evidence (0 = off)
    rerank_weight: float
    llm_sources: int  # articles given to an LLM, one passage each
    passage_chars: int  # characters of each passage (0 = the LLM reads the top_k chunks)

    @classmethod
    def from_settings(cls, settings: Settings) -> PipelineOptions:
        """The pipeline part of the settings."""
        return cls(**{name: getattr(settings, name) for name in cls.__dataclass_fields__})


class Pipeline:
    """Retrieve, postprocess (rerank), then answer (LLM when configured, else offline), with conversation context.

    `extractive`, `reader` and `llm` are the answerers it was built with (reader and llm may be None);
    `answerer` is the one that answers, already wired: an LLM falls back to the offline answerer.
    """

    def __init__(
        self,
        retriever: HybridRetriever,
        answerer: Answerer,
        options: PipelineOptions,
        *,
        postprocessors: Sequence[Postprocessor] = (),
        extractive: ExtractiveAnswerer,
        reader: ReaderAnswerer | None = None,
        llm: LLMAnswerer | None = None,
        info: dict | None = None,
    ):
        self.retriever = retriever
        self.answerer = answerer
        self.options = options
        self.postprocessors = tuple(postprocessors)
        self.extractive = extractive
        self.reader = reader
        self.llm = llm
        self.info = info or {}

    @property
    def offline(self) -> Answerer:
        """The offline answerer: the trained reader when one is loaded, else the heuristic sentence scorer."""
        return self.reader or self.extractive

    @classmethod
    def compose(
        cls, retriever: HybridRetriever, options: PipelineOptions, extractive: ExtractiveAnswerer,
        reader: ReaderAnswerer | None = None, llm_settings: Settings | None = None, info: dict | None = None,
    ) -> Pipeline:
        """Wire the answer chain: rerank by the extractive scorer, the offline answerer on the top_k chunks, and
        with llm_settings an LLM reading article passages (or the top_k chunks) that falls back to it."""
        offline = TopK(reader or extractive, options.top_k)
        answerer: Answerer = offline
        llm = None
        if llm_settings is not None:
            from bot.answer.llm import LLMAnswerer

            passages = None
            if options.passage_chars > 0 and retriever.lexical is not None:
                passages = ArticlePassages(retriever.lexical, options.llm_sources, options.passage_chars)
            llm = LLMAnswerer.from_settings(llm_settings, fallback=offline, passages=passages)
            # Passages are made from every ranked candidate; without them the LLM reads the top_k chunks.
            answerer = llm if passages else TopK(llm, options.top_k)
        rerank = EvidenceRerank(extractive, options.rerank_depth, options.rerank_weight)
        return cls(retriever, answerer, options, postprocessors=[rerank], extractive=extractive, reader=reader,
                   llm=llm, info=info)

    @classmethod
    def from_settings(cls, settings: Settings) -> Pipeline:
        """Open the index named by settings and build the answerers it asks for."""
        from index.embedding import MiniLMEncoder
        from index.indexer import Indexer
        from index.lexical import LexicalIndex
        from index.sentence_vectors import SentenceVectors

        # Loading the ONNX model is mostly native code that releases the GIL, so it overlaps with
        # importing and opening Chroma on the other core: ~0.25 s off every cold start.
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(2) as pool:
            pending = pool.submit(MiniLMEncoder, settings.model_cache_dir, precision=settings.embed_precision)
            pending_reader = pool.submit(load_span_reader, settings)
            indexer = Indexer.from_settings(settings)
            store = indexer.open_store()
            encoder = pending.result()
            span_reader = pending_reader.result()
        folder = indexer.lexical_dir
        lexical = LexicalIndex.open(folder)
        if lexical is None:
            raise IndexMissing("The index is incomplete (no BM25 side yet): run `qa index` again.")
        reader = None
        if span_reader is not None:
            from bot.answer.reader import ReaderAnswerer

            reader = ReaderAnswerer(span_reader, threshold=settings.reader_threshold,
                                    max_chunks=settings.reader_chunks, vocab=lexical)
        sentence_vectors = SentenceVectors(folder, readonly=True)
        retriever = HybridRetriever(
            store, lexical, encoder, candidates=settings.candidates, fusion=settings.fusion,
            dense_weight=settings.dense_weight, sentence_vectors=sentence_vectors,
            sentence_weight=settings.sentence_weight,
        )
        extractive = ExtractiveAnswerer(encoder, lexical, sentence_vectors, threshold=settings.abstain_threshold)
        offline = reader or extractive
        offline_name = (f"offline reader ({reader.reader.name})" if reader
                        else "offline extractive (all-MiniLM-L6-v2 + BM25)")
        info = {
            "answerer": "llm" if settings.llm_enabled else offline.mode,
            "model": settings.llm_model if settings.llm_enabled else offline_name,
            "index": f"{settings.collection}: {lexical.meta.n_docs} documents, {lexical.meta.n_chunks} chunks",
            "backend": settings.backend,
        }
        from index.memory import release_free_memory

        release_free_memory()
        return cls.compose(retriever, PipelineOptions.from_settings(settings), extractive, reader,
                           settings if settings.llm_enabled else None, info)

    @property
    def lexical(self) -> LexicalIndex | None:
        """The BM25 side (also the chunk table used to show passages)."""
        return self.retriever.lexical

    @property
    def mode(self) -> str:
        """"llm", "reader" or "extractive" (the heuristic offline answerer)."""
        return self.answerer.mode

    # --- steps ------------------------------------------------------------------
    def check(self, question: Question | str) -> Question:
        """The question as a Question, or BadQuestion when it is empty or too long."""
        q = Question(question) if isinstance(question, str) else question
        # NFC, as articles are stored: a decomposed accent would miss the composed one in the text.
        text = unicodedata.normalize("NFC", q.text).strip() if isinstance(q.text, str) else ""
        if not text:
            raise BadQuestion("Please ask a question: it was empty.")
        if len(text) > self.options.max_question_chars:
            raise BadQuestion(
                f"That question is {len(text):,} characters long; please keep it under {self.options.max_question_chars:,}."
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
        """The k (default top_k) best chunks for a standalone question: fused retrieval, then the postprocessors."""
        k = k or self.options.top_k
        if vector is None:
            vector = self.retriever.encoder.encode_one(text)
        chunks = self.retriever.retrieve(text, max([k, *(p.depth for p in self.postprocessors)]), filters, vector)
        for step in self.postprocessors:
            chunks = step.process(text, chunks, vector)
        return chunks[:k]

    def candidates(self, text: str, filters: Filters = Filters(), vector: np.ndarray | None = None) -> list[Chunk]:
        """Every ranked candidate the answerer gets (top_k, or as deep as a postprocessor reads)."""
        return self.retrieve(text, filters, max([self.options.top_k, *(p.depth for p in self.postprocessors)]), vector)

    def _finish(self, answer: Answer, q: Question, standalone: str, t0: float, ranked: Sequence[Chunk]) -> Answer:
        return replace(
            answer,
            question=q.text,
            standalone_question=standalone if standalone != q.text else None,
            latency_ms=(time.perf_counter() - t0) * 1000,
            retrieved=tuple(ranked[: self.options.top_k]),  # the same in every mode, so metrics compare
        )

    def _no_chunks(self, q: Question) -> Answer:
        note = "no article matches the filters" if not q.filters.is_empty() else "the index is empty"
        return Answer(question=q.text, text=ABSTAIN_TEXT, abstained=True, mode=self.mode, note=note)

    def _run(self, question: Question | str, conversation: Conversation | None, streaming: bool) -> Iterator[Delta | Answer]:
        """check -> standalone question -> ranked candidates -> the answerer; the last item is the Answer."""
        t0 = time.perf_counter()
        q = self.check(question)
        standalone = self.standalone(q.text, conversation)
        vector = self.retriever.encoder.encode_one(standalone)
        ranked = self.candidates(standalone, q.filters, vector)
        if not ranked:
            yield self._finish(self._no_chunks(q), q, standalone, t0, ranked)
            return
        stream = getattr(self.answerer, "stream", None) if streaming else None
        if stream is None:
            yield self._finish(self.answerer.answer(standalone, ranked, vector), q, standalone, t0, ranked)
            return
        for item in stream(standalone, ranked, vector):
            yield self._finish(item, q, standalone, t0, ranked) if isinstance(item, Answer) else item

    # --- entry points -------------------------------------------------------------
    def ask(self, question: Question | str, conversation: Conversation | None = None) -> Answer:
        """Answer one question; the conversation (if any) gives follow-ups their context."""
        *_, answer = self._run(question, conversation, streaming=False)
        return answer

    def stream(self, question: Question | str, conversation: Conversation | None = None) -> Iterator[Delta | Answer]:
        """Like ask, but yields text deltas as an LLM produces them; the last item is the Answer."""
        yield from self._run(question, conversation, streaming=True)

    def passage(self, chunk_id: str, radius: int = 0) -> str:
        """The text around a chunk (for `/open N`): the chunk and `radius` neighbours each side."""
        if self.lexical is None:
            return ""
        found = self.lexical.by_ids([chunk_id]).get(chunk_id)
        if found is None:
            return ""
        return stitch(self.lexical.neighbours(found.doc_id, found.position, radius))
