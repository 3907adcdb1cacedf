"""The BM25 side of the index: idf from bm25s' own arrays, memory a query leaves behind, lazy imports."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import pytest

from index.lexical import LexicalIndex
from index.store import StoredChunk

ROOT = Path(__file__).resolve().parent.parent

TEXTS = [
    "The harbour bridge reopened after the storm damaged its cables.",
    "Storm warnings closed the harbour for two days.",
    "The council voted to repair the bridge cables before winter.",
    "A new ferry line links the harbour with the northern islands.",
]


def _chunk(i: int, text: str) -> StoredChunk:
    return StoredChunk(id=f"d{i}:0", doc_id=f"d{i}", title=f"Article {i}", date=None, text=text, start=0,
                       end=len(text), position=0, n_chunks=1, doc_hash=f"h{i}", sentences=f"0-{len(text)}")


@pytest.fixture()
def lexical(tmp_path) -> LexicalIndex:
    folder = tmp_path / "lexical"
    LexicalIndex.build(folder, [_chunk(i, t) for i, t in enumerate(TEXTS)], fp="test")
    return LexicalIndex.open(folder)


def test_idf_counts_the_chunks_that_hold_each_term(lexical):
    terms = lexical.tokenize(["harbour bridge storm ferry"])[0]
    assert len(terms) == 4
    n = len(TEXTS)
    titled = [f"Article {i}\n{t}" for i, t in enumerate(TEXTS)]
    for term, value in lexical.idf(terms).items():
        df = sum(term in lexical.tokenize([text])[0] for text in titled)
        assert df > 0
        assert value == pytest.approx(math.log(1 + (n - df + 0.5) / (df + 0.5)))
    # a term no chunk holds weighs like a term seen once
    unseen = lexical.idf(["zeppelin"])["zeppelin"]
    assert unseen == pytest.approx(math.log(1 + (n - 1 + 0.5) / 1.5))


def _resident_kib(path_part: str) -> dict[str, int]:
    """Resident KiB of each mapping of this process whose file name contains path_part (Linux smaps)."""
    out: dict[str, int] = {}
    current = None
    with open("/proc/self/smaps") as smaps:
        for line in smaps:
            fields = line.split()
            if fields and "-" in fields[0] and not fields[0].endswith(":"):
                current = fields[5] if len(fields) > 5 and path_part in fields[5] else None
            elif current and fields[0] == "Rss:":
                out[current] = out.get(current, 0) + int(fields[1])
    return out


@pytest.mark.skipif(not Path("/proc/self/smaps").exists(), reason="needs Linux /proc/self/smaps")
def test_a_query_leaves_none_of_the_memory_mapped_arrays_resident(lexical):
    hits = lexical.search("storm harbour", k=3)
    assert hits and hits[0][0].doc_id in {"d0", "d1"}
    mapped = _resident_kib(".csc.index.npy")
    assert {Path(p).name for p in mapped} >= {"data.csc.index.npy", "indices.csc.index.npy"}
    assert all(kib == 0 for kib in mapped.values()), mapped
    lexical.idf(["storm"])
    assert all(kib == 0 for kib in _resident_kib(".csc.index.npy").values())
    # the pages come back from the page cache when the next query needs them
    assert lexical.search("storm harbour", k=3) == hits


def test_importing_bm25s_leaves_scipy_out_but_importable():
    code = ("import sys; from index.lexical import _bm25s; b = _bm25s(); "
            "print(b.SCIPY_AVAILABLE, 'scipy' in sys.modules); import scipy.sparse; print('importable')")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False", "importable"]
