"""The data that flows through the pipeline: Question -> Chunks -> Answer."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date


@dataclass(frozen=True)
class Filters:
    """Optional restrictions on what retrieval may return."""

    doc_prefix: str | None = None
    since: date | None = None
    until: date | None = None

    def is_empty(self) -> bool:
        """True when no filter is set."""
        return self.doc_prefix is None and self.since is None and self.until is None


@dataclass(frozen=True)
class Question:
    """A user's question, with optional retrieval filters."""

    text: str
    filters: Filters = field(default_factory=Filters)


@dataclass(frozen=True)
class Sentence:
    """One sentence of a chunk, as character offsets into the chunk text."""

    start: int
    end: int


@dataclass(frozen=True)
class Chunk:
    """A retrieved passage of one article, with its retrieval score."""

    id: str
    doc_id: str
    title: str
    date: str | None
    text: str
    score: float
    start: int = 0
    end: int = 0
    sentences: tuple[Sentence, ...] = ()
    # For an article passage (bot.passages): (offset in text, chunk id) where each stitched chunk starts.
    parts: tuple[tuple[int, str], ...] = ()

    def chunk_id_at(self, offset: int) -> str:
        """The id of the stored chunk holding text[offset] (this chunk's own id unless it is a passage)."""
        found = self.id
        for start, chunk_id in self.parts:
            if start > offset:
                break
            found = chunk_id
        return found

    def sentence_texts(self) -> list[str]:
        """The chunk's sentences as strings (the whole text when spans are unknown)."""
        if not self.sentences:
            return [self.text]
        return [self.text[s.start : s.end] for s in self.sentences]


@dataclass(frozen=True)
class Citation:
    """Source number n of an answer: the article and the exact sentence quoted."""

    n: int
    doc_id: str
    title: str
    date: str | None
    quote: str
    chunk_id: str
    score: float = 0.0


@dataclass(frozen=True)
class Answer:
    """The pipeline's reply: text with [n] markers, and the citations they point to."""

    question: str
    text: str
    citations: tuple[Citation, ...] = ()
    abstained: bool = False
    mode: str = "extractive"
    note: str | None = None
    latency_ms: float = 0.0
    # The ranked chunks the answer was drawn from (hit@k, MRR and context recall are computed on them).
    retrieved: tuple[Chunk, ...] = ()
    standalone_question: str | None = None
    # The short answer inside the text, when the answerer found one (the trained reader's span).
    span: str | None = None
    # What an LLM read instead: one passage per article, made from the ranked chunks (empty offline).
    passages: tuple[Chunk, ...] = ()

    def to_dict(self) -> dict:
        """The JSON shape shared by `qa ask --json`, eval results and logs."""
        return {
            "question": self.question,
            "answer": self.text,
            "abstained": self.abstained,
            "mode": self.mode,
            "citations": [
                {
                    "n": c.n,
                    "doc_id": c.doc_id,
                    "title": c.title,
                    "date": c.date,
                    "quote": c.quote,
                    "chunk_id": c.chunk_id,
                    "score": round(c.score, 4),
                }
                for c in self.citations
            ],
            "retrieved": [
                {"doc_id": c.doc_id, "chunk_id": c.id, "score": round(c.score, 4)}
                for c in self.retrieved
            ],
            "passages": [
                {"doc_id": c.doc_id, "chunk_id": c.id, "score": round(c.score, 4)}
                for c in self.passages
            ],
            "latency_ms": round(self.latency_ms, 1),
            "note": self.note,
            "span": self.span,
        }


@dataclass(frozen=True)
class Turn:
    """One exchange of a conversation."""

    question: str
    answer: Answer | None = None
    standalone: str | None = None


@dataclass
class Conversation:
    """The turns so far of one chat (a REPL session or a Slack thread).

    Mutable on purpose: adapters keep one per session and append as they go.
    """

    turns: list[Turn] = field(default_factory=list)
    max_turns: int = 6

    def add(self, question: str, answer: Answer | None = None) -> None:
        """Record a finished turn, keeping only the most recent ones."""
        standalone = answer.standalone_question if answer else None
        self.turns.append(Turn(question, answer, standalone))
        del self.turns[: -self.max_turns]

    def reset(self) -> None:
        """Forget every turn."""
        self.turns.clear()

    @property
    def last(self) -> Turn | None:
        """The most recent turn, if any."""
        return self.turns[-1] if self.turns else None


@dataclass(frozen=True)
class Delta:
    """A piece of streamed answer text."""

    text: str
