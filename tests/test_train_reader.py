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
