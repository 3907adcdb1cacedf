"""Real data -> a corpus folder plus a question set, ready for `build_index` and `qa eval`.

Source data (read-only) lives in the shared data dir, by default `../shared/data` next to the
repository; `--source-dir` / QA_SHARED_DATA_DIR override it. What is generated goes under
`<data_dir>/datasets/<collection>/`: `corpus/` (one .txt per document) and `questions.jsonl`.

RealTime QA (`realtimeqa-<year>`, for the years with retrieval files: 2025, 2026)
- Questions: `past/<year>/*_qa.jsonl` in file order; question = `question_sentence`, answers =
  [choices[int(answer[0])]] (the correct choice); date, source and choices are kept as extra fields.
- Documents: every distinct article in `*_gcs.jsonl` (the search results joined on `question_id`),
  written as `<sha1(url)[:16]>.txt`: title line, publish-date line (if any), blank line, text.
- gold_docs: the articles retrieved for that question whose title or text contains the answer
  (normalised, whole words). The search ran after the quiz and is not always about it, so some
  questions have none: they carry `no_gold_doc: true`, and hit@k / MRR skip them (correctness doesn't).

SQuAD v1.1 dev (`squad`)
- Each paragraph is a document `squad/<article-title>_<i>.txt` (title line, blank line, paragraph);
  each question has its distinct answer texts and its paragraph as the gold document.

`limit` (a quick run)
- Questions: RealTime QA takes the first N in file order; SQuAD takes them round-robin over the
  paragraphs (the first question of each paragraph, then the second, ...), so N questions hit N documents.
- Corpus: the documents those questions need (for RealTime QA: all articles retrieved for them, which
  are natural hard negatives) plus `extra_docs(N) = min(max(N, 10), 200)` other documents, the next
  ones in file order (for SQuAD: the following paragraphs, mostly of the same article).
- Each limit gets its own collection (`rtqa2026_n20`, `squad_n50`), so a quick run never makes a
  full index re-embed; without a limit the collection is `rtqa2026` / `squad`.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bot.errors import QAError
from eval import DATASETS
from eval.errors import BadQuestionSet
from eval.metrics import contains
from eval.questions import EvalQuestion, write_questions
from index.files import write_if_changed

SOURCE_ENV = "QA_SHARED_DATA_DIR"
_RTQA = re.compile(r"^realtimeqa-(\d{4})$")


def extra_docs(limit: int) -> int:
    """How many documents beyond the needed ones a limited corpus gets."""
    return min(max(limit, 10), 200)


@dataclass
class Dataset:
    """A generated corpus and question set."""

    name: str
    collection: str
    root: Path
    questions: list[EvalQuestion]
    n_docs: int
    notes: list[str] = field(default_factory=list)

    @property
    def corpus_dir(self) -> Path:
        """The folder to index."""
        return self.root / "corpus"

    @property
    def questions_file(self) -> Path:
        """The generated question set."""
        return self.root / "questions.jsonl"


def prepare(name: str, data_dir: Path, source_dir: Path, limit: int | None = None) -> Dataset:
    """Write the corpus and question set of a named dataset from source_dir (Settings.shared_data_dir), reusing unchanged files."""
    source = Path(source_dir)
    if limit is not None and limit < 1:
        raise QAError("--limit must be at least 1")
    m = _RTQA.match(name)
    if m:
        return realtimeqa(int(m.group(1)), Path(data_dir), source, limit)
    if name == "squad":
        return squad(Path(data_dir), source, limit)
    if name in ("squad-val", "squad-test"):
        return squad(Path(data_dir), source, limit, split=name.split("-")[1])
    if name == "newsqa-dev":
        return newsqa_dev(Path(data_dir), source, limit)
    raise QAError(f"unknown dataset {name!r}: use one of {', '.join(DATASETS)}")


def _collection(base: str, limit: int | None) -> str:
    return f"{base}_n{limit}" if limit else base


def _write_corpus(corpus: Path, docs: dict[str, str]) -> None:
    """Make corpus/ hold exactly these files (doc id -> content), rewriting only what changed."""
    corpus.mkdir(parents=True, exist_ok=True)
    for doc_id, content in docs.items():
        write_if_changed(corpus / doc_id, content.encode("utf-8"))
    for path in corpus.rglob("*.txt"):
        if path.relative_to(corpus).as_posix() not in docs:
            path.unlink()


def _jsonl(path: Path):
    """(line number, object) of a JSONL file; a malformed line raises BadQuestionSet("file:line: reason")."""
    with path.open(encoding="utf-8") as fh:
        for n, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                raise BadQuestionSet(f"{path}:{n}: invalid JSON ({exc.msg} at column {exc.colno})") from None
            if not isinstance(obj, dict):
                raise BadQuestionSet(f"{path}:{n}: expected a JSON object")
            yield n, obj


# --- RealTime QA ------------------------------------------------------------------------
def _doc_id(url: str) -> str:
    return hashlib.sha1(url.encode("utf-8")).hexdigest()[:16] + ".txt"


def _iso(date: str) -> str:
    m = re.match(r"^(\d{4})[/-](\d{1,2})[/-](\d{1,2})", (date or "").strip())
    return f"{m.group(1)}-{int(m.group(2)):02d}-{int(m.group(3)):02d}" if m else (date or "").strip()


def _article(result: dict[str, Any]) -> tuple[str, str] | None:
    """(doc id, file content) of one search result, or None when it has no url or text."""
    url, text = result.get("url"), result.get("text")
    if not isinstance(url, str) or not url or not isinstance(text, str) or not text.strip():
        return None
    title = " ".join(str(result.get("title") or "").split()) or url
    date = _iso(str(result.get("publish_date") or ""))
    head = f"{title}\n{date}\n" if date else f"{title}\n"
    return _doc_id(url), f"{head}\n{text.strip()}\n"


def _rtqa_question(obj: dict[str, Any], path: Path, n: int) -> EvalQuestion:
    try:
        qid, sentence, choices = obj["question_id"], obj["question_sentence"], obj["choices"]
        answer = choices[int(obj["answer"][0])]
    except (KeyError, IndexError, TypeError, ValueError) as exc:
        raise BadQuestionSet(f"{path}:{n}: not a RealTime QA question ({type(exc).__name__}: {exc})") from None
    extra = {k: obj[k] for k in ("question_date", "question_source", "choices") if k in obj}
    return EvalQuestion(id=str(qid), question=str(sentence).strip(), answers=(str(answer).strip(),), extra=extra)


def realtimeqa(year: int, data_dir: Path, source: Path, limit: int | None = None) -> Dataset:
    """RealTime QA questions of one year, with the retrieved news articles as the corpus."""
    folder = source / "realtimeqa" / "past" / str(year)
    qa_files = sorted(folder.glob("*_qa.jsonl"))
    if not qa_files:
        raise QAError(f"no RealTime QA questions in {folder} (set --source-dir or {SOURCE_ENV})")
    if not any(folder.glob("*_gcs.jsonl")):
        raise QAError(f"no retrieval files (*_gcs.jsonl) for RealTime QA {year} in {folder}: use 2025 or 2026")
    questions: list[EvalQuestion] = []
    for path in qa_files:
        for n, obj in _jsonl(path):
            if limit and len(questions) >= limit:
                break
            questions.append(_rtqa_question(obj, path, n))
        if limit and len(questions) >= limit:
            break
    wanted = {q.id for q in questions}
    dates = sorted({q.id.split("_")[0] for q in questions})
    results: dict[str, list[tuple[str, str]]] = {}
    others: dict[str, str] = {}
    budget = extra_docs(limit) if limit else None
    for date in dates if limit else sorted({p.name.split("_")[0] for p in folder.glob("*_gcs.jsonl")}):
        path = folder / f"{date}_gcs.jsonl"
        if not path.is_file():
            continue
        for n, obj in _jsonl(path):
            found = [a for r in obj.get("search_result") or [] if isinstance(r, dict) and (a := _article(r))]
            qid = str(obj.get("question_id"))
            if qid in wanted:
                results[qid] = found
            elif budget is None or len(others) < budget:
                others.update((d, c) for d, c in found[: (budget - len(others)) if budget else None])

    docs: dict[str, str] = {}
    final: list[EvalQuestion] = []
    no_gold = 0
    for q in questions:
        found = results.get(q.id, [])
        docs.update(found)
        gold = tuple(dict.fromkeys(d for d, content in found if contains(content, q.answers)))
        extra = dict(q.extra)
        if not gold:
            extra["no_gold_doc"] = True
            no_gold += 1
        final.append(EvalQuestion(q.id, q.question, q.answers, gold, True, extra))
    for d, c in others.items():
        docs.setdefault(d, c)
    root = data_dir / "datasets" / _collection(f"rtqa{year}", limit)
    _write_corpus(root / "corpus", docs)
    write_questions(root / "questions.jsonl", final)
    notes = [f"{no_gold} of {len(final)} questions have no retrieved article containing the answer "
             "(no_gold_doc: hit@k and MRR skip them)"] if no_gold else []
    return Dataset(f"realtimeqa-{year}", _collection(f"rtqa{year}", limit), root, final, len(docs), notes)


# --- SQuAD ------------------------------------------------------------------------------
def _safe(title: str) -> str:
    return re.sub(r"[^\w().,-]+", "_", title).strip("._") or "untitled"


def squad_splits(titles: list[str]) -> dict[str, str]:
    """SQuAD article title -> "train" / "val" / "test" (34 / 7 / 7 of the 48 dev articles).

    The reader is trained on "train", its settings chosen on "val"; "test" is for reporting only.
    """
    import random

    order = sorted(titles)
    random.Random(1234).shuffle(order)
    cut1, cut2 = round(len(order) * 0.70), round(len(order) * 0.85)
    return {t: ("train" if i < cut1 else "val" if i < cut2 else "test") for i, t in enumerate(order)}


def newsqa_dev(data_dir: Path, source: Path, limit: int | None = None) -> Dataset:
    """newsqa-dev: 60 news articles (15 answer sources, 45 distractors) and 75 questions with `must` groups."""
    from eval.questions import load_questions

    folder = source / "newsqa-dev"
    if not (folder / "questions.jsonl").is_file():
        raise QAError(f"no newsqa-dev set at {folder} (set --source-dir or {SOURCE_ENV})")
    questions, _ = load_questions(folder / "questions.jsonl")
    if limit:
        questions = questions[:limit]
    docs = {}
    for path in sorted((folder / "articles").glob("*.txt")):
        docs[path.name] = path.read_text(encoding="utf-8")
    root = data_dir / "datasets" / "newsqa_dev"
    _write_corpus(root / "corpus", docs)
    write_questions(root / "questions.jsonl", questions)
    return Dataset("newsqa-dev", "newsqa_dev", root, questions, len(docs))


def squad(data_dir: Path, source: Path, limit: int | None = None, split: str | None = None) -> Dataset:
    """SQuAD v1.1 dev: paragraphs as documents, each question's paragraph as its gold document.

    With `split` ("val" or "test"), only the articles of that split of `squad_splits`.
    """
    path = source / "squad-v1.1" / "dev-v1.1.json"
    if not path.is_file():
        raise QAError(f"no SQuAD file at {path} (set --source-dir or {SOURCE_ENV})")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        articles = data["data"]
    except json.JSONDecodeError as exc:
        raise BadQuestionSet(f"{path}:{exc.lineno}: invalid JSON ({exc.msg})") from None
    except (KeyError, TypeError):
        raise BadQuestionSet(f"{path}: not a SQuAD file (no `data` list)") from None

    paragraphs: list[tuple[str, str, list[EvalQuestion]]] = []  # (doc id, content, questions)
    try:
        splits = squad_splits([str(a["title"]) for a in articles]) if split else {}
        for article in articles:
            title = str(article["title"])
            if split and splits[title] != split:
                continue
            for i, para in enumerate(article["paragraphs"]):
                doc_id = f"squad/{_safe(title)}_{i}.txt"
                qs = [
                    EvalQuestion(
                        id=str(qa["id"]),
                        question=str(qa["question"]).strip(),
                        answers=tuple(dict.fromkeys(str(a["text"]).strip() for a in qa["answers"])),
                        gold_docs=(doc_id,),
                        extra={"title": title},
                    )
                    for qa in para["qas"]
                ]
                paragraphs.append((doc_id, f"{title.replace('_', ' ')}\n\n{para['context'].strip()}\n", qs))
    except (KeyError, TypeError) as exc:
        raise BadQuestionSet(f"{path}: not a SQuAD v1.1 file (missing {exc})") from None

    if limit:
        questions: list[EvalQuestion] = []
        used: list[int] = []
        depth = 0
        while len(questions) < limit and any(len(p[2]) > depth for p in paragraphs):
            for i, (_, _, qs) in enumerate(paragraphs):
                if len(qs) > depth and len(questions) < limit:
                    questions.append(qs[depth])
                    used.append(i)
            depth += 1
        needed = set(used)
        rest = [i for i in range(len(paragraphs)) if i not in needed][: extra_docs(limit)]
        keep = sorted(needed | set(rest))
    else:
        questions = [q for p in paragraphs for q in p[2]]
        keep = list(range(len(paragraphs)))
    docs = {paragraphs[i][0]: paragraphs[i][1] for i in keep}
    name = f"squad-{split}" if split else "squad"
    collection = _collection(name.replace("-", "_"), limit)
    root = data_dir / "datasets" / collection
    _write_corpus(root / "corpus", docs)
    write_questions(root / "questions.jsonl", questions)
    return Dataset(name, collection, root, questions, len(docs))
