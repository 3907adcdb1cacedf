#!/usr/bin/env python
"""Cold import of the indexing splitter: qa's (nltk loaded with scipy and scikit-learn hidden) beside a plain import.

`qa index` splits with LlamaIndex's SentenceSplitter and nltk's punkt. `import nltk` imports every nltk
subpackage, and some of them import scipy.stats and scikit-learn when installed (both optional in nltk, and
always installed here: sentence-transformers requires them). Each side is a fresh process that imports the
splitter, splits one paragraph and prints its wall time, CPU time and peak RSS; the sides are interleaved.

  .venv/bin/python bench/splitter_import.py [--runs 7]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import OUT, PYTHON, check, machine, median, ratio, table, timed_run, write_json  # noqa: E402

TEXT = "Mr. Smith went to Washington on Jan. 5. He left at 3 p.m. and did not return."
BODY = """
import resource, sys, time
t0 = time.perf_counter()
{imports}
sentences = split_by_sentence_tokenizer()({text!r})
assert len(sentences) >= 2, sentences
print("RESULT", time.perf_counter() - t0, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
      "scipy" in sys.modules, "sklearn" in sys.modules)
"""
SIDES = {
    "qa (index.build._import_splitter)": "from index.build import _import_splitter\n"
                                         "SentenceSplitter, split_by_sentence_tokenizer = _import_splitter()",
    "plain import": "import nltk\nfrom llama_index.core.node_parser import SentenceSplitter\n"
                    "from llama_index.core.node_parser.text.utils import split_by_sentence_tokenizer",
}


def main(argv: list[str] | None = None) -> int:
    """Print the table and write bench/out/splitter_import.json."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=7)
    args = ap.parse_args(argv)
    cmds = {name: [PYTHON, "-c", BODY.format(imports=code, text=TEXT)] for name, code in SIDES.items()}
    for name, cmd in cmds.items():  # untimed: fills the byte-code and page caches
        check(timed_run(cmd)[1], name)
    got: dict[str, dict[str, list]] = {name: {"wall_s": [], "cpu_s": [], "import_s": [], "rss_kib": []} for name in cmds}
    loaded = {}
    for _ in range(args.runs):
        for name, cmd in cmds.items():
            wall, proc, cpu = timed_run(cmd)
            check(proc, name)
            line = next(x for x in proc.stdout.splitlines() if x.startswith("RESULT"))
            _, t, rss, scipy, sklearn = line.split()
            got[name]["wall_s"].append(wall)
            got[name]["cpu_s"].append(cpu)
            got[name]["import_s"].append(float(t))
            got[name]["rss_kib"].append(int(rss))
            loaded[name] = f"scipy {scipy}, sklearn {sklearn}"
    qa, plain = cmds
    rows = []
    for label, key, fmt in (("process wall, s", "wall_s", "{:.2f}"), ("process CPU, s", "cpu_s", "{:.2f}"),
                            ("import + first split, s", "import_s", "{:.2f}"), ("peak RSS, MiB", "rss_kib", "{:.0f}")):
        a, b = median(got[qa][key]), median(got[plain][key])
        if key == "rss_kib":
            a, b = a / 1024, b / 1024
        rows.append([label, fmt.format(a), fmt.format(b), ratio(a, b)])
    rows.append(["loaded", loaded[qa], loaded[plain], ""])
    print(f"median of {args.runs} fresh processes per side, interleaved")
    print(table(rows, ["", qa, plain, "qa / plain"]))
    write_json(OUT / "splitter_import.json", {"benchmark": "splitter_import", "machine": machine(), "runs": got})
    return 0


if __name__ == "__main__":
    sys.exit(main())
