"""The `qa` command: index, ask, chat, slack, eval, feedback.

Heavy modules are imported inside each command so that `qa ask` starts fast; a QAError becomes one
line on stderr and exit code 2.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from datetime import date
from pathlib import Path
from typing import Optional

import typer

from bot.errors import QAError

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Question answering over news articles, with citations.")

EXIT_USER_ERROR = 2


def fail(message: str) -> None:
    """Print one error line and exit with code 2."""
    typer.secho(f"error: {message}", err=True, fg=typer.colors.RED)
    raise typer.Exit(EXIT_USER_ERROR)


def _setup_logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    for noisy in ("chromadb", "httpx", "bm25s", "urllib3", "httpcore"):
        logging.getLogger(noisy).setLevel(logging.WARNING if not verbose else logging.INFO)


def _settings(**overrides):
    from bot.config import load_settings

    try:
        return load_settings(**overrides)
    except Exception as exc:  # pydantic ValidationError: say which setting is wrong, no traceback
        fail(f"invalid settings: {exc}".splitlines()[0] + " " + " ".join(str(exc).splitlines()[1:3]))


@app.callback()
def main(verbose: bool = typer.Option(False, "--verbose", "-v", help="Debug logging.")) -> None:
    """Question answering over news articles, with citations."""
    _setup_logging(verbose)


# --- qa index ---------------------------------------------------------------------
@app.command()
def index(
    directory: Optional[Path] = typer.Argument(None, help="Folder of articles (.txt, .md, .html); default seeds/."),
    status: bool = typer.Option(False, "--status", help="Show what is indexed and exit."),
    data_dir: Optional[Path] = typer.Option(None, help="Where the index lives (QA_DATA_DIR)."),
    collection: Optional[str] = typer.Option(None, help="Chroma collection name (QA_COLLECTION)."),
) -> None:
    """Index articles into Chroma (incremental: only new or changed files are embedded)."""
    settings = _settings(data_dir=data_dir, collection=collection)
    try:
        if status:
            _print_status(settings)
        else:
            _run_index(settings, directory or settings.corpus_dir)
    except QAError as exc:
        fail(exc.user_message)


def _open_store(settings, create: bool):
    from index.embedding import MODEL_NAME
    from index.store import ChromaStore

    return ChromaStore.open(
        settings.data_dir, settings.collection, MODEL_NAME, settings.chroma_host, settings.chroma_port, create=create
    )


def _lexical_dir(settings) -> Path:
    from index.build import lexical_folder

    return lexical_folder(settings.data_dir, settings.collection, settings.chroma_host, settings.chroma_port)


def _run_index(settings, directory: Path) -> None:
    from rich.console import Console

    from index.build import build_index
    from index.embedding import MiniLMEncoder
    from index.loaders import iter_files

    err = Console(stderr=True)
    iter_files(directory)  # a missing directory fails here, before anything is opened or written
    store = _open_store(settings, create=True)
    encoder = MiniLMEncoder(settings.model_cache_dir)

    if err.is_terminal:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        bar = Progress(
            TextColumn("[bold]indexing"), BarColumn(), MofNCompleteColumn(), TextColumn("files"),
            TextColumn("{task.fields[chunks]} chunks, {task.fields[rate]:.0f} chunks/s"), TimeElapsedColumn(),
            console=err,
        )
        task = bar.add_task("index", total=None, chunks=0, rate=0.0)

        def on_progress(p):
            import time

            rate = p.chunks_done / max(time.perf_counter() - p.started, 1e-6)
            bar.update(task, total=p.docs_total, completed=p.docs_done, chunks=p.chunks_done, rate=rate)

        with bar:
            report = build_index(
                directory, store, _lexical_dir(settings), encoder, settings.chunk_size, settings.chunk_overlap,
                settings.embed_batch_size, on_progress, settings.backend,
            )
    else:
        last = [0]

        def on_progress(p):
            import time

            if p.docs_done == p.docs_total or p.docs_done - last[0] >= 100:
                last[0] = p.docs_done
                rate = p.chunks_done / max(time.perf_counter() - p.started, 1e-6)
                print(f"indexed {p.docs_done}/{p.docs_total} files, {p.chunks_done} chunks, {rate:.0f} chunks/s",
                      file=sys.stderr, flush=True)

        report = build_index(
            directory, store, _lexical_dir(settings), encoder, settings.chunk_size, settings.chunk_overlap,
            settings.embed_batch_size, on_progress, settings.backend,
        )
    for w in report.warnings:
        err.print(f"[yellow]warning[/]: {w.path}: {w.message}", highlight=False)
    print(report.summary())


def _print_status(settings) -> None:
    from rich.console import Console
    from rich.table import Table

    from index.build import read_status
    from index.lexical import LexicalIndex

    store = _open_store(settings, create=False)
    meta = LexicalIndex.read_meta(_lexical_dir(settings))
    status = read_status(_lexical_dir(settings)) or {}
    table = Table(show_header=False, box=None)
    rows = [
        ("backend", settings.backend),
        ("collection", settings.collection),
        ("documents", str(meta.n_docs if meta else "?")),
        ("chunks", f"{store.count()} vectors, {meta.n_chunks if meta else 0} in BM25"),
        ("embedding model", status.get("embedding_model", store.model_name)),
        ("last run", status.get("last_run", "never")),
        ("corpus", status.get("corpus", "?")),
    ]
    if status.get("report"):
        r = status["report"]
        rows.append(("last result", f"{r['added']} added, {r['updated']} updated, {r['removed']} removed, "
                                    f"{r['unchanged']} unchanged in {r['seconds']:.1f} s"))
    for k, v in rows:
        table.add_row(f"[bold]{k}", v)
    Console().print(table)


# --- qa ask -------------------------------------------------------------------------
def _parse_date(value: Optional[str], name: str) -> Optional[date]:
    if not value:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        fail(f"{name} must be a date like 2023-04-14, not {value!r}")


@app.command()
def ask(
    question: str = typer.Argument(..., help="The question."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
    since: Optional[str] = typer.Option(None, help="Only articles published on or after this date (YYYY-MM-DD)."),
    until: Optional[str] = typer.Option(None, help="Only articles published on or before this date."),
    doc: Optional[str] = typer.Option(None, "--doc", help="Only articles whose id starts with this prefix."),
    data_dir: Optional[Path] = typer.Option(None, help="Where the index lives (QA_DATA_DIR)."),
) -> None:
    """Answer one question with numbered sources."""
    from bot.pipeline import Pipeline
    from bot.types import Filters, Question

    filters = Filters(doc, _parse_date(since, "--since"), _parse_date(until, "--until"))
    settings = _settings(data_dir=data_dir)
    try:
        pipeline = Pipeline.from_settings(settings)
        answer = pipeline.ask(Question(question, filters))
    except QAError as exc:
        fail(exc.user_message)
    if as_json:
        print(json.dumps(answer.to_dict(), ensure_ascii=False))
    else:
        from bot import render

        render.print_answer(answer)
    _exit_now(0)


def _exit_now(code: int) -> None:
    """Exit without interpreter teardown once all output is flushed.

    Tearing down chromadb, onnxruntime and friends at exit costs ~0.3 s (bench/cold_profile.py) and
    `qa ask` has nothing left to clean up: it only read the index.
    """
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


# --- qa chat ------------------------------------------------------------------------
@app.command()
def chat(
    data_dir: Optional[Path] = typer.Option(None, help="Where the index lives (QA_DATA_DIR)."),
) -> None:
    """Chat with the articles: follow-up questions, /sources, /open N (type /help inside)."""
    from bot import repl

    raise typer.Exit(repl.run_chat(_settings(data_dir=data_dir)))


# --- qa eval --------------------------------------------------------------------------
@app.command("eval")
def eval_command(
    questions_file: Optional[Path] = typer.Argument(None, help="Question set (.jsonl or .csv); default eval/questions.jsonl."),
    dataset: Optional[str] = typer.Option(None, help="Evaluate on real data instead: realtimeqa-2026, realtimeqa-2025 or squad."),
    limit: Optional[int] = typer.Option(None, min=1, help="Only the first N questions (a dataset also gets a smaller corpus)."),
    out: Optional[Path] = typer.Option(None, help="Where to write the run (default eval/runs/<timestamp>)."),
    skip_bad: bool = typer.Option(False, "--skip-bad", help="Report and skip malformed lines instead of stopping."),
    fail_under: Optional[list[str]] = typer.Option(None, "--fail-under", metavar="METRIC=VALUE",
                                                   help="Exit 1 when a metric is below VALUE (repeatable)."),
    compare: Optional[tuple[Path, Path]] = typer.Option(None, metavar="RUN_A RUN_B",
                                                        help="Compare two run directories instead of running."),
    data_dir: Optional[Path] = typer.Option(None, help="Where the index lives (QA_DATA_DIR)."),
    source_dir: Optional[Path] = typer.Option(None,
                                              help="Shared data for --dataset (default ../shared/data)."),
) -> None:
    """Evaluate answers on a question set: metrics, reports, comparisons, CI thresholds."""
    from eval.runner import EvalOptions, evaluate

    opts = EvalOptions(questions_file, dataset, limit, out, skip_bad, list(fail_under or []), compare, source_dir)
    try:
        code = evaluate(opts, _settings(data_dir=data_dir))
    except QAError as exc:
        fail(exc.user_message)
    raise typer.Exit(code)


# --- qa slack -----------------------------------------------------------------------
@app.command()
def slack(
    port: int = typer.Option(3000, "--port", help="HTTP port of the Events API endpoint (/slack/events, /health)."),
    host: str = typer.Option("0.0.0.0", "--host", help="Interface to listen on in HTTP mode."),
    data_dir: Optional[Path] = typer.Option(None, help="Where the index lives (QA_DATA_DIR)."),
) -> None:
    """Run the Slack bot: Socket Mode when SLACK_APP_TOKEN is set, else the HTTP Events API on --port."""
    from bot.slack.app import run_bot

    settings = _settings(data_dir=data_dir)
    try:
        run_bot(settings, host=host, port=port)
    except QAError as exc:
        fail(exc.user_message)


# --- qa feedback --------------------------------------------------------------------
feedback_app = typer.Typer(no_args_is_help=True, help="Feedback (👍 / 👎) collected by the Slack bot.")
app.add_typer(feedback_app, name="feedback")


@feedback_app.command("export")
def feedback_export(
    out: Path = typer.Argument(..., help="The question-set file to write (JSON lines, for `qa eval`)."),
    only: str = typer.Option("all", "--only", help="all, up (👍 only) or down (👎 only)."),
    data_dir: Optional[Path] = typer.Option(None, help="Where the index and the default feedback DB live."),
) -> None:
    """Write the questions people voted on as a question set for `qa eval`."""
    from bot.slack.feedback import FeedbackStore

    if only not in ("all", "up", "down"):
        fail(f"--only must be all, up or down, not {only!r}")
    settings = _settings(data_dir=data_dir)
    try:
        count = FeedbackStore(settings.feedback_url).export_questions(out, only=only)
    except QAError as exc:
        fail(exc.user_message)
    except OSError as exc:
        fail(f"cannot write {out}: {exc.strerror or exc}")
    print(f"wrote {count} question(s) to {out}")


def run() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":
    run()
