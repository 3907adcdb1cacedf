"""Dataset loaders on small slices of the real data, and on synthetic malformed files."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from bot.errors import QAError
from eval import datasets
from eval.errors import BadQuestionSet
from tests.conftest import make_settings
from eval.metrics import contains
from eval.questions import load_questions

SOURCE = make_settings(Path(".qa")).shared_data_dir
needs_rtqa = pytest.mark.skipif(not (SOURCE / "realtimeqa" / "past" / "2026").is_dir(), reason="no RealTime QA data")
needs_squad = pytest.mark.skipif(not (SOURCE / "squad-v1.1" / "dev-v1.1.json").is_file(), reason="no SQuAD data")


def test_default_source_dir_and_override(monkeypatch, tmp_path):
    monkeypatch.delenv(datasets.SOURCE_ENV, raising=False)
    assert make_settings(tmp_path).shared_data_dir.parts[-2:] == ("shared", "data")
    monkeypatch.setenv(datasets.SOURCE_ENV, str(tmp_path))
    assert make_settings(tmp_path).shared_data_dir == tmp_path


@needs_rtqa
def test_realtimeqa_2026_slice(tmp_path):
    ds = datasets.prepare("realtimeqa-2026", tmp_path, SOURCE, limit=4)
    assert ds.collection == "rtqa2026_n4" and ds.root == tmp_path / "datasets" / "rtqa2026_n4"
    assert len(ds.questions) == 4
    first_file = sorted((SOURCE / "realtimeqa" / "past" / "2026").glob("*_qa.jsonl"))[0]
    raw = [json.loads(line) for line in first_file.read_text().splitlines()[:4]]
    files = {p.relative_to(ds.corpus_dir).as_posix(): p for p in ds.corpus_dir.rglob("*.txt")}
    assert len(files) == ds.n_docs
    for q, r in zip(ds.questions, raw):
        assert q.id == r["question_id"] and q.question == r["question_sentence"].strip()
        assert q.answers == (r["choices"][int(r["answer"][0])],)
        assert q.extra["choices"] == r["choices"] and q.answerable
        assert set(q.gold_docs) <= set(files)
        assert all(contains(files[d].read_text(), q.answers) for d in q.gold_docs)
        assert q.extra.get("no_gold_doc", False) == (not q.gold_docs)
    # The articles retrieved for the selected questions are all in the corpus, named by a hash of the url.
    gcs = json.loads((first_file.parent / first_file.name.replace("_qa", "_gcs")).read_text().splitlines()[0])
    url = next(r["url"] for r in gcs["search_result"] if r.get("text", "").strip())
    doc = hashlib.sha1(url.encode()).hexdigest()[:16] + ".txt"
    lines = files[doc].read_text().splitlines()
    assert lines[0] and lines[1][:4].isdigit()  # title, then the publish date
    # Bounded corpus: at most ~10 articles per question plus extra_docs(4) others.
    assert ds.n_docs <= 4 * 10 + datasets.extra_docs(4)
    # The generated question set is a valid question file, and a second run reuses it unchanged.
    loaded, _ = load_questions(ds.questions_file)
    assert loaded == ds.questions
    before = {p: p.stat().st_mtime_ns for p in files.values()}
    again = datasets.prepare("realtimeqa-2026", tmp_path, SOURCE, limit=4)
    assert again.questions == ds.questions
    assert {p: p.stat().st_mtime_ns for p in files.values()} == before


@needs_squad
def test_squad_slice(tmp_path):
    ds = datasets.prepare("squad", tmp_path, SOURCE, limit=3)
    assert ds.collection == "squad_n3" and len(ds.questions) == 3
    golds = [q.gold_docs for q in ds.questions]
    assert golds == [("squad/Super_Bowl_50_0.txt",), ("squad/Super_Bowl_50_1.txt",), ("squad/Super_Bowl_50_2.txt",)]
    assert ds.n_docs == 3 + datasets.extra_docs(3)
    for q in ds.questions:
        text = (ds.corpus_dir / q.gold_docs[0]).read_text()
        assert text.startswith("Super Bowl 50\n\n")
        assert all(a in text for a in q.answers)  # SQuAD answers are spans of their paragraph
    assert ds.questions[0].answers == ("Denver Broncos",)


def _fake_rtqa(root, qa_lines, gcs_lines=()):
    folder = root / "realtimeqa" / "past" / "2026"
    folder.mkdir(parents=True)
    (folder / "20260101_qa.jsonl").write_text("\n".join(qa_lines) + "\n")
    (folder / "20260101_gcs.jsonl").write_text("\n".join(gcs_lines) + "\n")
    return folder


def test_realtimeqa_gold_docs_on_synthetic_data(tmp_path):
    q = {"question_id": "20260101_0", "question_sentence": "Which city?", "choices": ["Paris", "Rome"],
         "answer": ["1"], "question_date": "2026-01-01"}
    results = [{"url": "https://a", "title": "Rome news", "text": "It happened in Rome.", "publish_date": "2026/01/01"},
               {"url": "https://b", "title": "Other", "text": "Nothing relevant here.", "publish_date": ""},
               {"url": "https://c", "title": "Empty", "text": "  "}]
    _fake_rtqa(tmp_path / "src", [json.dumps(q)],
               [json.dumps({"question_id": "20260101_0", "search_result": results})])
    ds = datasets.prepare("realtimeqa-2026", tmp_path / "data", tmp_path / "src")
    doc_a = hashlib.sha1(b"https://a").hexdigest()[:16] + ".txt"
    (question,) = ds.questions
    assert question.answers == ("Rome",) and question.gold_docs == (doc_a,)
    assert ds.n_docs == 2  # the empty article is not written
    assert (ds.corpus_dir / doc_a).read_text() == "Rome news\n2026-01-01\n\nIt happened in Rome.\n"


def test_malformed_source_lines_name_file_and_line(tmp_path):
    good = json.dumps({"question_id": "20260101_0", "question_sentence": "Q?", "choices": ["a"], "answer": ["0"]})
    folder = _fake_rtqa(tmp_path / "src", [good, "{broken"])
    with pytest.raises(BadQuestionSet) as info:
        datasets.prepare("realtimeqa-2026", tmp_path / "data", tmp_path / "src")
    assert info.value.user_message.startswith(f"{folder / '20260101_qa.jsonl'}:2: invalid JSON")

    bad_answer = json.dumps({"question_id": "x", "question_sentence": "Q?", "choices": ["a"], "answer": ["5"]})
    folder = _fake_rtqa(tmp_path / "src2", [good, "", bad_answer])
    with pytest.raises(BadQuestionSet, match=r"20260101_qa.jsonl:3: not a RealTime QA question \(IndexError"):
        datasets.prepare("realtimeqa-2026", tmp_path / "data", tmp_path / "src2")

    squad = tmp_path / "src3" / "squad-v1.1"
    squad.mkdir(parents=True)
    (squad / "dev-v1.1.json").write_text('{"data": [\n{"title": "T",\n "paragraphs": [}\n')
    with pytest.raises(BadQuestionSet, match=r"dev-v1.1.json:3: invalid JSON"):
        datasets.prepare("squad", tmp_path / "data", tmp_path / "src3")


def test_unknown_dataset_and_missing_data(tmp_path):
    with pytest.raises(QAError, match="unknown dataset 'trivia'"):
        datasets.prepare("trivia", tmp_path, tmp_path)
    with pytest.raises(QAError, match="no RealTime QA questions"):
        datasets.prepare("realtimeqa-2026", tmp_path, tmp_path)
    with pytest.raises(QAError, match="no SQuAD file"):
        datasets.prepare("squad", tmp_path, tmp_path)
