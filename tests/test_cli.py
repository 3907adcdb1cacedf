"""`qa ask` as a user runs it: a subprocess of the installed console script over the seed index."""

from __future__ import annotations

import json
import os
import subprocess
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.conftest import ROOT, Run, qa_in_process

pytestmark = pytest.mark.usefixtures("reuse_vectors")

QA = ROOT / ".venv" / "bin" / "qa"
CEO = "Who is the chief executive of ADASpace?"
KEYS = {"question", "answer", "abstained", "mode", "citations", "retrieved", "passages", "latency_ms", "note", "span"}


# Cases about the process itself (exit status as the shell sees it, stdin, argv bytes, piped stdout) run
# the installed console script; the others run the same typer app in this process (no cold start each).
# "plain" is shared by three tests: a question with a byte that is not UTF-8 in argv, answered to a pipe
# on an 80-column terminal (one cold start instead of three).
REAL = {"plain", "empty", "stdin", "stdin_bytes"}


@pytest.fixture(scope="module")
def runs(seed_settings, tmp_path_factory):
    """Every `qa ask` case of this module: the real-process ones in parallel (each pays a cold start),
    the rest in this process meanwhile."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "CHROMA_", "QA_"))}
    env["QA_MODEL_CACHE_DIR"] = str(seed_settings.model_cache_dir)
    env["COLUMNS"] = "200"
    cwd = tmp_path_factory.mktemp("cli-cwd")  # no .env here
    data = str(seed_settings.data_dir)
    empty = str(tmp_path_factory.mktemp("no-index"))
    cases = {
        "plain": [os.fsdecode(b"Who is the CEO of \xff ADASpace?"), "--data-dir", data],
        "json": [CEO, "--json", "--data-dir", data],
        "doc": ["Who founded Vivo?", "--json", "--doc", "003", "--data-dir", data],
        "empty": ["", "--data-dir", data],
        "blank": ["   ", "--data-dir", data],
        "long": ["x" * 4001, "--data-dir", data],
        "bad_since": [CEO, "--since", "2023-13-45", "--data-dir", data],
        "no_index": [CEO, "--data-dir", empty],
        "stdin": ["-", "--json", "--data-dir", data],
        "stdin_bytes": ["-", "--data-dir", data],
        "verbose_after": [CEO, "--json", "-v", "--data-dir", data],
        "bad_setting": [CEO, "--data-dir", data],
    }
    stdin = {"stdin": b"Who founded Vivo?\n", "stdin_bytes": b"Who is the CEO of \xff\xfe ADASpace?"}
    extra_env = {"plain": {"COLUMNS": "80"}, "bad_setting": {"QA_TOP_K": "abc"}}

    def run(case: str) -> Run:
        proc = subprocess.run(
            [str(QA), "ask", *cases[case]], cwd=cwd, env={**env, **extra_env.get(case, {})}, capture_output=True,
            input=stdin.get(case, b""), timeout=120,
        )
        return Run(proc.returncode, proc.stdout.decode("utf-8", "replace"), proc.stderr.decode("utf-8", "replace"))

    # As many at once as there are cores: more only oversubscribes the ONNX threads.
    with ThreadPoolExecutor(max(2, os.cpu_count() or 2)) as pool:
        real = [c for c in cases if c in REAL]
        futures = dict(zip(real, map(lambda c: pool.submit(run, c), real)))
        with pytest.MonkeyPatch.context() as monkeypatch:
            out = {c: qa_in_process(["ask", *cases[c]], {**env, **extra_env.get(c, {})}, cwd, monkeypatch)
                   for c in cases if c not in REAL}
        out.update((c, f.result()) for c, f in futures.items())
    return out


def _assert_user_error(run: Run) -> str:
    assert run.returncode == 2, run
    lines = [line for line in run.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, run.stderr
    assert lines[0].startswith("error: ")
    assert "Traceback" not in run.stderr
    assert run.stdout == ""
    return lines[0]


def test_ask_prints_answer_and_sources(runs):
    run = runs["plain"]
    assert run.returncode == 0, run.stderr
    assert "Traceback" not in run.stderr
    assert "Wang Lei" in run.stdout
    assert "[1]" in run.stdout
    assert "Sources" in run.stdout
    assert "002_0c73d536360565c7.txt" in run.stdout


def test_ask_json_prints_one_object_with_documented_keys(runs):
    run = runs["json"]
    assert run.returncode == 0, run.stderr
    assert len(run.stdout.strip().splitlines()) == 1
    data = json.loads(run.stdout)
    assert set(data) == KEYS
    assert data["mode"] == "reader"
    assert data["question"] == CEO
    assert data["abstained"] is False
    assert data["citations"] and data["citations"][0]["doc_id"].startswith("002_")
    for c in data["citations"]:
        assert set(c) == {"n", "doc_id", "title", "date", "quote", "chunk_id", "score"}
    for r in data["retrieved"]:
        assert set(r) == {"doc_id", "chunk_id", "score"}


def test_ask_doc_filter_restricts_citations(runs):
    run = runs["doc"]
    assert run.returncode == 0, run.stderr
    data = json.loads(run.stdout)
    assert data["citations"]
    assert all(c["doc_id"].startswith("003") for c in data["citations"])
    assert data["retrieved"] and all(r["doc_id"].startswith("003") for r in data["retrieved"])


@pytest.mark.parametrize("case", ["empty", "blank", "long"])
def test_bad_questions_exit_2_with_one_error_line(runs, case):
    line = _assert_user_error(runs[case])
    if case == "long":
        assert "4,000" in line


def test_bad_since_exits_2(runs):
    line = _assert_user_error(runs["bad_since"])
    assert "--since" in line


def test_missing_index_tells_to_run_qa_index(runs):
    line = _assert_user_error(runs["no_index"])
    assert "qa index" in line


def test_ask_dash_reads_the_question_from_stdin(runs):
    run = runs["stdin"]
    assert run.returncode == 0, run.stderr
    data = json.loads(run.stdout)
    assert data["question"] == "Who founded Vivo?" and data["citations"]


@pytest.mark.parametrize("case", ["stdin_bytes", pytest.param("plain", id="argv_bytes")])  # plain's question has one
def test_bytes_that_are_not_utf8_in_a_question_are_no_traceback(runs, case):
    run = runs[case]
    assert run.returncode == 0 and "Traceback" not in run.stderr, run.stderr
    assert "Sources" in run.stdout


def test_piped_output_is_not_hard_wrapped_and_quotes_keep_their_indent(runs):
    run = runs["plain"]  # COLUMNS=80
    assert run.returncode == 0, run.stderr
    lines = run.stdout.splitlines()
    assert max(len(line) for line in lines) > 80  # one line per paragraph, whatever the width
    assert not [line for line in lines if line != line.rstrip()], "trailing spaces"
    quotes = [line for line in lines if line.lstrip().startswith('"')]
    assert quotes and all(line.startswith('    "') for line in quotes)


def test_verbose_after_the_command_is_accepted(runs):
    run = runs["verbose_after"]
    assert run.returncode == 0, run.stderr  # guards against: "No such option: -v", exit 2
    assert json.loads(run.stdout)["citations"]


def test_an_invalid_setting_is_named_in_one_line(runs):
    line = _assert_user_error(runs["bad_setting"])
    assert "QA_TOP_K='abc'" in line and "integer" in line and "https://" not in line


def test_a_reader_that_stops_early_is_not_a_failure(seed_settings, tmp_path):
    """`qa ask ... | head -1`: the pipe closes before the answer is written."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "CHROMA_", "QA_"))}
    env["QA_MODEL_CACHE_DIR"] = str(seed_settings.model_cache_dir)
    proc = subprocess.Popen([str(QA), "ask", CEO, "--data-dir", str(seed_settings.data_dir)], cwd=tmp_path, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdout.close()  # the reader is gone before the first byte
    err = proc.stderr.read().decode()
    assert proc.wait(120) == 0 and err == ""  # guards against: exit 1


def _qa(args: list[str], cwd, env_extra: dict | None = None, timeout: int = 120) -> Run:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "CHROMA_", "QA_"))}
    proc = subprocess.run([str(QA), *args], cwd=cwd, env={**env, **(env_extra or {})}, capture_output=True, text=True,
                          timeout=timeout)
    return Run(proc.returncode, proc.stdout, proc.stderr)


def test_help_version_and_short_help(tmp_path):
    top = _qa(["-h"], tmp_path)
    assert top.returncode == 0 and "Example" in top.stdout
    for command in (["index"], ["ask"], ["chat"], ["eval"], ["slack"], ["feedback", "export"]):
        out = _qa([*command, "-h"], tmp_path, {"COLUMNS": "200"})
        assert out.returncode == 0 and "Example" in out.stdout, (command, out.stdout)
    version = _qa(["--version"], tmp_path)
    assert version.returncode == 0 and version.stdout.startswith("qa 0.")


@pytest.mark.parametrize("case", ["empty", "unsupported", "no_default"])
def test_qa_index_of_nothing_is_one_error_line(tmp_path, case):
    folder = tmp_path / "in"
    folder.mkdir()
    if case == "unsupported":
        (folder / "report.pdf").write_bytes(b"%PDF-1.4")
    args = ["index"] if case == "no_default" else ["index", str(folder)]
    run = _qa([*args, "--data-dir", str(tmp_path / "data")], tmp_path)  # cwd has no seeds/
    line = _assert_user_error(run)
    expected = {"empty": "holds no files", "unsupported": "1 file (1 .pdf)", "no_default": "`qa index DIR`"}[case]
    assert expected in line, line
    assert not (tmp_path / "data" / "chroma").exists()  # nothing was created


def test_file_names_with_markup_and_escapes_are_printed_as_text(seed_settings, tmp_path, monkeypatch):
    corpus = tmp_path / "corpus"
    (corpus / "x[").mkdir(parents=True)
    (corpus / "x[" / "yellow].txt").write_text("")  # doc id "x[/yellow].txt", skipped with a warning
    (corpus / "[b]ok.txt").write_text("Storm hits coast\n\nWinds rose to 90 km/h in Kestrel Bay on Monday.\n")
    env = {"QA_MODEL_CACHE_DIR": str(seed_settings.model_cache_dir)}
    # In this process: printing is what is tested, and a cold `qa index` spends ~4 s importing its splitter.
    run = qa_in_process(["index", str(corpus), "--data-dir", str(tmp_path / "data")], env, tmp_path, monkeypatch)
    assert run.returncode == 0 and "Traceback" not in run.stderr, run.stderr  # guards against: rich MarkupError
    assert [l for l in run.stderr.splitlines() if not l.startswith("indexed ")] == ["warning: x[/yellow].txt: skipped: empty file"]
    asked = qa_in_process(["ask", "How fast were the winds in Kestrel Bay?", "--data-dir", str(tmp_path / "data")],
                        {**env, "COLUMNS": "200"}, tmp_path, monkeypatch)
    assert asked.returncode == 0 and "[b]ok.txt" in asked.stdout, asked.stderr
