"""The ONNX span reader: windows, span decoding, loading the shipped model and a Hugging Face one."""

from __future__ import annotations

import numpy as np
import pytest

from bot.answer.span_reader import SHIPPED_MODEL, SpanReader, best_spans, featurize
from bot.errors import ReaderUnavailable


@pytest.fixture(scope="module")
def reader():
    return SpanReader()


def test_featurize__windows_cover_every_passage_token_with_offsets(reader):
    passage = " ".join(f"token{i}" for i in range(400))
    windows = featurize(reader.tokenizer, "Which token comes last?", [passage], max_len=128, stride=32)
    assert len(windows) > 3
    assert all(len(w.ids) <= 128 and len(w.ids) == len(w.type_ids) == len(w.offsets) for w in windows)
    covered = sorted({o for w in windows for o in w.offsets if o is not None})
    assert covered[0][0] == 0 and covered[-1][1] == len(passage)
    # consecutive windows overlap, so an answer on a window edge is whole in one of them
    firsts = [min(o for o in w.offsets if o) for w in windows]
    lasts = [max(o for o in w.offsets if o) for w in windows]
    assert all(firsts[i + 1][0] < lasts[i][1] for i in range(len(windows) - 1))


def test_featurize__question_tokens_have_no_passage_offsets(reader):
    (w,) = featurize(reader.tokenizer, "Who?", ["Alice met Bob."])
    first_passage = w.type_ids.index(1)
    assert all(o is None for o in w.offsets[:first_passage])
    assert w.offsets[-1] is None  # the final [SEP]


def test_best_spans__picks_the_highest_start_plus_end_within_the_passage():
    offsets = [None, None, (0, 3), (4, 7), (8, 11), None]
    start = np.array([5.0, 9.0, 1.0, 3.0, 0.0, 9.0])
    end = np.array([5.0, 9.0, 0.0, 1.0, 4.0, 9.0])
    i, j, score, null = best_spans(start, end, offsets)
    assert (i, j) == (3, 4) and score == 7.0 and null == 10.0  # question / [SEP] tokens never win


def test_best_spans__never_returns_end_before_start():
    offsets = [None, (0, 1), (2, 3), (4, 5)]
    start = np.array([0.0, 0.0, 0.0, 9.0])
    end = np.array([0.0, 9.0, 0.0, 0.0])
    i, j, _, _ = best_spans(start, end, offsets)
    assert i <= j


def test_read__finds_the_answer_and_prefers_no_answer_on_an_unrelated_passage(reader):
    passages = [
        "The committee met on Tuesday in Geneva. Its chair, Maria Lopez, said the vote would be held in May.",
        "Heavy rain flooded several roads in the north of the county over the weekend.",
    ]
    spans = reader.read("Who chairs the committee?", passages)
    assert [s.passage for s in spans] == [0, 1]
    best = max(spans, key=lambda s: s.margin)
    assert best.passage == 0 and "Lopez" in passages[0][best.start : best.end]
    assert spans[1].margin < best.margin


def test_shipped_model__is_int8_onnx_under_30_mb_with_a_calibrated_threshold():
    size = (SHIPPED_MODEL / "model.onnx").stat().st_size
    assert size <= 30 * 1024 * 1024
    r = SpanReader()
    assert r.threshold != 0.0 and r.depth >= 1
    # trained with question / passage segment ids, so it must be run with them
    assert {i.name for i in r.session.get_inputs()} == {"input_ids", "attention_mask", "token_type_ids"}


def test_missing_model_folder__is_one_clear_error(tmp_path):
    with pytest.raises(ReaderUnavailable, match="QA_READER_MODEL"):
        SpanReader(tmp_path / "nothing-here")


def test_onnx_file_beside_its_tokenizer__is_read_as_that_model(tmp_path):
    import shutil

    shutil.copy(SHIPPED_MODEL / "tokenizer.json", tmp_path / "tokenizer.json")
    shutil.copy(SHIPPED_MODEL / "model.onnx", tmp_path / "model-int8.onnx")
    r = SpanReader(tmp_path / "model-int8.onnx")
    best = max(r.read("Who chairs the committee?", ["Its chair, Maria Lopez, said the vote was in May."]),
               key=lambda s: s.margin)
    assert "Lopez" in "Its chair, Maria Lopez, said the vote was in May."[best.start : best.end]
    # A file that is not one (or has no tokenizer beside it) is one clear error naming what is expected.
    (tmp_path / "notes.txt").write_text("not a model")
    with pytest.raises(ReaderUnavailable, match="ONNX file with tokenizer.json beside it"):
        SpanReader(tmp_path / "notes.txt")


def test_uncached_hugging_face_id__says_how_to_get_it(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ReaderUnavailable, match="not on this machine"):
        SpanReader("no-such-org/no-such-reader-model", cache_dir=tmp_path)


def test_hugging_face_folder__is_exported_once_and_read(tmp_path):
    """QA_READER_MODEL may name any transformers QA model folder: the same loading path, exported to ONNX."""
    from transformers import BertConfig, BertForQuestionAnswering

    from index.embedding import model_dir

    cfg = BertConfig(vocab_size=30522, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                     intermediate_size=64, max_position_embeddings=512)
    folder = tmp_path / "tiny-qa"
    BertForQuestionAnswering(cfg).save_pretrained(folder)
    (folder / "tokenizer.json").write_bytes((model_dir() / "tokenizer.json").read_bytes())
    r = SpanReader(folder, cache_dir=tmp_path / "cache")
    assert "token_type_ids" in r._inputs  # BERT's segment ids are model inputs, not constants baked in
    spans = r.read("Who?", ["Alice met Bob in Paris."])
    assert len(spans) == 1 and 0 <= spans[0].start < spans[0].end <= len("Alice met Bob in Paris.")
    exported = list((tmp_path / "cache").glob("reader-tiny-qa-*.onnx"))
    assert len(exported) == 1
    SpanReader(folder, cache_dir=tmp_path / "cache")  # the second load reuses the export
    assert list((tmp_path / "cache").glob("reader-tiny-qa-*.onnx")) == exported


def test_best_spans__never_crosses_a_paragraph_break():
    offsets = [None, (0, 4), (5, 9), (10, 14)]
    start = np.array([0.0, 0.0, 9.0, 0.0])
    end = np.array([0.0, 0.0, 0.0, 9.0])
    i, j, _, _ = best_spans(start, end, offsets)
    assert (i, j) == (2, 3)
    i, j, _, _ = best_spans(start, end, offsets, paragraph=[0, 0, 0, 1])
    assert (i, j) != (2, 3) and i <= j
