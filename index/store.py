"""Chroma, embedded (PersistentClient) by default or a server (HttpClient) when a host is given."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from index.errors import EmbeddingMismatch, IndexDamaged, IndexMissing, QAError, StoreUnavailable

log = logging.getLogger(__name__)

# Records per Chroma get: a 5,000-record page left ~300 MB of heap behind on a 27,000-chunk index, a
# 1,000-record page ~120 MB, in the same time (bench/out probe on an 18.9 MiB article's index).
PAGE = 1000
REBUILD = "run `qa index --rebuild` to rebuild it from the articles"
# What Chroma's errors say when its files are damaged rather than out of reach: SQLite's "not a
# database" / "malformed" (codes 26 and 11), and the HNSW segment failing to find or read vectors.
_DAMAGE = ("file is not a database", "disk image is malformed", "(code: 11)", "(code: 26)", "error finding id",
           "error getting embedding", "error loading hnsw", "hnsw segment", "no such table")


def lexical_folder(data_dir: Path, collection: str, host: str | None = None, port: int | None = None) -> Path:
    """Where the BM25 side of a collection lives (one per backend, so two stores never share one)."""
    suffix = f"@{host}_{port}" if host else ""
    return Path(data_dir) / "lexical" / f"{collection}{suffix}"


@dataclass(frozen=True)
class StoredChunk:
    """A chunk as written to the store: text, vector-less metadata, and where it sits in its article."""

    id: str
    doc_id: str
    title: str
    date: str | None
    text: str
    start: int
    end: int
    position: int
    n_chunks: int
    doc_hash: str
    sentences: str  # "s-e,s-e,..." offsets into text, so answers can quote exact sentences

    def metadata(self) -> dict[str, Any]:
        """Chroma metadata (scalars only; a missing date is stored as empty string / 0)."""
        return {
            "doc_id": self.doc_id,
            "title": self.title,
            "date": self.date or "",
            "date_num": int(self.date.replace("-", "")) if self.date else 0,
            "start": self.start,
            "end": self.end,
            "position": self.position,
            "n_chunks": self.n_chunks,
            "doc_hash": self.doc_hash,
            "sentences": self.sentences,
        }

    @classmethod
    def from_record(cls, chunk_id: str, text: str, meta: dict[str, Any]) -> StoredChunk:
        """Rebuild a chunk from what Chroma returns."""
        return cls(
            id=chunk_id,
            doc_id=meta["doc_id"],
            title=meta.get("title", ""),
            date=meta.get("date") or None,
            text=text or "",
            start=int(meta.get("start", 0)),
            end=int(meta.get("end", 0)),
            position=int(meta.get("position", 0)),
            n_chunks=int(meta.get("n_chunks", 0)),
            doc_hash=meta.get("doc_hash", ""),
            sentences=meta.get("sentences", ""),
        )


@dataclass(frozen=True)
class DocState:
    """What the store holds of one article: its hash, how many of its chunks are present, and the
    folder it was indexed from ("" for chunks written before folders were recorded)."""

    doc_hash: str
    n_chunks: int
    present: int
    root: str = ""

    @property
    def complete(self) -> bool:
        """All chunks of this version are in the store (a killed run can leave a partial article)."""
        return self.present == self.n_chunks and self.n_chunks > 0


def _server(host: str, port: int):
    """(client, address) of a Chroma server that answers its heartbeat, or StoreUnavailable."""
    import chromadb
    from chromadb.config import Settings as ChromaSettings

    where = f"http://{host}:{port}"
    try:
        client = chromadb.HttpClient(host=host, port=port, settings=ChromaSettings(anonymized_telemetry=False))
        client.heartbeat()
    except Exception as exc:
        raise _unavailable(exc, where) from exc
    return client, where


def _unavailable(exc: Exception, where: str) -> QAError:
    """The user-facing error for a Chroma failure: damaged files, or a store out of reach."""
    log.debug("chroma error", exc_info=exc)
    text = str(exc).lower()
    if any(mark in text for mark in _DAMAGE):
        detail = next(m for m in _DAMAGE if m in text).strip("()")
        return IndexDamaged(f"The Chroma store at {where} is damaged ({detail}): {REBUILD}.")
    if where.startswith("http"):
        return StoreUnavailable(f"Cannot reach the Chroma store at {where}: {type(exc).__name__}.")
    return StoreUnavailable(f"Cannot open the Chroma store at {where}: {type(exc).__name__}.")


def _precision(model: str) -> str:
    """The precision part of a recorded embedding name ("... (int8)"; float32 has none)."""
    return model[model.rfind("(") + 1 : -1] if model.endswith(")") else "float32"


def embedding_mismatch(recorded: str, wanted: str) -> str:
    """The user-facing line for an index embedded with another model or precision than the settings'."""
    return (f"This index was embedded with {recorded}, but the settings ask for {wanted}: run `qa index` to embed "
            f"its articles again, or set QA_EMBED_PRECISION={_precision(recorded)} to use it as it is.")


def _no_embedded_index(data_dir: Path, collection: str, path: Path) -> str:
    """Why there is no embedded index: maybe the index is on a Chroma server that is not configured now."""
    servers = sorted(p.name.split("@", 1)[1] for p in (data_dir / "lexical").glob(f"{collection}@*") if p.is_dir())
    if servers:
        host, _, port = servers[0].rpartition("_")
        return (f"No embedded index in {path}, but {data_dir} holds an index on the Chroma server {host}:{port}: "
                f"set CHROMA_HOST={host} and CHROMA_PORT={port} to use it.")
    return f"No index yet in {path}: run `qa index DIR` with a folder of articles first."


class ChromaStore:
    """The vector side of the index. One collection; chunk ids are `<doc_id>#<position>`."""

    def __init__(self, client: Any, collection: str, where: str, model_name: str, create: bool,
                 missing_hint: str = "", check_model: bool = True):
        self.where = where
        self.model_name = model_name
        self.client = client
        self.name = collection
        try:
            if create:
                self.collection = client.get_or_create_collection(
                    collection,
                    embedding_function=None,
                    metadata={"hnsw:space": "cosine", "embedding_model": model_name},
                )
            else:
                self.collection = client.get_collection(collection, embedding_function=None)
        except StoreUnavailable:
            raise
        except Exception as exc:  # chromadb raises assorted types for "not found" and for network trouble
            msg = str(exc).lower()
            if "invalidargument" in type(exc).__name__.lower() and "name" in msg:
                first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
                raise QAError(f"Invalid collection name {collection!r}: {first}") from exc
            if not create and ("does not exist" in msg or "not found" in msg):
                raise IndexMissing(
                    missing_hint or f"No index yet in {where} (collection '{collection}'): run `qa index DIR` "
                    "with a folder of articles first."
                ) from exc
            raise _unavailable(exc, where) from exc
        # Vectors of two models (or precisions) in one collection would rank by noise: never mix them.
        self.recorded_model = (self.collection.metadata or {}).get("embedding_model") or model_name
        if check_model and self.recorded_model != model_name:
            raise EmbeddingMismatch(embedding_mismatch(self.recorded_model, model_name))

    @classmethod
    def open(
        cls,
        data_dir: Path,
        collection: str,
        model_name: str,
        host: str | None = None,
        port: int = 8000,
        create: bool = False,
        verify: bool = True,
        check_model: bool = True,
    ) -> ChromaStore:
        """Open the store: a Chroma server when host is set, else an embedded one under data_dir.

        Opening an existing store for reading checks that its vector index is sound (verify=False skips that).
        An existing collection embedded with another model than model_name raises EmbeddingMismatch
        (check_model=False opens it anyway, to read `recorded_model`).
        """
        import chromadb
        from chromadb.config import Settings as ChromaSettings

        chroma_settings = ChromaSettings(anonymized_telemetry=False)
        lexical = lexical_folder(data_dir, collection, host, port)
        hint = ""
        if lexical.is_dir() and (lexical / "CURRENT").exists():
            # The BM25 side beside a lost collection proves there was an index: it is damaged, not missing.
            hint = f"The Chroma store at {{where}} has lost collection '{collection}' (its BM25 side is still there): {REBUILD}."
        if host:
            client, where = _server(host, port)
        else:
            path = Path(data_dir) / "chroma"
            where = str(path)
            if not create and not path.exists():
                raise IndexMissing(_no_embedded_index(Path(data_dir), collection, path))
            try:
                path.mkdir(parents=True, exist_ok=True)
                client = chromadb.PersistentClient(path=str(path), settings=chroma_settings)
            except Exception as exc:
                raise _unavailable(exc, where) from exc
        store = cls(client, collection, where, model_name, create, hint.format(where=where), check_model)
        if not create and verify:
            store.check_vectors()
        return store

    @classmethod
    def drop(cls, data_dir: Path, collection: str, host: str | None = None, port: int = 8000) -> str:
        """Delete a collection for a rebuild; returns what was done, for people.

        An embedded store whose files are too damaged to open is moved aside (never deleted), so other
        collections in it can still be recovered by hand.
        """
        import chromadb
        from chromadb.config import Settings as ChromaSettings

        chroma_settings = ChromaSettings(anonymized_telemetry=False)
        if host:
            client, where = _server(host, port)
        else:
            path = Path(data_dir) / "chroma"
            where = str(path)
            if not path.exists():
                return f"no store at {where} yet"
            try:
                client = chromadb.PersistentClient(path=str(path), settings=chroma_settings)
                client.list_collections()
            except Exception as exc:  # noqa: BLE001 - unreadable: set the whole store aside
                import time

                aside = path.with_name(f"chroma.damaged-{time.strftime('%Y%m%d-%H%M%S')}")
                path.rename(aside)
                # Chroma caches one client per path in a process; the next open must start afresh.
                from chromadb.api.client import SharedSystemClient

                SharedSystemClient.clear_system_cache()
                log.debug("chroma store unreadable", exc_info=exc)
                return f"moved the damaged store {where} to {aside}"
        try:
            client.delete_collection(collection)
        except Exception as exc:  # noqa: BLE001 - "does not exist" is fine; anything else is reported
            if "does not exist" not in str(exc).lower() and "not found" not in str(exc).lower():
                raise _unavailable(exc, where) from exc
            return f"no collection '{collection}' in {where}"
        return f"deleted collection '{collection}' in {where}"

    # --- reads ---------------------------------------------------------------
    def check_vectors(self, sample: int = 3) -> None:
        """Raise IndexDamaged when the vector index cannot return what the store holds.

        Chroma keeps the vectors in an HNSW segment beside chroma.sqlite3; deleted or zeroed, the
        counts still look right while search returns almost nothing. A few stored vectors must be
        readable and must find themselves.
        """
        n = self.count()
        if n == 0:
            return
        offsets = sorted({0, n // 2, n - 1})[:sample]
        ids, vectors = [], []
        for offset in offsets:
            got = self._get(limit=1, offset=offset, include=["embeddings"])
            if got["ids"] and got.get("embeddings") is not None and len(got["embeddings"]):
                ids.append(got["ids"][0])
                vectors.append([float(x) for x in got["embeddings"][0]])
        if len(ids) < len(offsets):
            raise IndexDamaged(f"The Chroma store at {self.where} is damaged (vectors are missing): {REBUILD}.")
        try:
            res = self.collection.query(query_embeddings=vectors, n_results=min(n, 10), include=["distances"])
        except Exception as exc:
            raise _unavailable(exc, self.where) from exc
        for chunk_id, found, dists in zip(ids, res["ids"], res["distances"]):
            if chunk_id not in found or dists[found.index(chunk_id)] > 1e-3:
                raise IndexDamaged(
                    f"The Chroma store at {self.where} is damaged (its vector index does not find stored "
                    f"vectors): {REBUILD}."
                )

    def existing(self, ids: Sequence[str]) -> set[str]:
        """Which of these chunk ids the store holds."""
        if not ids:
            return set()
        return set(self._get(ids=list(ids), include=[])["ids"])

    def _get(self, **kwargs) -> dict:
        try:
            return self.collection.get(**kwargs)
        except Exception as exc:
            raise _unavailable(exc, self.where) from exc

    def iter_records(self, include: Sequence[str] = ("metadatas",)) -> Iterator[tuple[str, str | None, dict]]:
        """Every (id, document, metadata) in pages, so a large collection never sits in one response."""
        offset = 0
        while True:
            page = self._get(include=list(include), limit=PAGE, offset=offset)
            ids = page["ids"]
            docs = page.get("documents") or [None] * len(ids)
            for i, chunk_id in enumerate(ids):
                yield chunk_id, docs[i], page["metadatas"][i]
            if len(ids) < PAGE:
                return
            offset += PAGE

    def doc_states(self) -> tuple[dict[str, DocState], list[tuple[str, str]]]:
        """Per-article state, and (chunk_id, doc_hash) of every chunk (the index fingerprint's input)."""
        counts: dict[str, list] = {}
        pairs: list[tuple[str, str]] = []
        for chunk_id, _, meta in self.iter_records():
            doc_id, doc_hash = meta["doc_id"], meta.get("doc_hash", "")
            pairs.append((chunk_id, doc_hash))
            state = counts.setdefault(doc_id, [doc_hash, int(meta.get("n_chunks", 0)), 0, set(), meta.get("root", "")])
            state[3].add(doc_hash)
            state[2] += 1
        out = {}
        for doc_id, (doc_hash, n, present, hashes, root) in counts.items():
            # Mixed versions of one article mean a run died mid-replace: treat it as incomplete.
            out[doc_id] = DocState(doc_hash, n, present if len(hashes) == 1 else -1, root)
        return out, pairs

    def all_chunks(self) -> list[StoredChunk]:
        """Every chunk with its text (used to rebuild the BM25 side)."""
        return [StoredChunk.from_record(i, d, m) for i, d, m in self.iter_records(("documents", "metadatas"))]

    def count(self) -> int:
        """Number of chunks stored."""
        try:
            return self.collection.count()
        except Exception as exc:
            raise _unavailable(exc, self.where) from exc

    def query(self, vector: Sequence[float], k: int, doc_ids: Iterable[str] | None = None) -> list[tuple[StoredChunk, float]]:
        """The k nearest chunks with cosine similarity, optionally only from the given articles."""
        where = None
        if doc_ids is not None:
            ids = list(doc_ids)
            if not ids:
                return []
            where = {"doc_id": {"$in": ids}}
        try:
            res = self.collection.query(
                query_embeddings=[vector],
                n_results=k,
                where=where,
                include=["documents", "metadatas", "distances"],
            )
        except Exception as exc:
            raise _unavailable(exc, self.where) from exc
        out = []
        for chunk_id, doc, meta, dist in zip(
            res["ids"][0], res["documents"][0], res["metadatas"][0], res["distances"][0]
        ):
            out.append((StoredChunk.from_record(chunk_id, doc, meta), 1.0 - float(dist)))
        return out

    # --- writes --------------------------------------------------------------
    def delete_docs(self, doc_ids: Iterable[str]) -> None:
        """Remove every chunk of these articles."""
        ids = list(doc_ids)
        for start in range(0, len(ids), 500):
            try:
                self.collection.delete(where={"doc_id": {"$in": ids[start : start + 500]}})
            except Exception as exc:
                raise _unavailable(exc, self.where) from exc

    def upsert(self, chunks: Sequence[StoredChunk], vectors: Sequence[Sequence[float]], root: str = "") -> None:
        """Write chunks with their vectors (upsert, so a repeated write never duplicates).

        root: the folder the articles were indexed from, kept so that indexing another folder never
        removes them.
        """
        extra = {"root": root} if root else {}
        for start in range(0, len(chunks), PAGE):
            part = chunks[start : start + PAGE]
            try:
                self.collection.upsert(
                    ids=[c.id for c in part],
                    embeddings=vectors[start : start + PAGE],
                    documents=[c.text for c in part],
                    metadatas=[{**c.metadata(), **extra} for c in part],
                )
            except Exception as exc:
                raise _unavailable(exc, self.where) from exc

    def set_root(self, doc_ids: Iterable[str], root: str) -> None:
        """Record the folder these articles were indexed from (for chunks written before folders were kept)."""
        ids = list(doc_ids)
        for start in range(0, len(ids), 500):
            try:
                got = self.collection.get(where={"doc_id": {"$in": ids[start : start + 500]}}, include=[])
                # Chroma merges updated metadata into the stored one, so only the new key is sent; 500
                # articles can hold more chunks than one Chroma call takes, so the update goes in pages.
                for k in range(0, len(got["ids"]), PAGE):
                    page = got["ids"][k : k + PAGE]
                    self.collection.update(ids=page, metadatas=[{"root": root}] * len(page))
            except Exception as exc:
                raise _unavailable(exc, self.where) from exc
