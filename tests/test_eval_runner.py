"""The evaluation plumbing on the real pipeline: result rows, output files, the `qa eval` command.

Quality numbers are not asserted (the answerer is being tuned): only shapes, ranges and exit codes.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from eval.questions import EvalQuestion, load_questions
from eval.runner import EXIT_OK, EvalOptions, evaluate, run_questions, summary_of
from tests.conftest import ROOT, SEEDS, make_settings, qa_in_process
from tests.fakes.openai_server import FakeOpenAI, Status

pytestmark = pytest.mark.usefixtures("reuse_vectors")

SEED_DOCS = {p.name for p in SEEDS.glob("*.txt")}


def _sample(n_answerable: int = 4, n_unanswerable: int = 1) -> list[EvalQuestion]:
    questions, _ = load_questions(ROOT / "eval" / "questions.jsonl")
    return ([q for q in questions if q.answerable][:n_answerable]
            + [q for q in questions if not q.answerable][:n_unanswerable])


@pytest.fixture(scope="module")
def seed_rows(seed_pipeline):
    questions = _sample()
    questions.append(EvalQuestion("long", "Why? " * 2000, ("x",), extra={"topic": "too long"}))
    return run_questions(seed_pipeline, questions)


def test_rows_carry_answer_retrieval_metrics_and_extras(seed_rows):
    assert [r["id"] for r in seed_rows][-1] == "long"
    for row in seed_rows[:-1]:
        assert {"question", "answer", "abstained", "citations", "retrieved", "metrics", "latency_ms"} <= set(row)
        assert row["retrieved"] and {r["doc_id"] for r in row["retrieved"]} <= SEED_DOCS
        assert row["latency_ms"] > 0
        m = row["metrics"]
        assert isinstance(m["passed"], bool)
        if row["answerable"]:
            assert m["hit@5"] in (0.0, 1.0) and 0.0 <= m["mrr"] <= 1.0 and 0.0 <= m["f1"] <= 1.0
            assert isinstance(m["correctness"], bool) and isinstance(m["context_recall"], bool)
        else:
            assert m["correctness"] is None and m["hit@5"] is None
    rejected = seed_rows[-1]
    assert "characters long" in rejected["error"] and rejected["metrics"]["passed"] is False
    assert rejected["topic"] == "too long"  # unknown fields are copied into the results


def test_summary_and_report_files_from_real_rows(seed_rows, tmp_path):
    from eval.report import write_run

    summary = summary_of(seed_rows, questions="sample", n_questions=len(seed_rows))
    assert summary["counts"]["pass_rate"] == len(seed_rows)
    assert summary["counts"]["abstention_recall"] == 1
    assert 0 <= summary["metrics"]["latency_p50_ms"] <= summary["metrics"]["latency_p95_ms"]
    paths = write_run(tmp_path, seed_rows, summary)
    assert len(paths["results.jsonl"].read_text().splitlines()) == len(seed_rows)
    assert json.loads(paths["summary.json"].read_text())["metrics"] == summary["metrics"]
    assert paths["report.html"].read_text().count('<img alt="') == 3


def test_judge_metrics_and_failures_are_counted(seed_pipeline):
    from eval.judge import Judge

    with FakeOpenAI(lambda request: "YES") as srv:
        settings = make_settings(Path("unused"), openai_base_url=srv.base_url, openai_api_key="test",
                                 llm_max_retries=0, llm_timeout=10)
        judge = Judge.from_settings(settings)
        srv.script(Status(500))  # the first judgement (faithfulness of question 1) fails
        rows = run_questions(seed_pipeline, _sample(2, 0), judge)
    judged = [r for r in rows if not r["abstained"]]
    assert judged, "the offline answerer abstained on both sample questions: pick answerable ones"
    assert judged[0]["metrics"]["judge_failed"] == ["faithfulness"]
    assert judged[0]["metrics"]["faithfulness"] is None and judged[0]["metrics"]["relevancy"] == 1.0
    summary = summary_of(rows)
    assert summary["metrics"]["judge_failed"] == 1
    assert summary["counts"]["faithfulness"] == len(judged) - 1
    assert Judge.from_settings(make_settings(Path("unused"))) is None  # no LLM configured: no judge


def test_qa_eval_command_thresholds_outputs_and_compare(seed_settings, tmp_path, monkeypatch):
    questions = tmp_path / "sample.jsonl"
    questions.write_text("".join(json.dumps(q.to_dict()) + "\n" for q in _sample(3, 1)))
    env = {**os.environ, "QA_MODEL_CACHE_DIR": str(seed_settings.model_cache_dir)}
    common = [str(questions), "--data-dir", str(seed_settings.data_dir)]

    # The missed threshold's exit status 1 from a real process; meanwhile the passing run in this process.
    exe = Path(sys.executable).with_name("qa")
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "bot.cli"]
    proc = subprocess.Popen([*cmd, "eval", *common, "--out", str(tmp_path / "a"), "--fail-under", "correctness=1.01",
                             "--fail-under", "hit@5=0"], env=env, cwd=tmp_path, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        trivial = qa_in_process(["eval", *common, "--out", str(tmp_path / "b"), "--fail-under", "pass_rate=0",
                                 "--fail-under", "hit@5=0"], env, tmp_path, monkeypatch)
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    impossible = subprocess.CompletedProcess(proc.args, proc.returncode, out, err)
    assert impossible.returncode == 1, impossible.stderr
    assert "correctness" in impossible.stdout and "under the threshold 1.01" in impossible.stdout
    assert "hit@5 =" not in impossible.stdout  # only the missed threshold is reported

    assert trivial.returncode == 0, trivial.stderr
    assert "pass_rate" in trivial.stdout and "report.html" in trivial.stdout
    for name in ("results.jsonl", "summary.json", "report.md", "report.html"):
        assert (tmp_path / "b" / name).stat().st_size > 0
    rows = [json.loads(line) for line in (tmp_path / "b" / "results.jsonl").read_text().splitlines()]
    assert [r["id"] for r in rows] == [q.id for q in _sample(3, 1)]
    assert "<img" in (tmp_path / "b" / "report.html").read_text()

    # Flip one outcome in run b, then compare: deltas for every metric and the flipped question.
    rows[0]["metrics"]["passed"] = not rows[0]["metrics"]["passed"]
    (tmp_path / "b" / "results.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    summary = json.loads((tmp_path / "b" / "summary.json").read_text())
    summary["metrics"]["pass_rate"] = 0.123
    (tmp_path / "b" / "summary.json").write_text(json.dumps(summary))
    # In-process from here on (same typer app, no start-up cost): --compare, and a malformed file.
    from typer.testing import CliRunner

    from bot.cli import app

    compared = CliRunner().invoke(app, ["eval", "--compare", str(tmp_path / "a"), str(tmp_path / "b")],
                                  env={"COLUMNS": "160"})
    assert compared.exit_code == 0, compared.output
    assert "delta" in compared.stdout and "pass_rate" in compared.stdout and "0.123" in compared.stdout
    assert "1 question(s) flipped" in compared.stdout and rows[0]["id"] in compared.stdout

    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "a", "question": "ok?"}\n{"id": "b", "question": 3}\n')
    failed = CliRunner().invoke(app, ["eval", str(bad), "--data-dir", str(seed_settings.data_dir)])
    assert failed.exit_code == 2 and f"{bad}:2: missing or empty `question`" in failed.stderr


def test_dataset_index_is_built_then_reused(seed_settings, tmp_path, capsys):
    """`--dataset` end to end on a tiny synthetic RealTime QA source: its own collection, built once."""
    folder = tmp_path / "src" / "realtimeqa" / "past" / "2026"
    folder.mkdir(parents=True)
    qa = {"question_id": "20260101_0", "question_sentence": "Which city hosted the Lantern Expo?",
          "choices": ["Paris", "Chengdu"], "answer": ["1"]}
    results = [{"url": "https://example.com/expo", "title": "Lantern Expo opens",
                "text": "The Lantern Expo opened in Chengdu on Monday with 300 exhibitors.", "publish_date": "2026/01/01"},
               {"url": "https://example.com/rain", "title": "Rain expected",
                "text": "Heavy rain is expected in the north this weekend.", "publish_date": "2026/01/02"}]
    (folder / "20260101_qa.jsonl").write_text(json.dumps(qa) + "\n")
    (folder / "20260101_gcs.jsonl").write_text(json.dumps({"question_id": "20260101_0", "search_result": results}))
    settings = make_settings(tmp_path / "data", model_cache_dir=seed_settings.model_cache_dir)
    opts = EvalOptions(dataset="realtimeqa-2026", source_dir=tmp_path / "src", out=tmp_path / "run",
                       fail_under=["hit@5=1"])

    assert evaluate(opts, settings) == EXIT_OK
    err = capsys.readouterr().err
    assert "indexed collection 'rtqa2026'" in err and "2 documents" in err
    assert (tmp_path / "data" / "lexical" / "rtqa2026").is_dir()
    (row,) = [json.loads(line) for line in (tmp_path / "run" / "results.jsonl").read_text().splitlines()]
    expo, rain = (hashlib.sha1(r["url"].encode()).hexdigest()[:16] + ".txt" for r in results)
    assert row["gold_docs"] == [expo] and {r["doc_id"] for r in row["retrieved"]} <= {expo, rain}

    assert evaluate(opts, settings) == EXIT_OK
    assert "reused collection 'rtqa2026'" in capsys.readouterr().err


def test_a_question_the_pipeline_rejects_is_a_failure_even_when_unanswerable(seed_pipeline):
    """Guards against: the rejected question was recorded as an abstention, which passes an unanswerable question."""
    (row,) = run_questions(seed_pipeline, [EvalQuestion("huge", "Why? " * 2000, (), answerable=False)])
    assert row["error"] and row["metrics"]["passed"] is False and row["abstained"] is False
    assert summary_of([row])["metrics"]["pass_rate"] == 0.0


def test_summary_records_the_run_settings_and_skip_bad_ids_are_printed_as_text(seed_settings, tmp_path, capsys):
    questions = tmp_path / "set.jsonl"
    good = _sample(1, 0)[0].to_dict()
    dup = {**good, "id": "[/x]"}
    questions.write_text("".join(json.dumps(r) + "\n" for r in (
        good, dup, dup, {"id": "y", "question": "Q?", "answerable": "[/yellow]"})))
    opts = EvalOptions(questions, skip_bad=True, out=tmp_path / "run")
    assert evaluate(opts, make_settings(seed_settings.data_dir, model_cache_dir=seed_settings.model_cache_dir)) == EXIT_OK
    err = capsys.readouterr().err  # guards against: rich.errors.MarkupError on the id "[/x]"
    assert "duplicate id '[/x]'" in err and "'[/yellow]'" in err
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    settings = summary["settings"]
    assert settings["top_k"] == seed_settings.top_k and settings["fusion"] == seed_settings.fusion
    assert settings["embed_precision"] == seed_settings.embed_precision  # so --compare names a precision change
    # The offline answerer: the reader when the shipped model is present, else the heuristic one.
    assert settings["answerer"] == summary["run"]["answerer"] != "llm" and "llm_model" not in settings
