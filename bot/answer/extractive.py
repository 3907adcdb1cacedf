"""The offline answerer: picks the sentences of the retrieved chunks that answer the question.

Sentence score = semantic similarity to the question (same MiniLM model) + idf-weighted word overlap
+ the chunk's retrieval rank + a small bonus when the sentence has what the question asks for
(a number for "how many", a date for "when", a name for "who"). Below a calibrated threshold it
abstains instead of quoting something unrelated.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from bot.types import Answer, Chunk, Citation
from index.embedding import MiniLMEncoder
from index.lexical import LexicalIndex

ABSTAIN_TEXT = "I couldn't find that in the articles."
MAX_WORDS = 32  # answers stay short: a long sentence is cut to the clauses around the evidence
W_SEMANTIC, W_LEXICAL, W_RANK, W_TYPE = 0.55, 0.30, 0.10, 0.08

_NUMBER = re.compile(r"\d|\b(?:one|two|three|four|five|six|seven|eight|nine|ten|hundred|thousand|million|billion|dozen)\b", re.I)
_DATE = re.compile(
    r"\b(?:1[89]\d\d|20\d\d)\b|\b(?:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]*\.?\s+\d|\b\d{1,2}(?:st|nd|rd|th)\b|\d{1,2}:\d{2}",
    re.I,
)
_NAME = re.compile(r"(?<![.!?]\s)(?<!^)\b[A-Z][a-z]+(?:[ -][A-Z][a-z’']+)+")
_CLAUSE_SPLIT = re.compile(r"(?<=[,;:])\s+|\s+(?=—)|(?<=—)")


@dataclass(frozen=True)
class ScoredSentence:
    """A candidate sentence with its evidence score."""

    chunk: Chunk
    text: str
    start: int  # offset in the article, to recognise the same sentence in overlapping chunks
    score: float
    lexical: float
    semantic: float


def _answer_type(question: str) -> str | None:
    q = question.lower()
    if re.search(r"\bhow (many|much|long|far|big|large|old)\b|\bwhat (number|percentage|amount|share)\b", q):
        return "number"
    if re.search(r"\bwhen\b|\bwhat (year|date|day|month|time)\b|\bwhich (year|date|day|month)\b", q):
        return "date"
    if re.search(r"\bwho\b|\bwhose\b|\bwhom\b", q):
        return "name"
    return None


def _type_match(kind: str | None, text: str) -> bool:
    if kind == "number":
        return bool(_NUMBER.search(text))
    if kind == "date":
        return bool(_DATE.search(text))
    if kind == "name":
        return bool(_NAME.search(text))
    return False


class ExtractiveAnswerer:
    """Composes a short answer with [n] citations from retrieved sentences, or abstains."""

    mode = "extractive"

    def __init__(
        self,
        encoder: MiniLMEncoder,
        lexical: LexicalIndex | None,
        threshold: float = 0.40,
        max_sentences: int = 2,
        max_candidates: int = 40,
    ):
        self.encoder = encoder
        self.lexical = lexical
        self.threshold = threshold
        self.max_sentences = max_sentences
        self.max_candidates = max_candidates

    # --- scoring ---------------------------------------------------------------
    def _tokens(self, texts: Sequence[str]) -> list[list[str]]:
        if self.lexical is not None:
            return self.lexical.tokenize(texts)
        return [re.findall(r"\w\w+", t.lower()) for t in texts]

    def _idf(self, terms: Sequence[str]) -> dict[str, float]:
        if self.lexical is not None:
            return self.lexical.idf(terms)
        return {t: 1.0 for t in terms}

    def score(self, question: str, chunks: Sequence[Chunk], vector: np.ndarray | None = None) -> list[ScoredSentence]:
        """Every distinct sentence of the chunks, best evidence first."""
        seen: set[tuple[str, int]] = set()
        cands: list[tuple[Chunk, str, int, int]] = []  # chunk, text, article offset, chunk rank
        for rank, chunk in enumerate(chunks):
            spans = chunk.sentences or ()
            texts = [(chunk.text[s.start : s.end], s.start) for s in spans] or [(chunk.text, 0)]
            for text, offset in texts:
                key = (chunk.doc_id, chunk.start + offset)
                if key in seen or len(text.split()) < 3:
                    continue
                seen.add(key)
                cands.append((chunk, text, chunk.start + offset, rank))
        if not cands:
            return []
        q_terms = set(self._tokens([question])[0])
        sent_terms = self._tokens([c[1] for c in cands])
        idf = self._idf(sorted(q_terms))
        total = sum(idf.values()) or 1.0
        lexical = np.array([sum(idf[t] for t in q_terms & set(ts)) / total for ts in sent_terms])

        # Embed only the most promising sentences: the query-time budget is a few tens of ms.
        prior = lexical + np.array([1.0 / (1 + c[3]) for c in cands]) * 0.3
        keep = np.argsort(-prior, kind="stable")[: self.max_candidates]
        if vector is None:
            vector = self.encoder.encode_one(question)
        semantic = np.zeros(len(cands))
        semantic[keep] = self.encoder.encode([cands[i][1] for i in keep], batch_size=64) @ vector

        kind = _answer_type(question)
        out = []
        for i in keep:
            chunk, text, start, rank = cands[i]
            s = (
                W_SEMANTIC * semantic[i]
                + W_LEXICAL * lexical[i]
                + W_RANK / (1 + rank)
                + (W_TYPE if _type_match(kind, text) else 0.0)
            )
            out.append(ScoredSentence(chunk, text, start, float(s), float(lexical[i]), float(semantic[i])))
        out.sort(key=lambda s: s.score, reverse=True)
        return out

    # --- composing ---------------------------------------------------------------
    def _trim(self, text: str, q_terms: set[str], kind: str | None) -> str:
        """The clauses of a long sentence around the evidence, at most MAX_WORDS words."""
        words = text.split()
        if len(words) <= MAX_WORDS:
            return text
        clauses = [c for c in _CLAUSE_SPLIT.split(text) if c.strip()]
        if len(clauses) < 2:
            return " ".join(words[:MAX_WORDS]) + " …"
        tokens = self._tokens(clauses)
        idf = self._idf(sorted(q_terms))
        weights = [
            sum(idf.get(t, 0) for t in q_terms & set(ts)) + (0.5 if _type_match(kind, c) else 0.0)
            for c, ts in zip(clauses, tokens)
        ]
        best = int(np.argmax(weights))
        lo = hi = best
        count = len(clauses[best].split())
        # Grow the window towards the heavier neighbour; the answer often sits next to the question's words.
        while True:
            left = weights[lo - 1] if lo > 0 else -1
            right = weights[hi + 1] if hi + 1 < len(clauses) else -1
            if left < 0 and right < 0:
                break
            nxt = lo - 1 if left > right or (left == right and left >= 0 and hi + 1 >= len(clauses)) else hi + 1
            if right >= 0 and left >= 0 and left == right:
                nxt = hi + 1  # ties: read on, answers tend to follow the subject
            add = len(clauses[nxt].split())
            if count + add > MAX_WORDS:
                break
            count += add
            lo, hi = min(lo, nxt), max(hi, nxt)
        piece = " ".join(clauses[lo : hi + 1]).strip().rstrip(",;:")
        if len(piece.split()) > MAX_WORDS:
            piece = " ".join(piece.split()[:MAX_WORDS])
        prefix = "… " if lo > 0 else ""
        suffix = "" if hi == len(clauses) - 1 and piece[-1:] in ".!?\"”" else " …"
        return prefix + piece + suffix

    def answer(self, question: str, chunks: Sequence[Chunk], vector: np.ndarray | None = None) -> Answer:
        """An extractive Answer with citations, or an abstention listing the closest sources."""
        scored = self.score(question, chunks, vector)
        if not scored or scored[0].score < self.threshold:
            return self._abstain(question, chunks, scored)
        best = scored[0]
        picked = [best]
        for s in scored[1 : self.max_sentences + 2]:
            if len(picked) >= self.max_sentences:
                break
            # A second sentence only when it is nearly as good and the answer stays short.
            if s.score >= best.score - 0.03 and len(best.text.split()) + len(s.text.split()) <= MAX_WORDS:
                picked.append(s)
        q_terms = set(self._tokens([question])[0])
        kind = _answer_type(question)
        citations: list[Citation] = []
        parts: list[str] = []
        for s in picked:
            n = len(citations) + 1
            citations.append(
                Citation(n, s.chunk.doc_id, s.chunk.title, s.chunk.date, s.text.strip(), s.chunk.id, s.score)
            )
            parts.append(f"{self._trim(s.text.strip(), q_terms, kind)} [{n}]")
        return Answer(question=question, text=" ".join(parts), citations=tuple(citations), mode=self.mode,
                      retrieved=tuple(chunks))

    def _abstain(self, question: str, chunks: Sequence[Chunk], scored: list[ScoredSentence]) -> Answer:
        """The abstention, with the closest sources (at most 3 articles) as citations for the reader."""
        citations: list[Citation] = []
        docs: set[str] = set()
        for s in scored:
            if s.chunk.doc_id in docs:
                continue
            docs.add(s.chunk.doc_id)
            citations.append(
                Citation(len(citations) + 1, s.chunk.doc_id, s.chunk.title, s.chunk.date, s.text.strip(), s.chunk.id, s.score)
            )
            if len(citations) == 3:
                break
        return Answer(question=question, text=ABSTAIN_TEXT, citations=tuple(citations), abstained=True,
                      mode=self.mode, retrieved=tuple(chunks))
