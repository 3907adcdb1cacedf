"""The ONNX all-MiniLM-L6-v2 encoder: same vectors as sentence-transformers, unit length, torch-free queries."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from index.embedding import DIMENSION, MAX_TOKENS, MODEL_NAME, MiniLMEncoder, _weights_digest, model_dir
from tests.conftest import SEEDS, make_settings
from tests.make_reference_vectors import OUT as REFERENCE
from tests.make_reference_vectors import QUESTION, texts_digest
from tests.make_reference_vectors import TEXTS as REFERENCE_TEXTS

TEXTS = [*REFERENCE_TEXTS, ""]


@pytest.fixture(scope="module")
def encoder(tmp_path_factory):
    return MiniLMEncoder(make_settings(tmp_path_factory.mktemp("emb")).model_cache_dir)


def cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(axis=1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


def test_same_vectors_as_sentence_transformers(encoder):
    """Held to the vectors sentence-transformers (torch) gave for these texts, stored by
    tests/make_reference_vectors.py: importing torch and transformers here cost ~20 CPU-s per run."""
    ref = np.load(REFERENCE)
    texts = TEXTS[:-1]
    assert str(ref["weights"]) == _weights_digest(model_dir()), "the model changed: run python -m tests.make_reference_vectors"
    assert str(ref["texts"]) == texts_digest(texts), "the texts changed: run it too"
    reference = ref["vectors"]
    ours = encoder.encode(texts, batch_size=len(texts))  # one padded batch of very different lengths
    assert ours.shape == reference.shape == (len(texts), DIMENSION)
    sims = cosines(ours, reference)
    assert (sims > 0.9999).all(), sims
    assert np.allclose(ours, reference / np.linalg.norm(reference, axis=1, keepdims=True), atol=2e-4)


def test_vectors_are_float32_and_unit_length(encoder):
    vectors = encoder.encode(TEXTS, batch_size=4)
    assert vectors.dtype == np.float32 and vectors.shape == (len(TEXTS), DIMENSION)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    one = encoder.encode_one(QUESTION)
    assert one.shape == (DIMENSION,) and abs(float(np.linalg.norm(one)) - 1.0) < 1e-5
    assert encoder.encode([]).shape == (0, DIMENSION)


def test_batching_and_padding_do_not_change_vectors(encoder):
    together = encoder.encode(TEXTS, batch_size=len(TEXTS))
    alone = np.stack([encoder.encode_one(t) for t in TEXTS])
    small_batches = encoder.encode(TEXTS, batch_size=2)
    assert (cosines(together, alone) > 0.99999).all()
    assert (cosines(small_batches, alone) > 0.99999).all()
    # Related texts are close, unrelated ones are not (a sanity check on the model, not on numbers).
    q, related, unrelated = encoder.encode([QUESTION, "Dr. Chen Bin is President of Continental Hope Group.", "Hi."])
    assert q @ related > 0.6 > q @ unrelated


def test_a_batch_never_holds_more_word_pieces_than_the_budget(encoder, monkeypatch):
    """Attention memory grows with batch x width^2: 64 long chunks at once took ONNX Runtime to ~1.4 GB."""
    shapes = []
    real = encoder.session

    class Recording:
        def run(self, names, feeds):
            shapes.append(feeds["input_ids"].shape)
            return real.run(names, feeds)

    long, short = TEXTS[4], QUESTION
    texts = [long] * 20 + [short] * 40
    alone = np.stack([encoder.encode_one(long), encoder.encode_one(short)])
    monkeypatch.setattr(encoder, "_session", Recording())
    vectors = encoder.encode(texts, batch_size=64, batch_tokens=1024)
    assert all(rows * width <= 1024 for rows, width in shapes), shapes
    assert shapes[0] == (1024 // MAX_TOKENS, MAX_TOKENS)  # long texts: 4 a batch
    assert max(rows for rows, _ in shapes) > 4  # short ones still batch widely
    assert (cosines(vectors[:20], alone[[0] * 20]) > 0.99999).all()
    assert (cosines(vectors[20:], alone[[1] * 40]) > 0.99999).all()


def test_release_drops_the_session_and_the_next_encode_reopens_it(encoder):
    """A build releases the session before the BM25 phase; a later query must still embed the same."""
    before = encoder.encode_one(QUESTION)
    encoder.release()
    assert encoder._session is None
    after = encoder.encode_one(QUESTION)
    assert encoder._session is not None
    assert float(before @ after) > 0.99999


def test_long_texts_are_truncated_to_the_model_window(encoder):
    long = TEXTS[4]
    words = long.split()
    assert len(words) > 2 * MAX_TOKENS
    longer = " ".join(words + words)  # same first 256 tokens
    assert float(encoder.encode_one(long) @ encoder.encode_one(longer)) > 0.99999


PROBE = """
import json, sys, time
t0 = time.perf_counter()
from bot.config import load_settings
from bot.pipeline import Pipeline
pipeline = Pipeline.from_settings(load_settings())
vector = pipeline.retriever.encoder.encode_one(sys.argv[1])
first_vector = time.perf_counter() - t0
heavy = lambda: sorted(m for m in sys.modules if m.split(".")[0] in {"torch", "transformers", "sentence_transformers", "llama_index", "nltk"})
before_ask = heavy()
answer = pipeline.ask(sys.argv[1])
print(json.dumps({
    "seconds": first_vector, "dim": len(vector), "norm": float((vector ** 2).sum() ** 0.5),
    "heavy": before_ask, "heavy_after_ask": heavy(), "answer": answer.to_dict(),
}))
"""


def test_query_process_never_imports_torch_llama_index_or_nltk_and_starts_fast(seed_settings, tmp_path, capsys):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("QA_", "OPENAI_", "CHROMA_"))}
    env.update(QA_DATA_DIR=str(seed_settings.data_dir), QA_MODEL_CACHE_DIR=str(seed_settings.model_cache_dir))
    started = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-c", PROBE, QUESTION], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120
    )
    wall = time.perf_counter() - started
    assert result.returncode == 0, result.stderr
    probe = json.loads(result.stdout.strip().splitlines()[-1])
    with capsys.disabled():
        print(
            f"\n[query process] import + open pipeline + embed one question: {probe['seconds']:.2f} s "
            f"(goal <= 1.5 s); whole process incl. interpreter start and one answer: {wall:.2f} s"
        )
    assert probe["heavy"] == [], probe["heavy"]
    assert probe["heavy_after_ask"] == [], probe["heavy_after_ask"]
    assert probe["dim"] == DIMENSION and abs(probe["norm"] - 1.0) < 1e-5
    assert probe["answer"]["retrieved"][0]["doc_id"] == "000_c6868c4dda0e85e6.txt"
    assert probe["seconds"] < 5.0, probe


def test_export_key_follows_the_weights_content_not_their_mtime(tmp_path):
    from index.embedding import _weights_digest

    weights = tmp_path / "model.safetensors"
    weights.write_bytes(b"header" + bytes(3 << 20) + b"tail")
    first = _weights_digest(tmp_path)
    os.utime(weights, (1, 1))  # a fresh install of the same wheel: new mtime, same bytes
    assert _weights_digest(tmp_path) == first
    weights.write_bytes(b"header" + bytes(3 << 20) + b"TAIL")  # retrained last layer
    assert _weights_digest(tmp_path) != first


@pytest.fixture(scope="module", autouse=True)
def first_export(tmp_path_factory):
    """A first export into an empty cache, in its own process, started with this module so that its ~5 s
    of torch run beside the other tests (this process leaves the other core mostly idle)."""
    cache = tmp_path_factory.mktemp("first-export") / "cache"
    code = "import sys; from pathlib import Path; from index.embedding import ensure_onnx; ensure_onnx(Path(sys.argv[1]))"
    proc = subprocess.Popen([sys.executable, "-c", code, str(cache)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, cwd=SEEDS.parent)
    yield proc, cache
    if proc.poll() is None:
        proc.kill()
    proc.communicate()


def test_first_export_says_one_line_and_nothing_else(first_export):
    """Guards against: a weight-loading progress bar, a transformers TracerWarning and a torch ONNX UserWarning."""
    proc, cache = first_export
    stdout, stderr = proc.communicate(timeout=300)
    out = subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stderr == "preparing the embedding model, one time (a few seconds)...\n" and out.stdout == ""
    assert len(list(cache.glob("*.onnx"))) == 1


def test_int8_model_is_derived_once_beside_the_export_and_stays_close_to_float32(encoder, capfd):
    import logging

    cache = make_settings(Path(".")).model_cache_dir  # the module encoder's cache (the data dir plays no part)
    handlers = list(logging.getLogger().handlers)
    int8 = MiniLMEncoder(cache, precision="int8")
    assert capfd.readouterr().err == ""  # guards against: the quantiser's "consider pre-processing" root-logger line
    assert logging.getLogger().handlers == handlers
    from index.embedding import model_file

    path = model_file(cache, "int8")
    assert path.name.endswith("-int8.onnx") and path.with_name(path.name.replace("-int8", "")).exists()
    made = path.stat().st_mtime_ns
    MiniLMEncoder(cache, precision="int8")
    assert path.stat().st_mtime_ns == made  # derived once, then reused
    assert int8.name == f"{MODEL_NAME} (int8)" and encoder.name == MODEL_NAME
    texts = TEXTS[:-1]
    a, b = encoder.encode(texts), int8.encode(texts)
    assert np.allclose(np.linalg.norm(b, axis=1), 1.0, atol=1e-5)
    sims = cosines(a, b)
    assert sims.min() > 0.97 and not (sims > 0.99999).all(), sims  # close, yet other vectors: never mix them
    # One text per pass: a text's vector does not depend on what it is embedded with (batched dynamic
    # quantisation shares one activation scale across the batch).
    alone = np.stack([int8.encode_one(t) for t in texts])
    assert (cosines(int8.encode(texts, batch_size=len(texts)), alone) > 0.99999).all()
    q, related, unrelated = int8.encode([QUESTION, "Dr. Chen Bin is President of Continental Hope Group.", "Hi."])
    assert q @ related > q @ unrelated + 0.25  # float32: 0.61 vs 0.21


def test_an_unknown_precision_is_refused():
    from index.embedding import model_file

    with pytest.raises(ValueError, match="float32, int8"):
        model_file(make_settings(Path(".")).model_cache_dir, "int4")
