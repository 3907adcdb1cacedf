"""Article passages: the ranked chunks regrouped into one passage per article, for an LLM's context.

Chunks are small (200 word pieces) because small units rank and quote precisely; an LLM, though,
answers better from more of the article around them. This is "small-to-big" retrieval: rank small,
read big. LlamaIndex offers it as SentenceWindowNodeParser (every node stores its window in its
metadata: the text stored again several times) or AutoMergingRetriever (a docstore of parent nodes);
the chunk table already has every chunk's article and position, so the window is read from it at
query time instead. On RealTime QA 2026, passages of at most 4,000 characters from the top 5 articles
contain the gold answer for 58 % of questions vs 47 % for the top 5 chunks (docs/benchmarks.md).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from bot.retrieval import parse_spans
from bot.types import Chunk, Sentence

if TYPE_CHECKING:
    from index.lexical import LexicalIndex
    from index.store import StoredChunk

GAP = " … "  # between non-adjacent parts of one article


def stitch(parts: Sequence[StoredChunk]) -> str:
    """The text of chunks of one article (sorted by position): overlaps removed, GAP between non-adjacent ones."""
    return stitch_with_sentences(parts)[0]


def stitch_with_sentences(parts: Sequence[StoredChunk]) -> tuple[str, list[Sentence], list[tuple[int, str]]]:
    """Like stitch, plus the parts' sentence spans moved into the stitched text, and where each part starts.

    A sentence that starts inside the overlap with the previous part was already taken from it.
    """
    text, end = "", 0
    spans: list[Sentence] = []
    starts: list[tuple[int, str]] = []
    for i, part in enumerate(parts):
        cut = 0
        if i and part.position != parts[i - 1].position + 1:
            text += GAP
        elif i:
            if part.start > end:
                text += "\n\n" if part.start - end > 1 else " "  # the whitespace the splitter trimmed
            cut = max(0, end - part.start)
        base = len(text) - cut
        starts.append((len(text), part.id))
        spans += [Sentence(base + sp.start, base + sp.end) for sp in parse_spans(part.sentences) if sp.start >= cut]
        text += part.text[cut:]
        end = max(end, part.end)
    return text, spans, starts


def article_passages(
    lexical: LexicalIndex,
    question: str,
    chunks: Sequence[Chunk],
    max_articles: int,
    max_chars: int,
    window: int = 1,
    lexical_fill: bool = True,
) -> list[Chunk]:
    """One passage per article, in the order the articles first rank, each at most max_chars.

    An article's passage takes its retrieved chunks in rank order, then its other chunks in BM25
    order for the question (unless lexical_fill is False), then any chunk `window` positions from a
    retrieved one, while the passage stays within max_chars (its best chunk always fits); the parts
    are put back in article order. The passage keeps the id and score of the article's best chunk and
    records which chunk each part of its text came from (Chunk.parts), so a citation names the chunk it
    quotes.
    """
    order: list[str] = []
    hits: dict[str, list[Chunk]] = {}
    for c in chunks:
        if c.doc_id not in hits:
            if len(order) == max_articles:
                continue
            order.append(c.doc_id)
            hits[c.doc_id] = []
        hits[c.doc_id].append(c)
    stored = lexical.by_ids([c.id for c in chunks if c.doc_id in hits])
    # Filling with the article's BM25-best chunks finds the answer more often than neighbours alone
    # at about the same size (bench/passage_sweep.py on RealTime QA 2026, docs/benchmarks.md).
    lexical_order: dict[str, list[int]] = {}
    if lexical_fill and order and question.strip():
        n_rows = sum({s.doc_id: s.n_chunks for s in stored.values()}.values())
        for part, _ in lexical.search(question, max(n_rows, 1), doc_ids=order):
            lexical_order.setdefault(part.doc_id, []).append(part.position)
    out: list[Chunk] = []
    for doc_id in order:
        ranked = [stored[c.id] for c in hits[doc_id] if c.id in stored]
        if not ranked:  # the chunk table lags the vector store: keep the chunks as they are
            out.extend(hits[doc_id])
            continue
        wanted = [s.position for s in ranked] + lexical_order.get(doc_id, [])
        for r in range(1, window + 1):
            for s in ranked:
                wanted += [s.position - r, s.position + r]
        n_chunks = ranked[0].n_chunks
        wanted = [p for p in dict.fromkeys(wanted) if 0 <= p < n_chunks]
        by_pos = {s.position: s for s in lexical.span(doc_id, min(wanted), max(wanted))}
        chosen: list[StoredChunk] = []
        total = 0
        for p in wanted:
            part = by_pos.get(p)
            if part is None or (chosen and total + len(part.text) > max_chars):
                continue
            chosen.append(part)
            total += len(part.text)
        chosen.sort(key=lambda s: s.position)
        text, sentences, starts = stitch_with_sentences(chosen)
        best = hits[doc_id][0]
        out.append(
            Chunk(
                id=best.id, doc_id=doc_id, title=best.title, date=best.date, score=best.score, text=text,
                start=chosen[0].start, end=chosen[-1].end, sentences=tuple(sentences), parts=tuple(starts),
            )
        )
    return out


@dataclass(frozen=True)
class ArticlePassages:
    """What an LLM reads: the ranked chunks turned into at most max_articles passages of max_chars (article_passages)."""

    lexical: LexicalIndex
    max_articles: int
    max_chars: int

    def __call__(self, question: str, chunks: Sequence[Chunk]) -> list[Chunk]:
        """One passage per article of the ranked chunks, best article first."""
        return article_passages(self.lexical, question, chunks, self.max_articles, self.max_chars)
