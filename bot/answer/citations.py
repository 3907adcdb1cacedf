"""Check the [n] citation markers of a generated answer against the sources it was given."""

from __future__ import annotations

import bisect
import re
from collections.abc import Sequence

from bot.types import Chunk, Citation
from index.lexical import STOPWORDS

__all__ = ["MARKER", "strip_markers", "validate"]

# One marker: "[3]" or "[1, 2]" (the "[1][2]" form is simply two markers).
MARKER = re.compile(r"\[\s*\d+(?:\s*[,;]\s*\d+)*\s*\]")
# Same, with the whitespace before it, so a dropped marker takes its leading space along.
_MARKER_WITH_SPACE = re.compile(r"(?P<space>[ \t]*)(?P<marker>" + MARKER.pattern + ")")
# A sentence ends at . ! or ? (plus closing quotes/brackets) and any markers right after it,
# so "Foo rose. [1] Bar fell." cites [1] for "Foo rose." rather than for "Bar fell.".
_SENTENCE_END = re.compile(r"[.!?]+[\"')\u201d\u2019]*(?:\s*" + MARKER.pattern + r")*(?=\s|$)")
_WORD = re.compile(r"\w+")
# Words too common to say anything about which sentence supports a claim: the BM25 stop words, plus the
# reporting verbs every news sentence carries.
_STOPWORDS = frozenset(STOPWORDS) | {"said", "says"}


def strip_markers(text: str) -> str:
    """The text with every [n] marker removed."""
    return re.sub(r"[ \t]+([.,;:!?])", r"\1", _MARKER_WITH_SPACE.sub("", text)).strip()


def validate(text: str, chunks: Sequence[Chunk]) -> tuple[str, list[Citation], int]:
    """Renumber the answer's valid [n] markers 1..m, drop the others; return (text, citations, dropped)."""
    sentence_ends = _sentence_ends(text)
    order: dict[int, int] = {}  # source number in the prompt -> new number, by first appearance
    citing: dict[int, list[int]] = {}  # source number -> indexes of the answer sentences citing it
    dropped = 0

    def renumber(match: re.Match[str]) -> str:
        nonlocal dropped
        kept: list[int] = []
        for raw in re.findall(r"\d+", match.group("marker")):
            n = int(raw)
            if not 1 <= n <= len(chunks):
                dropped += 1
                continue
            new = order.setdefault(n, len(order) + 1)
            citing.setdefault(n, []).append(bisect.bisect_left(sentence_ends, match.end()))
            if new not in kept:
                kept.append(new)
        if not kept:
            return ""
        return f"{match.group('space')}[{', '.join(map(str, kept))}]"

    new_text = _MARKER_WITH_SPACE.sub(renumber, text)
    if dropped:
        # A dropped marker can leave "word ." or "  " behind; tidy only then, so valid text is untouched.
        new_text = re.sub(r"[ \t]+([.,;:!?])", r"\1", new_text)
        new_text = re.sub(r"[ \t]{2,}", " ", new_text).strip()

    sentences = _sentences(text, sentence_ends)
    citations = [
        _citation(new, chunks[n - 1], [sentences[i] for i in citing[n]])
        for n, new in sorted(order.items(), key=lambda item: item[1])
    ]
    return new_text, citations, dropped


def _sentence_ends(text: str) -> list[int]:
    """End offsets of the answer's sentences (the last one always ends at len(text))."""
    ends = [m.end() for m in _SENTENCE_END.finditer(text)]
    if not ends or ends[-1] < len(text.rstrip()):
        ends.append(len(text))
    return ends


def _sentences(text: str, ends: list[int]) -> list[str]:
    starts = [0, *ends[:-1]]
    return [text[a:b] for a, b in zip(starts, ends)]


def _words(text: str) -> set[str]:
    return {w for w in _WORD.findall(MARKER.sub(" ", text).lower()) if w not in _STOPWORDS and not w.isdigit()}


def _citation(n: int, chunk: Chunk, answer_sentences: list[str]) -> Citation:
    quote, offset = _best_quote(chunk, answer_sentences)
    return Citation(
        n=n,
        doc_id=chunk.doc_id,
        title=chunk.title,
        date=chunk.date,
        quote=quote,
        chunk_id=chunk.chunk_id_at(offset),  # for an article passage: the chunk the quote comes from
        score=chunk.score,
    )


def _best_quote(chunk: Chunk, answer_sentences: list[str]) -> tuple[str, int]:
    """The chunk sentence sharing the most words with a citing answer sentence (else the first), and its offset."""
    spans = [(s.start, s.end) for s in chunk.sentences] or [(0, len(chunk.text))]
    candidates = [(chunk.text[a:b].strip(), a) for a, b in spans]
    candidates = [c for c in candidates if c[0]] or [(chunk.text.strip(), 0)]
    claims = [_words(s) for s in answer_sentences]
    best, best_score = candidates[0], 0
    for sentence, offset in candidates:
        words = _words(sentence)
        score = max((len(words & claim) for claim in claims), default=0)
        if score > best_score:  # strict: ties keep the earlier sentence
            best, best_score = (sentence, offset), score
    return best
