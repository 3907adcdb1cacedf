"""A battery of hostile inputs against the installed `qa` (issue #13): no traceback, one clear line per mistake.

Not collected by pytest (each case pays a cold start; the behaviours have their own fast tests). Run:

    nice -n 15 .venv/bin/python -m tests.battery_hostile

Prints one line per case and exits 1 if any case fails.
"""

from __future__ import annotations

import os
import random
import shutil
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
QA = ROOT / ".venv" / "bin" / "qa"
SEEDS = ROOT / "seeds"


@dataclass(frozen=True)
class Case:
    """One command, what it may print on stderr, and the exit code it must end with."""

    name: str
    args: list[str]
    code: int
    stderr_lines: int | None = 0  # non-progress lines allowed on stderr (None: any number, no traceback)
    stdin: bytes = b""
    env: dict | None = None
    must: str = ""  # text the output must contain


def run(case: Case, cwd: Path, base_env: dict) -> tuple[bool, str]:
    """Run one case; (passed, a line saying what happened)."""
    proc = subprocess.run([str(QA), *case.args], input=case.stdin, capture_output=True, cwd=cwd,
                          env={**base_env, **(case.env or {})}, timeout=600)
    out, err = proc.stdout.decode("utf-8", "replace"), proc.stderr.decode("utf-8", "replace")
    lines = [line for line in err.splitlines() if line.strip() and not line.startswith(("indexed ", "waiting:"))]
    problems = []
    if "Traceback" in err or "Traceback" in out:
        problems.append("traceback")
    if proc.returncode != case.code:
        problems.append(f"exit {proc.returncode}, wanted {case.code}")
    if case.stderr_lines is not None and len(lines) != case.stderr_lines:
        problems.append(f"{len(lines)} stderr lines, wanted {case.stderr_lines}")
    if case.must and case.must not in out + err:
        problems.append(f"missing {case.must!r}")
    if "\x1b" in out:
        problems.append("escape sequence in stdout")
    shown = (lines[0] if lines else out.strip().splitlines()[0] if out.strip() else "")[:110]
    return not problems, f"{'ok  ' if not problems else 'FAIL'} {case.name}: {'; '.join(problems) or shown}"


def main() -> int:
    """Build the hostile corpora and index, run every case, report."""
    work = Path(tempfile.mkdtemp(prefix="qa-hostile-"))
    cwd = work / "elsewhere"  # not the repository: no seeds/, no .env
    cwd.mkdir()
    base_env = {k: v for k, v in os.environ.items() if not k.startswith(("QA_", "OPENAI_", "CHROMA_"))}
    base_env["COLUMNS"] = "100"
    data = str(work / "data")

    a, b = work / "a", work / "b"
    shutil.copytree(SEEDS, a)
    b.mkdir()
    shutil.copy(SEEDS / "001_e76acc07d88c3c13.txt", b / "other.txt")
    bad = work / "bad"
    (bad / "x[").mkdir(parents=True)
    (bad / "x[" / "yellow].txt").write_text("")  # doc id x[/yellow].txt, empty
    rng = random.Random(1)
    (bad / "noise.txt").write_bytes(bytes(rng.choice(range(1, 256)) for _ in range(5000)))
    (bad / "utf16.txt").write_bytes("Café reopens\n\nThe café on Main Street reopened on 2 May 2024.\n".encode("utf-16"))
    (bad / "long_first.txt").write_text(" ".join(f"word{i}" for i in range(400)) + "\n\nShort body sentence here.\n")
    (bad / "escapes.txt").write_text("Storm \x1b]0;pwned\x07hits\n\nWinds \x1b[2J\x1b[31mrose\x1b[0m to 90 km/h in Kestrel Bay.\n")
    (work / "secret.txt").write_text("Secret\n\nThe password is hunter2.\n")
    (bad / "leak.txt").symlink_to(work / "secret.txt")
    empty, pdfs = work / "empty", work / "pdfs"
    empty.mkdir()
    pdfs.mkdir()
    (pdfs / "report.pdf").write_bytes(b"%PDF-1.4")
    exists = work / "exists.jsonl"
    exists.write_text('{"id": "keep", "question": "Q?"}\n')
    qset = work / "set.jsonl"
    good = '{"id": "%s", "question": "Who is the CEO of ADASpace?", "answers": ["Wang Lei"]}\n'
    qset.write_text(good % "[/x]" + good % "[/x]" + '{"id": "y", "question": "Q?", "answerable": "[/yellow]"}\n')
    server = work / "data-server"
    (server / "lexical" / "articles@10.0.0.5_8001").mkdir(parents=True)
    (server / "lexical" / "articles@10.0.0.5_8001" / "CURRENT").write_text("v1")

    ask = ["ask", "Who is the CEO of ADASpace?", "--data-dir", data]
    from bot.config import Settings

    built = Settings.model_fields["embed_precision"].default
    other = "int8" if built == "float32" else "float32"
    setup = [
        Case("index a folder", ["index", str(a), "--data-dir", data], 0),
        Case("index another folder keeps the first", ["index", str(b), "--data-dir", data], 0, must="kept 5 documents"),
        Case("index one file", ["index", str(b / "other.txt"), "--data-dir", data], 0),
        Case("index bad files: one warning each", ["index", str(bad), "--data-dir", data], 0, stderr_lines=3,
             must="warning: x[/yellow].txt"),
    ]
    cases = [
        Case("index an empty folder", ["index", str(empty), "--data-dir", data], 2, 1, must="holds no files"),
        Case("index a folder of PDFs", ["index", str(pdfs), "--data-dir", data], 2, 1, must="1 .pdf"),
        Case("index a missing path", ["index", str(work / "nope"), "--data-dir", data], 2, 1),
        Case("index with no folder outside the repo", ["index", "--data-dir", data], 2, 1, must="qa index DIR"),
        Case("ask with undecodable bytes", ["ask", os.fsdecode(b"Who is the CEO of \xff ADASpace?"), "--data-dir", data], 0),
        Case("ask an empty question", ["ask", "", "--data-dir", data], 2, 1),
        Case("ask - with bytes on stdin", ["ask", "-", "--data-dir", data], 0, stdin=b"Who is the CEO \xfe of ADASpace?"),
        Case("ask with markup in the question", ["ask", "[/yellow] who [bold]is the CEO of ADASpace?", "--data-dir", data], 0),
        Case("ask about an escape-laden article", ["ask", "How fast were the winds in Kestrel Bay?", "--data-dir", data], 0),
        Case("ask -v after the command", [*ask, "-v"], 0, stderr_lines=None),
        Case("ask with a bad date", [*ask, "--since", "2023-13-45"], 2, 1),
        Case("ask with the other embedding precision", ask, 2, 1, env={"QA_EMBED_PRECISION": other},
             must=f"QA_EMBED_PRECISION={built}"),
        Case("ask with QA_TOP_K=abc", ask, 2, 1, env={"QA_TOP_K": "abc"}, must="QA_TOP_K"),
        Case("ask with no index", ["ask", "Who?", "--data-dir", str(work / "none")], 2, 1, must="qa index DIR"),
        Case("ask a server index without CHROMA_HOST", ["ask", "Who?", "--data-dir", str(server)], 2, 1,
             must="CHROMA_HOST=10.0.0.5"),
        Case("export over an existing file", ["feedback", "export", str(exists), "--data-dir", data], 2, 1,
             must="--force"),
        Case("eval --skip-bad with markup ids", ["eval", str(qset), "--skip-bad", "--data-dir", data,
                                                 "--out", str(work / "run")], 0, stderr_lines=None),
        Case("eval --compare of missing runs", ["eval", "--compare", str(work / "x"), str(work / "y")], 2, 1),
        Case("chat piped: words, bytes, escapes", ["chat", "--data-dir", data], 0,
             stdin=b"help\nWho is the CEO \xff of ADASpace? \x1b[2J\n[/x] clear\nexit\nnever asked\n"),
        Case("index --status", ["index", "--status", "--data-dir", data], 0, must="health"),
        Case("--version", ["--version"], 0, must="qa "),
    ]
    failed = 0
    for case in setup:  # in order: they build the index the other cases use
        ok, line = run(case, cwd, base_env)
        failed += not ok
        print(line, flush=True)
    with ThreadPoolExecutor(2) as pool:
        for ok, line in pool.map(lambda c: run(c, cwd, base_env), cases):
            failed += not ok
            print(line, flush=True)
    # Damage, then the repair cycle.
    version = next((Path(data) / "lexical" / "articles").glob("v*"))
    for f in (version / "bm25").iterdir():
        f.unlink()
    for case in (Case("ask with BM25 files deleted", ask, 2, 1, must="run `qa index`"),
                 Case("index --check finds it", ["index", "--check", "--data-dir", data], 1, must="repair: run `qa index`"),
                 Case("index repairs it", ["index", str(a), "--data-dir", data], 0),
                 Case("ask again", ask, 0, must="Wang Lei")):
        ok, line = run(case, cwd, base_env)
        failed += not ok
        print(line, flush=True)
    with open(Path(data) / "chroma" / "chroma.sqlite3", "r+b") as fh:
        fh.write(b"garbage" * 20)
    for case in (Case("ask with chroma.sqlite3 corrupt", ask, 2, 1, must="qa index --rebuild"),
                 Case("index --rebuild", ["index", "--rebuild", "--data-dir", data], 0, stderr_lines=None),
                 Case("ask after the rebuild", ask, 0, must="Wang Lei")):
        ok, line = run(case, cwd, base_env)
        failed += not ok
        print(line, flush=True)
    print(f"{failed} failed")
    shutil.rmtree(work, ignore_errors=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
