"""Both Chroma backends (embedded and a real `chroma run` server), in-process and through the `qa` CLI."""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import time
import urllib.request
import uuid
from pathlib import Path

import pytest

from index.build import build_index, lexical_folder
from index.embedding import MODEL_NAME, MiniLMEncoder
from index.errors import IndexMissing, StoreUnavailable
from index.lexical import LexicalIndex
from index.store import ChromaStore
from tests.conftest import ROOT, SEEDS, default_embedding, make_settings, qa_in_process

pytestmark = pytest.mark.usefixtures("reuse_vectors")

BIN = ROOT / ".venv" / "bin"
QA = BIN / "qa"
SUMMARY = re.compile(
    r"(\d+) added, (\d+) updated, (\d+) removed, (\d+) unchanged documents; "
    r"(\d+) chunks embedded, (\d+) in the index"
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def chroma_server(tmp_path_factory):
    """A real Chroma server (`chroma run`) on a free port, stopped at teardown."""
    root = tmp_path_factory.mktemp("chroma-server")
    port = free_port()
    log_path = root / "server.log"
    with log_path.open("w") as log:
        proc = subprocess.Popen(
            [str(BIN / "chroma"), "run", "--host", "127.0.0.1", "--port", str(port), "--path", str(root / "db")],
            stdout=log, stderr=subprocess.STDOUT, cwd=root,
        )
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                pytest.fail(f"chroma run exited with {proc.returncode}:\n{log_path.read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v2/heartbeat", timeout=1) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"chroma run did not answer its heartbeat:\n{log_path.read_text()[-3000:]}")
            time.sleep(0.1)
        yield "127.0.0.1", port
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


@pytest.fixture(params=["embedded", "server"])
def backend(request):
    """(host, port) of the Chroma backend under test; host None means embedded under the data dir."""
    if request.param == "embedded":
        return None, 8000
    return request.getfixturevalue("chroma_server")


@pytest.fixture(scope="module")
def settings(tmp_path_factory):
    return make_settings(tmp_path_factory.mktemp("store-settings"))


@pytest.fixture(scope="module")
def encoder(settings):
    return MiniLMEncoder(settings.model_cache_dir, precision=settings.embed_precision)


def qa_env(settings, host: str | None = None, port: int | None = None, **extra: str) -> dict[str, str]:
    """A clean environment for `qa`: no developer settings, the shared model cache, a wide console."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("QA_", "OPENAI_", "CHROMA_", "SLACK_"))}
    env.update(QA_MODEL_CACHE_DIR=str(settings.model_cache_dir), COLUMNS="250")
    if host:
        env.update(CHROMA_HOST=host, CHROMA_PORT=str(port))
    env.update(extra)
    return env


def qa(env: dict, cwd: Path, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([str(QA), *args], capture_output=True, text=True, env=env, cwd=cwd, timeout=timeout)


def mixed_jobs(monkeypatch, *jobs: tuple[dict, Path, list[str], bool]) -> list:
    """Run `qa` commands, each (env, cwd, args, cold): the cold ones as processes, all started first, the
    rest in this process meanwhile (a cold `qa index` spends ~4 s importing its splitter); monkeypatch
    only serves those."""
    procs = {i: subprocess.Popen([str(QA), *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                 env=env, cwd=cwd)
             for i, (env, cwd, args, cold) in enumerate(jobs) if cold}
    out: dict[int, object] = {i: qa_in_process(args, env, cwd, monkeypatch)
                              for i, (env, cwd, args, cold) in enumerate(jobs) if not cold}
    for i, p in procs.items():
        stdout, stderr = p.communicate(timeout=120)
        out[i] = subprocess.CompletedProcess(p.args, p.returncode, stdout, stderr)
    return [out[i] for i in range(len(jobs))]


def qa_parallel(env: dict, cwd: Path, *commands: list[str]) -> list[subprocess.CompletedProcess]:
    """Run several short `qa` commands at once (they are independent; this only saves wall time)."""
    return mixed_jobs(None, *((env, cwd, args, True) for args in commands))


def one_error_line(result: subprocess.CompletedProcess) -> str:
    """The single `error:` line of a failed command (exit code 2, nothing else on stderr, no traceback)."""
    assert result.returncode == 2, (result.returncode, result.stdout, result.stderr)
    lines = [ln for ln in result.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    return lines[0]


# --- in-process: ChromaStore.open(..., host, port) ------------------------------------------------------
def test_store_indexes_and_queries_on_both_backends(backend, tmp_path, encoder):
    host, port = backend
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for name in ("003_1c4934fb60e6f169.txt", "004_d4eda17714fa30b5.txt"):
        shutil.copy(SEEDS / name, corpus / name)
    data = tmp_path / "data"
    collection = f"test-{uuid.uuid4().hex[:12]}"
    lexical = lexical_folder(data, collection, host, port)

    store = ChromaStore.open(data, collection, encoder.name, host=host, port=port, create=True)
    report = build_index(corpus, store, lexical, encoder)
    assert (report.added, report.documents_total) == (2, 2)
    assert report.chunks_written == report.chunks_total == store.count() > 2

    # A fresh handle (as `qa ask` opens it) sees the same collection.
    reader = ChromaStore.open(data, collection, encoder.name, host=host, port=port)
    assert reader.count() == report.chunks_total
    states, pairs = reader.doc_states()
    assert sorted(states) == sorted(p.name for p in corpus.iterdir())
    assert all(s.complete for s in states.values()) and len(pairs) == report.chunks_total

    question = encoder.encode_one("Which founders of Vivo and OPPO met the Chongqing party secretary?").tolist()
    hits = reader.query(question, k=3)
    assert hits and hits[0][0].doc_id == "003_1c4934fb60e6f169.txt"
    assert all(-1.0 <= score <= 1.0 for _, score in hits)
    only = reader.query(question, k=3, doc_ids=["004_d4eda17714fa30b5.txt"])
    assert only and {c.doc_id for c, _ in only} == {"004_d4eda17714fa30b5.txt"}
    assert reader.query(question, k=3, doc_ids=[]) == []

    lex = LexicalIndex.open(lexical)
    try:
        assert lex.meta.n_chunks == report.chunks_total
        assert {c.doc_id for c, _ in lex.search("Vivo OPPO founders", k=3)} == {"003_1c4934fb60e6f169.txt"}
    finally:
        lex.close()

    again = build_index(corpus, ChromaStore.open(data, collection, encoder.name, host=host, port=port, create=True),
                        lexical, encoder)
    assert again.chunks_written == 0 and again.unchanged == 2

    if host:
        assert lexical.name == f"{collection}@{host}_{port}"
        assert not (data / "chroma").exists(), "the server backend must not write an embedded store"
    else:
        assert (data / "chroma").is_dir()


def test_server_without_the_collection_is_index_missing(chroma_server, tmp_path):
    host, port = chroma_server
    with pytest.raises(IndexMissing):
        ChromaStore.open(tmp_path, f"absent-{uuid.uuid4().hex[:8]}", MODEL_NAME, host=host, port=port)


def test_unreachable_server_is_store_unavailable(tmp_path):
    port = free_port()  # nothing listens there any more
    started = time.monotonic()
    with pytest.raises(StoreUnavailable) as err:
        ChromaStore.open(tmp_path, "articles", MODEL_NAME, host="127.0.0.1", port=port, create=True)
    assert f"127.0.0.1:{port}" in err.value.user_message
    assert time.monotonic() - started < 15
    assert list(tmp_path.iterdir()) == []


# --- through the CLI: qa index / qa index --status / qa ask ---------------------------------------------
def test_cli_index_status_and_ask_on_both_backends(chroma_server, tmp_path, settings, monkeypatch):
    """Embedded and server side by side: the server's commands are cold `qa` processes, the embedded
    store's the same commands in this process meanwhile (cold processes meet it throughout tests/test_cli.py)."""
    cases = []
    for host, port in ((None, 8000), chroma_server):
        root = tmp_path / ("server" if host else "embedded")
        data = root / "data"
        collection = f"cli-{uuid.uuid4().hex[:12]}"
        env = qa_env(settings, host, port, QA_COLLECTION=collection)
        corpus = root / "corpus"
        corpus.mkdir(parents=True)
        for name in ("000_c6868c4dda0e85e6.txt", "003_1c4934fb60e6f169.txt", "004_d4eda17714fa30b5.txt"):
            shutil.copy(SEEDS / name, corpus / name)
        (corpus / "notes").mkdir()
        (corpus / "notes" / "empty.md").write_text("  \n")
        cases.append((host, port, root, data, collection, env, corpus))

    indexed_all = mixed_jobs(monkeypatch, *((env, root, ["index", str(corpus), "--data-dir", str(data)], bool(host))
                                            for host, _, root, data, _, env, corpus in cases))
    totals = []
    for indexed in indexed_all:
        assert indexed.returncode == 0, indexed.stdout + indexed.stderr
        added, updated, removed, unchanged, embedded, total = map(int, SUMMARY.search(indexed.stdout).groups())
        assert (added, updated, removed, unchanged) == (3, 0, 0, 0) and embedded == total > 3
        assert "indexed 3/3 files" in indexed.stderr  # non-TTY progress line
        assert re.search(r"^warning: notes/empty\.md: skipped: empty", indexed.stderr, re.M), indexed.stderr
        assert not re.search(r"^(DEBUG|INFO)\b", indexed.stderr, re.M), "log noise without --verbose"
        totals.append(total)

    jobs = []
    for host, _, root, data, _, env, _ in cases:
        jobs += [(env, root, ["index", "--status", "--data-dir", str(data)], bool(host)),
                 (env, root, ["ask", "Who is the President of Continental Hope Group?", "--json", "--data-dir", str(data)],
                  bool(host))]
    results = mixed_jobs(monkeypatch, *jobs)

    for (host, port, root, data, collection, env, corpus), total, status, answer in zip(
            cases, totals, results[0::2], results[1::2]):
        assert status.returncode == 0, status.stdout + status.stderr
        rows = {}
        for line in status.stdout.splitlines():
            key, _, value = line.strip().partition("  ")
            rows[key.strip()] = value.strip()
        expected_backend = f"chroma server {host}:{port}" if host else f"embedded chroma at {data / 'chroma'}"
        assert rows["backend"] == expected_backend, status.stdout
        assert rows["collection"] == collection
        assert rows["documents"] == "3"
        assert rows["chunks"] == f"{total} vectors, {total} in BM25"
        assert rows["embedding model"] == default_embedding()[1]
        assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d.*", rows["last run"]), status.stdout
        assert rows["corpus"] == str(corpus.resolve())

        assert answer.returncode == 0, answer.stdout + answer.stderr
        result = json.loads(answer.stdout)
        assert result["retrieved"], result
        assert result["retrieved"][0]["doc_id"] == "000_c6868c4dda0e85e6.txt", result
        if not result["abstained"]:
            assert result["citations"] and result["citations"][0]["doc_id"] == "000_c6868c4dda0e85e6.txt"

        lexical = lexical_folder(data, collection, host, port)
        assert LexicalIndex.read_meta(lexical).n_chunks == total
        if host:
            assert not (data / "chroma").exists(), "the server backend must not write an embedded store"
            import chromadb
            from chromadb.config import Settings as ChromaSettings

            client = chromadb.HttpClient(host=host, port=port, settings=ChromaSettings(anonymized_telemetry=False))
            assert client.get_collection(collection).count() == total
        else:
            assert (data / "chroma").is_dir()


def test_unreachable_server_is_one_error_line_and_writes_nothing(tmp_path, settings):
    port = free_port()  # closed: nothing listens there
    data = tmp_path / "data"
    env = qa_env(settings, "127.0.0.1", port)
    index, ask = qa_parallel(
        env, tmp_path,
        ["index", str(SEEDS), "--data-dir", str(data)],
        ["ask", "Who is the President of Continental Hope Group?", "--data-dir", str(data)],
    )
    for result in (index, ask):
        line = one_error_line(result)
        assert f"127.0.0.1:{port}" in line and "Chroma" in line, line
        assert result.stdout == ""
    assert not (data / "lexical").exists(), list(data.rglob("*"))
    assert not data.exists() or list(data.rglob("*")) == []


def test_missing_directory_is_one_error_line_and_writes_nothing(backend, tmp_path, settings):
    host, port = backend
    data = tmp_path / "data"
    collection = f"missing-{uuid.uuid4().hex[:12]}"
    env = qa_env(settings, host, port, QA_COLLECTION=collection)
    result = qa(env, tmp_path, "index", str(tmp_path / "no-such-folder"), "--data-dir", str(data))
    line = one_error_line(result)
    assert "no-such-folder" in line and "directory" in line.lower(), line
    assert result.stdout == ""
    assert not data.exists(), list(data.rglob("*"))
    if host:
        import chromadb
        from chromadb.config import Settings as ChromaSettings

        client = chromadb.HttpClient(host=host, port=port, settings=ChromaSettings(anonymized_telemetry=False))
        assert collection not in [c.name for c in client.list_collections()]


def test_status_without_an_index_is_one_error_line(tmp_path, settings):
    data = tmp_path / "data"
    result = qa(qa_env(settings), tmp_path, "index", "--status", "--data-dir", str(data))
    assert "qa index" in one_error_line(result)
    assert not (data / "lexical").exists()


def test_an_index_on_a_chroma_server_is_named_when_chroma_host_is_not_set(tmp_path):
    """Guards against: "No index yet", though the data dir holds the BM25 side of an index on a server."""
    folder = lexical_folder(tmp_path, "articles", "10.0.0.5", 8001)
    folder.mkdir(parents=True)
    (folder / "CURRENT").write_text("v1")
    with pytest.raises(IndexMissing) as err:
        ChromaStore.open(tmp_path, "articles", MODEL_NAME)
    assert "CHROMA_HOST=10.0.0.5" in err.value.user_message and "CHROMA_PORT=8001" in err.value.user_message


def test_set_root__updates_chunks_in_pages_chroma_accepts(tmp_path, monkeypatch):
    """Older indexes get their folder recorded; 500 articles can exceed one Chroma call's batch limit."""
    import index.store as store_mod
    from index.store import StoredChunk

    store = ChromaStore.open(tmp_path, "pages", MODEL_NAME, create=True)
    chunks = [StoredChunk(id=f"a.txt#{i}", doc_id="a.txt", title="A", date=None, text=f"text {i}", start=0, end=6,
                          position=i, n_chunks=7, doc_hash="h", sentences="") for i in range(7)]
    store.upsert(chunks, [[0.1] * 384] * 7)
    monkeypatch.setattr(store_mod, "PAGE", 3)
    store.set_root(["a.txt"], "/corpus")
    metas = store.collection.get(include=["metadatas"])["metadatas"]
    assert len(metas) == 7 and all(m["root"] == "/corpus" for m in metas)
