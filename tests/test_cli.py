"""`qa ask` as a user runs it: a subprocess of the installed console script over the seed index."""

from __future__ import annotations

import json
import os
import subprocess
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import pytest

from tests.conftest import ROOT

QA = ROOT / ".venv" / "bin" / "qa"
CEO = "Who is the chief executive of ADASpace?"
KEYS = {"question", "answer", "abstained", "mode", "citations", "retrieved", "latency_ms", "note", "span"}


@dataclass(frozen=True)
class Run:
    returncode: int
    stdout: str
    stderr: str


@pytest.fixture(scope="module")
def runs(seed_settings, tmp_path_factory):
    """Every `qa ask` case of this module, run in parallel (each pays a cold start)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "CHROMA_", "QA_"))}
    env["QA_MODEL_CACHE_DIR"] = str(seed_settings.model_cache_dir)
    env["COLUMNS"] = "200"
    cwd = tmp_path_factory.mktemp("cli-cwd")  # no .env here
    data = str(seed_settings.data_dir)
    empty = str(tmp_path_factory.mktemp("no-index"))
    cases = {
        "plain": [CEO, "--data-dir", data],
        "json": [CEO, "--json", "--data-dir", data],
        "doc": ["Who founded Vivo?", "--json", "--doc", "003", "--data-dir", data],
        "empty": ["", "--data-dir", data],
        "blank": ["   ", "--data-dir", data],
        "long": ["x" * 4001, "--data-dir", data],
        "bad_since": [CEO, "--since", "2023-13-45", "--data-dir", data],
        "no_index": [CEO, "--data-dir", empty],
    }

    def run(args: list[str]) -> Run:
        proc = subprocess.run(
            [str(QA), "ask", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120
        )
        return Run(proc.returncode, proc.stdout, proc.stderr)

    # As many at once as there are cores: more only oversubscribes the ONNX threads.
    with ThreadPoolExecutor(max(2, os.cpu_count() or 2)) as pool:
        out = dict(zip(cases, pool.map(run, cases.values())))
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
