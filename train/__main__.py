"""Rebuild the shipped reader from ../shared/data in one command: `python -m train`.

prepare the splits -> fine-tune (resumable) -> export ONNX + int8 into bot/models/reader ->
calibrate threshold and depth on the validation split -> held-out test figures (train/runs/reader/test.json).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import sys
from pathlib import Path

from train import calibrate, evaluate, prepare, reader

HERE = Path(__file__).resolve().parent


def main() -> None:
    """Run every step; pass --out to train into another run folder."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=str(HERE / "runs" / "reader"))
    ap.add_argument("--target", default=str(HERE.parent / "bot" / "models" / "reader"))
    args = ap.parse_args()
    prepare.main([])
    reader.main(["--out", args.out])
    reader.main(["--export", args.out, "--target", args.target])
    calibrate.main(["--model", args.target, "--write"])
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        evaluate.main(["--model", args.target, "--compare", str(Path(args.out) / "model-float.onnx")])
    (Path(args.out) / "test.json").write_text(buf.getvalue())
    sys.stdout.write(buf.getvalue())


if __name__ == "__main__":
    main()
