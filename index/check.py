"""Is the index sound? The vector store, the BM25 side and the sentence vectors must agree.

Used by `qa index --check` and `qa index --status`. Each problem names the command that repairs it:
`qa index` for whatever can be derived again (the BM25 side is made from the store; missing sentence
vectors are embedded again from the articles), `qa index --rebuild` when the store itself is damaged.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from index.errors import IndexDamaged
from index.lexical import LexicalIndex, fingerprint
from index.sentence_vectors import SentenceVectors
from index.store import ChromaStore

REPAIR, REBUILD = "qa index", "qa index --rebuild"


@dataclass(frozen=True)
class Problem:
    """One thing wrong with the index, and the command that repairs it."""

    message: str
    fix: str


def check_index(store: ChromaStore, lexical_dir: Path, thorough: bool = False) -> list[Problem]:
    """Every problem found ([] when the index is sound); thorough also compares contents, not only counts."""
    problems: list[Problem] = []
    if store.recorded_model != store.model_name:
        problems.append(Problem(f"it was embedded with {store.recorded_model}, the settings ask for {store.model_name}",
                                REPAIR))
    try:
        store.check_vectors()
    except IndexDamaged as exc:
        problems.append(Problem(exc.user_message.split(": run")[0], REBUILD))
    stored = store.count()
    lexical = LexicalIndex.problems(lexical_dir, thorough)
    if lexical == ["not built"]:
        problems.append(Problem("the BM25 side has not been built", REPAIR))
    elif lexical:
        problems += [Problem(f"BM25 side: {p}", REPAIR) for p in lexical]
    else:
        meta = LexicalIndex.read_meta(lexical_dir)
        if meta is not None and meta.n_chunks != stored:
            problems.append(Problem(f"Chroma holds {stored} chunks, the BM25 side {meta.n_chunks}", REPAIR))
        elif meta is not None and thorough:
            _, pairs = store.doc_states()
            if fingerprint(pairs) != meta.fingerprint:
                problems.append(Problem("the BM25 side holds other chunks than Chroma", REPAIR))
    try:
        vectors = SentenceVectors(lexical_dir, readonly=True)
        try:
            if thorough:
                have = vectors.ids()
                lacking = sum(1 for chunk_id, _ in store.doc_states()[1] if chunk_id not in have)
            else:
                lacking = stored - vectors.count()  # a lower bound: rows of removed chunks linger until pruned
            if lacking > 0:
                problems.append(Problem(f"{lacking} chunks lack their sentence vectors", REPAIR))
        finally:
            vectors.close()
    except Exception as exc:  # noqa: BLE001 - sqlite3.DatabaseError: an unreadable file
        problems.append(Problem(f"sentences.sqlite is unreadable ({type(exc).__name__})", REPAIR))
    return problems
