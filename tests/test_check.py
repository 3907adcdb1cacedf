"""A damaged index (index/check.py): found on open, by `qa index --check` and `--status`, repaired by
`qa index` (whatever can be derived) or `qa index --rebuild`; real files, real Chroma, the real CLI."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from bot.pipeline import Pipeline
from index.build import build_index, lexical_folder
from index.check import REPAIR, check_index
from index.embedding import MiniLMEncoder
from index.errors import IndexDamaged, QAError
from index.lexical import LexicalIndex, fingerprint
from index.sentence_vectors import SentenceVectors
from index.store import ChromaStore, StoredChunk
from tests.conftest import ROOT, SEEDS, default_embedding, make_settings, qa_in_process

pytestmark = pytest.mark.usefixtures("reuse_vectors")

QA = ROOT / ".venv" / "bin" / "qa"
COLLECTION = "articles"


@pytest.fixture(scope="module")
def encoder(seed_settings):
    return MiniLMEncoder(seed_settings.model_cache_dir, precision=seed_settings.embed_precision)


@pytest.fixture
def data(tmp_path, seed_settings) -> Path:
    """A private copy of the seed index, free to damage."""
    return Path(shutil.copytree(seed_settings.data_dir, tmp_path / "data"))


def version_dir(data: Path) -> Path:
    folder = lexical_folder(data, COLLECTION)
    return folder / (folder / "CURRENT").read_text().strip()


def qa_env(settings) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("QA_", "OPENAI_", "CHROMA_"))}
    env.update(QA_MODEL_CACHE_DIR=str(settings.model_cache_dir), COLUMNS="200")
    return env


def qa(*args: str, settings, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([str(QA), *args], capture_output=True, text=True, env=qa_env(settings), cwd=cwd, timeout=240)


def qa_all(*commands: list[str], settings, cwd: Path) -> list[subprocess.CompletedProcess]:
    """Several independent, read-only `qa` commands at once (this only saves wall time)."""
    procs = [subprocess.Popen([str(QA), *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              env=qa_env(settings), cwd=cwd) for args in commands]
    try:
        outputs = [p.communicate(timeout=240) for p in procs]
        return [subprocess.CompletedProcess(p.args, p.returncode, *out) for p, out in zip(procs, outputs)]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()


def one_error_line(proc: subprocess.CompletedProcess) -> str:
    assert proc.returncode == 2, proc
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in proc.stderr, proc.stderr
    return lines[0]


def check(data: Path, encoder) -> list:
    store = ChromaStore.open(data, COLLECTION, encoder.name, verify=False)
    return check_index(store, lexical_folder(data, COLLECTION), thorough=True)


def delete_bm25_files(data: Path) -> None:
    for f in (version_dir(data) / "bm25").iterdir():
        f.unlink()


def corrupt_meta(data: Path) -> None:
    (version_dir(data) / "meta.json").write_text('{"fingerprint": ')


def truncate_chunks(data: Path) -> None:
    path = version_dir(data) / "chunks.sqlite"
    with open(path, "r+b") as fh:
        fh.truncate(path.stat().st_size // 3)


def delete_chunks(data: Path) -> None:
    (version_dir(data) / "chunks.sqlite").unlink()


@pytest.mark.parametrize("damage", [delete_bm25_files, corrupt_meta, truncate_chunks, delete_chunks],
                         ids=["bm25-files-deleted", "meta-corrupt", "chunks-truncated", "chunks-deleted"])
def test_damaged_bm25_side_is_reported_on_open_and_repaired_by_qa_index(data, encoder, damage):
    assert check(data, encoder) == []
    damage(data)
    problems = check(data, encoder)
    assert problems and all(p.fix == REPAIR for p in problems), problems
    with pytest.raises(QAError) as err:  # guards against: a traceback from sqlite3, json or bm25s
        Pipeline.from_settings(make_settings(data)).ask("Who is the CEO of ADASpace?")
    assert "run `qa index`" in err.value.user_message
    store = ChromaStore.open(data, COLLECTION, encoder.name, create=True)
    report = build_index(SEEDS, store, lexical_folder(data, COLLECTION), encoder)
    assert report.lexical_rebuilt and report.unchanged == 5  # guards against: "unchanged", nothing rebuilt
    assert check(data, encoder) == []
    answer = Pipeline.from_settings(make_settings(data)).ask("Who is the CEO of ADASpace?")
    assert "Wang Lei" in answer.text


def test_the_cli_says_which_command_repairs_the_index(data, seed_settings, tmp_path, monkeypatch):
    delete_bm25_files(data)
    asked, checked, status = qa_all(["ask", "Who is the CEO of ADASpace?", "--data-dir", str(data)],
                                    ["index", "--check", "--data-dir", str(data)],
                                    ["index", "--status", "--data-dir", str(data)], settings=seed_settings, cwd=tmp_path)
    line = one_error_line(asked)
    assert "BM25" in line and "run `qa index`" in line
    assert checked.returncode == 1 and "damaged: BM25 side" in checked.stdout and "repair: run `qa index`" in checked.stdout
    assert status.returncode == 0 and "run `qa index`" in status.stdout
    # The repair itself in this process (the same command; a cold `qa index` spends ~4 s importing its splitter).
    fixed = qa_in_process(["index", str(SEEDS), "--data-dir", str(data)], qa_env(seed_settings), tmp_path, monkeypatch)
    assert fixed.returncode == 0, fixed.stderr
    checked = qa("index", "--check", "--data-dir", str(data), settings=seed_settings, cwd=tmp_path)
    assert checked.returncode == 0 and checked.stdout.startswith("ok:"), checked.stdout


def test_missing_sentence_vectors_are_reported_and_embedded_again(data, encoder):
    (lexical_folder(data, COLLECTION) / "sentences.sqlite").write_bytes(b"this is not a database" * 100)
    assert [p.fix for p in check(data, encoder)] == [REPAIR]
    store = ChromaStore.open(data, COLLECTION, encoder.name, create=True)
    report = build_index(SEEDS, store, lexical_folder(data, COLLECTION), encoder)
    assert report.updated == 5 and check(data, encoder) == []


# --- the vector store itself: only a rebuild helps --------------------------------------------------------
def fill_store(data: Path, n: int = 1500) -> None:
    """A store big enough that Chroma has flushed its HNSW segment to disk (it does so every 1,000
    writes; below that the vectors are still replayed from its log), with a BM25 side in step."""
    store = ChromaStore.open(data, COLLECTION, default_embedding()[1], create=True)  # what `qa` processes open with
    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((n, 384)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    chunks = [StoredChunk(f"d{i // 5}.txt#{i % 5}", f"d{i // 5}.txt", f"Doc {i // 5}", None, f"chunk number {i}",
                          0, 10, i % 5, 5, "h", "0-10") for i in range(n)]
    store.upsert(chunks, vectors.tolist(), root="/somewhere")
    LexicalIndex.build(lexical_folder(data, COLLECTION), chunks, fingerprint([(c.id, c.doc_hash) for c in chunks]))
    sentences = SentenceVectors(lexical_folder(data, COLLECTION))
    sentences.put([c.id for c in chunks], [v[None, :] for v in vectors])
    sentences.close()


def segment_dir(data: Path) -> Path:
    (seg,) = [p for p in (data / "chroma").iterdir() if p.is_dir()]
    return seg


@pytest.mark.parametrize("damage", ["deleted", "zeroed"])
def test_a_damaged_vector_index_is_found_on_open_and_calls_for_a_rebuild(tmp_path, seed_settings, damage, monkeypatch):
    data = tmp_path / "data"
    fill_store(data)
    sound = qa_in_process(["index", "--check", "--data-dir", str(data)], qa_env(seed_settings), tmp_path, monkeypatch)
    assert sound.returncode == 0, sound.stdout
    from chromadb.api.client import SharedSystemClient

    # Separate processes from here on: this one holds the vectors in memory whatever happens to the files.
    SharedSystemClient.clear_system_cache()
    seg = segment_dir(data)
    if damage == "deleted":
        shutil.rmtree(seg)
    else:
        (seg / "data_level0.bin").write_bytes(b"\0" * (seg / "data_level0.bin").stat().st_size)
    # Guards against: `qa ask` searched a near-empty vector index, and --status counted every vector.
    checked, asked = qa_all(["index", "--check", "--data-dir", str(data)],
                            ["ask", "What is chunk number 7?", "--data-dir", str(data)], settings=seed_settings,
                            cwd=tmp_path)
    assert checked.returncode == 1 and "damaged: The Chroma store" in checked.stdout, checked.stdout
    assert "repair: run `qa index --rebuild`" in checked.stdout
    line = one_error_line(asked)
    assert "damaged" in line and "qa index --rebuild" in line


def test_a_corrupt_chroma_database_is_damage_not_unreachable(data, encoder):
    db = data / "chroma" / "chroma.sqlite3"
    with open(db, "r+b") as fh:
        fh.write(b"garbage" * 20)
    with pytest.raises(IndexDamaged) as err:  # guards against: "Cannot reach the Chroma store"
        ChromaStore.open(data, COLLECTION, encoder.name)
    assert "damaged" in err.value.user_message and "--rebuild" in err.value.user_message
    assert "reach" not in err.value.user_message


def test_rebuild_recovers_a_corrupt_store_from_the_recorded_folder(tmp_path, seed_settings, monkeypatch):
    data = tmp_path / "data"
    corpus = Path(shutil.copytree(SEEDS, tmp_path / "corpus"))
    # The first index in this process (the same command); the damaged store is then met by real processes.
    first = qa_in_process(["index", str(corpus), "--data-dir", str(data)], qa_env(seed_settings), tmp_path, monkeypatch)
    assert first.returncode == 0, first.stderr
    from chromadb.api.client import SharedSystemClient

    SharedSystemClient.clear_system_cache()  # this process must not keep the store it wrote open
    with open(data / "chroma" / "chroma.sqlite3", "r+b") as fh:
        fh.write(b"garbage" * 20)
    line = one_error_line(qa("index", str(corpus), "--data-dir", str(data), settings=seed_settings, cwd=tmp_path))
    assert "qa index --rebuild" in line
    # The repair in this process again: it opens the damaged store for the first time, as a new process would.
    rebuilt = qa_in_process(["index", "--rebuild", "--data-dir", str(data)], qa_env(seed_settings), tmp_path,
                            monkeypatch)
    assert rebuilt.returncode == 0, rebuilt.stderr
    assert "moved the damaged store" in rebuilt.stderr and "5 added" in rebuilt.stdout
    assert any(p.name.startswith("chroma.damaged-") for p in data.iterdir())  # set aside, never deleted
    answer = Pipeline.from_settings(make_settings(data)).ask("Who is the CEO of ADASpace?")
    assert "Wang Lei" in answer.text


def test_a_lost_collection_beside_its_bm25_side_is_damage_not_a_missing_index(data, encoder):
    ChromaStore.drop(data, COLLECTION)
    with pytest.raises(QAError) as err:  # guards against: "No index yet", though BM25 still holds the articles
        ChromaStore.open(data, COLLECTION, encoder.name)
    assert "lost collection" in err.value.user_message and "--rebuild" in err.value.user_message
