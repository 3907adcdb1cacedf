"""Question-set loading: JSONL and CSV, defaults, extra fields, malformed lines with file:line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from eval.errors import BadQuestionSet
from eval.questions import EvalQuestion, load_questions, write_questions

ROOT = Path(__file__).resolve().parent.parent


def _jsonl(path: Path, *lines: str) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_jsonl_fields_defaults_and_extras(tmp_path):
    path = _jsonl(
        tmp_path / "q.jsonl",
        json.dumps({"id": "a", "question": " Who? ", "answers": ["Bob", "Robert"], "gold_docs": ["x.txt"],
                    "topic": "people", "difficulty": 2}),
        "",
        json.dumps({"question": "Nothing known?", "answerable": False}),
        json.dumps({"id": 7, "question": "One answer", "answers": "Bob"}),
    )
    questions, problems = load_questions(path)
    assert problems == []
    a, b, c = questions
    assert a == EvalQuestion("a", "Who?", ("Bob", "Robert"), ("x.txt",), True)
    assert a.extra == {"topic": "people", "difficulty": 2}
    assert b.id == "line3" and b.answerable is False and b.answers == () and b.gold_docs == ()
    assert c.id == "7" and c.answers == ("Bob",)
    assert a.to_dict()["topic"] == "people"


@pytest.mark.parametrize(
    "line, reason",
    [
        ("{not json", "invalid JSON"),
        ('["a list"]', "expected a JSON object"),
        ('{"id": "x"}', "missing or empty `question`"),
        ('{"id": "x", "question": "  "}', "missing or empty `question`"),
        ('{"id": "x", "question": "q", "answers": [1, {"a": 2}]}', "`answers` must be a list of strings"),
        ('{"id": "x", "question": "q", "answerable": "maybe"}', "`answerable` must be true or false"),
        ('{"id": true, "question": "q"}', "`id` must be a string"),
    ],
)
def test_malformed_line_stops_with_file_and_line(tmp_path, line, reason):
    path = _jsonl(tmp_path / "q.jsonl", '{"id": "ok", "question": "fine?"}', line)
    with pytest.raises(BadQuestionSet) as info:
        load_questions(path)
    message = info.value.user_message
    assert message.startswith(f"{path}:2: ")
    assert reason in message


def test_duplicate_id_is_malformed(tmp_path):
    path = _jsonl(tmp_path / "q.jsonl", '{"id": "a", "question": "one"}', '{"id": "a", "question": "two"}')
    with pytest.raises(BadQuestionSet, match=r"q.jsonl:2: duplicate id 'a' \(first on line 1\)"):
        load_questions(path)


def test_skip_bad_reports_and_keeps_the_rest(tmp_path):
    path = _jsonl(tmp_path / "q.jsonl", '{"id": "a", "question": "one"}', "{oops", '{"id": "b"}',
                  '{"id": "c", "question": "three"}')
    questions, problems = load_questions(path, skip_bad=True)
    assert [q.id for q in questions] == ["a", "c"]
    assert [p.split(": ")[0] for p in problems] == [f"{path}:2", f"{path}:3"]


def test_missing_empty_and_undecodable_files(tmp_path):
    with pytest.raises(BadQuestionSet, match="no such question file"):
        load_questions(tmp_path / "nope.jsonl")
    with pytest.raises(BadQuestionSet, match="no usable questions"):
        load_questions(_jsonl(tmp_path / "empty.jsonl", ""))
    with pytest.raises(BadQuestionSet, match="no usable questions"):
        load_questions(_jsonl(tmp_path / "bad.jsonl", "{x"), skip_bad=True)
    (tmp_path / "latin.jsonl").write_bytes(b'{"question": "caf\xe9"}\n')
    with pytest.raises(BadQuestionSet, match="not UTF-8"):
        load_questions(tmp_path / "latin.jsonl")


def test_csv_lists_booleans_extras_and_line_numbers(tmp_path):
    path = tmp_path / "q.csv"
    path.write_text(
        "id,question,answers,gold_docs,answerable,source\n"
        'a,Who is it?,"[""Bob"", ""Robert""]",x.txt|y.txt,,web\n'
        "b,Unknown?,,,false,web\n"
        '"c","Multi\nline?",Carol,,yes,paper\n'
        "d,Bad?,,,perhaps,web\n",
        encoding="utf-8",
    )
    with pytest.raises(BadQuestionSet, match=r"q.csv:6: `answerable` must be true or false"):
        load_questions(path)
    questions, problems = load_questions(path, skip_bad=True)
    a, b, c = questions
    assert a.answers == ("Bob", "Robert") and a.gold_docs == ("x.txt", "y.txt") and a.answerable
    assert a.extra == {"source": "web"}
    assert b.answerable is False and b.answers == ()
    assert c.question == "Multi\nline?" and c.answers == ("Carol",)
    assert problems == [f"{path}:6: `answerable` must be true or false, not 'perhaps'"]


def test_csv_without_question_column(tmp_path):
    path = tmp_path / "q.csv"
    path.write_text("id,text\n1,hello\n", encoding="utf-8")
    with pytest.raises(BadQuestionSet, match=r"q.csv:1: the header has no `question` column"):
        load_questions(path)


def test_write_then_load_round_trips(tmp_path):
    qs = [EvalQuestion("a", "Q?", ("x",), ("d.txt",), True, {"k": [1, 2]}), EvalQuestion("b", "R?", answerable=False)]
    write_questions(tmp_path / "out.jsonl", qs)
    loaded, _ = load_questions(tmp_path / "out.jsonl")
    assert loaded == qs and loaded[0].extra == {"k": [1, 2]}


def test_shipped_seed_question_set_is_valid():
    questions, problems = load_questions(ROOT / "eval" / "questions.jsonl")
    assert problems == [] and len(questions) >= 40
    seeds = {p.name for p in (ROOT / "seeds").glob("*.txt")}
    assert all(set(q.gold_docs) <= seeds for q in questions)
    assert all(q.answers for q in questions if q.answerable)
    assert any(not q.answerable for q in questions)
