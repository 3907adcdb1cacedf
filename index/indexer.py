"""The composition root of indexing: one place that wires the store, the encoder, the BM25 folder and `build_index`.

`qa index`, `qa eval --dataset`, the benchmarks and the tests all build, open and rebuild an index
through `Indexer.from_settings(settings)`, so where an index lives and how it is cut and embedded is
decided once. index/ never imports bot/: `from_settings` reads plain attributes of any settings object.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from index.store import lexical_folder

if TYPE_CHECKING:
    from index.build import IndexReport, Progress
    from index.embedding import MiniLMEncoder
    from index.store import ChromaStore


@dataclass(frozen=True)
class IndexConfig:
    """Where an index lives and how its articles are cut and embedded (plain values, no defaults of its own)."""

    data_dir: Path
    collection: str
    model_cache_dir: Path
    chunk_size: int
    chunk_overlap: int
    embed_batch_size: int
    embed_precision: str
    chroma_host: str | None
    chroma_port: int

    @classmethod
    def from_settings(cls, settings: Any) -> IndexConfig:
        """The index part of bot.config.Settings (or any object with the same attribute names)."""
        return cls(**{name: getattr(settings, name) for name in cls.__dataclass_fields__})

    @property
    def lexical_dir(self) -> Path:
        """The folder of the BM25 side, the chunk table and the sentence vectors (one per backend)."""
        return lexical_folder(self.data_dir, self.collection, self.chroma_host, self.chroma_port)

    @property
    def backend(self) -> str:
        """Human-readable name of the Chroma backend in use."""
        if self.chroma_host:
            return f"chroma server {self.chroma_host}:{self.chroma_port}"
        return f"embedded chroma at {Path(self.data_dir) / 'chroma'}"


class Indexer:
    """Builds, opens and drops one index; the encoder is loaded on first use (or handed in to share one)."""

    def __init__(self, config: IndexConfig, encoder: MiniLMEncoder | None = None):
        self.config = config
        self._encoder = encoder

    @classmethod
    def from_settings(cls, settings: Any, encoder: MiniLMEncoder | None = None) -> Indexer:
        """The indexer of the index that settings name."""
        return cls(IndexConfig.from_settings(settings), encoder)

    @property
    def encoder(self) -> MiniLMEncoder:
        """The embedding model (loaded once, on first use)."""
        if self._encoder is None:
            from index.embedding import MiniLMEncoder

            self._encoder = MiniLMEncoder(self.config.model_cache_dir, precision=self.config.embed_precision)
        return self._encoder

    @property
    def model(self) -> str:
        """The embedding this indexer writes, as an index records it (model name and precision)."""
        from index.embedding import model_identity

        return self._encoder.name if self._encoder is not None else model_identity(self.config.embed_precision)

    def embedded_with(self) -> str | None:
        """The embedding the existing index was built with, or None when there is no index yet."""
        from index.errors import IndexMissing

        try:
            return self.open_store(verify=False, check_model=False).recorded_model
        except IndexMissing:
            return None

    @property
    def lexical_dir(self) -> Path:
        """See IndexConfig.lexical_dir."""
        return self.config.lexical_dir

    def open_store(self, create: bool = False, verify: bool = True, check_model: bool = True) -> ChromaStore:
        """The Chroma collection (created when asked; verify checks an existing one's vector index).

        An index embedded with another model or precision raises EmbeddingMismatch unless check_model=False.
        """
        from index.store import ChromaStore

        c = self.config
        return ChromaStore.open(c.data_dir, c.collection, self.model, c.chroma_host, c.chroma_port,
                                create=create, verify=verify, check_model=check_model)

    def build(
        self,
        root: Path,
        on_progress: Callable[[Progress], None] | None = None,
        replace: bool = False,
        follow_symlinks: bool = False,
        on_wait: Callable[[str], None] | None = None,
        reembed: bool = False,
    ) -> IndexReport:
        """Bring the index up to date with the articles under root (see index.build.build_index).

        An index embedded with another model or precision raises EmbeddingMismatch, or with reembed=True
        is dropped and built again from root (for indexes made from root alone, such as a data set's).
        """
        from index.build import build_index

        c = self.config
        if reembed:
            with self.lock(on_wait):
                old = self.embedded_with()
                if old is not None and old != self.model:
                    import logging

                    logging.getLogger(__name__).warning("%s was embedded with %s; embedding it again with %s",
                                                        c.collection, old, self.model)
                    self.drop()
        return build_index(
            Path(root), self.open_store(create=True), self.lexical_dir, self.encoder, c.chunk_size,
            c.chunk_overlap, c.embed_batch_size, on_progress, c.backend, replace=replace,
            follow_symlinks=follow_symlinks, on_wait=on_wait,
        )

    @contextmanager
    def lock(self, on_wait: Callable[[str], None] | None = None) -> Iterator[None]:
        """Hold this index's write lock (see index.build.index_lock)."""
        from index.build import index_lock

        with index_lock(self.lexical_dir, on_wait):
            yield

    def drop(self) -> str:
        """Delete the collection and its BM25 folder (for a rebuild); returns what was done, for people."""
        from index.store import ChromaStore

        c = self.config
        done = ChromaStore.drop(c.data_dir, c.collection, c.chroma_host, c.chroma_port)
        shutil.rmtree(self.lexical_dir, ignore_errors=True)
        return done

    def status(self) -> dict:
        """The last run's status record ({} when there is none)."""
        from index.build import read_status

        return read_status(self.lexical_dir) or {}
