"""The BM25 side of the index (bm25s), one version folder at a time: the bm25s files and their chunk table.

The chunk table (index/chunk_table.py) maps BM25 rows back to chunks; the sentence vectors beside the
versions live in index/sentence_vectors.py.

Each build writes a new version folder and then flips a `CURRENT` pointer with an atomic rename,
so a reader (or a run killed midway) only ever sees a complete version.
"""

from __future__ import annotations

import json
import mmap
import os
import shutil
import sqlite3
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np

from index.chunk_table import FILE as TABLE_FILE
from index.chunk_table import ChunkTable, write_table
from index.errors import IndexDamaged
from index.files import atomic_write
from index.store import StoredChunk

# bm25s' English list has 33 words and keeps question words ("which", "did", "who"), which then
# count as matches; this list adds them and other function words. Bump LEXICAL_VERSION on any change
# to tokenization so existing BM25 sides are rebuilt.
STOPWORDS = sorted(
    set(
        """a about above after again against all also am an and any are as at be because been before being
        below between both but by can could did do does doing down during each few for from further had has
        have having he her here hers herself him himself his how i if in into is it its itself just me more
        most my myself no nor not now of off on once only or other our ours ourselves out over own same she
        should so some such than that the their theirs them themselves then there these they this those
        through to too under until up very was we were what when where which while who whom whose why will
        with would you your yours yourself yourselves s t don shall may might must one name tell""".split()
    )
)
LEXICAL_VERSION = "3"  # 3: the tokenization below (older version-3 builds also wrote df.json, now ignored)
# What bm25s writes for an index; all must be present for the BM25 side to load.
BM25_FILES = ("params.index.json", "vocab.index.json", "data.csc.index.npy", "indices.csc.index.npy",
              "indptr.csc.index.npy")
REPAIR = "run `qa index` to repair it"


def _bm25s():
    """bm25s, imported lazily; it sets its own logger to DEBUG on import, so put it back to WARNING."""
    import logging
    import sys

    hide_scipy = "bm25s" not in sys.modules and "scipy" not in sys.modules
    if hide_scipy:
        # bm25s imports scipy.sparse whenever it can, only to offer it as a build backend this project never
        # selects (its default, and ours, is "numpy"). That import costs 27 MiB of resident memory and ~70 ms
        # on every query process; a None entry in sys.modules makes it fail fast, so bm25s records scipy as
        # absent. The entry is removed again at once, so scipy stays importable for anything else.
        sys.modules["scipy"] = None  # type: ignore[assignment]
    try:
        import bm25s
    finally:
        if hide_scipy:
            del sys.modules["scipy"]

    logging.getLogger("bm25s").setLevel(logging.WARNING)
    return bm25s


def _stemmer():
    import Stemmer  # PyStemmer: bm25s' recommended stemmer, C speed

    return Stemmer.Stemmer("english")


def tokenize(texts: Sequence[str], stemmer=None) -> list[list[str]]:
    """Lower-cased, stop-worded, stemmed tokens (the same for corpus and queries)."""
    return _bm25s().tokenize(
        list(texts), stopwords=STOPWORDS, stemmer=stemmer or _stemmer(), return_ids=False, show_progress=False
    )


def tokenize_ids(texts: Sequence[str]):
    """tokenize(), as bm25s' Tokenized (ids per text + vocabulary): what an index is built from."""
    return _bm25s().tokenize(
        list(texts), stopwords=STOPWORDS, stemmer=_stemmer(), return_ids=True, show_progress=False
    )


def fingerprint(pairs: Sequence[tuple[str, str]]) -> str:
    """A digest of (chunk_id, doc_hash) pairs: equal fingerprints mean the same indexed content."""
    import hashlib

    h = hashlib.sha256(f"lexical-v{LEXICAL_VERSION}\n".encode())
    for chunk_id, doc_hash in sorted(pairs):
        h.update(f"{chunk_id}\0{doc_hash}\n".encode())
    return h.hexdigest()[:24]


@dataclass(frozen=True)
class LexicalMeta:
    """What the current version holds and how it was made."""

    fingerprint: str
    n_chunks: int
    n_docs: int
    built_at: float
    extra: dict


class LexicalIndex:
    """BM25 over chunk texts plus the chunk table that maps BM25 rows back to chunks."""

    def __init__(self, folder: Path, version: Path):
        self.folder = folder
        self.version = version
        problems = self.version_problems(version)
        if problems:
            raise IndexDamaged(f"The index's BM25 side in {folder} is damaged ({problems[0]}): {REPAIR}.")
        self.meta = self._load_meta(version)
        self.table = ChunkTable(version / TABLE_FILE)
        self._retriever = None
        self._stemmer = None

    # --- paths ---------------------------------------------------------------
    @staticmethod
    def current_version(folder: Path) -> Path | None:
        """The version folder CURRENT points at, if any."""
        pointer = folder / "CURRENT"
        if not pointer.exists():
            return None
        try:
            version = folder / pointer.read_text().strip()
        except OSError:
            return None
        return version if version.is_dir() else None

    @classmethod
    def open(cls, folder: Path) -> LexicalIndex | None:
        """The current version, or None when nothing was built yet."""
        version = cls.current_version(folder)
        return cls(folder, version) if version else None

    @staticmethod
    def read_meta(folder: Path) -> LexicalMeta | None:
        """The current version's metadata without loading the index (None when absent or unreadable)."""
        version = LexicalIndex.current_version(folder)
        if version is None:
            return None
        try:
            return LexicalIndex._load_meta(version)
        except (OSError, ValueError, TypeError):
            return None

    @staticmethod
    def _load_meta(version: Path) -> LexicalMeta:
        meta = json.loads((version / "meta.json").read_text(encoding="utf-8"))
        return LexicalMeta(**meta)

    @staticmethod
    def version_problems(version: Path, thorough: bool = False) -> list[str]:
        """What is wrong with one version's files: missing, unreadable, or counts that disagree ([] when sound).

        The quick form reads only sizes, meta.json, the BM25 parameters and a row count, so it can run
        every time the index is opened; thorough also checks every page of the chunk table.
        """
        try:
            meta = LexicalIndex._load_meta(version)
        except FileNotFoundError:
            return ["meta.json is missing"]
        except (OSError, ValueError, TypeError):
            return ["meta.json is unreadable"]
        problems = []
        db_path = version / "chunks.sqlite"
        if not db_path.is_file() or db_path.stat().st_size == 0:
            problems.append("chunks.sqlite is missing" if not db_path.exists() else "chunks.sqlite is empty")
        else:
            try:
                db = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
                try:
                    if thorough:
                        verdict = db.execute("PRAGMA quick_check").fetchone()[0]
                        if verdict != "ok":
                            raise sqlite3.DatabaseError(verdict)
                    rows = db.execute("SELECT count(*) FROM chunks").fetchone()[0]
                    last = db.execute("SELECT max(row) FROM chunks").fetchone()[0]
                finally:
                    db.close()
                if rows != meta.n_chunks or (rows and last != rows - 1):
                    problems.append(f"the chunk table has {rows} rows, meta.json says {meta.n_chunks}")
            except sqlite3.Error as exc:
                problems.append(f"chunks.sqlite is unreadable ({exc})")
        if meta.n_chunks:
            bm25 = version / "bm25"
            missing = [name for name in BM25_FILES if not (bm25 / name).is_file() or not (bm25 / name).stat().st_size]
            if missing:
                problems.append(f"bm25/{missing[0]} is missing" + (f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""))
            else:
                try:
                    params = json.loads((bm25 / "params.index.json").read_text(encoding="utf-8"))
                    if params.get("num_docs") != meta.n_chunks:
                        problems.append(f"BM25 holds {params.get('num_docs')} rows, the chunk table {meta.n_chunks}")
                except (OSError, ValueError):
                    problems.append("bm25/params.index.json is unreadable")
        return problems

    @staticmethod
    def problems(folder: Path, thorough: bool = False) -> list[str]:
        """What is wrong with the current BM25 side in folder ([] when sound; ["not built"] when there is none)."""
        pointer = folder / "CURRENT"
        if not pointer.exists():
            return ["not built"]
        try:
            version = folder / pointer.read_text().strip()
        except OSError:
            return ["CURRENT is unreadable"]
        if not version.is_dir():
            return [f"the version CURRENT names ({version.name}) is missing"]
        return LexicalIndex.version_problems(version, thorough)

    # --- build ---------------------------------------------------------------
    @staticmethod
    def build(folder: Path, chunks: Sequence[StoredChunk], fp: str, extra: dict | None = None) -> LexicalMeta:
        """Write a new version for chunks, then point CURRENT at it and drop older versions."""
        bm25s = _bm25s()
        folder.mkdir(parents=True, exist_ok=True)
        name = f"v{time.time_ns()}"
        tmp = folder / f".{name}.tmp"
        tmp.mkdir()
        chunks = sorted(chunks, key=lambda c: c.id)
        meta = LexicalMeta(
            fingerprint=fp,
            n_chunks=len(chunks),
            n_docs=len({c.doc_id for c in chunks}),
            built_at=time.time(),
            extra=extra or {},
        )
        if chunks:
            # Token ids, not strings: the same index, but lists of strings for every token of a large
            # corpus (and bm25s mapping them to ids again) held ~2x the memory at the end of a build.
            corpus = tokenize_ids([f"{c.title}\n{c.text}" for c in chunks])
            retriever = bm25s.BM25()
            retriever.index(corpus, show_progress=False)
            retriever.save(str(tmp / "bm25"), show_progress=False)
            del corpus
        write_table(tmp / TABLE_FILE, chunks)
        (tmp / "meta.json").write_text(json.dumps(meta.__dict__))
        os.replace(tmp, folder / name)
        atomic_write(folder / "CURRENT", name)  # the commit point of a build
        for old in folder.iterdir():
            if old.name not in {name, "CURRENT"} and old.is_dir():
                shutil.rmtree(old, ignore_errors=True)
        return meta

    # --- queries -------------------------------------------------------------
    def _bm25(self):
        if self._retriever is None:
            bm25s = _bm25s()
            try:
                self._retriever = bm25s.BM25.load(str(self.version / "bm25"), mmap=True, show_progress=False)
            except Exception as exc:  # noqa: BLE001 - files present but not loadable: damaged
                raise IndexDamaged(
                    f"The index's BM25 side in {self.folder} is damaged (bm25 files unreadable: "
                    f"{type(exc).__name__}): {REPAIR}."
                ) from exc
            self._stemmer = _stemmer()
        return self._retriever

    def search(self, query: str, k: int, doc_ids: Sequence[str] | None = None) -> list[tuple[StoredChunk, float]]:
        """The k best BM25 chunks for query (only from doc_ids when given), with their scores."""
        if self.meta.n_chunks == 0:
            return []
        retriever = self._bm25()
        tokens = tokenize([query], self._stemmer)
        # Words the corpus never saw would make bm25s raise; they can't match anyway.
        vocab = retriever.vocab_dict
        tokens = [[t for t in tokens[0] if t in vocab]]
        if not tokens[0]:
            return []
        mask = None
        if doc_ids is not None:
            rows = self.rows_of(doc_ids)
            if not rows:
                return []
            mask = np.zeros(self.meta.n_chunks, dtype=np.float32)
            mask[rows] = 1.0
        k = min(k, self.meta.n_chunks)
        try:
            idx, scores = retriever.retrieve(tokens, k=k, show_progress=False, weight_mask=mask, n_threads=0)
        finally:
            self._release_pages()
        hits = [(int(i), float(s)) for i, s in zip(idx[0], scores[0]) if s > 0]
        chunks = self.rows([i for i, _ in hits])
        return [(chunks[i], s) for i, s in hits if i in chunks]

    def idf(self, terms: Sequence[str]) -> dict[str, float]:
        """BM25 idf of already-tokenized terms (unknown terms get the idf of a term seen once)."""
        import math

        n = self.meta.n_chunks
        if n == 0:
            return {t: 1.0 for t in terms}
        retriever = self._bm25()
        vocab = retriever.vocab_dict
        # bm25s keeps its score matrix by token column (CSC), so a column's length is the number of chunks
        # holding the token: the document frequency, without a second token dictionary in memory.
        indptr = retriever.scores["indptr"]
        out = {}
        try:
            for t in terms:
                i = vocab.get(t)
                df = max(int(indptr[i + 1] - indptr[i]) if i is not None and i + 1 < len(indptr) else 0, 1)
                out[t] = math.log(1 + (n - df + 0.5) / (df + 0.5))
        finally:
            self._release_pages()
        return out

    def _release_pages(self) -> None:
        """Hand the pages of the memory-mapped BM25 arrays that a query read back to the page cache."""
        # A query reads the posting lists of its words; with mmap those pages stay mapped in this process,
        # so its resident memory grows with every new word until it holds the whole arrays (55 MiB at
        # 110,170 chunks). They are clean file pages: dropping them costs a page-cache fault when a word
        # comes back, which does not show in the search time (scale index, 75 newsqa-dev questions three
        # times, alternating runs: 3.5-4.0 ms per search with the release, 3.1-4.4 ms without), and keeps a
        # query process flat (60 questions: 516 MiB after the first and the last; 524 -> 560 MiB without).
        advice = getattr(mmap, "MADV_DONTNEED", None)  # absent on Windows
        if self._retriever is None or advice is None:
            return
        for array in self._retriever.scores.values():
            mapped = getattr(array, "_mmap", None)  # numpy's memmap keeps its mmap.mmap here
            if mapped is not None and hasattr(mapped, "madvise"):
                try:
                    mapped.madvise(advice)
                except (OSError, ValueError):  # closed or not supported: only memory is at stake
                    pass

    def tokenize(self, texts: Sequence[str]) -> list[list[str]]:
        """Tokens of texts as this index tokenizes them."""
        if self._stemmer is None:
            self._stemmer = _stemmer()
        return tokenize(texts, self._stemmer)

    # --- the chunk table (see index.chunk_table) -------------------------------------
    def doc_ids(self, prefix: str | None = None, since: date | None = None, until: date | None = None) -> list[str]:
        """Ids of the articles that pass the filters."""
        return self.table.doc_ids(prefix, since, until)

    def rows_of(self, doc_ids: Sequence[str]) -> list[int]:
        """BM25 row numbers of every chunk of these articles."""
        return self.table.rows_of(doc_ids)

    def rows(self, rows: Sequence[int]) -> dict[int, StoredChunk]:
        """Chunks by BM25 row number."""
        return self.table.rows(rows)

    def by_ids(self, ids: Sequence[str]) -> dict[str, StoredChunk]:
        """Chunks by chunk id."""
        return self.table.by_ids(ids)

    def neighbours(self, doc_id: str, position: int, radius: int = 1) -> list[StoredChunk]:
        """The chunks around one position of an article, in order (for showing a passage)."""
        return self.table.span(doc_id, position - radius, position + radius)

    def span(self, doc_id: str, first: int, last: int) -> list[StoredChunk]:
        """The chunks of an article from position first to last (inclusive), in order."""
        return self.table.span(doc_id, first, last)

    def close(self) -> None:
        """Release the chunk table's database handle."""
        self.table.close()

    def stats(self) -> dict[str, Any]:
        """Counts for `qa index --status`."""
        return {"chunks": self.meta.n_chunks, "documents": self.meta.n_docs, **self.meta.extra}
