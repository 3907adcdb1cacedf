"""Incremental, crash-safe indexing: articles -> chunks -> vectors in Chroma + BM25 beside it.

State lives in the store itself: every chunk carries its article's content hash and chunk count.
A run compares that with the files, so it embeds only new or changed articles, deletes the chunks
of removed ones, and redoes any article a killed run left half-written (present != n_chunks).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import re
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from index.embedding import MiniLMEncoder
from index.errors import CorpusEmpty
from index.files import atomic_write
from index.lexical import LexicalIndex, fingerprint
from index.loaders import Article, LoadWarning, load_articles, scan
from index.memory import release_free_memory
from index.sentence_vectors import SentenceVectors
from index.store import ChromaStore, DocState, StoredChunk, lexical_folder  # noqa: F401 - re-exported

log = logging.getLogger(__name__)

GROUP_CHUNKS = 256  # chunks embedded and written per step: a kill loses at most this much work
ENCODE_SLICE = 512  # chunks encoded at once: bounds memory however large one article is
# Texts are split in pieces of at most this many characters (at a paragraph, line or sentence end):
# the sentence tokenizer's regular expressions have a time limit, and a 15 MB paragraph exceeds it.
PIECE_CHARS = 50_000
# Articles longer than this are chunked and written a slice at a time (two splitting passes, see stream).
STREAM_CHARS = 500_000
# After embedding this many chunks the ONNX session is dropped before the BM25 side is built: its arena
# holds a few hundred MB that the end phase (every stored chunk read back) would add to. Smaller builds
# keep it, since reopening costs ~0.3 s and a query often follows in the same process.
RELEASE_AFTER = 2_000
_ABBREV_END = re.compile(r"\b(?:Mr|Mrs|Ms|Dr|Prof|Gen|Gov|Sen|Rep|St|Jr|Sr|No|Co|Inc|Corp|Ltd|Dept|Univ|vs)\.$")


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
    kept: int = 0  # documents indexed from other folders, left as they are

    def summary(self) -> str:
        """One line for people."""
        line = (
            f"{self.added} added, {self.updated} updated, {self.removed} removed, {self.unchanged} unchanged "
            f"documents; {self.chunks_written} chunks embedded, {self.chunks_total} in the index; "
            f"{self.seconds:.1f} s"
        )
        if self.kept:
            line += f"; kept {self.kept} documents indexed from other folders (--replace removes them)"
        return line


@dataclass
class Progress:
    """Counters handed to the progress callback after each step."""

    docs_total: int = 0
    docs_done: int = 0
    chunks_done: int = 0
    started: float = field(default_factory=time.perf_counter)


def _import_splitter():
    """LlamaIndex's SentenceSplitter and punkt sentence splitter, imported with nltk but without scipy or sklearn."""
    # `import nltk` imports every nltk subpackage, and some of them pull in scipy.stats and scikit-learn when
    # they are installed (sentence-transformers, which the embedding model's wheel requires, installs both);
    # each such import is optional in nltk (try/except ImportError) and punkt uses none of them. Hidden while
    # nltk loads, a fresh process imports the splitter in 0.60x the CPU and 0.58x the peak RSS (118 vs 202 MiB,
    # bench/splitter_import.py); a later `import scipy` anywhere else still works.
    hidden = [name for name in ("scipy", "sklearn") if name not in sys.modules]
    for name in hidden:
        sys.modules[name] = None  # type: ignore[assignment]  # makes `import name` raise ImportError
    try:
        import nltk  # noqa: F401 - loaded here, while the two are hidden (LlamaIndex imports it lazily)
        from llama_index.core.node_parser import SentenceSplitter
        from llama_index.core.node_parser.text.utils import split_by_sentence_tokenizer
    finally:
        for name in hidden:
            if sys.modules.get(name, ...) is None:
                del sys.modules[name]
    return SentenceSplitter, split_by_sentence_tokenizer


class Chunker:
    """Sentence-aware splitting (LlamaIndex SentenceSplitter, measured in the embedding model's tokens)."""

    def __init__(self, encoder: MiniLMEncoder, chunk_size: int, chunk_overlap: int):
        SentenceSplitter, split_by_sentence_tokenizer = _import_splitter()

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

    def embed_title(self, title: str) -> str:
        """The title as embedded with each chunk: at most a quarter of the chunk's tokens.

        LlamaIndex counts the title against the chunk size; a long one leaves room for a few words of
        text per chunk (or none, and raises).
        """
        budget = max(4, self.splitter.chunk_size // 4)
        words = title.split()
        while words and len(self.splitter._tokenizer(" ".join(words))) > budget:
            words = words[: max(1, len(words) * 3 // 4)] if len(words) > 1 else []
        return " ".join(words)

    def _nodes(self, article: Article) -> Iterator[tuple[int, str, str]]:
        """(offset in the article, chunk text, text to embed) of each chunk, one bounded piece at a time."""
        from llama_index.core import Document
        from llama_index.core.schema import MetadataMode

        title = self.embed_title(article.title)
        for offset, piece in pieces(article.text):
            doc = Document(text=piece, id_=article.doc_id, metadata={"title": title} if title else {})
            for node in self.splitter.get_nodes_from_documents([doc]):
                start = node.start_char_idx if node.start_char_idx is not None else piece.find(node.text)
                yield offset + max(start, 0), node.text, node.get_content(metadata_mode=MetadataMode.EMBED)

    def _chunk(self, article: Article, i: int, n: int, start: int, text: str,
               embed_text: str) -> tuple[StoredChunk, str, list[tuple[int, int]]]:
        chunk = StoredChunk(
            id=f"{article.doc_id}#{i}",
            doc_id=article.doc_id,
            title=article.title,
            date=article.date,
            text=text,
            start=start,
            end=start + len(text),
            position=i,
            n_chunks=n,
            doc_hash=article.content_hash,
            sentences=self.sentence_spans(text),
        )
        base = embed_text.rfind(text)
        spans = [(base + int(a), base + int(b)) for a, b in (p.split("-") for p in chunk.sentences.split(",") if p)]
        return chunk, embed_text, spans

    def split_one(self, article: Article) -> list[tuple[StoredChunk, str, list[tuple[int, int]]]]:
        """Chunks of one article, each with the text to embed (title + chunk, as LlamaIndex formats it)
        and its sentences' character ranges within that text."""
        nodes = list(self._nodes(article))
        return [self._chunk(article, i, len(nodes), *node) for i, node in enumerate(nodes)]

    def count(self, article: Article) -> int:
        """How many chunks split_one would give, holding none of them."""
        return sum(1 for _ in self._nodes(article))

    def iter_split(self, article: Article, n: int) -> Iterator[tuple[StoredChunk, str, list[tuple[int, int]]]]:
        """split_one's chunks one at a time, for an article of n chunks (from `count`)."""
        for i, node in enumerate(self._nodes(article)):
            yield self._chunk(article, i, n, *node)

    def split(self, articles: Sequence[Article]) -> list[tuple[StoredChunk, str, list[tuple[int, int]]]]:
        """Chunks of the articles in order (see split_one)."""
        return [piece for a in articles for piece in self.split_one(a)]


def pieces(text: str, limit: int = PIECE_CHARS) -> Iterator[tuple[int, str]]:
    """(offset, piece) of text in pieces of at most limit characters, cut at the last paragraph, line,
    sentence or word end of each piece's second half (mid-word only when there is none)."""
    start = 0
    while start < len(text):
        end = min(start + limit, len(text))
        if end < len(text):
            half = start + limit // 2
            for sep in ("\n\n", "\n", ". ", " "):
                cut = text.rfind(sep, half, end)
                if cut >= 0:
                    end = cut + len(sep)
                    break
        yield start, text[start:end]
        start = end


def _write_status(folder: Path, status: dict) -> None:
    atomic_write(folder / "status.json", json.dumps(status, indent=1))


def read_status(folder: Path) -> dict | None:
    """The last run's status record, if any (an unreadable one counts as none: it is only a record)."""
    path = folder / "status.json"
    try:
        status = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return status if isinstance(status, dict) else None


def lock_path(lexical_dir: Path) -> Path:
    """The lock file of one index (beside its BM25 folder, which a rebuild deletes)."""
    return lexical_dir.with_name(lexical_dir.name + ".lock")


@contextmanager
def index_lock(lexical_dir: Path, on_wait: Callable[[str], None] | None = None) -> Iterator[None]:
    """Hold the index's write lock; a second indexing run waits for the first (on_wait says so once).

    Two runs at once would embed the same articles twice, and over different folders interleave
    their deletions and writes into an index that matches neither.
    """
    from filelock import FileLock, Timeout

    path = lock_path(lexical_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    owner = path.with_suffix(".owner")
    lock = FileLock(str(path), is_singleton=True)  # re-entrant within a process (a rebuild holds it, then builds)
    try:
        lock.acquire(timeout=0)
    except Timeout:
        try:
            holder = owner.read_text(encoding="utf-8").strip()
        except OSError:
            holder = "another process"
        if on_wait:
            on_wait(f"another `qa index` ({holder}) is updating this index; waiting for it to finish")
        lock.acquire()
    try:
        owner.write_text(f"pid {os.getpid()}, since {time.strftime('%H:%M:%S')}", encoding="utf-8")
        yield
    finally:
        lock.release()


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
    replace: bool = False,
    follow_symlinks: bool = False,
    on_wait: Callable[[str], None] | None = None,
) -> IndexReport:
    """Bring the index up to date with the articles under root (a folder, or one file); returns what changed.

    Only articles that left root are removed (replace=True: every article not under root); articles
    indexed from other folders stay. One run at a time per index (see index_lock).
    """
    with index_lock(lexical_dir, on_wait):
        return _build(root, store, lexical_dir, encoder, chunk_size, chunk_overlap, batch_size, on_progress,
                      backend, replace, follow_symlinks)


def _build(
    root: Path,
    store: ChromaStore,
    lexical_dir: Path,
    encoder: MiniLMEncoder,
    chunk_size: int,
    chunk_overlap: int,
    batch_size: int,
    on_progress: Callable[[Progress], None] | None,
    backend: str,
    replace: bool,
    follow_symlinks: bool,
) -> IndexReport:
    t0 = time.perf_counter()
    corpus = scan(Path(root), follow_symlinks)
    articles, warnings = load_articles(corpus)
    if not articles:
        first = f" ({warnings[0].path}: {warnings[0].message})" if warnings else ""
        raise CorpusEmpty(f"No usable articles in {root}: all {len(corpus.files)} article files were skipped{first}.")
    scope = str(corpus.root.resolve())
    store.check_vectors()  # a damaged vector index needs a rebuild; adding to it would hide that
    states, pairs = store.doc_states()
    status = read_status(lexical_dir) or {}
    # Chunks written before folders were recorded belong to the folder the last run indexed.
    legacy_root = status.get("corpus", "") if isinstance(status.get("corpus"), str) else ""

    def owner(state: DocState) -> str:
        return state.root or legacy_root

    current: dict[str, Article] = {}
    for a in articles:
        state = states.get(a.doc_id)
        theirs = owner(state) if state else ""
        if state and not replace and theirs and theirs != scope and state.doc_hash != a.content_hash:
            # Same relative path under two folders: replacing one article by another would lose it.
            warnings.append(LoadWarning(a.doc_id, f"skipped: an article with this id was indexed from {theirs}; "
                                                  "rename the file, or index with --replace"))
            continue
        current[a.doc_id] = a
    unrooted = [d for d, st in states.items() if not st.root and (legacy_root or d in current)]
    if unrooted:
        store.set_root(unrooted, legacy_root or scope)
        for d in unrooted:
            states[d] = dataclasses.replace(states[d], root=legacy_root or scope)
    if replace:
        removed = sorted(set(states) - set(current))
    elif corpus.single_file:
        removed = []
    else:
        removed = sorted(d for d, st in states.items() if d not in current and owner(st) == scope)

    sentvecs = open_sentence_vectors(lexical_dir)
    have = sentvecs.ids()
    # Sentence vectors live beside the BM25 side, not in Chroma: an article whose chunks lack them
    # (lost data dir, or a new one pointed at an existing Chroma server) is embedded again.
    lacking = {chunk_id.rsplit("#", 1)[0] for chunk_id, _ in pairs if chunk_id not in have}
    todo: list[Article] = []
    added = updated = unchanged = 0
    for a in current.values():
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

    def write(part: list[tuple[StoredChunk, str, list[tuple[int, int]]]]) -> None:
        nonlocal written
        vectors, sentence_vectors = encoder.encode(
            [text for _, text, _ in part], batch_size=batch_size, spans=[s for _, _, s in part]
        )
        # Sentence vectors first: a chunk in the store always has them.
        sentvecs.put([c.id for c, _, _ in part], sentence_vectors)
        store.upsert([c for c, _, _ in part], vectors, root=scope)
        written += len(part)
        progress.chunks_done = written

    def skipped(a: Article, exc: Exception) -> None:
        nonlocal added, updated
        log.debug("splitting %s failed", a.doc_id, exc_info=True)
        warnings.append(LoadWarning(a.doc_id, f"skipped: could not be split into chunks ({type(exc).__name__})"))
        if a.doc_id in states:
            updated -= 1
        else:
            added -= 1

    def flush() -> None:
        parts: list[tuple[StoredChunk, str, list[tuple[int, int]]]] = []
        ok: list[Article] = []
        for a in group:
            try:
                parts += chunker.split_one(a)
                ok.append(a)
            except Exception as exc:  # noqa: BLE001 - one bad article never aborts the run
                skipped(a, exc)
        # Delete first, then write: a kill in between leaves the article absent, which the next run adds.
        store.delete_docs([a.doc_id for a in ok if a.doc_id in states])
        for start in range(0, len(parts), ENCODE_SLICE):
            write(parts[start : start + ENCODE_SLICE])
        progress.docs_done += len(group)
        group.clear()
        if on_progress:
            on_progress(progress)

    def stream(a: Article) -> None:
        """A long article chunked, embedded and written a slice at a time: its chunks are never all held
        at once (an 18.9 MiB file is ~26,000 chunks; holding them took the build past 1 GB)."""
        try:
            n = chunker.count(a)  # first pass: every chunk records how many its article has
        except Exception as exc:  # noqa: BLE001 - one bad article never aborts the run
            skipped(a, exc)
        else:
            store.delete_docs([a.doc_id] if a.doc_id in states else [])
            part: list[tuple[StoredChunk, str, list[tuple[int, int]]]] = []
            chunks = chunker.iter_split(a, n)
            while True:
                try:
                    item = next(chunks)
                except StopIteration:
                    break
                except Exception as exc:  # noqa: BLE001 - the second pass failed where the first did not
                    store.delete_docs([a.doc_id])  # no partial article left behind
                    skipped(a, exc)
                    part = []
                    break
                part.append(item)
                if len(part) == ENCODE_SLICE:
                    write(part)
                    part = []
                    if on_progress:
                        on_progress(progress)
            if part:
                write(part)
        progress.docs_done += 1
        if on_progress:
            on_progress(progress)

    est = 0
    for a in todo:
        if len(a.text) > STREAM_CHARS:
            stream(a)
            continue
        group.append(a)
        est += max(1, len(a.text) // (chunk_size * 3))  # rough chunks per article, to size groups
        if est >= GROUP_CHUNKS:
            flush()
            est = 0
    if group:
        flush()

    if written >= RELEASE_AFTER:
        encoder.release()
    # Bring the BM25 side in step with the store whenever the store's content differs from it,
    # or its files are damaged (they are derived from the store, so they can always be rebuilt).
    if todo or removed:
        release_free_memory()  # what embedding freed, before every stored chunk is read back
        states, pairs = store.doc_states()
    fp = fingerprint(pairs)
    meta = LexicalIndex.read_meta(lexical_dir)
    rebuilt = False
    if meta is None or meta.fingerprint != fp or LexicalIndex.problems(lexical_dir):
        release_free_memory()
        LexicalIndex.build(lexical_dir, store.all_chunks(), fp, extra={"model": encoder.name})
        sentvecs.prune({chunk_id for chunk_id, _ in pairs})
        rebuilt = True
    sentvecs.close()

    roots = {owner(st) for st in states.values()} - {""}
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
        kept=sum(1 for st in states.values() if owner(st) != scope),
    )
    _write_status(
        lexical_dir,
        {
            "last_run": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
            "corpus": scope,
            "corpora": sorted(roots | {scope}),
            "backend": backend,
            "report": {k: v for k, v in report.__dict__.items() if k != "warnings"},
            "warnings": [f"{w.path}: {w.message}" for w in warnings],
        },
    )
    return report


def open_sentence_vectors(lexical_dir: Path) -> SentenceVectors:
    """The sentence-vector table for writing; an unreadable one is set aside (its articles are embedded again)."""
    try:
        vectors = SentenceVectors(lexical_dir)
        vectors.count()
        return vectors
    except Exception as exc:  # noqa: BLE001 - sqlite3.DatabaseError and friends: the file is damaged
        path = lexical_dir / "sentences.sqlite"
        aside = path.with_name(f"sentences.damaged-{time.strftime('%Y%m%d-%H%M%S')}.sqlite")
        log.warning("%s is unreadable (%s); moved to %s, its articles are embedded again", path, exc, aside.name)
        for suffix in ("", "-wal", "-shm"):
            if Path(f"{path}{suffix}").exists():
                os.replace(f"{path}{suffix}", f"{aside}{suffix}")
        return SentenceVectors(lexical_dir)
