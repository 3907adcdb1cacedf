"""The sentence scorer: its training pairs, its encoding, its exported model, and the rescoring of
calibration records."""

from __future__ import annotations

import json
import random
import shutil

import numpy as np
import pytest

from bot.errors import ReaderUnavailable
from train.sentence_scorer import SentenceScorer, answer_sentences, encode, export_onnx, pairs_for_epoch, with_logits

CONTEXT = ("The lodge opened in 1928. It burned down in July 2025 after a fire began on July 4. "
           "Aramark ran it for the park service. Visitors came from every state.")


def _row(question, context, answer=None, group="g1", source="squad", rid="q1"):
    start = context.find(answer) if answer else -1
    return {"id": rid, "source": source, "question": question, "context": context, "group": group,
            "answerable": answer is not None, "answer_start": start, "answer_text": answer or "",
            "answers": [answer] if answer else []}


def test_answer_sentences__marks_the_sentence_holding_the_answer_and_none_for_a_negative():
    texts, gold = answer_sentences(_row("Who ran the lodge?", CONTEXT, "Aramark"))
    assert len(texts) == 4
    assert gold == {2} and texts[2].startswith("Aramark ran it")
    assert answer_sentences(_row("Who ran the lodge?", CONTEXT))[1] == set()


def test_pairs_for_epoch__labels_the_answer_sentence_1_and_takes_hard_negatives_first():
    rows = [_row("When did the fire that burned the lodge begin?", CONTEXT, "July 4"),
            _row("When did the fire that burned the lodge begin?", "A fire near the lodge was reported. "
                 "The weather was dry. Crews arrived late.", rid="n1")]
    pairs = pairs_for_epoch(rows, random.Random(0), same=1, other=1, news_repeat=2)
    positives = [s for _, s, y in pairs if y == 1.0]
    negatives = [s for _, s, y in pairs if y == 0.0]
    assert positives == ["It burned down in July 2025 after a fire began on July 4."]
    # The passage's other sentence sharing the most question words, and the negative passage's.
    assert sorted(negatives) == ["A fire near the lodge was reported.", "The lodge opened in 1928."]


def test_pairs_for_epoch__repeats_news_questions():
    rows = [_row("Who ran the lodge?", CONTEXT, "Aramark", source="realtimeqa")]
    pairs = pairs_for_epoch(rows, random.Random(0), same=1, other=0, news_repeat=2)
    assert sum(y for *_, y in pairs) == 2.0 and len(pairs) == 4


def test_encode__question_then_sentence_cut_to_max_len():
    from train.sentence_scorer import _tokenizer

    tok = _tokenizer()
    ids, types = encode(tok, "Who ran the lodge?", "Aramark ran it " * 100, max_len=40)
    assert len(ids) == 40 and len(types) == 40
    assert ids[0] == tok.token_to_id("[CLS]") and ids[-1] == tok.token_to_id("[SEP]")
    q_len = len(tok.encode("Who ran the lodge?", add_special_tokens=False).ids)
    assert types[: q_len + 2] == [0] * (q_len + 2) and set(types[q_len + 2 :]) == {1}


def test_with_logits__adds_the_weighted_logit_to_each_findings_span_score_in_a_copy():
    records = {"set": [{"raw": {"a": [[5.0, 1.0, 0, 0, 0, 0, True, 20]], "u": [[2.0, 1.0, 0, 0, 0, 0]], "c": []},
                        "logits": {"a": [3.0], "u": [-2.0], "c": []}}]}
    out = with_logits(records, 0.5)
    assert out["set"][0]["raw"]["a"][0][0] == 6.5 and out["set"][0]["raw"]["u"][0][0] == 1.0
    assert records["set"][0]["raw"]["a"][0][0] == 5.0


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """A small random BERT classifier over the MiniLM vocabulary, exported as train.sentence_scorer does."""
    import torch
    from transformers import BertConfig, BertForSequenceClassification

    from index.embedding import model_dir

    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("scorer")
    cfg = BertConfig(vocab_size=30522, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                     intermediate_size=64, max_position_embeddings=160, num_labels=1)
    model = BertForSequenceClassification(cfg)
    export_onnx(model, folder / "model.onnx")
    shutil.copy(model_dir() / "tokenizer.json", folder / "tokenizer.json")
    (folder / "scorer.json").write_text(json.dumps({"max_len": 48}))
    return folder, model


def test_score__one_logit_per_sentence_equal_to_the_torch_model_and_independent_of_the_batch(tiny):
    import torch

    folder, model = tiny
    scorer = SentenceScorer(folder)
    q = "Who ran the lodge?"
    sentences = ["Aramark ran the lodge for the park service.", "It burned down. " * 30, "Visitors came."]
    logits = scorer.score(q, sentences)
    assert logits.shape == (3,)
    ids, types = encode(scorer.tokenizer, q, sentences[1], 48)
    assert len(ids) == 48  # a long sentence is cut to max_len
    with torch.no_grad():
        ref = model.eval()(input_ids=torch.tensor([ids]), token_type_ids=torch.tensor([types])).logits[0, 0].item()
    assert logits[1] == pytest.approx(ref, abs=1e-4)
    # Padding a shorter sentence to the batch's width does not change its logit.
    assert scorer.score(q, sentences[2:])[0] == pytest.approx(logits[2], abs=1e-4)
    assert scorer.score(q, []).shape == (0,)


def test_load__an_incomplete_folder_is_a_clear_error(tmp_path, tiny):
    shutil.copy(tiny[0] / "model.onnx", tmp_path / "model.onnx")
    with pytest.raises(ReaderUnavailable, match="missing tokenizer.json, scorer.json"):
        SentenceScorer(tmp_path)


def test_paired__gain_and_interval_over_the_sets_questions():
    from train.sentence_scorer import _paired

    base = {"a": np.array([0.0, 1.0, 0.5, 0.25]), "b": np.array([1.0, 0.0])}
    same = _paired(base, base)
    assert same["gain"] == 0.0 and same["low"] == same["high"] == 0.0
    up = _paired(base, {"a": base["a"] + 0.1, "b": base["b"] + 0.3})
    assert up["gain"] == pytest.approx(0.2) and up["low"] == pytest.approx(0.2) and up["high"] == pytest.approx(0.2)
