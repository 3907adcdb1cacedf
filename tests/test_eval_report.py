"""Run outputs, comparisons and thresholds on hand-made result rows (no pipeline)."""

from __future__ import annotations

import base64
import json
import re

import pytest
from rich.console import Console

from bot.errors import QAError
from eval import report
from eval.metrics import question_metrics
from eval.runner import summary_of


def _row(qid, passed_answer, answerable=True, latency=20.0):
    answer = passed_answer if passed_answer is not None else "I couldn't find that in the articles."
    abstained = passed_answer is None
    metrics = question_metrics(
        answers=["Chongqing"] if answerable else [], gold_docs=["a.txt"] if answerable else [],
        answerable=answerable, answer_text=answer, abstained=abstained,
        cited_docs=[] if abstained else ["a.txt"], retrieved_docs=["a.txt", "b.txt"],
        retrieved_texts=["It was held in Chongqing."],
    )
    return {"id": qid, "question": f"Question {qid}?", "answers": ["Chongqing"] if answerable else [],
            "gold_docs": ["a.txt"] if answerable else [], "answerable": answerable, "answer": answer,
            "abstained": abstained, "mode": "extractive", "citations": [], "note": None,
            "retrieved": [{"doc_id": "a.txt", "chunk_id": "a.txt#0", "score": 0.5}],
            "metrics": metrics, "latency_ms": latency, "topic": "carried"}


def _run(rows):
    return rows, summary_of(rows, questions="hand-made", n_questions=len(rows), answerer="extractive",
                            model="test", index="test", started="2026-01-01T00:00:00", seconds=0.1)


RUN_A = [_row("q1", "Held in Chongqing [1]."), _row("q2", "In Chengdu [1]."), _row("q3", None, answerable=False),
         _row("q4", "In Chongqing [1].")]
RUN_B = [_row("q1", "Held in Chongqing [1]."), _row("q2", "In Chongqing [1]."), _row("q3", "Maybe Chengdu [1].",
         answerable=False), _row("q5", None)]


def test_write_run_outputs_parse_and_embed_charts(tmp_path):
    rows, summary = _run(RUN_A)
    paths = report.write_run(tmp_path / "run", rows, summary)
    assert set(paths) == {"results.jsonl", "summary.json", "report.md", "report.html"}
    lines = [json.loads(line) for line in paths["results.jsonl"].read_text().splitlines()]
    assert [r["id"] for r in lines] == ["q1", "q2", "q3", "q4"] and lines[0]["topic"] == "carried"
    saved = json.loads(paths["summary.json"].read_text())
    assert saved["metrics"]["correctness"] == pytest.approx(2 / 3, abs=1e-4)
    assert saved["counts"]["correctness"] == 3 and saved["metrics"]["pass_rate"] == 0.75

    page = paths["report.html"].read_text()
    images = re.findall(r'<img alt="([\w.]+)" src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)
    assert [name for name, _ in images] == ["metrics.png", "latency.png", "questions.png"]
    assert all(base64.b64decode(data).startswith(b"\x89PNG") for _, data in images)
    assert 'class="fail"' in page and "In Chengdu" in page

    md = paths["report.md"].read_text()
    assert "| correctness | 0.667 | 3 |" in md
    assert "## Failed questions (1 of 4)" in md and "| q2 |" in md
    for name in ("metrics.png", "latency.png", "questions.png"):
        assert f"](charts/{name})" in md
        assert (tmp_path / "run" / "charts" / name).read_bytes().startswith(b"\x89PNG")


def test_compare_runs_gives_deltas_and_flips(tmp_path):
    report.write_run(tmp_path / "a", *_run(RUN_A))
    report.write_run(tmp_path / "b", *_run(RUN_B))
    cmp = report.compare_runs(report.load_run(tmp_path / "a"), report.load_run(tmp_path / "b" / "summary.json"))
    by_name = {m["name"]: m for m in cmp["metrics"]}
    assert by_name["correctness"]["a"] == pytest.approx(2 / 3, abs=1e-4)
    assert by_name["correctness"]["b"] == pytest.approx(2 / 3, abs=1e-4)  # q1, q2 right; q5 abstained
    assert by_name["pass_rate"]["delta"] == pytest.approx(0.5 - 0.75)
    flips = {f["id"]: (f["a"], f["b"]) for f in cmp["flipped"]}
    assert flips == {"q2": (False, True), "q3": (True, False)}
    assert cmp["only_a"] == ["q4"] and cmp["only_b"] == ["q5"]

    console = Console(record=True, width=140)
    report.print_comparison(console, cmp, "A", "B")
    text = console.export_text()
    assert "pass_rate" in text and "-0.250" in text and "2 question(s) flipped" in text and "q3" in text


def test_load_run_errors(tmp_path):
    with pytest.raises(QAError, match="not an evaluation run"):
        report.load_run(tmp_path)


def test_thresholds():
    assert report.parse_thresholds(["hit@5=0.9", "correctness = 0.5"]) == {"hit@5": 0.9, "correctness": 0.5}
    assert report.parse_thresholds(None) == {}
    for bad in ("hit@5", "hit@5=high", "hit@5=nan"):
        with pytest.raises(QAError, match="METRIC=VALUE"):
            report.parse_thresholds([bad])
    with pytest.raises(QAError, match="unknown metric 'accuracy'"):
        report.parse_thresholds(["accuracy=0.5"])

    metrics = {"hit@5": 0.8, "correctness": 0.95, "faithfulness": None}
    assert report.check_thresholds(metrics, {"correctness": 0.9, "hit@5": 0.8}) == []
    missed = report.check_thresholds(metrics, {"hit@5": 0.9, "faithfulness": 0.5, "mrr": 0.1})
    assert missed == ["hit@5 = 0.800 is under the threshold 0.9", "faithfulness was not measured (threshold 0.5)",
                      "mrr was not measured (threshold 0.1)"]


def test_print_summary_table():
    console = Console(record=True, width=100)
    report.print_summary(console, _run(RUN_A)[1])
    text = console.export_text()
    assert "correctness" in text and "0.667" in text and "latency_p95_ms" in text


HOSTILE = [dict(_row("x<1>", "In Chengdu [1]."), question='<script>alert(1)</script> <img src=x onerror="alert(2)"> '
                '[click](javascript:alert(3)) *bold* | pipe'), _row("q2", "Held in Chongqing [1].")]


def test_report_md_keeps_html_and_markdown_from_question_sets_inert(tmp_path):
    md = report.write_run(tmp_path / "run", *_run(HOSTILE))["report.md"].read_text()
    for live in ("<script>", "<img", "](javascript:", "*bold*", "x<1>"):
        assert live not in md, live  # guards against: copied verbatim, live in any Markdown renderer
    assert "&lt;script&gt;" in md and "\\*bold\\*" in md and "\\| pipe" in md
    page = (tmp_path / "run" / "report.html").read_text()
    assert "<script>" not in page and "<img src=x" not in page


def test_reports_put_failures_first_and_end_with_a_glossary(tmp_path):
    rows = [_row("q1", "Held in Chongqing [1]."), _row("q2", "In Chengdu [1]."), _row("q3", "Chongqing [1].")]
    paths = report.write_run(tmp_path / "run", *_run(rows))
    md = paths["report.md"].read_text()
    assert md.index("## Failed questions") < md.index("](charts/")  # before the charts
    assert "## Glossary" in md and "- **mrr**: mean reciprocal rank" in md
    page = paths["report.html"].read_text()
    ids = re.findall(r'<tr class="(?:pass|fail|na)"><td>(\w+)</td>', page)
    assert ids == ["q2", "q1", "q3"]  # the failed question first
    assert "<h2>Glossary</h2>" in page and "<dt>hit@5</dt>" in page


def test_compare_names_changed_settings_and_writes_its_report(tmp_path):
    rows_a, summary_a = _run(RUN_A)
    rows_b, summary_b = _run(RUN_B)
    summary_a["settings"] = {"top_k": 8, "fusion": "relative", "answerer": "extractive"}
    summary_b["settings"] = {"top_k": 5, "fusion": "relative", "answerer": "extractive"}
    report.write_run(tmp_path / "a", rows_a, summary_a)
    report.write_run(tmp_path / "b", rows_b, summary_b)
    cmp = report.compare_runs(report.load_run(tmp_path / "a"), report.load_run(tmp_path / "b"))
    assert cmp["settings"] == [{"name": "top_k", "a": 8, "b": 5}]
    console = Console(record=True, width=140)
    report.print_comparison(console, cmp)
    assert "settings changed: top_k 8 -> 5" in console.export_text()
    paths = report.write_comparison(tmp_path / "cmp", cmp)
    text = paths["comparison.md"].read_text()
    assert "settings changed: top\\_k 8 -\\> 5" in text or "settings changed: top\\_k 8 -&gt; 5" in text
    assert "## Flipped questions (2)" in text and "## Glossary" in text
    assert json.loads(paths["comparison.json"].read_text())["settings"] == cmp["settings"]


def test_comparison_tables_never_read_question_text_as_markup(tmp_path):
    rows_a = [dict(_row("[/x]", "In Chengdu [1]."), question="[/yellow] what [bold]?")]
    rows_b = [dict(_row("[/x]", "Held in Chongqing [1]."), question="[/yellow] what [bold]?")]
    report.write_run(tmp_path / "a", *_run(rows_a))
    report.write_run(tmp_path / "b", *_run(rows_b))
    cmp = report.compare_runs(report.load_run(tmp_path / "a"), report.load_run(tmp_path / "b"))
    console = Console(record=True, width=140)
    report.print_comparison(console, cmp)  # guards against: rich.errors.MarkupError
    assert "[/yellow] what [bold]?" in console.export_text()
