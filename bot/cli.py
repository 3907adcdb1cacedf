"""The `qa` command: index, ask, chat, slack, eval, feedback.

Heavy modules are imported inside each command so that `qa ask` starts fast; a QAError raised by any
command becomes one line on stderr and exit code 2 (in _Group.invoke, the one edge that handles it).
"""

from __future__ import annotations

import json
import logging
import os
import sys
from datetime import date
from enum import Enum
from pathlib import Path
from typing import Optional

import typer
from typer.core import TyperGroup

from bot.errors import QAError
from eval import DATASETS  # the CLI is the one module of bot that knows eval

class _Group(TyperGroup):
    """The command group: the one edge where domain errors and a closed output pipe are handled."""

    def invoke(self, ctx):
        """Run the command; a QAError becomes one `error:` line and exit 2, and `qa ask ... | head -1`
        closing the pipe early ends the run quietly with 0 (click would make it a silent exit 1)."""
        try:
            return super().invoke(ctx)
        except BrokenPipeError:
            _quiet_broken_pipe()
        except QAError as exc:
            fail(exc.user_message)


app = typer.Typer(
    cls=_Group,
    add_completion=False,
    no_args_is_help=True,
    help="Question answering over news articles, with citations.",
    context_settings={"help_option_names": ["-h", "--help"]},
)

EXIT_USER_ERROR = 2
EXIT_INTERRUPTED = 130


def fail(message: str) -> None:
    """Print one error line and exit with code 2."""
    from index.sanitize import safe_text

    # One line, whatever the message holds: file names and settings come from users.
    line = " ".join(safe_text(message).split())
    typer.secho(f"error: {line}", err=True, fg=typer.colors.RED)
    raise typer.Exit(EXIT_USER_ERROR)


def _setup_logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    for noisy in ("chromadb", "httpx", "bm25s", "urllib3", "httpcore"):
        logging.getLogger(noisy).setLevel(logging.WARNING if not verbose else logging.INFO)


def _setting_name(loc: str) -> str:
    """The environment variable a user sets for a Settings field (its alias, or QA_ + the name)."""
    from bot.config import Settings

    field = Settings.model_fields.get(loc)
    if field is None:
        return loc  # already an alias, such as CHROMA_PORT
    alias = field.validation_alias
    choices = getattr(alias, "choices", None) or ([alias] if isinstance(alias, str) else [])
    return str(choices[0]) if choices else f"QA_{loc.upper()}"


def settings_error(exc: Exception) -> str:
    """One line naming each wrong setting, its value and what it should be (pydantic's text names fields, not variables)."""
    try:
        errors = exc.errors()  # type: ignore[attr-defined]
    except Exception:  # noqa: BLE001 - not a pydantic error
        return f"invalid settings: {exc}"
    parts = []
    for e in errors:
        msg = str(e.get("msg", "")).removeprefix("Value error, ")
        loc = str(e["loc"][0]) if e.get("loc") else ""
        if loc:
            value = repr(e.get("input"))
            value = value if len(value) <= 40 else value[:37] + "..."
            parts.append(f"{_setting_name(loc)}={value}: {msg}")
        else:
            parts.append(msg)
    return "invalid setting " + "; ".join(parts) if all(e.get("loc") for e in errors) else \
        "invalid settings: " + "; ".join(parts)


def _settings(**overrides):
    from bot.config import load_settings

    try:
        return load_settings(**overrides)
    except Exception as exc:  # pydantic ValidationError: say which setting is wrong, no traceback
        fail(settings_error(exc))


def _version(value: bool) -> None:
    if value:
        from importlib.metadata import PackageNotFoundError, version

        try:
            print(f"qa {version('qa-news-bot')}")
        except PackageNotFoundError:
            print("qa (not installed)")
        raise typer.Exit(0)


@app.callback(epilog="Example: qa index articles/ && qa ask \"Who is the CEO of ADASpace?\"")
def main(
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Debug logging (also accepted after the command)."),
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version and exit."),
) -> None:
    """Question answering over news articles, with citations."""
    _setup_logging(verbose)


# --- qa index ---------------------------------------------------------------------
@app.command(epilog="Examples: qa index articles/ | qa index story.txt | qa index --check | qa index --rebuild")
def index(
    directory: Optional[Path] = typer.Argument(
        None, help="Folder of articles (.txt, .md, .html), or one article file; default seeds/."),
    status: bool = typer.Option(False, "--status", help="Show what is indexed and whether it is sound, and exit."),
    check: bool = typer.Option(False, "--check", help="Check the index for damage and say how to repair it (exit 1 if damaged)."),
    rebuild: bool = typer.Option(False, "--rebuild", help="Delete the index and build it again from the folders it was made from (or DIRECTORY)."),
    replace: bool = typer.Option(False, "--replace", help="Make the index hold exactly DIRECTORY: also remove articles indexed from other folders."),
    follow_symlinks: bool = typer.Option(False, "--follow-symlinks", help="Also read links to files outside the folder."),
    data_dir: Optional[Path] = typer.Option(None, help="Where the index lives (QA_DATA_DIR)."),
    collection: Optional[str] = typer.Option(None, help="Chroma collection name (QA_COLLECTION)."),
) -> None:
    """Index articles into Chroma (incremental: only new or changed files are embedded).

    Indexing another folder adds to the index; only articles whose files left their folder are removed.
    """
    if sum((status, check, rebuild)) > 1:
        fail("use one of --status, --check and --rebuild at a time")
    settings = _settings(data_dir=data_dir, collection=collection)
    try:
        if status:
            _print_status(settings)
        elif check:
            raise typer.Exit(_check_index(settings))
        elif rebuild:
            _rebuild_index(settings, directory, follow_symlinks)
        else:
            folder = _corpus_dir(settings, directory)
            indexer = _indexer(settings)
            old = indexer.embedded_with()
            if old is not None and old != indexer.model:
                # One collection never holds vectors of two embeddings: embed every article again.
                _err_console().print(f"the index was embedded with {old}; the settings ask for {indexer.model}: "
                                     "embedding every article again", markup=False, soft_wrap=True)
                _rebuild_index(settings, folder, follow_symlinks, keep_others=not replace)
            else:
                _run_index(settings, folder, replace, follow_symlinks)
    except KeyboardInterrupt:
        typer.secho("interrupted: the index keeps every article written so far; run the same `qa index` "
                    "again to resume.", err=True)
        raise typer.Exit(EXIT_INTERRUPTED)


def _corpus_dir(settings, directory: Optional[Path]) -> Path:
    """The folder to index: the argument, else the default (seeds/) when it exists here."""
    from index.errors import CorpusMissing

    if directory is not None:
        return directory
    if not Path(settings.corpus_dir).exists():
        raise CorpusMissing(f"No folder given, and the default {settings.corpus_dir}/ is not here: run "
                            "`qa index DIR` with a folder of .txt, .md or .html articles.")
    return Path(settings.corpus_dir)


def _indexer(settings):
    from index.indexer import Indexer

    return Indexer.from_settings(settings)


def _err_console():
    from rich.console import Console

    return Console(stderr=True, highlight=False)


def _run_index(settings, directory: Path, replace: bool = False, follow_symlinks: bool = False) -> None:
    from rich.markup import escape

    from index.loaders import scan
    from index.sanitize import safe_text

    err = _err_console()
    if not logging.getLogger().isEnabledFor(logging.DEBUG):
        # Skipped files are listed once, at the end, as "warning:" lines; the loader's log would repeat each.
        logging.getLogger("index.loaders").setLevel(logging.ERROR)
    scan(directory, follow_symlinks)  # a missing or empty folder fails here, before anything is opened or written
    indexer = _indexer(settings)

    def on_wait(message: str) -> None:
        err.print(f"waiting: {escape(safe_text(message))} (Ctrl-C to stop)", soft_wrap=True)

    def build(on_progress):
        return indexer.build(directory, on_progress, replace=replace, follow_symlinks=follow_symlinks,
                             on_wait=on_wait)

    if err.is_terminal:
        from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn,
                                   TimeRemainingColumn)

        bar = Progress(
            TextColumn("[bold]indexing"), BarColumn(), MofNCompleteColumn(), TextColumn("files"),
            TextColumn("{task.fields[chunks]} chunks, {task.fields[rate]:.0f} chunks/s"), TimeElapsedColumn(),
            TextColumn("eta"), TimeRemainingColumn(), console=err,
        )
        task = bar.add_task("index", total=None, chunks=0, rate=0.0)

        def on_progress(p):
            import time

            rate = p.chunks_done / max(time.perf_counter() - p.started, 1e-6)
            bar.update(task, total=p.docs_total, completed=p.docs_done, chunks=p.chunks_done, rate=rate)

        with bar:
            report = build(on_progress)
    else:
        last = [0]

        def on_progress(p):
            import time

            if p.docs_done == p.docs_total or p.docs_done - last[0] >= 100:
                last[0] = p.docs_done
                elapsed = max(time.perf_counter() - p.started, 1e-6)
                rate = p.chunks_done / elapsed
                left = ""
                if 0 < p.docs_done < p.docs_total:
                    left = f", about {elapsed / p.docs_done * (p.docs_total - p.docs_done):.0f} s left"
                print(f"indexed {p.docs_done}/{p.docs_total} files, {p.chunks_done} chunks, {rate:.0f} chunks/s{left}",
                      file=sys.stderr, flush=True)

        report = build(on_progress)
    for w in report.warnings:  # one line each, however narrow the terminal
        err.print(f"[yellow]warning[/]: {escape(safe_text(w.path))}: {escape(safe_text(w.message))}", soft_wrap=True)
    print(report.summary())


def _rebuild_index(settings, directory: Optional[Path], follow_symlinks: bool, keep_others: bool = False) -> None:
    """Delete the collection and its BM25 side, then index the folders it was made from (or directory).

    keep_others: index the recorded folders and directory too (an embedding change must not drop articles).
    """
    from index.errors import CorpusMissing

    indexer = _indexer(settings)
    status = indexer.status()
    recorded = status.get("corpora") or ([status["corpus"]] if status.get("corpus") else [])
    recorded = [Path(p) for p in recorded if isinstance(p, str)]
    if directory is not None:
        sources = [directory]
        if keep_others:
            sources = [p for p in recorded if p.resolve() != directory.resolve()] + sources
    else:
        sources = recorded or [_corpus_dir(settings, None)]
    for src in sources:
        if not src.exists():
            raise CorpusMissing(f"Cannot rebuild from {src}: it is gone. Run `qa index --rebuild DIR` with the "
                                "folder of articles to rebuild from.")
    err = _err_console()
    # Held from the deletion to the end of the last build (the lock is re-entrant within a process).
    with indexer.lock(lambda m: err.print(f"waiting: {m}", markup=False, soft_wrap=True)):
        done = indexer.drop()
        err.print(f"rebuild: {done}", markup=False, soft_wrap=True)
        for src in sources:
            _run_index(settings, src, follow_symlinks=follow_symlinks)


def _check_index(settings) -> int:
    """Print what is wrong with the index and which command repairs it; 0 when sound, 1 when not."""
    from index.check import REBUILD, check_index
    from index.errors import IndexDamaged

    indexer = _indexer(settings)
    try:
        store = indexer.open_store(verify=False, check_model=False)
        problems = check_index(store, indexer.lexical_dir, thorough=True)
        count = store.count()
    except IndexDamaged as exc:
        print(f"damaged: {exc.user_message}")
        print(f"repair: run `{REBUILD}`")
        return 1
    if not problems:
        print(f"ok: {count} chunks; the vector index, the BM25 side and the sentence vectors agree")
        return 0
    for p in problems:
        print(f"damaged: {p.message}")
    fixes = sorted({p.fix for p in problems}, key=len, reverse=True)
    print(f"repair: run `{fixes[0]}`")  # a rebuild also repairs whatever `qa index` would
    return 1


def _print_status(settings) -> None:
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    from index.check import check_index
    from index.lexical import LexicalIndex

    indexer = _indexer(settings)
    store = indexer.open_store(verify=False, check_model=False)
    meta = LexicalIndex.read_meta(indexer.lexical_dir)
    status = indexer.status()
    problems = check_index(store, indexer.lexical_dir)
    health = "ok" if not problems else "; ".join(p.message for p in problems) + \
        f" (run `{max((p.fix for p in problems), key=len)}`)"
    table = Table(show_header=False, box=None)
    rows = [
        ("backend", settings.backend),
        ("collection", settings.collection),
        ("documents", str(meta.n_docs if meta else "?")),
        ("chunks", f"{store.count()} vectors, {meta.n_chunks if meta else 0} in BM25"),
        ("health", health),
        ("embedding model", store.recorded_model),
        ("last run", status.get("last_run", "never")),
        ("corpus", ", ".join(status.get("corpora") or [status.get("corpus", "?")])),
    ]
    if status.get("report"):
        r = status["report"]
        rows.append(("last result", f"{r['added']} added, {r['updated']} updated, {r['removed']} removed, "
                                    f"{r['unchanged']} unchanged in {r['seconds']:.1f} s"))
    for k, v in rows:
        table.add_row(f"[bold]{k}", escape(str(v)))
    Console().print(table)


# --- qa ask -------------------------------------------------------------------------
def _parse_date(value: Optional[str], name: str) -> Optional[date]:
    if not value:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        fail(f"{name} must be a date like 2023-04-14, not {value!r}")


@app.command(epilog='Examples: qa ask "Who is the CEO of ADASpace?" | echo "Who founded Vivo?" | qa ask - --json')
def ask(
    question: str = typer.Argument(..., help="The question; - reads it from standard input."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
    since: Optional[str] = typer.Option(None, help="Only articles published on or after this date (YYYY-MM-DD)."),
    until: Optional[str] = typer.Option(None, help="Only articles published on or before this date."),
    doc: Optional[str] = typer.Option(None, "--doc", help="Only articles whose id starts with this prefix."),
    data_dir: Optional[Path] = typer.Option(None, help="Where the index lives (QA_DATA_DIR)."),
) -> None:
    """Answer one question with numbered sources."""
    from bot.pipeline import Pipeline
    from bot.types import Filters, Question
    from index.sanitize import fix_surrogates

    if question == "-":
        question = _read_stdin_question()
    # Undecodable bytes in argv arrive as lone surrogates, which no printer or JSON encoder accepts.
    question = fix_surrogates(question)
    filters = Filters(doc and fix_surrogates(doc), _parse_date(since, "--since"), _parse_date(until, "--until"))
    answer = Pipeline.from_settings(_settings(data_dir=data_dir)).ask(Question(question, filters))
    if as_json:
        print(json.dumps(answer.to_dict(), ensure_ascii=False))
    else:
        from bot import render

        render.print_answer(answer, _stdout_console())
    _exit_now(0)


def _stdout_console():
    """A rich console for stdout that treats a closed pipe as the end of the run (rich exits 1 by default)."""
    from rich.console import Console

    console = Console()
    console.on_broken_pipe = _quiet_broken_pipe  # type: ignore[method-assign]
    return console


def _read_stdin_question() -> str:
    """The question piped to `qa ask -` (bytes that are not UTF-8 are replaced, not fatal)."""
    if sys.stdin.isatty():
        print("Type the question, then Ctrl-D:", file=sys.stderr)
    data = sys.stdin.buffer.read()
    return data.decode("utf-8", errors="replace")


def _exit_now(code: int) -> None:
    """Exit without interpreter teardown once all output is flushed.

    Tearing down chromadb, onnxruntime and friends at exit costs ~0.3 s (bench/cold_profile.py) and
    `qa ask` has nothing left to clean up: it only read the index.
    """
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except BrokenPipeError:
        _quiet_broken_pipe()
    os._exit(code)


# --- qa chat ------------------------------------------------------------------------
@app.command(epilog="Examples: qa chat | cat questions.txt | qa chat")
def chat(
    data_dir: Optional[Path] = typer.Option(None, help="Where the index lives (QA_DATA_DIR)."),
) -> None:
    """Chat with the articles: follow-up questions, /sources, /open N (type /help inside)."""
    from bot import repl

    raise typer.Exit(repl.run_chat(_settings(data_dir=data_dir)))


DatasetName = Enum("DatasetName", {name: name for name in DATASETS}, type=str)


# --- qa eval --------------------------------------------------------------------------
@app.command("eval", epilog="Examples: qa eval | qa eval my-questions.jsonl --fail-under hit@5=0.9 | "
                             "qa eval --compare eval/runs/A eval/runs/B --out eval/runs/A-vs-B")
def eval_command(
    questions_file: Optional[Path] = typer.Argument(None, help="Question set (.jsonl or .csv); default eval/questions.jsonl."),
    dataset: Optional[DatasetName] = typer.Option(None, help="Evaluate on real data instead (a RealTime QA year, SQuAD, newsqa-dev)."),
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

    opts = EvalOptions(questions_file, dataset and dataset.value, limit, out, skip_bad, list(fail_under or []), compare, source_dir)
    raise typer.Exit(evaluate(opts, _settings(data_dir=data_dir)))


# --- qa slack -----------------------------------------------------------------------
@app.command(epilog="Examples: SLACK_APP_TOKEN=xapp-... qa slack | qa slack --port 3000")
def slack(
    port: int = typer.Option(3000, "--port", help="HTTP port of the Events API endpoint (/slack/events, /health)."),
    host: str = typer.Option("0.0.0.0", "--host", help="Interface to listen on in HTTP mode."),
    data_dir: Optional[Path] = typer.Option(None, help="Where the index lives (QA_DATA_DIR)."),
) -> None:
    """Run the Slack bot: Socket Mode when SLACK_APP_TOKEN is set, else the HTTP Events API on --port."""
    from bot.slack.app import run_bot

    run_bot(_settings(data_dir=data_dir), host=host, port=port)


# --- qa feedback --------------------------------------------------------------------
feedback_app = typer.Typer(no_args_is_help=True, help="Feedback (👍 / 👎) collected by the Slack bot.",
                           epilog="Example: qa feedback export slack-questions.jsonl --only up")
app.add_typer(feedback_app, name="feedback")


class Only(str, Enum):
    """Which votes `qa feedback export` writes."""

    all = "all"
    up = "up"
    down = "down"


@feedback_app.command("export", epilog="Examples: qa feedback export slack.jsonl | qa feedback export good.jsonl --only up --force")
def feedback_export(
    out: Path = typer.Argument(..., help="The question-set file to write (JSON lines, for `qa eval`)."),
    only: Only = typer.Option(Only.all, "--only", help="all, up (👍 only) or down (👎 only)."),
    force: bool = typer.Option(False, "--force", help="Overwrite OUT if it already exists."),
    data_dir: Optional[Path] = typer.Option(None, help="Where the index and the default feedback DB live."),
) -> None:
    """Write the questions people voted on as a question set for `qa eval`."""
    # The one place that knows both sides: the Slack bot's store, and eval's question-set format.
    from bot.slack.feedback import FeedbackStore
    from eval.feedback import export_feedback

    if out.exists() and not force:
        # A question set may hold hours of hand-filled references: never replace one by surprise.
        fail(f"{out} already exists: add --force to overwrite it, or choose another file")
    settings = _settings(data_dir=data_dir)
    try:
        count = export_feedback(FeedbackStore(settings.feedback_url), out, only=only.value)
    except OSError as exc:
        fail(f"cannot write {out}: {exc.strerror or exc}")
    print(f"wrote {count} question(s) to {out}")


def _global_options_first(argv: list[str]) -> list[str]:
    """argv with -v/--verbose moved before the command, so `qa ask -v "..."` works like `qa -v ask "..."`."""
    end = argv.index("--") if "--" in argv else len(argv)
    flags = [a for a in argv[:end] if a in ("-v", "--verbose")]
    rest = [a for a in argv[:end] if a not in ("-v", "--verbose")]
    return flags + rest + argv[end:]


def _quiet_broken_pipe() -> None:
    """The reader of our output went away (`qa ask ... | head -1`): that is not a failure, and says nothing."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # so the interpreter's final flush cannot fail again
    except OSError:
        pass
    os._exit(0)


def run() -> None:
    """Console-script entry point."""
    app(args=_global_options_first(sys.argv[1:]), prog_name="qa")


if __name__ == "__main__":
    run()
