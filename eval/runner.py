"""Run the pipeline over a question set and collect one result row per question.

Also the `qa eval` flow (`evaluate`): load or generate the questions, build/reuse a dataset's index
in its own collection, run, write the outputs, compare, check thresholds.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bot.errors import QAError
from eval.metrics import question_metrics, summarize
from eval.questions import EvalQuestion
from index.sanitize import safe_text

if TYPE_CHECKING:
    from rich.console import Console

    from bot.config import Settings
    from bot.pipeline import Pipeline
    from bot.types import Answer
    from eval.datasets import Dataset
    from eval.judge import Judge

EXIT_OK, EXIT_THRESHOLD, EXIT_USER_ERROR = 0, 1, 2
_RESERVED = {"id", "question", "answers", "gold_docs", "answerable", "must", "answer", "span", "abstained", "mode", "citations",
             "retrieved", "passages", "metrics", "latency_ms", "note", "error", "standalone_question"}


def result_row(q: EvalQuestion, answer: Answer, judged: dict[str, Any] | None = None,
               error: str | None = None) -> dict[str, Any]:
    """One line of results.jsonl: the question, the answer, what was retrieved and cited, metrics, extras."""
    d = answer.to_dict()
    metrics = question_metrics(
        answers=q.answers,
        gold_docs=q.gold_docs,
        answerable=q.answerable,
        answer_text=answer.text,
        abstained=answer.abstained,
        cited_docs=[c.doc_id for c in answer.citations],
        retrieved_docs=[c.doc_id for c in answer.retrieved],
        retrieved_texts=[c.text for c in answer.retrieved],
        ks=(1, 3, 5),
        must=q.must,
        span=answer.span,
    )
    if judged:
        metrics.update(judged)
    if error:
        metrics["passed"] = False  # a question the pipeline refused is not a pass, even an unanswerable one
    row: dict[str, Any] = {
        "id": q.id,
        "question": q.question,
        "answers": list(q.answers),
        "gold_docs": list(q.gold_docs),
        "answerable": q.answerable,
        **({"must": [list(g) for g in q.must]} if q.must else {}),
        "answer": d["answer"],
        "span": d["span"],
        "abstained": d["abstained"],
        "mode": d["mode"],
        "citations": d["citations"],
        "retrieved": d["retrieved"],
        **({"passages": d["passages"]} if d["passages"] else {}),
        "metrics": metrics,
        "latency_ms": d["latency_ms"],
        "note": d["note"],
    }
    if error:
        row["error"] = error
    clashing = {}
    for k, v in q.extra.items():
        if k in _RESERVED:
            clashing[k] = v
        else:
            row[k] = v
    if clashing:
        row["extra"] = clashing
    return row


def ask_one(pipeline: Pipeline, q: EvalQuestion, judge: Judge | None = None) -> dict[str, Any]:
    """Answer one question and score it; a question the pipeline rejects becomes an error row."""
    from bot.types import Answer

    try:
        answer = pipeline.ask(q.question)
    except QAError as exc:
        return result_row(q, Answer(question=q.question, text="", abstained=False, mode=pipeline.mode),
                          error=exc.user_message)
    judged = None
    if judge is not None and not answer.abstained:
        # Faithfulness is judged against what the answerer read: an LLM's passages, else the chunks.
        judged = judge.judge(q.question, answer.text, [c.text for c in answer.passages or answer.retrieved])
    return result_row(q, answer, judged)


def run_questions(pipeline: Pipeline, questions: Sequence[EvalQuestion], judge: Judge | None = None,
                  console: Console | None = None) -> list[dict[str, Any]]:
    """Every question's result row, with a progress bar on a terminal."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    console = console or Console(stderr=True)
    rows: list[dict[str, Any]] = []
    bar = Progress(TextColumn("[bold]evaluating"), BarColumn(), MofNCompleteColumn(),
                   TextColumn("{task.fields[status]}"), TimeElapsedColumn(),
                   console=console, disable=not console.is_terminal, transient=False)
    with bar:
        task = bar.add_task("eval", total=len(questions), status="")
        passed = 0
        for q in questions:
            row = ask_one(pipeline, q, judge)
            passed += bool(row["metrics"].get("passed"))
            rows.append(row)
            bar.update(task, advance=1, status=f"{passed}/{len(rows)} passed")
    return rows


def summary_of(rows: list[dict[str, Any]], settings: dict[str, Any] | None = None, **run: Any) -> dict[str, Any]:
    """summary.json: run information, the retrieval and answer settings, aggregate metrics and how many
    questions each is over."""
    from eval.metrics import by_kind

    metrics, counts = summarize(rows)
    out = {"run": run, "metrics": metrics, "counts": counts}
    if settings is not None:
        out["settings"] = settings
    kinds = by_kind(rows)
    if kinds:
        out["by_kind"] = kinds
    return out


# The settings that change what a run retrieves and answers: `--compare` names those that differ.
RUN_SETTINGS = ("collection", "chunk_size", "chunk_overlap", "embed_precision", "top_k", "candidates", "fusion", "dense_weight",
                "sentence_weight", "rerank_depth", "rerank_weight", "llm_sources", "passage_chars",
                "abstain_threshold", "offline_answerer", "reader_model", "reader_threshold", "reader_chunks", "llm_model", "llm_temperature", "max_question_chars")


def run_settings(settings: Settings, mode: str) -> dict[str, Any]:
    """The retrieval and answer settings of a run (LLM ones only when an LLM answers)."""
    out = {name: getattr(settings, name) for name in RUN_SETTINGS if hasattr(settings, name)}
    if mode != "llm":
        out.pop("llm_model", None)
        out.pop("llm_temperature", None)
    out["answerer"] = mode
    return {k: (str(v) if not isinstance(v, (int, float, str, bool, type(None))) else v) for k, v in out.items()}


# --- datasets ----------------------------------------------------------------------------
def index_dataset(dataset: Dataset, settings: Settings, console: Console | None = None) -> Settings:
    """Build (or bring up to date) the dataset's own collection; returns settings pointing at it."""
    from index.indexer import Indexer

    s = settings.model_copy(update={"collection": dataset.collection})
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    t0 = time.perf_counter()
    bar = Progress(TextColumn(f"[bold]indexing {dataset.name}"), BarColumn(), MofNCompleteColumn(),
                   TextColumn("documents"), TimeElapsedColumn(), console=console,
                   disable=console is None or not console.is_terminal)
    with bar:
        task = bar.add_task("index", total=None)
        report = Indexer.from_settings(s).build(
            dataset.corpus_dir, lambda p: bar.update(task, total=p.docs_total, completed=p.docs_done), reembed=True)
    if console is not None:
        verb = "reused" if not (report.added or report.updated or report.removed) else "indexed"
        console.print(f"{dataset.name}: {verb} collection '{s.collection}' ({report.documents_total} documents, "
                      f"{report.chunks_total} chunks) in {time.perf_counter() - t0:.1f} s",
                      highlight=False, soft_wrap=True, markup=False)
    return s


# --- the `qa eval` command -------------------------------------------------------------------
@dataclass
class EvalOptions:
    """What `qa eval` was asked to do."""

    questions_file: Path | None = None
    dataset: str | None = None
    limit: int | None = None
    out: Path | None = None
    skip_bad: bool = False
    fail_under: list[str] = field(default_factory=list)
    compare: tuple[Path, Path] | None = None
    source_dir: Path | None = None


def default_questions_file() -> Path:
    """eval/questions.jsonl of this package (the seed question set)."""
    return Path(__file__).resolve().parent / "questions.jsonl"


def evaluate(opts: EvalOptions, settings: Settings) -> int:
    """Run `qa eval`; returns the exit code. User errors raise QAError (the CLI prints them, exit 2)."""
    from rich.console import Console
    from rich.markup import escape

    from eval import report

    out_console, err = Console(), Console(stderr=True)
    thresholds = report.parse_thresholds(opts.fail_under)
    if opts.compare:
        a, b = (report.load_run(p) for p in opts.compare)
        cmp = report.compare_runs(a, b)
        report.print_comparison(out_console, cmp, str(opts.compare[0]), str(opts.compare[1]))
        if opts.out:
            paths = report.write_comparison(opts.out, cmp)
            out_console.print(escape(f"wrote {paths['comparison.md']} (and comparison.json)"), highlight=False,
                              soft_wrap=True)
        return _check(out_console, b["summary"]["metrics"], thresholds)
    if opts.questions_file and opts.dataset:
        raise QAError("give a questions file or --dataset, not both")

    problems: list[str] = []
    source: str
    if opts.dataset:
        from eval.datasets import prepare

        dataset = prepare(opts.dataset, settings.data_dir, opts.source_dir or settings.shared_data_dir, opts.limit)
        for note in dataset.notes:
            err.print(escape(safe_text(f"note: {note}")), highlight=False, soft_wrap=True)
        settings = index_dataset(dataset, settings, err)
        questions, source = dataset.questions, f"{dataset.name} ({dataset.questions_file})"
    else:
        from eval.questions import load_questions

        path = opts.questions_file or default_questions_file()
        questions, problems = load_questions(path, skip_bad=opts.skip_bad)
        for p in problems:
            err.print(f"[yellow]skipped[/] {escape(safe_text(p))}", highlight=False, soft_wrap=True)
        if opts.limit:
            questions = questions[: opts.limit]
        source = str(path)

    from bot.pipeline import Pipeline
    from eval.judge import Judge

    _preload_matplotlib()
    started = datetime.now().astimezone()
    t0 = time.perf_counter()
    pipeline = Pipeline.from_settings(settings)
    judge = Judge.from_settings(settings)
    rows = run_questions(pipeline, questions, judge, err)
    summary = summary_of(
        rows,
        started=started.isoformat(timespec="seconds"),
        seconds=round(time.perf_counter() - t0, 2),
        questions=source,
        n_questions=len(rows),
        skipped=problems,
        collection=settings.collection,
        top_k=settings.top_k,
        judge=judge.model if judge else None,
        settings=run_settings(settings, pipeline.mode),
        **pipeline.info,
    )
    out = opts.out or Path("eval") / "runs" / started.strftime("%Y%m%d-%H%M%S")
    paths = report.write_run(out, rows, summary)
    report.print_summary(out_console, summary)
    out_console.print(escape(f"wrote {paths['report.html']} (and results.jsonl, summary.json, report.md)"),
                      highlight=False, soft_wrap=True)
    return _check(out_console, summary["metrics"], thresholds)


def _preload_matplotlib() -> None:
    """Import matplotlib in the background while questions run (it takes about a second; ONNX releases the GIL)."""
    import threading

    def load() -> None:
        try:
            import matplotlib.backends.backend_agg  # noqa: F401
            import matplotlib.figure  # noqa: F401
        except Exception:  # the report step imports it again and shows any real error
            pass

    threading.Thread(target=load, name="preload-matplotlib", daemon=True).start()


def _check(console: Console, metrics: dict[str, Any], thresholds: dict[str, float]) -> int:
    from eval.report import check_thresholds

    missed = check_thresholds(metrics, thresholds)
    from rich.markup import escape

    for line in missed:
        console.print(f"[red]FAIL[/] {escape(line)}", highlight=False)
    return EXIT_THRESHOLD if missed else EXIT_OK
