"""An extractive question-answering model run by ONNX Runtime: (question, passages) -> best span per passage.

Any SQuAD-2-style model works: start / end logits over the tokens, with the first token ([CLS] / <s>)
standing for "no answer". The shipped model (bot/models/reader, trained by `python -m train.reader`) is
all-MiniLM-L6-v2 fine-tuned on SQuAD and RealTime QA; a Hugging Face model (a local folder or an id in
the local cache, e.g. deepset/roberta-base-squad2) is exported to ONNX once, like the embedding model.
The query path needs only onnxruntime, tokenizers and numpy.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

SHIPPED_MODEL = Path(__file__).resolve().parent.parent / "models" / "reader"
MAX_QUESTION_TOKENS = 64
_EXPORT_LOCK = threading.Lock()


@dataclass(frozen=True)
class Window:
    """One model input: a question and a piece of one passage, with each token's passage offsets."""

    passage: int
    ids: list[int]
    type_ids: list[int]
    # Per token: (start, end) character offsets into the passage, or None for question/special tokens.
    offsets: list[tuple[int, int] | None]


@dataclass(frozen=True)
class Span:
    """The best answer span the model found in one passage."""

    passage: int
    start: int  # character offsets into the passage
    end: int
    score: float  # start + end logit of the span
    null: float  # start + end logit of "no answer"

    @property
    def margin(self) -> float:
        """How much more the model believes in the span than in "no answer"."""
        return self.score - self.null


def featurize(tokenizer, question: str, passages: Sequence[str], max_len: int = 256, stride: int = 96) -> list[Window]:
    """Question + passage windows of at most max_len tokens, overlapping by `stride` tokens."""
    q = tokenizer.encode(question, add_special_tokens=False)
    q_ids = q.ids[:MAX_QUESTION_TOKENS]
    cls_id, sep_id = _special_ids(tokenizer)
    pair_sep = [sep_id, sep_id] if _is_roberta(tokenizer) else [sep_id]
    room = max_len - len(q_ids) - 2 - len(pair_sep)
    windows: list[Window] = []
    encs = tokenizer.encode_batch([p for p in passages], add_special_tokens=False) if passages else []
    for i, enc in enumerate(encs):
        ids, offs = enc.ids, enc.offsets
        start = 0
        while True:
            piece = range(start, min(start + room, len(ids)))
            w_ids = [cls_id, *q_ids, *pair_sep, *(ids[j] for j in piece), sep_id]
            types = [0] * (len(q_ids) + 1 + len(pair_sep)) + [1] * (len(piece) + 1)
            offsets: list[tuple[int, int] | None] = [None] * (len(q_ids) + 1 + len(pair_sep))
            offsets += [tuple(offs[j]) for j in piece] + [None]
            windows.append(Window(i, w_ids, types, offsets))
            if piece.stop >= len(ids):
                break
            start = piece.stop - stride if piece.stop - stride > start else piece.stop
    return windows


def _special_ids(tokenizer) -> tuple[int, int]:
    for cls, sep in (("[CLS]", "[SEP]"), ("<s>", "</s>")):
        a, b = tokenizer.token_to_id(cls), tokenizer.token_to_id(sep)
        if a is not None and b is not None:
            return a, b
    raise ValueError("the reader's tokenizer has neither [CLS]/[SEP] nor <s>/</s>")


def _is_roberta(tokenizer) -> bool:
    return tokenizer.token_to_id("<s>") is not None and tokenizer.token_to_id("[CLS]") is None


def best_spans(start: np.ndarray, end: np.ndarray, offsets: Sequence[tuple[int, int] | None], max_answer: int = 30,
               paragraph: Sequence[int] | None = None) -> tuple[int, int, float, float]:
    """(first token, last token, span score, null score) of the best span among the passage tokens.

    With `paragraph` (a paragraph number per token), a span never runs from one paragraph into the next.
    """
    valid = np.array([o is not None and o[1] > o[0] for o in offsets[: len(start)]], dtype=bool)
    null = float(start[0] + end[0])
    if not valid.any():
        return -1, -1, -np.inf, null
    s = np.where(valid, start[: len(valid)], -np.inf)
    e = np.where(valid, end[: len(valid)], -np.inf)
    n = len(s)
    # score[i, j] = s[i] + e[j] for i <= j < i + max_answer: one (n x max_answer) band instead of n x n.
    idx = np.arange(n)[:, None] + np.arange(max_answer)[None, :]
    inside = idx < n
    if paragraph is not None:
        para = np.asarray(paragraph[:n])
        inside &= para[np.minimum(idx, n - 1)] == para[:, None]
    band = s[:, None] + np.where(inside, e[np.minimum(idx, n - 1)], -np.inf)
    flat = int(np.argmax(band))
    i, k = divmod(flat, max_answer)
    return i, i + k, float(band[i, k]), null


class SpanReader:
    """Runs an extractive QA model over passages and returns each passage's best span."""

    def __init__(self, model: str | Path | None = None, cache_dir: Path | None = None, threads: int | None = None,
                 max_len: int | None = None):
        from tokenizers import Tokenizer

        from index.embedding import cpu_session

        folder, tokenizer_file, onnx_file = resolve_model(model, cache_dir)
        self.folder = folder
        config = _read_json(folder / "reader.json")
        self.max_len = int(max_len or config.get("max_len", 256))
        self.stride = int(config.get("stride", 96))
        self.threshold = float(config.get("threshold", 0.0))
        self.margin_threshold = float(config.get("margin_threshold", self.threshold))  # without coverage
        self.depth = int(config.get("depth", 6))
        self.rank_penalty = float(config.get("rank_penalty", 0.0))
        self.coverage = _coverage_weights(config.get("coverage"))
        self.type_penalty = _number(config.get("type_penalty", 0.0), "type_penalty")
        self.gate = config.get("gate")  # the answer gate's fitted weights (bot.answer.reader.AnswerGate)
        self.name = config.get("name", str(model or folder))
        self.tokenizer = Tokenizer.from_file(str(tokenizer_file))
        self.tokenizer.no_truncation()
        self.tokenizer.no_padding()
        self.session = cpu_session(onnx_file, threads)
        self._inputs = {i.name for i in self.session.get_inputs()}
        self._pad = self.tokenizer.token_to_id("[PAD]") or self.tokenizer.token_to_id("<pad>") or 0

    def logits(self, windows: Sequence[Window], batch_size: int = 16) -> list[tuple[np.ndarray, np.ndarray]]:
        """Start and end logits of every window (batched by similar length)."""
        out: list[tuple[np.ndarray, np.ndarray]] = [None] * len(windows)  # type: ignore[list-item]
        order = sorted(range(len(windows)), key=lambda i: -len(windows[i].ids))
        for b in range(0, len(order), batch_size):
            idx = order[b : b + batch_size]
            width = max(len(windows[i].ids) for i in idx)
            ids = np.full((len(idx), width), self._pad, dtype=np.int64)
            mask = np.zeros((len(idx), width), dtype=np.int64)
            types = np.zeros((len(idx), width), dtype=np.int64)
            for row, i in enumerate(idx):
                n = len(windows[i].ids)
                ids[row, :n] = windows[i].ids
                mask[row, :n] = 1
                types[row, :n] = windows[i].type_ids
            feed = {"input_ids": ids, "attention_mask": mask}
            if "token_type_ids" in self._inputs:
                feed["token_type_ids"] = types
            start, end = self.session.run(None, feed)[:2]
            for row, i in enumerate(idx):
                n = len(windows[i].ids)
                out[i] = (start[row, :n], end[row, :n])
        return out

    def read(self, question: str, passages: Sequence[str],
             blocked: Sequence[Sequence[tuple[int, int]]] | None = None) -> list[Span]:
        """The best span of each passage (by margin over "no answer"), in passage order.

        `blocked` gives, per passage, character ranges the model reads but may not answer from
        (headlines and datelines: they echo the question without answering it).
        """
        windows = featurize(self.tokenizer, question, passages, self.max_len, self.stride)
        newlines = [np.array([k for k, ch in enumerate(p) if ch == "\n"]) for p in passages]
        best: dict[int, Span] = {}
        for w, (s, e) in zip(windows, self.logits(windows)):
            offsets = w.offsets
            if blocked and blocked[w.passage]:
                ranges = blocked[w.passage]
                offsets = [None if o is not None and any(a <= o[0] < b for a, b in ranges) else o for o in offsets]
            breaks = newlines[w.passage]
            paragraph = [0 if o is None else int(np.searchsorted(breaks, o[0])) for o in offsets]
            i, j, score, null = best_spans(s, e, offsets, paragraph=paragraph)
            if i < 0:
                continue
            span = Span(w.passage, w.offsets[i][0], w.offsets[j][1], score, null)
            if w.passage not in best or span.margin > best[w.passage].margin:
                best[w.passage] = span
        return [best[i] for i in sorted(best)]


def _coverage_weights(cfg) -> tuple[float, float]:
    """(sentence, neighbourhood) coverage weights from reader.json's "coverage" (none: both zero)."""
    from bot.errors import ReaderUnavailable

    if cfg is None:
        return 0.0, 0.0
    try:
        return float(cfg["sentence"]), float(cfg["near"])
    except (KeyError, TypeError, ValueError):
        raise ReaderUnavailable("the reader model's reader.json has malformed coverage weights: it needs "
                                "numeric \"sentence\" and \"near\" (re-run `python -m train.calibrate --write`)") from None


def _number(value, name: str) -> float:
    """A numeric setting of reader.json, or ReaderUnavailable naming it."""
    from bot.errors import ReaderUnavailable

    try:
        return float(value)
    except (TypeError, ValueError):
        raise ReaderUnavailable(f"the reader model's reader.json has a malformed {name}: it needs a number "
                                "(re-run `python -m train.calibrate --write`)") from None


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def resolve_model(model: str | Path | None, cache_dir: Path | None) -> tuple[Path, Path, Path]:
    """(model folder, tokenizer.json, ONNX file) for the shipped model, an ONNX folder or file, or a HF model."""
    from bot.errors import ReaderUnavailable

    folder = Path(model) if model else SHIPPED_MODEL
    if folder.is_dir() and (folder / "model.onnx").exists() and (folder / "tokenizer.json").exists():
        return folder, folder / "tokenizer.json", folder / "model.onnx"
    # An ONNX file beside its tokenizer (a float export next to the int8 one, say) is read as it is.
    if folder.is_file() and folder.suffix == ".onnx" and (folder.parent / "tokenizer.json").exists():
        return folder.parent, folder.parent / "tokenizer.json", folder
    if folder.is_dir() and (folder / "config.json").exists():
        return folder, _tokenizer_json(folder, cache_dir), _export_hf(str(folder), cache_dir)
    if model and not folder.exists() and "/" in str(model):
        local = _hf_snapshot(str(model))
        if local is not None:
            return local, _tokenizer_json(local, cache_dir), _export_hf(str(local), cache_dir)
        raise ReaderUnavailable(
            f"Reader model {model!r} is not on this machine: download it once (`huggingface-cli download {model}`) "
            "or set QA_READER_MODEL to a local folder."
        )
    if folder.is_file():
        raise ReaderUnavailable(
            f"No reader model at {folder}: QA_READER_MODEL takes a model folder (model.onnx and tokenizer.json, "
            "or a Hugging Face model's files), or an ONNX file with tokenizer.json beside it."
        )
    raise ReaderUnavailable(f"No reader model at {folder}: set QA_READER_MODEL to a model folder, or unset it.")


def _tokenizer_json(folder: Path, cache_dir: Path | None) -> Path:
    """The folder's tokenizer.json, converted once from its slow-tokenizer files when it has none."""
    if (folder / "tokenizer.json").exists():
        return folder / "tokenizer.json"
    target = Path(cache_dir or Path.home() / ".cache" / "qa-bot") / f"reader-{folder.name}-tokenizer.json"
    if not target.exists():
        from transformers import AutoTokenizer

        target.parent.mkdir(parents=True, exist_ok=True)
        AutoTokenizer.from_pretrained(str(folder)).backend_tokenizer.save(str(target))
    return target


def _hf_snapshot(model_id: str) -> Path | None:
    """The local Hugging Face cache folder of model_id, without any network access."""
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(model_id, local_files_only=True))
    except Exception:  # noqa: BLE001 - any failure means "not available offline"
        return None


def _export_hf(folder: str, cache_dir: Path | None) -> Path:
    """Export a Hugging Face question-answering model to ONNX once (imports torch), cached by its files."""
    src = Path(folder)
    h = hashlib.sha1()
    for f in sorted(src.glob("*")):
        if f.is_file():
            h.update(f"{f.name}:{f.stat().st_size}".encode())
    cache = Path(cache_dir or Path.home() / ".cache" / "qa-bot")
    target = cache / f"reader-{src.name}-{h.hexdigest()[:12]}.onnx"
    if target.exists():
        return target
    with _EXPORT_LOCK:
        if not target.exists():
            export_onnx(src, target)
    return target


def export_onnx(src: Path, target: Path, model=None) -> Path:
    """Write an ONNX file with start_logits / end_logits for a (transformers) QA model."""
    import torch
    from transformers import AutoModelForQuestionAnswering

    if model is None:
        model = AutoModelForQuestionAnswering.from_pretrained(str(src), attn_implementation="eager")
    model = model.eval()
    import inspect

    # signature(), not __code__: transformers wraps forward, and a wrapper's code object hides the
    # parameters (the segment ids would silently be exported as constant zeros).
    takes_types = "token_type_ids" in inspect.signature(model.forward).parameters and getattr(
        model.config, "type_vocab_size", 2
    ) > 1

    class _Logits(torch.nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, input_ids, attention_mask, token_type_ids=None):
            kw = {"input_ids": input_ids, "attention_mask": attention_mask}
            if token_type_ids is not None:
                kw["token_type_ids"] = token_type_ids
            out = self.inner(**kw)
            return out.start_logits, out.end_logits

    names = ["input_ids", "attention_mask"] + (["token_type_ids"] if takes_types else [])
    ids = torch.ones(2, 16, dtype=torch.long)
    args = (ids, ids, torch.zeros_like(ids)) if takes_types else (ids, ids)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(f".tmp{os.getpid()}")
    with torch.no_grad():
        torch.onnx.export(
            _Logits(model), args, str(tmp), input_names=names, output_names=["start_logits", "end_logits"],
            dynamic_axes={n: {0: "batch", 1: "seq"} for n in [*names, "start_logits", "end_logits"]},
            opset_version=17, dynamo=False,
        )
    os.replace(tmp, target)
    return target
