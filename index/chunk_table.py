"""The chunk table: every chunk of one BM25 version, by BM25 row number, in SQLite (chunks.sqlite).

It maps BM25's row numbers back to chunks, answers the date and document filters, and gives the
neighbours of a chunk (passages, `/open N`). Written once per BM25 version, then only read.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from datetime import date
from pathlib import Path

from index.store import StoredChunk

FILE = "chunks.sqlite"
COLUMNS = "id, doc_id, title, date, date_num, text, start, end_, position, n_chunks, doc_hash, sentences"


def _row_to_chunk(row: tuple) -> StoredChunk:
    return StoredChunk(
        id=row[0], doc_id=row[1], title=row[2], date=row[3] or None, text=row[5], start=row[6], end=row[7],
        position=row[8], n_chunks=row[9], doc_hash=row[10], sentences=row[11],
    )


def write_table(path: Path, chunks: Sequence[StoredChunk]) -> None:
    """Write chunks (already in BM25 row order) as a new table at path."""
    db = sqlite3.connect(path)
    db.execute(
        "CREATE TABLE chunks (row INTEGER PRIMARY KEY, id TEXT UNIQUE, doc_id TEXT, title TEXT, date TEXT,"
        " date_num INTEGER, text TEXT, start INTEGER, end_ INTEGER, position INTEGER, n_chunks INTEGER,"
        " doc_hash TEXT, sentences TEXT)"
    )
    db.executemany(
        f"INSERT INTO chunks (row, {COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
        [
            (i, c.id, c.doc_id, c.title, c.date or "", c.metadata()["date_num"], c.text, c.start, c.end,
             c.position, c.n_chunks, c.doc_hash, c.sentences)
            for i, c in enumerate(chunks)
        ],
    )
    db.execute("CREATE INDEX chunks_doc ON chunks(doc_id)")
    db.commit()
    db.close()


class ChunkTable:
    """Read-only queries over one chunk table."""

    def __init__(self, path: Path):
        self._db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, check_same_thread=False)

    def in_order(self) -> list[StoredChunk]:
        """Every chunk, in BM25 row order."""
        return [_row_to_chunk(r) for r in self._db.execute(f"SELECT {COLUMNS} FROM chunks ORDER BY row")]

    def doc_ids(self, prefix: str | None = None, since: date | None = None, until: date | None = None) -> list[str]:
        """Ids of the articles that pass the filters."""
        sql, args = "SELECT DISTINCT doc_id FROM chunks WHERE 1=1", []
        if prefix:
            sql += " AND substr(doc_id, 1, ?) = ?"
            args += [len(prefix), prefix]
        if since:
            sql += " AND date_num >= ?"
            args.append(int(since.strftime("%Y%m%d")))
        if until:
            sql += " AND date_num > 0 AND date_num <= ?"
            args.append(int(until.strftime("%Y%m%d")))
        return [r[0] for r in self._db.execute(sql, args)]

    def rows_of(self, doc_ids: Sequence[str]) -> list[int]:
        """BM25 row numbers of every chunk of these articles."""
        ids = list(doc_ids)
        out: list[int] = []
        for start in range(0, len(ids), 900):  # SQLite's default bound-parameter limit
            part = ids[start : start + 900]
            q = f"SELECT row FROM chunks WHERE doc_id IN ({','.join('?' * len(part))})"
            out += [r[0] for r in self._db.execute(q, part)]
        return out

    def rows(self, rows: Sequence[int]) -> dict[int, StoredChunk]:
        """Chunks by BM25 row number."""
        if not rows:
            return {}
        q = f"SELECT row, {COLUMNS} FROM chunks WHERE row IN ({','.join('?' * len(rows))})"
        return {r[0]: _row_to_chunk(r[1:]) for r in self._db.execute(q, list(rows))}

    def by_ids(self, ids: Sequence[str]) -> dict[str, StoredChunk]:
        """Chunks by chunk id."""
        if not ids:
            return {}
        q = f"SELECT {COLUMNS} FROM chunks WHERE id IN ({','.join('?' * len(ids))})"
        return {r[0]: _row_to_chunk(r) for r in self._db.execute(q, list(ids))}

    def span(self, doc_id: str, first: int, last: int) -> list[StoredChunk]:
        """The chunks of an article from position first to last (inclusive), in order."""
        q = f"SELECT {COLUMNS} FROM chunks WHERE doc_id = ? AND position BETWEEN ? AND ? ORDER BY position"
        return [_row_to_chunk(r) for r in self._db.execute(q, (doc_id, first, last))]

    def close(self) -> None:
        """Release the database handle."""
        self._db.close()
