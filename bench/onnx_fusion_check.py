#!/usr/bin/env python
"""Would onnxruntime's transformer graph fusions speed up the embedding model? Side by side, same texts.

Encodes the same news chunks with the project's ONNX export as loaded today (MiniLMEncoder) and with
that export passed through onnxruntime.transformers.optimizer.optimize_model(model_type="bert"),
alternating the two --rounds times; prints the fused operators, both times, their ratio and the lowest
cosine between the two vectors of a text.

  .venv/bin/python bench/onnx_fusion_check.py --texts 1200
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--texts", type=int, default=1200, help="900-character pieces of RealTime QA 2026 articles")
    ap.add_argument("--rounds", type=int, default=2)
    args = ap.parse_args(argv)

    import onnxruntime as ort
    from onnxruntime.transformers.optimizer import optimize_model

    from bot.config import load_settings
    from eval.datasets import prepare
    from index.embedding import MiniLMEncoder, onnx_path

    settings = load_settings()
    ds = prepare("realtimeqa-2026", Path(tempfile.gettempdir()) / "qa-onnx-fusion", settings.shared_data_dir, limit=100)
    texts: list[str] = []
    for f in sorted(ds.corpus_dir.rglob("*.txt")):
        t = f.read_text(encoding="utf-8", errors="replace")
        texts += [t[i : i + 900] for i in range(0, min(len(t), 9000), 900)]
    texts = texts[: args.texts]

    base = MiniLMEncoder(settings.model_cache_dir)
    with tempfile.TemporaryDirectory() as tmp:
        fused_path = Path(tmp) / "fused.onnx"
        model = optimize_model(str(onnx_path(settings.model_cache_dir)), model_type="bert", num_heads=12,
                               hidden_size=384, opt_level=1)
        model.save_model_to_file(str(fused_path))
        stats = {k: v for k, v in model.get_fused_operator_statistics().items() if v}
        fused = MiniLMEncoder(settings.model_cache_dir)
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = base.session.get_session_options().intra_op_num_threads
        opts.inter_op_num_threads = 1
        opts.log_severity_level = 3
        fused.session = ort.InferenceSession(str(fused_path), opts, providers=["CPUExecutionProvider"])
        print(f"fused operators: {stats}")
        print(f"{len(texts)} texts of <= 900 characters")
        for r in range(args.rounds):
            t0 = time.perf_counter()
            a = base.encode(texts)
            t1 = time.perf_counter()
            b = fused.encode(texts)
            t2 = time.perf_counter()
            print(f"round {r + 1}: as loaded {t1 - t0:.1f} s, fused {t2 - t1:.1f} s, speed-up {(t1 - t0) / (t2 - t1):.2f}x, "
                  f"lowest cosine {(a * b).sum(axis=1).min():.7f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
