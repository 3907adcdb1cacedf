"""The sentence-vector store: one float16 vector per sentence of each chunk, in a SQLite file beside the BM25 side."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from pathlib import Path

import numpy as np


class SentenceVectors:
    """Per-sentence vectors of each chunk (float16), in a SQLite file beside the BM25 versions.

    Written before the chunk reaches Chroma, so a chunk in the store always has its vectors; rows of
    chunks that left the store are pruned when the BM25 side is rebuilt.
    """

    def __init__(self, folder: Path, readonly: bool = False):
        folder.mkdir(parents=True, exist_ok=True) if not readonly else None
        path = folder / "sentences.sqlite"
        if readonly:
            self._db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, check_same_thread=False) if path.exists() else None
        else:
            self._db = sqlite3.connect(path, check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("CREATE TABLE IF NOT EXISTS sentvecs (chunk_id TEXT PRIMARY KEY, vecs BLOB)")
            self._db.commit()

    def put(self, chunk_ids: Sequence[str], vectors: Sequence[np.ndarray]) -> None:
        """Store the sentence vectors of these chunks (replacing older ones)."""
        self._db.executemany(
            "INSERT OR REPLACE INTO sentvecs VALUES (?, ?)",
            [(cid, np.asarray(v, dtype=np.float16).tobytes()) for cid, v in zip(chunk_ids, vectors)],
        )
        self._db.commit()

    def get(self, chunk_ids: Sequence[str]) -> dict[str, np.ndarray]:
        """Sentence vectors by chunk id (float32, one row per sentence); absent ids are left out."""
        if self._db is None or not chunk_ids:
            return {}
        q = f"SELECT chunk_id, vecs FROM sentvecs WHERE chunk_id IN ({','.join('?' * len(chunk_ids))})"
        return {
            cid: np.frombuffer(blob, dtype=np.float16).reshape(-1, 384).astype(np.float32)
            for cid, blob in self._db.execute(q, list(chunk_ids))
        }

    def count(self) -> int:
        """Number of chunks with stored sentence vectors (reading it also proves the file is sound)."""
        return self._db.execute("SELECT count(*) FROM sentvecs").fetchone()[0] if self._db else 0

    def ids(self) -> set[str]:
        """Chunk ids that have stored sentence vectors."""
        return {r[0] for r in self._db.execute("SELECT chunk_id FROM sentvecs")} if self._db else set()

    def prune(self, keep: set[str]) -> int:
        """Drop vectors of chunks not in keep; returns how many were dropped."""
        stale = [r[0] for r in self._db.execute("SELECT chunk_id FROM sentvecs") if r[0] not in keep]
        self._db.executemany("DELETE FROM sentvecs WHERE chunk_id = ?", [(c,) for c in stale])
        self._db.commit()
        return len(stale)

    def close(self) -> None:
        """Release the database handle."""
        if self._db is not None:
            self._db.close()
