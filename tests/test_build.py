"""Incremental, crash-safe indexing (index/build.py) on real embedded Chroma stores in temporary dirs."""

from __future__ import annotations

import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from index.build import build_index, lexical_folder
from index.embedding import MiniLMEncoder
from index.lexical import LexicalIndex
from index.loaders import load_corpus
from index.sentence_vectors import SentenceVectors
from index.store import ChromaStore, StoredChunk
from tests.conftest import SEEDS, default_sigint, make_settings, qa_in_process

pytestmark = pytest.mark.usefixtures("reuse_vectors")

ROOT = Path(__file__).resolve().parent.parent
QA = ROOT / ".venv" / "bin" / "qa"
COLLECTION = "articles"
SUMMARY = re.compile(
    r"(\d+) added, (\d+) updated, (\d+) removed, (\d+) unchanged documents; "
    r"(\d+) chunks embedded, (\d+) in the index"
)


@pytest.fixture(scope="module")
def settings(tmp_path_factory):
    return make_settings(tmp_path_factory.mktemp("build-settings"))


@pytest.fixture(scope="module")
def encoder(settings):
    return MiniLMEncoder(settings.model_cache_dir, precision=settings.embed_precision)


@pytest.fixture
def corpus(tmp_path):
    """A private copy of seeds/ that a test may edit."""
    return Path(shutil.copytree(SEEDS, tmp_path / "corpus"))


def run(corpus: Path, data_dir: Path, encoder, chunk_size: int = 200, chunk_overlap: int = 32, **kwargs):
    store = ChromaStore.open(data_dir, COLLECTION, encoder.name, create=True)
    return build_index(corpus, store, lexical_folder(data_dir, COLLECTION), encoder, chunk_size, chunk_overlap,
                       **kwargs)


def open_store(data_dir: Path, encoder) -> ChromaStore:
    return ChromaStore.open(data_dir, COLLECTION, encoder.name)


def stored(data_dir: Path, encoder) -> dict[str, StoredChunk]:
    """Every chunk in the Chroma collection by id; fails on duplicate ids or a count that disagrees."""
    store = open_store(data_dir, encoder)
    chunks = store.all_chunks()
    ids = [c.id for c in chunks]
    assert len(ids) == len(set(ids)), "duplicate chunk ids in Chroma"
    assert store.count() == len(ids)
    return {c.id: c for c in chunks}


def vectors(data_dir: Path, encoder, ids: list[str]) -> dict[str, np.ndarray]:
    got = open_store(data_dir, encoder).collection.get(ids=ids, include=["embeddings"])
    return {i: np.asarray(v, dtype=np.float32) for i, v in zip(got["ids"], got["embeddings"])}


def bm25_side(data_dir: Path) -> tuple[dict[str, StoredChunk], LexicalIndex]:
    """The BM25 side's chunk table by id, and the opened index (caller closes it)."""
    lex = LexicalIndex.open(lexical_folder(data_dir, COLLECTION))
    assert lex is not None, "no BM25 side"
    rows = lex.rows(list(range(lex.meta.n_chunks)))
    assert sorted(rows) == list(range(lex.meta.n_chunks))
    ids = [c.id for c in rows.values()]
    assert len(ids) == len(set(ids)), "duplicate chunk ids in the BM25 table"
    return {c.id: c for c in rows.values()}, lex


def bm25_docs(data_dir: Path, query: str) -> set[str]:
    """The articles whose chunks BM25 finds for query."""
    _, lex = bm25_side(data_dir)
    try:
        return {c.doc_id for c, _ in lex.search(query, k=50)}
    finally:
        lex.close()


def chunks_without_sentence_vectors(data_dir: Path, chunks: dict[str, StoredChunk]) -> list[str]:
    """Chunks whose per-sentence vectors (kept beside the BM25 side) are missing or of the wrong count."""
    vectors = SentenceVectors(lexical_folder(data_dir, COLLECTION), readonly=True)
    try:
        got = vectors.get(sorted(chunks))
    finally:
        vectors.close()
    return sorted(
        i for i, c in chunks.items()
        if i not in got or len(got[i]) != len([s for s in c.sentences.split(",") if s])
    )


def assert_index_matches_corpus(data_dir: Path, corpus: Path, encoder) -> dict[str, StoredChunk]:
    """The store holds exactly the chunks of the current files, each pointing at its text, and BM25 agrees."""
    chunks = stored(data_dir, encoder)
    articles = {a.doc_id: a for a in load_corpus(corpus)[0]}
    by_doc: dict[str, list[StoredChunk]] = {}
    for c in chunks.values():
        by_doc.setdefault(c.doc_id, []).append(c)
    assert sorted(by_doc) == sorted(articles), "the store's articles differ from the files"
    for doc_id, parts in by_doc.items():
        article = articles[doc_id]
        parts.sort(key=lambda c: c.position)
        n = len(parts)
        assert [c.id for c in parts] == [f"{doc_id}#{i}" for i in range(n)]
        for c in parts:
            assert (c.doc_id, c.title, c.date, c.doc_hash, c.n_chunks) == (
                doc_id, article.title, article.date, article.content_hash, n
            ), c.id
            assert c.text.strip() and article.text[c.start : c.end] == c.text, c.id
            for span in filter(None, c.sentences.split(",")):
                s, e = map(int, span.split("-"))
                assert 0 <= s < e <= len(c.text), (c.id, span)
        # Chunks run through the article in order and together cover all of it.
        assert parts[0].start == 0 or not article.text[: parts[0].start].strip()
        assert not article.text[parts[-1].end :].strip()
        for a, b in zip(parts, parts[1:]):
            assert a.start < b.start and a.end <= b.end, (a.id, b.id)
            assert b.start <= a.end or not article.text[a.end : b.start].strip(), (a.id, b.id)
    lexical, lex = bm25_side(data_dir)
    try:
        assert lexical == chunks, "the BM25 side differs from the vector store"
        assert (lex.meta.n_chunks, lex.meta.n_docs) == (len(chunks), len(articles))
    finally:
        lex.close()
    assert chunks_without_sentence_vectors(data_dir, chunks) == []
    return chunks


def test_first_run_adds_all_and_an_unchanged_rerun_embeds_nothing(corpus, tmp_path, encoder, seed_settings):
    data = tmp_path / "data"
    first = run(corpus, data, encoder)
    chunks = assert_index_matches_corpus(data, corpus, encoder)
    assert (first.added, first.updated, first.removed, first.unchanged) == (5, 0, 0, 0)
    assert first.chunks_written == first.chunks_total == len(chunks) > 5
    assert first.documents_total == 5 and first.lexical_rebuilt and first.warnings == ()

    again = run(corpus, data, encoder)
    assert (again.added, again.updated, again.removed, again.unchanged) == (0, 0, 0, 5)
    assert again.chunks_written == 0 and not again.lexical_rebuilt
    assert again.chunks_total == len(chunks)
    assert stored(data, encoder) == chunks

    # Ids, texts, offsets and vectors are the same in an independent full build (the session's seed
    # index, built from seeds/ itself into another data dir).
    other = stored(seed_settings.data_dir, encoder)
    assert other == chunks
    some = sorted(chunks)[::5]
    mine, theirs = vectors(data, encoder, some), vectors(seed_settings.data_dir, encoder, some)
    for chunk_id in some:
        assert np.allclose(mine[chunk_id], theirs[chunk_id], atol=1e-5), chunk_id


@pytest.mark.real_encode
def test_a_large_build_releases_the_embedding_session_before_the_bm25_side(tmp_path, encoder, monkeypatch):
    """Guards the 1 GB budget of the largest accepted file: the session's arena must not stay beside the
    BM25 build; a small build keeps it (a query often follows in the same process)."""
    import index.build

    corpus = tmp_path / "corpus"
    corpus.mkdir()
    shutil.copy(SEEDS / "004_d4eda17714fa30b5.txt", corpus)
    small = run(corpus, tmp_path / "small", encoder)
    assert 0 < small.chunks_written < index.build.RELEASE_AFTER and encoder._session is not None

    monkeypatch.setattr(index.build, "RELEASE_AFTER", small.chunks_written)
    large = run(corpus, tmp_path / "large", encoder)
    assert large.chunks_written == small.chunks_written and encoder._session is None
    assert LexicalIndex.read_meta(lexical_folder(tmp_path / "large", COLLECTION)).n_chunks == large.chunks_total
    # Released, not broken: the same encoder embeds again, as the query that follows will.
    assert float(encoder.encode_one("ADASpace") @ encoder.encode_one("ADASpace")) > 0.9999


def test_lost_bm25_folder_is_rebuilt_complete(tmp_path, encoder):
    """The store is the source of truth: losing the folder beside it (or indexing into a new data dir
    against a Chroma server that already holds the collection) must still give a complete index."""
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    shutil.copy(SEEDS / "004_d4eda17714fa30b5.txt", corpus)
    data = tmp_path / "data"
    run(corpus, data, encoder)
    chunks = assert_index_matches_corpus(data, corpus, encoder)
    shutil.rmtree(data / "lexical")
    report = run(corpus, data, encoder)
    assert report.lexical_rebuilt and report.unchanged + report.updated == 1
    bm25, lex = bm25_side(data)
    lex.close()
    assert bm25 == stored(data, encoder) == chunks
    assert chunks_without_sentence_vectors(data, chunks) == [], "chunks left without their sentence vectors"


def test_changes_deletions_additions_keep_exactly_the_current_chunks(corpus, tmp_path, encoder):
    data = tmp_path / "data"
    run(corpus, data, encoder)
    before = assert_index_matches_corpus(data, corpus, encoder)
    assert bm25_docs(data, "heartfelt") == {"004_d4eda17714fa30b5.txt"}

    # 1. Change one file: a removed word, a new word, and a shorter text (fewer chunks than before).
    changed = corpus / "004_d4eda17714fa30b5.txt"
    paragraphs = re.split(r"\n\s*\n", changed.read_text(encoding="utf-8"))
    assert "heartfelt" in paragraphs[2]
    text = "\n\n".join(paragraphs[:4]).replace("heartfelt", "zorblaxian")
    changed.write_text(text, encoding="utf-8")
    report = run(corpus, data, encoder)
    after = assert_index_matches_corpus(data, corpus, encoder)
    assert (report.added, report.updated, report.removed, report.unchanged) == (0, 1, 0, 4)
    new_ids = {i for i in after if i.startswith("004_")}
    old_ids = {i for i in before if i.startswith("004_")}
    assert len(new_ids) < len(old_ids) and new_ids < old_ids  # stale tail chunks are gone
    assert report.chunks_written == len(new_ids)
    assert report.chunks_total == len(after) == len(before) - len(old_ids) + len(new_ids)
    assert any("zorblaxian" in after[i].text for i in new_ids)
    assert not any("heartfelt" in after[i].text for i in new_ids)
    assert {i: c for i, c in after.items() if i not in new_ids} == {
        i: c for i, c in before.items() if i not in old_ids
    }, "other articles' chunks were touched"
    assert bm25_docs(data, "zorblaxian") == {"004_d4eda17714fa30b5.txt"}
    assert bm25_docs(data, "heartfelt") == set()

    # 2. Delete a file: its chunks leave Chroma and BM25.
    assert bm25_docs(data, "ADASpace") == {"002_0c73d536360565c7.txt"}
    (corpus / "002_0c73d536360565c7.txt").unlink()
    report = run(corpus, data, encoder)
    after_delete = assert_index_matches_corpus(data, corpus, encoder)
    assert (report.added, report.updated, report.removed, report.unchanged) == (0, 0, 1, 4)
    assert report.chunks_written == 0
    assert not any(c.doc_id.startswith("002_") for c in after_delete.values())
    assert bm25_docs(data, "ADASpace") == set()
    assert {i: c for i, c in after_delete.items()} == {i: c for i, c in after.items() if not i.startswith("002_")}

    # 3. Add a file in a subfolder.
    (corpus / "world" / "2024").mkdir(parents=True)
    (corpus / "world" / "2024" / "quokka.md").write_text(
        "# Quokka census finished\n\nRangers on Rottnest Island counted 12,000 quokkas on 2 May 2024.\n",
        encoding="utf-8",
    )
    report = run(corpus, data, encoder)
    after_add = assert_index_matches_corpus(data, corpus, encoder)
    assert (report.added, report.updated, report.removed, report.unchanged) == (1, 0, 0, 4)
    assert report.chunks_written == 1
    new = after_add["world/2024/quokka.md#0"]
    assert (new.title, new.date) == ("Quokka census finished", "2024-05-02")
    assert bm25_docs(data, "quokkas Rottnest") == {"world/2024/quokka.md"}

    # 4. Rename (move) a file, and revert the change of step 1.
    (corpus / "archive").mkdir()
    (corpus / "000_c6868c4dda0e85e6.txt").rename(corpus / "archive" / "000_c6868c4dda0e85e6.txt")
    shutil.copy(SEEDS / "004_d4eda17714fa30b5.txt", changed)
    report = run(corpus, data, encoder)
    final = assert_index_matches_corpus(data, corpus, encoder)
    assert (report.added, report.updated, report.removed, report.unchanged) == (1, 1, 1, 3)
    assert not any(i.startswith("000_") for i in final)
    assert {i for i in final if i.startswith("004_")} == old_ids
    assert bm25_docs(data, "heartfelt") == {"004_d4eda17714fa30b5.txt"}
    assert bm25_docs(data, "zorblaxian") == set()

    # After this sequence of runs the index equals a clean build of the same files.
    clean = tmp_path / "clean"
    run(corpus, clean, encoder)
    assert stored(clean, encoder) == final
    assert bm25_side(clean)[0] == bm25_side(data)[0]


def test_partial_article_left_by_a_killed_run_is_redone(tmp_path, encoder):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for name in ("003_1c4934fb60e6f169.txt", "004_d4eda17714fa30b5.txt"):
        shutil.copy(SEEDS / name, corpus / name)
    data = tmp_path / "data"
    run(corpus, data, encoder)
    full = stored(data, encoder)
    store = open_store(data, encoder)
    # A run killed mid-write can leave some chunks of an article ...
    store.collection.delete(ids=["004_d4eda17714fa30b5.txt#1"])
    # ... or chunks of two versions of one article.
    stale = full["003_1c4934fb60e6f169.txt#0"]
    store.collection.update(
        ids=[stale.id], metadatas=[{**stale.metadata(), "doc_hash": "0" * 32}]
    )
    report = run(corpus, data, encoder)
    assert (report.added, report.updated, report.unchanged) == (0, 2, 0)
    assert stored(data, encoder) == full
    assert_index_matches_corpus(data, corpus, encoder)


# --- crash safety with a real process ----------------------------------------------------------------
CRASH_FILES = 60
CRASH_ENV = {"QA_CHUNK_SIZE": "32", "QA_CHUNK_OVERLAP": "4"}  # small chunks: several write groups, quickly


def make_crash_corpus(root: Path) -> Path:
    """60 short articles made by rotating and marking the seeds' paragraphs (two write groups of chunks)."""
    seeds = [a.text for a in sorted(load_corpus(SEEDS)[0], key=lambda a: a.doc_id)]
    for i in range(CRASH_FILES):
        paragraphs = [p.strip() for p in seeds[i % len(seeds)].split("\n\n")[1:] if len(p.strip()) > 80]
        k = (i // len(seeds)) % len(paragraphs)
        paragraphs = paragraphs[k:] + paragraphs[:k]
        body = f"Marker zyx{i:03d}q belongs to copy {i} only.\n\n" + "\n\n".join(paragraphs * 2)
        cut = body.rfind(". ", 0, 720)
        if cut < 450:  # a very long sentence: end the article mid-sentence instead
            cut = body.rfind(" ", 0, 720) - 1
        folder = root / f"batch{i % 3}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"copy_{i:03d}.txt").write_text(f"Copy {i}\n\n{body[: cut + 1]}\n", encoding="utf-8")
    return root


def chroma_rows(data_dir: Path) -> int:
    """Chunks committed to an embedded store, read straight from its SQLite file (the writer keeps running)."""
    path = data_dir / "chroma" / "chroma.sqlite3"
    if not path.exists():
        return 0
    try:
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=0.2)
        try:
            return db.execute("SELECT count(*) FROM embeddings").fetchone()[0]
        finally:
            db.close()
    except sqlite3.Error:
        return 0


def qa_env(settings, **extra) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("QA_", "OPENAI_", "CHROMA_"))}
    env.update(QA_MODEL_CACHE_DIR=str(settings.model_cache_dir), **CRASH_ENV, **extra)
    return env


# Watches an indexing process from outside (no GIL shared with this test's own indexing) and SIGKILLs it
# as soon as its first chunks are committed to the store; prints how many rows it saw.
WATCHER = r"""
import os, signal, sqlite3, sys, time
pid, path = int(sys.argv[1]), sys.argv[2]
deadline = time.monotonic() + 120
while time.monotonic() < deadline:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        break
    rows = 0
    if os.path.exists(path):
        try:
            db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=0.05)
            rows = db.execute("SELECT count(*) FROM embeddings").fetchone()[0]
            db.close()
        except sqlite3.Error:
            pass
    if rows > 0:
        os.kill(pid, signal.SIGKILL)
        print(rows, flush=True)
        break
    time.sleep(0.02)
"""


def test_killed_indexing_process_resumes_to_exactly_a_clean_index(tmp_path, encoder, settings, monkeypatch):
    corpus = make_crash_corpus(tmp_path / "corpus")
    data = tmp_path / "data"
    log = (tmp_path / "killed.out").open("w")
    # A real `qa index`, SIGKILLed once some but not all chunks are in the store ...
    proc = subprocess.Popen(
        [str(QA), "index", str(corpus), "--data-dir", str(data)],
        stdout=log, stderr=subprocess.STDOUT, env=qa_env(settings), cwd=tmp_path,
    )
    watcher = subprocess.Popen(
        [sys.executable, "-c", WATCHER, str(proc.pid), str(data / "chroma" / "chroma.sqlite3")],
        stdout=subprocess.PIPE, text=True,
    )
    try:
        # ... while this process makes what a clean, uninterrupted run produces.
        clean = tmp_path / "clean"
        report = run(corpus, clean, encoder, chunk_size=int(CRASH_ENV["QA_CHUNK_SIZE"]),
                     chunk_overlap=int(CRASH_ENV["QA_CHUNK_OVERLAP"]))
        seen = watcher.communicate(timeout=150)[0].strip()
        proc.wait(30)
    finally:
        for p in (proc, watcher):
            if p.poll() is None:
                p.kill()
                p.wait(30)
        log.close()
    expected = assert_index_matches_corpus(clean, corpus, encoder)
    total = len(expected)
    assert report.added == CRASH_FILES and total > 200
    output = (tmp_path / "killed.out").read_text()
    assert proc.returncode == -signal.SIGKILL, f"indexing was not killed midway (exit {proc.returncode}):\n{output}"
    partial = chroma_rows(data)
    assert 0 < partial < total, (seen, partial, total)

    # Run again: it must finish the job without redoing the articles already complete. The same `qa index`
    # command, in this process: what is tested is what the killed one left, and a cold start costs ~4 s.
    done = qa_in_process(["index", str(corpus), "--data-dir", str(data)], qa_env(settings), tmp_path, monkeypatch)
    assert done.returncode == 0, done.stdout + done.stderr
    added, updated, removed, unchanged, embedded, in_index = map(int, SUMMARY.search(done.stdout).groups())
    assert added + updated + unchanged == CRASH_FILES and removed == 0
    assert unchanged > 0 and embedded < total, done.stdout
    assert in_index == total

    # The resumed index is exactly the clean one: same chunks, same vectors, BM25 in step.
    got = assert_index_matches_corpus(data, corpus, encoder)
    assert sorted(got) == sorted(expected)
    assert got == expected
    ids = sorted(expected)
    mine, theirs = vectors(data, encoder, ids), vectors(clean, encoder, ids)
    assert sorted(mine) == ids
    for chunk_id in ids:
        assert float(mine[chunk_id] @ theirs[chunk_id]) > 0.9999, chunk_id
    store = open_store(data, encoder)
    for chunk_id in ids[:: max(1, total // 12)]:
        hits = store.query(theirs[chunk_id].tolist(), k=5)
        assert chunk_id in [c.id for c, _ in hits], chunk_id  # the vector index (not just SQLite) has it
    for i in (0, CRASH_FILES // 2, CRASH_FILES - 1):
        assert bm25_docs(data, f"zyx{i:03d}q") == {f"batch{i % 3}/copy_{i:03d}.txt"}


# --- folders: indexing another one adds, never silently removes ----------------------------------------
def two_folders(tmp_path: Path) -> tuple[Path, Path]:
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    for name in ("003_1c4934fb60e6f169.txt", "004_d4eda17714fa30b5.txt"):
        shutil.copy(SEEDS / name, a / name)
    shutil.copy(SEEDS / "001_e76acc07d88c3c13.txt", b / "001_e76acc07d88c3c13.txt")
    return a, b


def doc_ids(data_dir: Path, encoder) -> list[str]:
    return sorted({c.doc_id for c in stored(data_dir, encoder).values()})


def test_indexing_another_folder_keeps_the_articles_of_the_first(tmp_path, encoder):
    a, b = two_folders(tmp_path)
    data = tmp_path / "data"
    run(a, data, encoder)
    report = run(b, data, encoder)
    assert (report.added, report.removed, report.kept) == (1, 0, 2)
    assert "kept 2 documents indexed from other folders" in report.summary()
    assert doc_ids(data, encoder) == ["001_e76acc07d88c3c13.txt", "003_1c4934fb60e6f169.txt", "004_d4eda17714fa30b5.txt"]
    # A file that disappears is removed only from the folder it was indexed from.
    (a / "004_d4eda17714fa30b5.txt").unlink()
    assert run(b, data, encoder).removed == 0
    report = run(a, data, encoder)
    assert (report.removed, report.unchanged, report.kept) == (1, 1, 1)
    assert doc_ids(data, encoder) == ["001_e76acc07d88c3c13.txt", "003_1c4934fb60e6f169.txt"]
    assert bm25_docs(data, "heartfelt") == set()


def test_replace_makes_the_index_exactly_the_folder(tmp_path, encoder):
    a, b = two_folders(tmp_path)
    data = tmp_path / "data"
    run(a, data, encoder)
    report = run(b, data, encoder, replace=True)
    assert (report.added, report.removed, report.kept) == (1, 2, 0)
    assert_index_matches_corpus(data, b, encoder)


def test_the_same_id_with_other_content_in_another_folder_is_skipped_not_swapped(tmp_path, encoder):
    a, b = two_folders(tmp_path)
    (b / "003_1c4934fb60e6f169.txt").write_text("Other story\n\nA different article with the same name.\n")
    data = tmp_path / "data"
    run(a, data, encoder)
    before = stored(data, encoder)
    report = run(b, data, encoder)
    (warning,) = [w for w in report.warnings if w.path == "003_1c4934fb60e6f169.txt"]
    assert "indexed from" in warning.message and str(a.resolve()) in warning.message and "--replace" in warning.message
    after = stored(data, encoder)
    assert {i: c for i, c in after.items() if i.startswith("003_")} == {i: c for i, c in before.items() if i.startswith("003_")}


def test_a_single_file_is_added_without_removing_anything(tmp_path, encoder):
    a, b = two_folders(tmp_path)
    data = tmp_path / "data"
    run(a, data, encoder)
    report = run(b / "001_e76acc07d88c3c13.txt", data, encoder)
    assert (report.added, report.removed, report.kept) == (1, 0, 2)
    assert len(doc_ids(data, encoder)) == 3
    # Indexing the file's folder later sees it as its own: unchanged, not added again.
    again = run(b, data, encoder)
    assert (again.added, again.unchanged) == (0, 1)


def test_a_folder_of_unusable_files_is_an_error_and_changes_nothing(tmp_path, encoder):
    from index.errors import CorpusEmpty

    a, _ = two_folders(tmp_path)
    data = tmp_path / "data"
    run(a, data, encoder)
    before = stored(data, encoder)
    junk = tmp_path / "junk"
    junk.mkdir()
    (junk / "noise.txt").write_bytes(bytes(range(1, 256)) * 20)
    with pytest.raises(CorpusEmpty, match="all 1 article files were skipped"):
        run(junk, data, encoder, replace=True)
    assert stored(data, encoder) == before


def test_chunks_written_before_folders_were_recorded_belong_to_the_last_run_folder(tmp_path, encoder):
    """An index from an older version: no folder in the chunks, only in status.json."""
    a, b = two_folders(tmp_path)
    data = tmp_path / "data"
    run(a, data, encoder)
    store = open_store(data, encoder)
    ids = store.collection.get(include=[])["ids"]
    store.collection.update(ids=ids, metadatas=[{"root": None}] * len(ids))  # None deletes the key
    assert all("root" not in m for m in open_store(data, encoder).collection.get(include=["metadatas"])["metadatas"])
    report = run(b, data, encoder)
    assert (report.removed, report.kept) == (0, 2)  # the old run indexed a/, so its articles stay
    roots = {m["doc_id"]: m["root"] for m in open_store(data, encoder).collection.get(include=["metadatas"])["metadatas"]}
    assert roots["003_1c4934fb60e6f169.txt"] == str(a.resolve()) and roots["001_e76acc07d88c3c13.txt"] == str(b.resolve())


# --- bad input never aborts a run -------------------------------------------------------------------------
def test_one_article_that_cannot_be_split_is_skipped_and_the_run_goes_on(tmp_path, encoder, monkeypatch):
    from index import build

    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for name in ("003_1c4934fb60e6f169.txt", "004_d4eda17714fa30b5.txt"):
        shutil.copy(SEEDS / name, corpus / name)
    real = build.Chunker.split_one

    def split_one(self, article):
        if article.doc_id.startswith("003_"):
            raise ValueError("A single term is larger than the allowed chunk size.")
        return real(self, article)

    monkeypatch.setattr(build.Chunker, "split_one", split_one)
    report = run(corpus, tmp_path / "data", encoder)
    assert (report.added, report.documents_total) == (1, 1)
    assert [(w.path, "could not be split" in w.message) for w in report.warnings] == [("003_1c4934fb60e6f169.txt", True)]


def test_a_long_first_line_neither_aborts_the_run_nor_shrinks_the_chunks(tmp_path, encoder):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    body = (SEEDS / "004_d4eda17714fa30b5.txt").read_text(encoding="utf-8")
    first = " ".join(f"lorem{i}" for i in range(160)) + "."
    (corpus / "long.txt").write_text(first + "\n\n" + body, encoding="utf-8")
    (corpus / "normal.txt").write_text("Normal title\n\n" + body, encoding="utf-8")
    (corpus / "huge.txt").write_text(" ".join(f"ipsum{i}" for i in range(400)) + "\n\n" + body, encoding="utf-8")
    run(corpus, tmp_path / "data", encoder)
    chunks = stored(tmp_path / "data", encoder)
    counts = {d: sum(1 for c in chunks.values() if c.doc_id == d) for d in ("long.txt", "normal.txt", "huge.txt")}
    assert counts["normal.txt"] <= counts["long.txt"] <= counts["normal.txt"] + 3, counts
    assert counts["huge.txt"] > 0  # a first line over the chunk size must not raise and stop the whole run
    for c in chunks.values():  # a title near the chunk size must not leave a few characters per chunk
        assert len(c.text) > 300 or c.position == c.n_chunks - 1, (c.id, c.text)
    assert chunks["long.txt#0"].title == "long" and chunks["long.txt#0"].text.startswith("lorem0 lorem1")


def test_pieces_cut_long_texts_at_paragraph_then_sentence_ends():
    from index.build import pieces

    text = ("A sentence of words. " * 40 + "\n\n") * 10
    got = list(pieces(text, limit=1000))
    assert "".join(p for _, p in got) == text
    assert all(len(p) <= 1000 for _, p in got) and all(text[o : o + len(p)] == p for o, p in got)
    assert all(p.endswith((". ", "\n")) for _, p in got[:-1])
    solid = "x" * 2500
    assert [len(p) for _, p in pieces(solid, limit=1000)] == [1000, 1000, 500]


def test_a_large_article_is_chunked_in_bounded_pieces_with_exact_offsets(tmp_path, encoder):
    from index.build import Chunker
    from index.loaders import Article

    sentences = [p for p in re.split(r"(?<=\.) ", (SEEDS / "000_c6868c4dda0e85e6.txt").read_text(encoding="utf-8")) if p]
    text = " ".join(sentences[i % len(sentences)].replace("\n", " ") for i in range(3000))  # one ~600 KB paragraph
    article = Article("big.txt", "Big", None, text, "0" * 32)
    parts = Chunker(encoder, 200, 32).split_one(article)
    assert len(parts) > 100
    for i, (chunk, _, _) in enumerate(parts):
        assert chunk.id == f"big.txt#{i}" and chunk.n_chunks == len(parts)
        assert text[chunk.start : chunk.end] == chunk.text
    assert not text[parts[-1][0].end :].strip()


def test_long_articles_are_streamed_a_slice_at_a_time_into_the_same_index(corpus, tmp_path, encoder, monkeypatch):
    """Above STREAM_CHARS an article is chunked twice (count, then write slice by slice) instead of held whole;
    the index must be exactly what the all-at-once path builds: same ids, texts, n_chunks, vectors."""
    from index import build

    run(corpus, tmp_path / "whole", encoder)
    whole = assert_index_matches_corpus(tmp_path / "whole", corpus, encoder)
    docs = {c.doc_id for c in whole.values()}
    monkeypatch.setattr(build, "STREAM_CHARS", 1000)  # every seed article streams
    monkeypatch.setattr(build, "ENCODE_SLICE", 5)  # several slices per article
    held = []
    real = build.Chunker.split_one
    monkeypatch.setattr(build.Chunker, "split_one", lambda self, a: held.append(a.doc_id) or real(self, a))
    report = run(corpus, tmp_path / "streamed", encoder)
    assert held == [] and report.added == len(docs) > 1
    streamed = assert_index_matches_corpus(tmp_path / "streamed", corpus, encoder)
    assert streamed == whole
    a, b = vectors(tmp_path / "whole", encoder, sorted(whole)), vectors(tmp_path / "streamed", encoder, sorted(whole))
    assert all(float(a[i] @ b[i]) > 0.9999 for i in whole)


def test_a_streamed_article_that_fails_midway_is_skipped_whole(corpus, tmp_path, encoder, monkeypatch):
    from index import build

    monkeypatch.setattr(build, "STREAM_CHARS", 1000)
    monkeypatch.setattr(build, "ENCODE_SLICE", 2)
    real = build.Chunker.iter_split
    victim = sorted(p.name for p in corpus.glob("*.txt"))[0]

    def iter_split(self, article, n):
        for i, item in enumerate(real(self, article, n)):
            if article.doc_id == victim and i == 5:
                raise ValueError("splitter gave up")
            yield item

    monkeypatch.setattr(build.Chunker, "iter_split", iter_split)
    report = run(corpus, tmp_path / "data", encoder)
    assert [(w.path, "could not be split" in w.message) for w in report.warnings] == [(victim, True)]
    assert victim not in {c.doc_id for c in stored(tmp_path / "data", encoder).values()}


BIG_SPLIT = r"""
import resource, sys
from pathlib import Path
from index.build import Chunker
from index.embedding import MiniLMEncoder
from index.loaders import Article
line = "The delegation signed agreements worth billions with partners from several cities. "
chunker = Chunker(MiniLMEncoder(Path(sys.argv[1])), 200, 32)
chunker.split_one(Article("small.txt", "Small", None, line * 50, "1" * 32))  # imports and first use done
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
parts = chunker.split_one(Article("big.txt", "Big", None, line * (1_000_000 // len(line)), "0" * 32))
print(len(parts), (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base) // 1024)
"""


@pytest.fixture(scope="module", autouse=True)
def big_split(settings):
    """The 1 MB split's own process, started with this module so that it runs beside the other tests."""
    proc = subprocess.Popen([sys.executable, "-c", BIG_SPLIT, str(settings.model_cache_dir)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, cwd=ROOT)
    yield proc
    if proc.poll() is None:
        proc.kill()
    proc.communicate()


def test_splitting_a_1_mb_paragraph_stays_within_bounded_memory(big_split):
    """The splitter only ever sees 50 kB at a time (`pieces`). Measured on 2 cores: splitting a 1 MB
    paragraph grows the process by ~10 MB; with `pieces` letting the whole paragraph through, by 143 MB
    (2 MB: 15 vs 285 MB; a 16 MB paragraph once took ~3 GB and hit the sentence tokenizer's time limit)."""
    stdout, stderr = big_split.communicate(timeout=240)
    out = subprocess.CompletedProcess(big_split.args, big_split.returncode, stdout, stderr)
    assert out.returncode == 0, out.stderr[-2000:]
    n_chunks, grown_mb = map(int, out.stdout.split())
    assert n_chunks > 800
    print(f"{n_chunks} chunks, +{grown_mb} MB")
    assert grown_mb < 60, grown_mb


# --- one run at a time --------------------------------------------------------------------------------
def test_a_second_indexing_run_waits_for_the_first_and_then_has_nothing_left_to_do(tmp_path, encoder, settings):
    from index.build import index_lock

    corpus = tmp_path / "corpus"
    corpus.mkdir()
    shutil.copy(SEEDS / "004_d4eda17714fa30b5.txt", corpus)
    data = tmp_path / "data"
    folder = lexical_folder(data, COLLECTION)
    with index_lock(folder):  # this test is "the first run"
        proc = subprocess.Popen([str(QA), "index", str(corpus), "--data-dir", str(data)], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, env=qa_env(settings), cwd=tmp_path)
        try:
            line = proc.stderr.readline()
            assert line.startswith("waiting: another `qa index` (pid ") and str(os.getpid()) in line, line
            # While it waits, the first run does the work.
            run(corpus, data, encoder, chunk_size=int(CRASH_ENV["QA_CHUNK_SIZE"]),
                chunk_overlap=int(CRASH_ENV["QA_CHUNK_OVERLAP"]))
            assert proc.poll() is None
        except BaseException:
            proc.kill()
            raise
    out, err = proc.communicate(timeout=180)
    assert proc.returncode == 0, err
    added, updated, removed, unchanged, embedded, _ = map(int, SUMMARY.search(out).groups())
    assert (added, updated, unchanged, embedded) == (0, 0, 1, 0)  # the work is not done twice


def test_ctrl_c_during_indexing_says_the_run_can_be_resumed(tmp_path, settings):
    corpus = make_crash_corpus(tmp_path / "corpus")
    data = tmp_path / "data"
    # `qa index` as installed, with each Chroma write slowed down: a quiet machine indexed the whole corpus
    # before the first rows could be seen, and the Ctrl-C then came after the end of the run.
    slowed = ("import sys, time, index.store as s\n"
              "write = s.ChromaStore.upsert\n"
              "def slow(*a, **k):\n    write(*a, **k)\n    time.sleep(0.5)\n"
              "s.ChromaStore.upsert = slow\n"
              "sys.argv = ['qa', *sys.argv[1:]]\n"
              "from bot.cli import run\nrun()\n")
    proc = subprocess.Popen([str(QA.parent / "python"), "-c", slowed, "index", str(corpus), "--data-dir", str(data)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=qa_env(settings),
                            cwd=tmp_path, preexec_fn=default_sigint)
    try:
        deadline = time.monotonic() + 120
        while chroma_rows(data) == 0 and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, (out, err)
    assert "Traceback" not in err and "resume" in err, err  # guards against: a KeyboardInterrupt traceback


def test_the_splitter_loads_nltk_without_scipy_or_sklearn_and_leaves_them_importable():
    # A fresh process: in this one other tests may have imported scipy already (then nothing is hidden).
    code = (
        "import sys\n"
        "from index.build import _import_splitter\n"
        "SentenceSplitter, sentences = _import_splitter()\n"
        "print(repr(sentences()('Smith left at noon. He came back.')))\n"
        "print(sorted(m for m in ('nltk', 'scipy', 'sklearn') if m in sys.modules))\n"
        "import scipy.stats\n"
        "print(scipy.stats.norm.cdf(0.0))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    sentences, loaded, later = proc.stdout.splitlines()
    assert sentences == "['Smith left at noon. ', 'He came back.']"  # punkt works
    assert loaded == "['nltk']"  # punkt came with nltk; scipy and scikit-learn did not
    assert later == "0.5"  # hidden only while nltk loaded
