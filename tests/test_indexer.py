"""The indexing composition root: an index keeps the embedding (model and precision) that built it."""

from __future__ import annotations

import shutil

import pytest

from index.embedding import MODEL_NAME
from index.errors import EmbeddingMismatch
from index.indexer import Indexer
from tests.conftest import SEEDS, make_settings, qa_in_process

INT8 = f"{MODEL_NAME} (int8)"


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
    int8 = settings.model_copy(update={"embed_precision": "int8"})
    with pytest.raises(EmbeddingMismatch) as asked:
        Pipeline.from_settings(int8)
    assert MODEL_NAME in asked.value.user_message and "`qa index`" in asked.value.user_message
    assert "QA_EMBED_PRECISION=float32" in asked.value.user_message
    with pytest.raises(EmbeddingMismatch):
        Indexer.from_settings(int8).build(first)  # no int8 vector joins the float32 ones
    assert vectors_of(Indexer.from_settings(settings)) == before
    assert Indexer.from_settings(int8).embedded_with() == MODEL_NAME


def test_reembed_builds_the_index_again_with_the_new_precision(tmp_path, corpora):
    from bot.pipeline import Pipeline

    first, _ = corpora
    settings = make_settings(tmp_path / "data")
    float_report = Indexer.from_settings(settings).build(first)
    before = vectors_of(Indexer.from_settings(settings))
    int8 = settings.model_copy(update={"embed_precision": "int8"})
    report = Indexer.from_settings(int8).build(first, reembed=True)
    assert report.chunks_total == float_report.chunks_total and report.added == float_report.added
    after = vectors_of(Indexer.from_settings(int8))
    assert after.keys() == before.keys() and after != before
    assert Indexer.from_settings(int8).embedded_with() == INT8
    answer = Pipeline.from_settings(int8).ask("Who is the CEO of ADASpace?")
    assert answer.citations
    with pytest.raises(EmbeddingMismatch, match="QA_EMBED_PRECISION=int8"):
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
                          {**env, "QA_EMBED_PRECISION": "int8"}, tmp_path, monkeypatch)
    assert asked.returncode != 0 and "Traceback" not in asked.stderr
    assert "QA_EMBED_PRECISION=float32" in asked.stderr, asked.stderr
    check = qa_in_process(["index", "--check", "--data-dir", str(data)], {**env, "QA_EMBED_PRECISION": "int8"},
                          tmp_path, monkeypatch)
    assert check.returncode == 1 and "repair: run `qa index`" in check.stdout, check.stdout
    run = qa_in_process(["index", str(second), "--data-dir", str(data)], {**env, "QA_EMBED_PRECISION": "int8"},
                        tmp_path, monkeypatch)
    assert run.returncode == 0, run.stderr
    assert "embedding every article again" in run.stderr
    settings = make_settings(data, embed_precision="int8")
    indexer = Indexer.from_settings(settings)
    assert indexer.embedded_with() == INT8
    store = indexer.open_store()
    docs = {m["doc_id"] for m in store.collection.get(include=["metadatas"])["metadatas"]}
    assert len(docs) == 3  # the first folder's articles were embedded again too, not dropped
    asked = qa_in_process(["ask", "Who is the CEO of ADASpace?", "--data-dir", str(data)],
                          {**env, "QA_EMBED_PRECISION": "int8"}, tmp_path, monkeypatch)
    assert asked.returncode == 0, asked.stderr
