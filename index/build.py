"""Incremental, crash-safe indexing: articles -> chunks -> vectors in Chroma + BM25 beside it.

State lives in the store itself: every chunk carries its article's content hash and chunk count.
A run compares that with the files, so it embeds only new or changed articles, deletes the chunks
of removed ones, and redoes any article a killed run left half-written (present != n_chunks).
"""

from __future__ import annotations

import json
import logging
import os
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from index.embedding import MiniLMEncoder
from index.lexical import LexicalIndex, SentenceVectors, fingerprint
from index.loaders import Article, LoadWarning, load_corpus
from index.store import ChromaStore, StoredChunk

log = logging.getLogger(__name__)

GROUP_CHUNKS = 256
_ABBREV_END = re.compile(r"\b(?:Mr|Mrs|Ms|Dr|Prof|Gen|Gov|Sen|Rep|St|Jr|Sr|No|Co|Inc|Corp|Ltd|Dept|Univ|vs)\.$")  # chunks embedded and written per step: a kill loses at most this much work


@dataclass(frozen=True)
class IndexReport:
    """What one indexing run did."""

    added: int
    updated: int
    removed: int
    unchanged: int
    chunks_written: int
    chunks_total: int
    documents_total: int
    seconds: float
    warnings: tuple[LoadWarning, ...] = ()
    lexical_rebuilt: bool = False

    def summary(self) -> str:
        """One line for people."""
        return (
            f"{self.added} added, {self.updated} updated, {self.removed} removed, {self.unchanged} unchanged "
            f"documents; {self.chunks_written} chunks embedded, {self.chunks_total} in the index; "
            f"{self.seconds:.1f} s"
        )


@dataclass
class Progress:
    """Counters handed to the progress callback after each step."""

    docs_total: int = 0
    docs_done: int = 0
    chunks_done: int = 0
    started: float = field(default_factory=time.perf_counter)


class Chunker:
    """Sentence-aware splitting (LlamaIndex SentenceSplitter, measured in the embedding model's tokens)."""

    def __init__(self, encoder: MiniLMEncoder, chunk_size: int, chunk_overlap: int):
        from llama_index.core.node_parser import SentenceSplitter
        from llama_index.core.node_parser.text.utils import split_by_sentence_tokenizer

        # Counting in word pieces (not tiktoken) keeps every chunk inside the model's 256-token window.
        self.splitter = SentenceSplitter(
            chunk_size=chunk_size, chunk_overlap=chunk_overlap, tokenizer=encoder.count_tokens
        )
        self._sentences = split_by_sentence_tokenizer()

    def sentence_spans(self, text: str) -> str:
        """Sentence offsets within text as "s-e,s-e" (paragraphs first, then punkt within each)."""
        spans: list[list[int]] = []
        pos = 0
        for para in text.split("\n"):
            para_start = text.find(para, pos) if para else pos
            pos = para_start + len(para)
            if not para.strip():
                continue
            cursor = para_start
            first = True
            for sent in self._sentences(para):
                s = sent.strip()
                start = text.find(s, cursor) if s else -1
                if start < 0:
                    continue
                # punkt splits after abbreviations it doesn't know ("Co., Ltd. and ...", "by Mr. Zhang"):
                # a piece that starts in lower case, or follows a title/company abbreviation, continues.
                if spans and not first and (s[0].islower() or _ABBREV_END.search(text[spans[-1][0] : spans[-1][1]])):
                    spans[-1][1] = start + len(s)
                else:
                    spans.append([start, start + len(s)])
                first = False
                cursor = start + len(s)
        return ",".join(f"{s}-{e}" for s, e in spans)

    def split(self, articles: Sequence[Article]) -> list[tuple[StoredChunk, str, list[tuple[int, int]]]]:
        """Chunks of the articles, each with the text to embed (title + chunk, as LlamaIndex formats it)
        and its sentences' character ranges within that text."""
        from llama_index.core import Document
        from llama_index.core.schema import MetadataMode

        docs = [Document(text=a.text, id_=a.doc_id, metadata={"title": a.title}) for a in articles]
        by_id = {a.doc_id: a for a in articles}
        nodes_by_doc: dict[str, list] = {}
        for node in self.splitter.get_nodes_from_documents(docs):
            nodes_by_doc.setdefault(node.ref_doc_id, []).append(node)
        out: list[tuple[StoredChunk, str, list[tuple[int, int]]]] = []
        for doc_id, nodes in nodes_by_doc.items():
            article = by_id[doc_id]
            for i, node in enumerate(nodes):
                start = node.start_char_idx if node.start_char_idx is not None else article.text.find(node.text)
                chunk = StoredChunk(
                    id=f"{doc_id}#{i}",
                    doc_id=doc_id,
                    title=article.title,
                    date=article.date,
                    text=node.text,
                    start=max(start, 0),
                    end=max(start, 0) + len(node.text),
                    position=i,
                    n_chunks=len(nodes),
                    doc_hash=article.content_hash,
                    sentences=self.sentence_spans(node.text),
                )
                embed_text = node.get_content(metadata_mode=MetadataMode.EMBED)
                base = embed_text.rfind(node.text)
                spans = [
                    (base + int(a), base + int(b))
                    for a, b in (p.split("-") for p in chunk.sentences.split(",") if p)
                ]
                out.append((chunk, embed_text, spans))
        return out


def lexical_folder(data_dir: Path, collection: str, host: str | None = None, port: int | None = None) -> Path:
    """Where the BM25 side of a collection lives (one per backend, so two stores never share one)."""
    suffix = f"@{host}_{port}" if host else ""
    return Path(data_dir) / "lexical" / f"{collection}{suffix}"


def _write_status(folder: Path, status: dict) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / f".status.{os.getpid()}"
    tmp.write_text(json.dumps(status, indent=1))
    os.replace(tmp, folder / "status.json")


def read_status(folder: Path) -> dict | None:
    """The last run's status record, if any."""
    path = folder / "status.json"
    return json.loads(path.read_text()) if path.exists() else None


def build_index(
    root: Path,
    store: ChromaStore,
    lexical_dir: Path,
    encoder: MiniLMEncoder,
    chunk_size: int = 200,
    chunk_overlap: int = 32,
    batch_size: int = 64,
    on_progress: Callable[[Progress], None] | None = None,
    backend: str = "",
) -> IndexReport:
    """Bring the index to exactly the articles under root; returns what changed."""
    t0 = time.perf_counter()
    articles, warnings = load_corpus(Path(root))
    states, pairs = store.doc_states()
    current = {a.doc_id: a for a in articles}

    sentvecs = SentenceVectors(lexical_dir)
    # Sentence vectors live beside the BM25 side, not in Chroma: an article whose chunks lack them
    # (lost data dir, or a new one pointed at an existing Chroma server) is embedded again.
    have = sentvecs.ids()
    lacking = {chunk_id.rsplit("#", 1)[0] for chunk_id, _ in pairs if chunk_id not in have}
    removed = sorted(set(states) - set(current))
    todo: list[Article] = []
    added = updated = unchanged = 0
    for a in articles:
        state = states.get(a.doc_id)
        if state is None:
            added += 1
            todo.append(a)
        elif state.doc_hash != a.content_hash or not state.complete or a.doc_id in lacking:
            updated += 1
            todo.append(a)
        else:
            unchanged += 1

    if removed:
        store.delete_docs(removed)
    progress = Progress(docs_total=len(todo))
    if on_progress:
        on_progress(progress)

    chunker = Chunker(encoder, chunk_size, chunk_overlap) if todo else None
    written = 0
    group: list[Article] = []

    def flush() -> None:
        nonlocal written
        pieces = chunker.split(group)
        vectors, sentence_vectors = encoder.encode(
            [text for _, text, _ in pieces], batch_size=batch_size, spans=[s for _, _, s in pieces]
        )
        sentvecs.put([c.id for c, _, _ in pieces], sentence_vectors)
        # Delete first, then write: a kill in between leaves the article absent, which the next run adds.
        store.delete_docs([a.doc_id for a in group if a.doc_id in states])
        store.upsert([c for c, _, _ in pieces], vectors)
        written += len(pieces)
        progress.docs_done += len(group)
        progress.chunks_done = written
        group.clear()
        if on_progress:
            on_progress(progress)

    est = 0
    for a in todo:
        group.append(a)
        est += max(1, len(a.text) // (chunk_size * 3))  # rough chunks per article, to size groups
        if est >= GROUP_CHUNKS:
            flush()
            est = 0
    if group:
        flush()

    # Bring the BM25 side in step with the store whenever the store's content differs from it.
    if todo or removed:
        states, pairs = store.doc_states()
    fp = fingerprint(pairs)
    meta = LexicalIndex.read_meta(lexical_dir)
    rebuilt = False
    if meta is None or meta.fingerprint != fp:
        LexicalIndex.build(lexical_dir, store.all_chunks(), fp, extra={"model": encoder.name})
        sentvecs.prune({chunk_id for chunk_id, _ in pairs})
        rebuilt = True
    sentvecs.close()

    report = IndexReport(
        added=added,
        updated=updated,
        removed=len(removed),
        unchanged=unchanged,
        chunks_written=written,
        chunks_total=len(pairs),
        documents_total=len(states),
        seconds=time.perf_counter() - t0,
        warnings=tuple(warnings),
        lexical_rebuilt=rebuilt,
    )
    _write_status(
        lexical_dir,
        {
            "last_run": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
            "corpus": str(Path(root).resolve()),
            "backend": backend,
            "embedding_model": encoder.name,
            "report": {k: v for k, v in report.__dict__.items() if k != "warnings"},
            "warnings": [f"{w.path}: {w.message}" for w in warnings],
        },
    )
    return report
