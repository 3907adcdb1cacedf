"""The offline default answerer: a trained extractive reader picks the answer span in the retrieved chunks.

The answer shows the span inside its sentence (trimmed around the span, never through it) with its
[n] citation; a second cited sentence only when the question asks for two things and the reader finds
the second in another sentence. Each finding's score is its span's margin over "no answer", plus, when
the model's reader.json carries coverage weights, the weighted share of the question's terms its sentence
holds (bot.answer.coverage), less a penalty when the span is not the kind of answer asked for, such as
"89th" for "how much money" (bot.answer.answer_type). It abstains when the best score is below the
threshold calibrated on held-out data (train/calibrate.py), or, for a model whose reader.json carries an
answer gate, when the gate's logistic score over the best finding (span and "no answer" logits, chunk
rank, runner-up margin) is below zero.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, replace

from bot.answer import ABSTAIN_TEXT
from bot.answer.answer_type import mismatch
from bot.answer.coverage import NO_COVER, Cover, Vocabulary, covers
from bot.answer.span_reader import Span, SpanReader
from bot.errors import ReaderUnavailable
from bot.types import Answer, Chunk, Citation

MAX_WORDS = 35  # the goal is a median answer <= 40 words; a two-part answer's second part gets half
# "How many X and how many Y", "who won and by how much": two question words joined by "and",
# or "and" followed by a second wh-phrase ("..., and out of how many?").
_TWO_THINGS = re.compile(
    r"\b(?:who|what|when|where|which|why|how)\b.*\b(?:and|as well as)\b(?:\s+\w+){0,3}\s+"
    r"\b(?:who|what|when|where|which|why|how|whom|whose)\b",
    re.I,
)
_FALLBACK_SENTENCE = re.compile(r"[^.!?]+(?:[.!?]+[\"”’']?|$)")


_DATE_LINE = re.compile(
    r"^\W*(?:(?:mon|tue|wed|thu|fri|sat|sun)\w*,?\s+)?(?:\w+\.?\s+\d{1,2},?\s+\d{4}|\d{1,2}\s+\w+\.?\s+\d{4}|\d{4}-\d{2}-\d{2})"
    r"(?:\s*(?:at\s+)?\d{1,2}:\d{2}.*)?\W*$",
    re.I,
)
_END = tuple(".!\"”’')")


def heading_ranges(chunk: Chunk) -> list[tuple[int, int]]:
    """Lines of the chunk that are no answer: the headline, datelines, questions and short unpunctuated headings."""
    out, pos = [], 0
    title = chunk.title.strip().lower()
    for line in chunk.text.split("\n"):
        start, pos = pos, pos + len(line) + 1
        t = line.strip()
        if not t:
            continue
        if (t.lower() == title or _DATE_LINE.match(t) or t.endswith("?")
                or (not t.endswith(_END) and len(t.split()) <= 15)):
            out.append((start, start + len(line)))
    return out


def asks_two_things(question: str) -> bool:
    """True when the question joins two questions ("... and how many ...?")."""
    return bool(_TWO_THINGS.search(question))


def wrong_kind(question: str, span: str) -> bool:
    """True when the span is not the kind of answer the question asks for (bot.answer.answer_type); a
    question asking two things may want two kinds ("what year ..., and where ...") and is not checked."""
    return not asks_two_things(question) and mismatch(question, span)


GATE_FEATURES = ("span_score", "null_score", "rank", "runner_up_margin")
_NO_RUNNER_UP = -10.0  # a margin no real span has: "nothing else found"


def gate_features(ordered: Sequence[tuple[float, float, int]]) -> tuple[float, ...]:
    """The answer gate's inputs from (span score, no-answer score, chunk rank) of the findings, best first."""
    score, null, rank = ordered[0]
    runner_up = ordered[1][0] - ordered[1][1] if len(ordered) > 1 else _NO_RUNNER_UP
    return (score, null, float(rank), runner_up)


@dataclass(frozen=True)
class AnswerGate:
    """Answer when weights . gate_features + bias >= 0 (a logistic model fitted on validation data)."""

    weights: tuple[float, ...]
    bias: float

    @classmethod
    def from_config(cls, cfg: dict | None) -> AnswerGate | None:
        """The gate stored in a model's reader.json, or None when it has none (or not for these features)."""
        if not cfg or tuple(cfg.get("features", ())) != GATE_FEATURES:
            return None
        try:
            weights = tuple(float(w) for w in cfg["weights"])
            bias = float(cfg["bias"])
        except (KeyError, TypeError, ValueError):
            weights, bias = (), 0.0
        if len(weights) != len(GATE_FEATURES):
            raise ReaderUnavailable("the reader model's reader.json has a malformed answer gate: "
                                    f"it needs {len(GATE_FEATURES)} numeric weights and a bias "
                                    "(re-run `python -m train.calibrate --write`)")
        return cls(weights, bias)

    def score(self, features: Sequence[float]) -> float:
        """Above 0: answer; below: abstain."""
        return float(sum(w * x for w, x in zip(self.weights, features)) + self.bias)


@dataclass(frozen=True)
class Found:
    """A span the reader found, located in its chunk's sentence."""

    chunk: Chunk
    span: Span
    sent_start: int
    sent_end: int
    rank: int = 0  # the chunk's place in retrieval order
    cover: Cover = NO_COVER  # how much of the question its sentence holds (without a lexical index: none)
    mismatch: bool = False  # the span is not the kind of answer the question asks for (bot.answer.answer_type)

    @property
    def sentence(self) -> str:
        """The sentence(s) holding the span."""
        return self.chunk.text[self.sent_start : self.sent_end].strip()


def sentence_spans(chunk: Chunk) -> list[tuple[int, int]]:
    """The chunk's sentences as character ranges (split on end punctuation when the index gave none)."""
    return [(s.start, s.end) for s in chunk.sentences] or [
        (m.start(), m.end()) for m in _FALLBACK_SENTENCE.finditer(chunk.text)
    ]


def sentence_bounds(chunk: Chunk, start: int, end: int, neighbours: int = 0) -> tuple[int, int]:
    """Character range of the chunk's sentence(s) covering [start, end), widened by `neighbours` sentences
    on each side."""
    spans = sentence_spans(chunk)
    covering = [i for i, (a, b) in enumerate(spans) if a < end and b > start]
    if not covering:
        return start, end
    first, last = max(0, covering[0] - neighbours), min(len(spans) - 1, covering[-1] + neighbours)
    return spans[first][0], spans[last][1]


def trim_around(text: str, start: int, end: int, max_words: int = MAX_WORDS) -> str:
    """text cut to at most ~max_words words around text[start:end], never cutting into that span."""
    words = [(m.start(), m.end()) for m in re.finditer(r"\S+", text)]
    if len(words) <= max_words:
        return text.strip()
    first = next((i for i, (a, b) in enumerate(words) if b > start), 0)
    last = max((i for i, (a, b) in enumerate(words) if a < end), default=first)
    room = max(0, max_words - (last - first + 1))
    # Keep more context before the span than after: a news sentence names its subject first.
    before = min(first, (2 * room) // 3)
    after = min(len(words) - 1 - last, room - before)
    before = min(first, room - after)
    lo, hi = first - before, last + after
    piece = text[words[lo][0] : words[hi][1]]
    return f"{'… ' if lo > 0 else ''}{piece}{' …' if hi < len(words) - 1 else ''}"


class ReaderAnswerer:
    """Answers from the retrieved chunks with a trained span reader, or abstains."""

    mode = "reader"

    def __init__(self, reader: SpanReader, threshold: float | None = None, max_chunks: int | None = None,
                 max_words: int = MAX_WORDS, rank_penalty: float | None = None, vocab: Vocabulary | None = None):
        self.reader = reader
        # The index's tokenizer and idf, for the question coverage of each finding; its weights come
        # with the model (reader.json), calibrated with it. Without an index coverage counts as zero.
        self.vocab = vocab
        # The reader scores each chunk alone; retrieval saw the whole corpus. A span from a lower-ranked
        # chunk must beat the better-ranked ones by rank_penalty per place (calibrated on validation data).
        self.rank_penalty = reader.rank_penalty if rank_penalty is None else rank_penalty
        # Unset means the values calibrated for this model on validation data (its reader.json); a
        # threshold the user sets replaces the gate, so that one number decides, as documented.
        # Without an index there is no coverage, and the calibrated threshold for the margin alone applies.
        calibrated = reader.threshold if vocab is not None else reader.margin_threshold
        self.threshold = calibrated if threshold is None else threshold
        self.gate = AnswerGate.from_config(reader.gate) if threshold is None else None
        self.max_chunks = reader.depth if max_chunks is None else max_chunks
        self.max_words = max_words

    def find(self, question: str, chunks: Sequence[Chunk]) -> list[Found]:
        """Every chunk's best span, best first (see `order`)."""
        chunks = list(chunks[: self.max_chunks])
        spans = self.reader.read(question, [c.text for c in chunks], [heading_ranges(c) for c in chunks])
        found = []
        for sp in spans:
            chunk = chunks[sp.passage]
            a, b = sentence_bounds(chunk, sp.start, sp.end)
            found.append(Found(chunk, sp, a, b, sp.passage))
        return self.order(self.covered(question, found))

    def covered(self, question: str, found: list[Found], answered: str = "") -> list[Found]:
        """The findings with their question coverage and answer-type check (unchanged without an index to
        weigh terms by: the weights were calibrated together); with `answered`, coverage of the question
        terms that text does not hold (bot.answer.coverage)."""
        if self.vocab is None or not found:
            return found
        pairs = []
        for f in found:
            lo, hi = sentence_bounds(f.chunk, f.span.start, f.span.end, neighbours=1)
            pairs.append((f.chunk.text[f.sent_start : f.sent_end], f.chunk.text[lo:hi]))
        return [replace(f, cover=c, mismatch=wrong_kind(question, f.chunk.text[f.span.start : f.span.end]))
                for f, c in zip(found, covers(self.vocab, question, pairs, answered))]

    def score(self, f: Found, weights: tuple[float, float, float] | None = None) -> float:
        """The finding's score: its span margin plus its weighted question coverage, less the answer-type
        penalty when its span is not the kind of answer asked for."""
        ws, wn, wt = (*self.reader.coverage, self.reader.type_penalty) if weights is None else weights
        return f.span.margin + ws * f.cover.sentence + wn * f.cover.near - wt * f.mismatch

    def order(self, found: list[Found], rank_penalty: float | None = None) -> list[Found]:
        """Findings best first: score less the rank penalty of their chunk."""
        p = self.rank_penalty if rank_penalty is None else rank_penalty
        return sorted(found, key=lambda f: self.score(f) - p * f.rank, reverse=True)

    def answer(self, question: str, chunks: Sequence[Chunk], vector=None) -> Answer:
        """An Answer quoting the best span's sentence with [1], or an abstention listing the closest sources."""
        found = self.find(question, chunks)
        if not self.should_answer(found):
            return self._abstain(question, chunks, found)
        return self.compose(question, chunks, found)

    def should_answer(self, found: list[Found]) -> bool:
        """True when the findings (best first) are worth answering from, False to abstain."""
        if not found:
            return False
        if self.gate is None:
            return self.score(found[0]) >= self.threshold
        return self.gate.score(gate_features([(f.span.score, f.span.null, f.rank) for f in found])) >= 0

    def compose(self, question: str, chunks: Sequence[Chunk], found: list[Found]) -> Answer:
        """The answer from the reader's findings (best first): the best span's sentence, trimmed, cited."""
        picked = [found[0]]
        if asks_two_things(question):
            best = found[0]
            for f in found[1:]:
                other_sentence = (f.chunk.doc_id, f.chunk.start + f.sent_start) != (
                    best.chunk.doc_id, best.chunk.start + best.sent_start)
                if not other_sentence or f.chunk.doc_id != best.chunk.doc_id:
                    continue
                f = self.covered(question, [f], answered=best.sentence)[0]
                if self.score(f) >= self.threshold:
                    picked.append(f)
                    break
            else:
                second = self.second_in_chunk(question, best)
                if second is not None:
                    picked.append(second)
        # A second sentence never takes words from the first answer: it gets half a budget of its own.
        budgets = [self.max_words, self.max_words // 2]
        citations, parts = [], []
        for f, budget in zip(picked, budgets):
            n = len(citations) + 1
            citations.append(Citation(n, f.chunk.doc_id, f.chunk.title, f.chunk.date, f.sentence, f.chunk.id,
                                      round(f.span.margin, 4)))
            text = f.chunk.text[f.sent_start : f.sent_end]
            lead = len(text) - len(text.lstrip())
            s0, s1 = f.span.start - f.sent_start - lead, f.span.end - f.sent_start - lead
            parts.append(f"{trim_around(text.strip(), s0, s1, budget)} [{n}]")
        best = found[0]
        return Answer(question=question, text=" ".join(parts), citations=tuple(citations), mode=self.mode,
                      retrieved=tuple(chunks), span=best.chunk.text[best.span.start : best.span.end])

    def second_in_chunk(self, question: str, best: Found) -> Found | None:
        """The best span of best's chunk outside best's sentence, when its score clears the threshold.

        The reader keeps one span per chunk, and the two things a question asks for often sit in
        neighbouring sentences of one chunk ("elected in 2016 ... her term ends in 2028"); one more read
        of that chunk, with the first answer's sentence blocked, finds the second.
        """
        chunk = best.chunk
        blocked = [*heading_ranges(chunk), (best.sent_start, best.sent_end)]
        spans = self.reader.read(question, [chunk.text], [blocked])
        if not spans:
            return None
        sp = spans[0]
        a, b = sentence_bounds(chunk, sp.start, sp.end)
        if a < best.sent_end and b > best.sent_start:  # a sentence split the reader's span across
            return None
        second = Found(chunk, Span(best.span.passage, sp.start, sp.end, sp.score, sp.null), a, b, best.rank)
        second = self.covered(question, [second], answered=best.sentence)[0]
        return second if self.score(second) >= self.threshold else None

    def _abstain(self, question: str, chunks: Sequence[Chunk], found: list[Found]) -> Answer:
        """The abstention, with the closest sources (at most 3 articles) for the reader to check."""
        citations: list[Citation] = []
        docs: set[str] = set()
        for f in found:
            if f.chunk.doc_id in docs:
                continue
            docs.add(f.chunk.doc_id)
            citations.append(Citation(len(citations) + 1, f.chunk.doc_id, f.chunk.title, f.chunk.date, f.sentence,
                                      f.chunk.id, round(f.span.margin, 4)))
            if len(citations) == 3:
                break
        return Answer(question=question, text=ABSTAIN_TEXT, citations=tuple(citations), abstained=True,
                      mode=self.mode, retrieved=tuple(chunks))
