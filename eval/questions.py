"""Question sets: JSONL or CSV files -> `EvalQuestion`s.

Fields: `id`, `question` (required), `answers` (acceptable answers), `gold_docs` (document ids),
`answerable` (default true), `must` (groups of strings: a right answer contains one string of every group,
compared case-insensitively; when present it decides correctness instead of `answers`). Any other field is kept in `extra` and copied into the results.
In CSV, `answers` and `gold_docs` are a JSON list (`["a", "b"]`) or `|`-separated text.
A malformed line raises BadQuestionSet("file:line: reason"), or with skip_bad=True is returned
as one of the problems and skipped.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from eval.errors import BadQuestionSet
from index.files import atomic_write

KNOWN = ("id", "question", "answers", "gold_docs", "answerable", "must")
_TRUE = {"true", "yes", "1", "y", "t"}
_FALSE = {"false", "no", "0", "n", "f"}


@dataclass(frozen=True)
class EvalQuestion:
    """One question of a set, with what counts as a right answer and where it is found."""

    id: str
    question: str
    answers: tuple[str, ...] = ()
    gold_docs: tuple[str, ...] = ()
    answerable: bool = True
    extra: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)
    must: tuple[tuple[str, ...], ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """The question as a JSONL record (extra fields included)."""
        return {
            "id": self.id,
            "question": self.question,
            "answers": list(self.answers),
            "gold_docs": list(self.gold_docs),
            "answerable": self.answerable,
            **({"must": [list(g) for g in self.must]} if self.must else {}),
            **self.extra,
        }


class _Bad(ValueError):
    """A reason why one record is unusable."""


def _strings(value: Any, name: str, csv_cell: bool) -> tuple[str, ...]:
    if value is None or value == "":
        return ()
    if csv_cell and isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            try:
                value = json.loads(text)
            except json.JSONDecodeError as exc:
                raise _Bad(f"`{name}` is not a valid JSON list ({exc.msg})") from None
        else:
            return tuple(p.strip() for p in text.split("|") if p.strip())
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, (str, int, float)) and not isinstance(v, bool)
                                              for v in value):
        raise _Bad(f"`{name}` must be a list of strings")
    return tuple(str(v).strip() for v in value if str(v).strip())


def _groups(value: Any, csv_cell: bool) -> tuple[tuple[str, ...], ...]:
    """`must`: a list of groups, each a list of strings (a bare string is a group of one)."""
    if value is None or value == "" or value == []:
        return ()
    if csv_cell and isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError as exc:
            raise _Bad(f"`must` is not a valid JSON list ({exc.msg})") from None
    if not isinstance(value, list):
        raise _Bad("`must` must be a list of groups of strings")
    groups = []
    for g in value:
        group = _strings(g, "must", False)
        if not group:
            raise _Bad("`must` has an empty group")
        groups.append(group)
    return tuple(groups)


def _bool(value: Any) -> bool:
    if value is None or value == "":
        return True
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
        return value.strip().lower() in _TRUE
    raise _Bad(f"`answerable` must be true or false, not {value!r}")


def parse_record(record: Any, line: int, csv_cell: bool = False) -> EvalQuestion:
    """One record (a parsed JSON object or CSV row) as an EvalQuestion; raises _Bad with the reason."""
    if not isinstance(record, dict):
        raise _Bad(f"expected a JSON object, got {type(record).__name__}")
    question = record.get("question")
    if not isinstance(question, str) or not question.strip():
        raise _Bad("missing or empty `question`")
    qid = record.get("id")
    if qid is None or qid == "":
        qid = f"line{line}"
    elif not isinstance(qid, (str, int)) or isinstance(qid, bool):
        raise _Bad("`id` must be a string")
    extra = {k: v for k, v in record.items() if k not in KNOWN and k is not None}
    return EvalQuestion(
        id=str(qid).strip(),
        question=question.strip(),
        answers=_strings(record.get("answers"), "answers", csv_cell),
        gold_docs=_strings(record.get("gold_docs"), "gold_docs", csv_cell),
        answerable=_bool(record.get("answerable")),
        must=_groups(record.get("must"), csv_cell),
        extra=extra,
    )


def _jsonl_records(path: Path):
    with path.open(encoding="utf-8-sig") as fh:
        for n, text in enumerate(fh, 1):
            if not text.strip():
                continue
            try:
                yield n, json.loads(text), False
            except json.JSONDecodeError as exc:
                yield n, _Bad(f"invalid JSON ({exc.msg} at column {exc.colno})"), False


def _csv_records(path: Path):
    with path.open(encoding="utf-8-sig", newline="") as fh:
        reader = csv.DictReader(fh)
        if not reader.fieldnames or "question" not in reader.fieldnames:
            yield 1, _Bad("the header has no `question` column"), True
            return
        line = reader.line_num + 1
        for row in reader:
            if None in row:  # more cells than header columns
                yield line, _Bad(f"{len(row[None])} cell(s) more than the header has"), True
            elif any(v is None for v in row.values()):
                yield line, _Bad("fewer cells than the header has"), True
            elif any((v or "").strip() for v in row.values()):
                yield line, row, True
            line = reader.line_num + 1


def load_questions(path: Path | str, skip_bad: bool = False) -> tuple[list[EvalQuestion], list[str]]:
    """The questions of a .jsonl or .csv file, and the problems skipped (only when skip_bad)."""
    path = Path(path)
    if not path.is_file():
        raise BadQuestionSet(f"{path}: no such question file")
    records = _csv_records(path) if path.suffix.lower() == ".csv" else _jsonl_records(path)
    questions: list[EvalQuestion] = []
    problems: list[str] = []
    seen: dict[str, int] = {}
    try:
        for line, record, csv_cell in records:
            try:
                if isinstance(record, _Bad):
                    raise record
                q = parse_record(record, line, csv_cell)
                if q.id in seen:
                    raise _Bad(f"duplicate id {q.id!r} (first on line {seen[q.id]})")
            except _Bad as exc:
                problem = f"{path}:{line}: {exc}"
                if not skip_bad:
                    raise BadQuestionSet(problem) from None
                problems.append(problem)
                continue
            seen[q.id] = line
            questions.append(q)
    except UnicodeDecodeError as exc:
        raise BadQuestionSet(f"{path}: not UTF-8 text ({exc.reason})") from None
    except csv.Error as exc:
        raise BadQuestionSet(f"{path}: malformed CSV ({exc})") from None
    if not questions:
        raise BadQuestionSet(f"{path}: no usable questions")
    return questions, problems


def write_questions(path: Path, questions: list[EvalQuestion]) -> None:
    """Save a question set as JSONL (atomically: a question set may hold hours of hand-filled references)."""
    atomic_write(path, "".join(json.dumps(q.to_dict(), ensure_ascii=False) + "\n" for q in questions))
