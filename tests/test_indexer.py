"""The indexing composition root: an index keeps the embedding (model and precision) that built it."""

from __future__ import annotations

import shutil

import pytest

from index.embedding import model_identity
from index.errors import EmbeddingMismatch
from index.indexer import Indexer
from tests.conftest import SEEDS, default_embedding, make_settings, qa_in_process

pytestmark = pytest.mark.usefixtures("reuse_vectors")

DEFAULT, DEFAULT_MODEL = default_embedding()
OTHER = "float32" if DEFAULT == "int8" else "int8"  # the precision the settings switch to
OTHER_MODEL = model_identity(OTHER)


@pytest.fixture()
def corpora(tmp_path):
    """Two folders of seed articles (an index made from more than one folder)."""
    files = sorted(SEEDS.glob("*.txt"))
    first, second = tmp_path / "first", tmp_path / "second"
    for folder, chosen in ((first, files[:2]), (second, files[2:3])):
        folder.mkdir()
        for f in chosen:
            shutil.copy(f, folder / f.name)
    return first, second


def vectors_of(indexer: Indexer) -> dict[str, list[float]]:
    got = indexer.open_store(verify=False, check_model=False).collection.get(include=["embeddings"])
    return {i: list(map(float, e)) for i, e in zip(got["ids"], got["embeddings"])}


def test_an_index_is_never_extended_or_queried_with_another_precision(tmp_path, corpora):
    from bot.pipeline import Pipeline

    first, _ = corpora
    settings = make_settings(tmp_path / "data")
    Indexer.from_settings(settings).build(first)
    before = vectors_of(Indexer.from_settings(settings))
    other = settings.model_copy(update={"embed_precision": OTHER})
    with pytest.raises(EmbeddingMismatch) as asked:
        Pipeline.from_settings(other)
    assert DEFAULT_MODEL in asked.value.user_message and "`qa index`" in asked.value.user_message
    assert f"QA_EMBED_PRECISION={DEFAULT}" in asked.value.user_message
    with pytest.raises(EmbeddingMismatch):
        Indexer.from_settings(other).build(first)  # no vector of the other precision joins the index's
    assert vectors_of(Indexer.from_settings(settings)) == before
    assert Indexer.from_settings(other).embedded_with() == DEFAULT_MODEL


def test_reembed_builds_the_index_again_with_the_new_precision(tmp_path, corpora):
    from bot.pipeline import Pipeline

    first, _ = corpora
    settings = make_settings(tmp_path / "data")
    first_report = Indexer.from_settings(settings).build(first)
    before = vectors_of(Indexer.from_settings(settings))
    other = settings.model_copy(update={"embed_precision": OTHER})
    report = Indexer.from_settings(other).build(first, reembed=True)
    assert report.chunks_total == first_report.chunks_total and report.added == first_report.added
    after = vectors_of(Indexer.from_settings(other))
    assert after.keys() == before.keys() and after != before
    assert Indexer.from_settings(other).embedded_with() == OTHER_MODEL
    answer = Pipeline.from_settings(other).ask("Who is the CEO of ADASpace?")
    assert answer.citations
    with pytest.raises(EmbeddingMismatch, match=f"QA_EMBED_PRECISION={OTHER}"):
        Pipeline.from_settings(settings)


def test_qa_index_with_a_new_precision_embeds_every_folder_again(tmp_path, corpora, monkeypatch):
    first, second = corpora
    data = tmp_path / "data"
    cache = make_settings(data).model_cache_dir
    env = {"QA_MODEL_CACHE_DIR": str(cache)}
    for folder in (first, second):
        run = qa_in_process(["index", str(folder), "--data-dir", str(data)], env, tmp_path, monkeypatch)
        assert run.returncode == 0, run.stderr
    asked = qa_in_process(["ask", "Who is the CEO of ADASpace?", "--data-dir", str(data)],
                          {**env, "QA_EMBED_PRECISION": OTHER}, tmp_path, monkeypatch)
    assert asked.returncode != 0 and "Traceback" not in asked.stderr
    assert f"QA_EMBED_PRECISION={DEFAULT}" in asked.stderr, asked.stderr
    check = qa_in_process(["index", "--check", "--data-dir", str(data)], {**env, "QA_EMBED_PRECISION": OTHER},
                          tmp_path, monkeypatch)
    assert check.returncode == 1 and "repair: run `qa index`" in check.stdout, check.stdout
    run = qa_in_process(["index", str(second), "--data-dir", str(data)], {**env, "QA_EMBED_PRECISION": OTHER},
                        tmp_path, monkeypatch)
    assert run.returncode == 0, run.stderr
    assert "embedding every article again" in run.stderr
    settings = make_settings(data, embed_precision=OTHER)
    indexer = Indexer.from_settings(settings)
    assert indexer.embedded_with() == OTHER_MODEL
    store = indexer.open_store()
    docs = {m["doc_id"] for m in store.collection.get(include=["metadatas"])["metadatas"]}
    assert len(docs) == 3  # the first folder's articles were embedded again too, not dropped
    asked = qa_in_process(["ask", "Who is the CEO of ADASpace?", "--data-dir", str(data)],
                          {**env, "QA_EMBED_PRECISION": OTHER}, tmp_path, monkeypatch)
    assert asked.returncode == 0, asked.stderr
