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


def test_quantize__per_channel_keeps_the_first_layer_float_and_the_rest_int8_per_channel(tmp_path):
    src = _tiny_qa_onnx(tmp_path)
    quantize(src, tmp_path / "int8.onnx", "per-channel")
    graph = onnx.load(str(tmp_path / "int8.onnx")).graph
    inits = {i.name: i for i in graph.initializer}
    float_weights = [n.name for n in graph.node if n.op_type == "MatMul" and n.input[1] in inits]
    int_weights = [n for n in graph.node if n.op_type == "MatMulInteger"]
    assert float_weights and all("layer.0/" in name for name in float_weights)
    assert int_weights and not any("layer.0/" in n.name for n in int_weights)
    # per-channel: one weight scale per output column, not one per tensor
    for n in int_weights:
        scale = inits[n.input[1].removesuffix("_quantized") + "_scale"]
        assert len(scale.dims) == 1 and scale.dims[0] > 1


def test_quantize__per_tensor_quantizes_every_weight_matmul_with_one_scale(tmp_path):
    src = _tiny_qa_onnx(tmp_path)
    quantize(src, tmp_path / "int8.onnx")
    graph = onnx.load(str(tmp_path / "int8.onnx")).graph
    inits = {i.name: i for i in graph.initializer}
    assert not [n for n in graph.node if n.op_type == "MatMul" and n.input[1] in inits]
    int_weights = [n for n in graph.node if n.op_type == "MatMulInteger"]
    assert int_weights
    for n in int_weights:
        assert len(inits[n.input[1].removesuffix("_quantized") + "_scale"].dims) == 0


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
