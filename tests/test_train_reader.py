"""The reader's int8 export: the shipped per-tensor scheme, and per-channel with the first layer in float."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from bot.answer.span_reader import export_onnx
from train.reader import quantize


def _tiny_qa_onnx(tmp_path):
    from transformers import BertConfig, BertForQuestionAnswering

    cfg = BertConfig(vocab_size=500, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                     intermediate_size=64, max_position_embeddings=64)
    model = BertForQuestionAnswering(cfg)
    return export_onnx(tmp_path / "src", tmp_path / "float.onnx", model=model)


def _matmuls(path):
    """(names of MatMuls over a float weight, {MatMulInteger name: its weight scale's dims})."""
    graph = onnx.load(str(path)).graph
    inits = {i.name: i for i in graph.initializer}
    floats = [n.name for n in graph.node if n.op_type == "MatMul" and n.input[1] in inits]
    ints = {n.name: list(inits[n.input[1].removesuffix("_quantized") + "_scale"].dims)
            for n in graph.node if n.op_type == "MatMulInteger"}
    return floats, ints


def test_quantize__per_channel_keeps_the_first_layer_float_and_the_rest_int8_per_channel(tmp_path):
    src = _tiny_qa_onnx(tmp_path)
    quantize(src, tmp_path / "int8.onnx", "per-channel")
    floats, ints = _matmuls(tmp_path / "int8.onnx")
    assert floats and all("layer.0/" in name for name in floats)
    assert ints and not any("layer.0/" in name for name in ints)
    # per-channel: one weight scale per output column, not one per tensor
    assert all(len(dims) == 1 and dims[0] > 1 for dims in ints.values())


def test_quantize__per_tensor_quantizes_every_weight_matmul_with_one_scale(tmp_path):
    src = _tiny_qa_onnx(tmp_path)
    quantize(src, tmp_path / "int8.onnx")
    floats, ints = _matmuls(tmp_path / "int8.onnx")
    assert not floats
    assert ints and all(dims == [] for dims in ints.values())


@pytest.mark.parametrize("scheme", ["per-tensor", "per-channel"])
def test_quantize__keeps_the_logits_close_to_the_float_model(tmp_path, scheme):
    src = _tiny_qa_onnx(tmp_path)
    quantize(src, tmp_path / "int8.onnx", scheme)
    rng = np.random.default_rng(0)
    feed = {"input_ids": rng.integers(0, 500, (2, 24)), "attention_mask": np.ones((2, 24), dtype=np.int64),
            "token_type_ids": np.zeros((2, 24), dtype=np.int64)}
    a = ort.InferenceSession(str(src)).run(None, feed)[0]
    b = ort.InferenceSession(str(tmp_path / "int8.onnx")).run(None, feed)[0]
    assert np.abs(a - b).max() < 0.1 * (np.abs(a).max() + 1e-6) + 0.05


def test_shared_norm_loss__is_the_cross_entropy_of_the_gold_over_every_window_of_its_question():
    import torch

    from train.reader import shared_norm_loss

    # two windows of one question: the answer at token 2 of window 0; window 1 has none ([CLS] = 0)
    start = torch.tensor([[1.0, 0.0, 3.0, 0.0], [2.0, 2.5, 0.0, 0.0]])
    end = torch.tensor([[0.0, 0.0, 2.0, 1.0], [0.0, 4.0, 0.0, 0.0]])
    mask = torch.tensor([[1, 1, 1, 1], [1, 1, 1, 0]])
    starts, ends, group = torch.tensor([2, 0]), torch.tensor([2, 0]), torch.tensor([0, 0])
    got = shared_norm_loss(start, end, mask, starts, ends, group)

    def ce(rel_rows, gold):  # positions 1.. of each window (padding left out), relative to its [CLS]
        flat = torch.cat(rel_rows)
        return torch.logsumexp(flat, 0) - gold
    s = ce([start[0, 1:] - start[0, 0], start[1, 1:3] - start[1, 0]], start[0, 2] - start[0, 0])
    e = ce([end[0, 1:] - end[0, 0], end[1, 1:3] - end[1, 0]], end[0, 2] - end[0, 0])
    assert got.item() == pytest.approx(((s + e) / 2).item(), rel=1e-6)


def test_shared_norm_loss__grows_when_a_window_without_the_answer_outscores_the_gold():
    import torch

    from train.reader import shared_norm_loss

    mask = torch.ones((2, 4), dtype=torch.long)
    starts, ends, group = torch.tensor([2, 0]), torch.tensor([2, 0]), torch.tensor([0, 0])
    gold_first = torch.tensor([[0.0, 0.0, 5.0, 0.0], [0.0, 1.0, 0.0, 0.0]])
    other_first = torch.tensor([[0.0, 0.0, 5.0, 0.0], [0.0, 8.0, 0.0, 0.0]])
    low = shared_norm_loss(gold_first, gold_first, mask, starts, ends, group)
    high = shared_norm_loss(other_first, other_first, mask, starts, ends, group)
    assert high.item() > low.item() + 2
    # the same logits shifted by a window's own [CLS] score compare the same: margins, not raw logits
    shifted = other_first.clone()
    shifted[1] += 3.0
    assert shared_norm_loss(shifted, shifted, mask, starts, ends, group).item() == pytest.approx(high.item())


def test_shared_norm_loss__ignores_one_window_groups_and_groups_without_the_answer():
    import torch

    from train.reader import shared_norm_loss

    logits = torch.randn(3, 5, requires_grad=True)
    mask = torch.ones((3, 5), dtype=torch.long)
    # window 0 alone (answer inside); windows 1-2 a group with no answer
    loss = shared_norm_loss(logits, logits, mask, torch.tensor([2, 0, 0]), torch.tensor([3, 0, 0]),
                            torch.tensor([0, 1, 1]))
    assert loss.item() == 0.0
    loss.backward()  # still a graph: the training step calls backward on the sum


def test_question_groups_and_batches__keep_a_question_with_its_negatives_in_one_batch():
    import random

    from tokenizers import Tokenizer

    from index.embedding import model_dir
    from train.reader import batches, question_groups

    tok = Tokenizer.from_file(str(model_dir() / "tokenizer.json"))
    tok.no_truncation()
    tok.no_padding()

    def row(q, answerable, ctx="The mayor of Springfield is Ann Lee. She was elected in 2020."):
        return {"question": f"Who is mayor {q}?", "group": f"g{q}", "answerable": answerable, "context": ctx,
                "answer_start": ctx.find("Ann Lee") if answerable else -1,
                "answer_text": "Ann Lee" if answerable else ""}
    examples = []
    for q in range(6):
        examples += [row(q, False, "Nothing here about it."), row(q, True), row(q, False, "Rain fell.")]
    groups = question_groups(tok, examples, 64, 16)
    assert len(groups) == 6 and all(len(g) == 3 for g in groups)
    assert all(sum(w[2] > 0 for w in g) == 1 for g in groups)  # one window holds the answer
    plan = batches(groups, 7, random.Random(0))
    assert sorted(len(b) for b in plan) == [6, 6, 6]  # whole groups, never past the batch size
    for b in plan:
        assert [sum(w[4] == k for w in b) for k in range(2)] == [3, 3]


def test_batches__of_single_windows_fill_every_batch_but_the_last_and_number_each_window_its_own_group():
    import random

    from train.reader import batches

    windows = [([1] * (5 + i % 30), [0] * (5 + i % 30), 0, 0) for i in range(40)]
    plan = batches([[w] for w in windows], 16, random.Random(0))
    assert sorted(len(b) for b in plan) == [8, 16, 16]
    assert sorted(w[:4] for b in plan for w in b) == sorted(windows)
    assert all([w[4] for w in b] == list(range(len(b))) for b in plan)
