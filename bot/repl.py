"""`qa chat`: a terminal chat over the articles, a thin adapter around `Pipeline.stream`.

On a terminal it uses prompt_toolkit (line editing, history under the data dir) and rich (answers with
numbered footnotes, streamed as an LLM writes them). When stdin or stdout is not a terminal it reads one
question per line and writes plain answers, so `cat questions.txt | qa chat` works in scripts.

The pipeline is opened in a background thread while the prompt is already shown, and every answer is
computed in a daemon thread: Ctrl-C interrupts the main thread's wait and the abandoned worker's
result is dropped.
"""

from __future__ import annotations

import difflib
import logging
import queue
import sys
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from bot import render
from bot.errors import QAError
from bot.types import Answer, Conversation, Delta
from index.sanitize import safe_text

if TYPE_CHECKING:
    from rich.console import Console

    from bot.config import Settings
    from bot.pipeline import Pipeline

log = logging.getLogger(__name__)

PROMPT = "qa> "
HISTORY_FILE = "chat_history"
PASSAGE_RADIUS = 1  # `/open N` shows the cited chunk and one neighbour each side
EXIT_OK, EXIT_SOME_FAILED, EXIT_INTERRUPTED = 0, 1, 130
_END = object()  # marks the end of a worker's stream of items


class Quit(Exception):
    """Raised by `/quit` to leave the chat loop."""


# --- background work --------------------------------------------------------------------------
def in_background(fn: Callable, *args) -> Future:
    """Run fn(*args) in a daemon thread; the Future gets its result or exception."""
    future: Future = Future()

    def work() -> None:
        try:
            future.set_result(fn(*args))
        except BaseException as exc:  # noqa: BLE001 - handed to whoever waits on the future
            future.set_exception(exc)

    # Daemon: a hung LLM or Chroma call must never keep the process alive after /quit.
    threading.Thread(target=work, name=f"qa-{getattr(fn, '__name__', 'work')}", daemon=True).start()
    return future


class PipelineLoader:
    """Opens the pipeline in the background as soon as the chat starts; a failed open is retried on next use."""

    def __init__(self, open_pipeline: Callable[[], Pipeline]):
        self._open = open_pipeline
        self._lock = threading.Lock()
        self._future: Future | None = None

    def start(self) -> None:
        """Begin opening the pipeline (no-op when already opening or open)."""
        with self._lock:
            if self._future is None:
                self._future = in_background(self._open)

    def get(self) -> Pipeline:
        """The open pipeline, waiting for it if needed (Ctrl-C interrupts the wait)."""
        self.start()
        future = self._future
        try:
            return _interruptibly(future.result, FutureTimeout)
        except BaseException as exc:
            if not isinstance(exc, KeyboardInterrupt):
                with self._lock:  # e.g. the Chroma server was down: try again on the next question
                    if self._future is future:
                        self._future = None
            raise


def open_and_warm(settings: Settings) -> Pipeline:
    """Pipeline.from_settings, then one throwaway retrieval so the first real answer is not slowed by warm-up."""
    from bot.pipeline import Pipeline

    pipeline = Pipeline.from_settings(settings)
    try:
        pipeline.retrieve("warm up")
    except Exception:  # noqa: BLE001 - a real question will report the problem properly
        log.debug("warm-up retrieval failed", exc_info=True)
    return pipeline


def _produce(stream: Callable, question: str, conversation: Conversation, out: queue.Queue,
             cancel: threading.Event) -> None:
    """Worker: put each item of stream(question, conversation) on out, then _END (or the exception)."""
    try:
        items = stream(question, conversation)
        for item in items:
            if cancel.is_set():
                items.close()  # releases an LLM stream's HTTP connection
                return
            out.put(item)
    except BaseException as exc:  # noqa: BLE001 - re-raised in the main thread
        out.put(exc)
    out.put(_END)


def answer_items(pipeline: Pipeline, question: str, conversation: Conversation) -> Iterator[Delta | Answer]:
    """pipeline.stream run in a daemon thread; leaving this iterator early (Ctrl-C) abandons the worker."""
    out: queue.Queue = queue.Queue()
    cancel = threading.Event()
    # A copy: a cancelled worker that is still running must not see later /reset or turns.
    snapshot = Conversation(list(conversation.turns), conversation.max_turns)
    # stream() in both modes: offline it yields the one finished Answer of ask(); with an LLM, deltas first.
    threading.Thread(target=_produce, args=(pipeline.stream, question, snapshot, out, cancel),
                     name="qa-answer", daemon=True).start()
    try:
        while (item := _interruptibly(out.get, queue.Empty)) is not _END:
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        cancel.set()


def _interruptibly(wait: Callable, still_waiting: type[BaseException]):
    """wait(timeout=0.1) until it returns: a Ctrl-C that the kernel hands to another thread (the spinner's,
    an HTTP worker's) only sets a flag the main thread checks when it runs, and a blocked wait would hold
    the cancel until the next item (30 s behind a stalled LLM)."""
    while True:
        try:
            return wait(timeout=0.1)
        except still_waiting:
            continue


# --- output ------------------------------------------------------------------------------------
def make_consoles(interactive: bool) -> tuple[Console, Console]:
    """(out, err) rich consoles: colour on a terminal; plain, unwrapped text otherwise."""
    from rich.console import Console

    if interactive:
        console = Console(highlight=False)
        return console, console
    plain = {"color_system": None, "force_terminal": False, "soft_wrap": True, "highlight": False, "emoji": False}
    return Console(file=sys.stdout, **plain), Console(file=sys.stderr, **plain)


@contextmanager
def live_progress(console: Console, interactive: bool) -> Iterator[Callable[[str], None]]:
    """Yields show(text): a spinner until text arrives, then the text so far (cleared on exit)."""
    if not interactive:
        yield lambda text: None
        return
    from rich.live import Live
    from rich.spinner import Spinner
    from rich.text import Text

    with Live(Spinner("dots", " searching the articles…", style="dim"), console=console, transient=True,
              refresh_per_second=15) as live:
        yield lambda text: live.update(Text(safe_text(text)))


# --- commands ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Command:
    """A slash command: the ChatSession method that runs it, usage and one line of help."""

    method: str
    usage: str
    help: str


COMMANDS: dict[str, Command] = {
    "/sources": Command("cmd_sources", "/sources", "the quoted sentences behind the last answer"),
    "/open": Command("cmd_open", "/open N", "the passage around source N of the last answer"),
    "/reset": Command("cmd_reset", "/reset", "start a new conversation"),
    "/mode": Command("cmd_mode", "/mode", "which answerer, model, index and backend are in use"),
    "/help": Command("cmd_help", "/help", "this list"),
    "/quit": Command("cmd_quit", "/quit", "leave (Ctrl-D works too)"),
}
ALIASES = {"/exit": "/quit", "/q": "/quit", "/?": "/help", "/clear": "/reset"}
# Typed alone, these words mean the command: nobody asks the articles "exit".
BARE_WORDS = {"help": "/help", "exit": "/quit", "quit": "/quit", "clear": "/reset", "bye": "/quit"}


# --- the session ---------------------------------------------------------------------------------
class ChatSession:
    """One chat: a Conversation, the last answer, and how to show things."""

    def __init__(self, loader: PipelineLoader, console: Console, err: Console, interactive: bool):
        self.loader = loader
        self.console = console
        self.err = err
        self.interactive = interactive
        self.conversation = Conversation()
        self.last: Answer | None = None
        self.failures = 0

    # -- one line of input -------------------------------------------------------------------
    def handle(self, line: str) -> None:
        """Run one line: a /command or a question. Raises Quit; reports errors in one line and carries on."""
        line = safe_text(line).strip()
        if not line:
            return
        bare = BARE_WORDS.get(line.lower().rstrip("!?. "))
        try:
            if line.startswith("/") or bare:
                self.run_command(bare or line)
            else:
                self.ask(line)
        except (Quit, KeyboardInterrupt):
            raise
        except QAError as exc:
            self.error(exc.user_message)
        except Exception as exc:  # noqa: BLE001 - the chat must survive any bug; details go to the debug log
            log.debug("chat line failed: %r", line, exc_info=True)
            self.error(f"Something went wrong: {type(exc).__name__}")

    def run_command(self, line: str) -> None:
        """Dispatch a /command through the table, with a hint for unknown ones."""
        name, _, arg = line.partition(" ")
        name = ALIASES.get(name.lower(), name.lower())
        command = COMMANDS.get(name)
        if command is None:
            self.unknown_command(name)
            return
        getattr(self, command.method)(arg.strip())
        if self.interactive:
            self.console.print()  # a blank line sets the output apart from the next prompt

    def ask(self, question: str) -> None:
        """Answer a question in the context of the conversation and show it."""
        with live_progress(self.console, self.interactive) as show:
            pipeline = self.loader.get()
            answer = self._follow(answer_items(pipeline, question, self.conversation), show)
        self.conversation.add(question, answer)
        self.last = answer
        self.show_answer(answer)

    @staticmethod
    def _follow(items: Iterator[Delta | Answer], show: Callable[[str], None]) -> Answer:
        """Show streamed text as it arrives; return the final Answer."""
        streamed = ""
        for item in items:
            if isinstance(item, Answer):
                return item
            streamed += item.text
            show(streamed)
        raise RuntimeError("the pipeline ended without an answer")

    # -- output ------------------------------------------------------------------------------
    def show_answer(self, answer: Answer) -> None:
        """The answer, then its numbered sources (title, date) as footnotes."""
        if not self.interactive:
            self.console.print(render.plain(answer, quotes=False), markup=False)
            self.console.print()
            return
        from rich.markup import escape

        if answer.standalone_question:  # says how a follow-up was understood, so wrong guesses are visible
            self.console.print(f"[dim]↳ {escape(safe_text(answer.standalone_question))}[/]")
        render.print_answer(answer, self.console, quotes=False)
        self.console.print()

    def say(self, markup: str) -> None:
        """One line of command output (rich markup; plain text when not on a terminal)."""
        self.console.print(markup)

    def error(self, message: str) -> None:
        """One error line; the chat goes on."""
        from rich.markup import escape

        self.failures += 1
        self.err.print(f"[red]error:[/] {escape(safe_text(message))}")

    def unknown_command(self, name: str) -> None:
        """A hint for a mistyped command, with the closest real one."""
        close = difflib.get_close_matches(name, [*COMMANDS, *ALIASES], n=1)
        guess = f"Did you mean {ALIASES.get(close[0], close[0])}? " if close else ""
        self.say(f"Unknown command {_esc(name)}. {guess}Type /help for the commands.")

    # -- commands ----------------------------------------------------------------------------
    def _last_with_sources(self) -> Answer | None:
        if self.last is None:
            self.say("Ask a question first.")
            return None
        if not self.last.citations:
            self.say("The last answer has no sources.")
            return None
        return self.last

    def cmd_sources(self, arg: str) -> None:
        """Print each source of the last answer with the sentence quoted from it."""
        answer = self._last_with_sources()
        if answer is None:
            return
        for c in answer.citations:
            date = f" ({c.date})" if c.date else ""
            self.say(f"[cyan][{c.n}][/] [bold]{_esc(c.title)}[/]{_esc(date)} [dim]{_esc(c.doc_id)}[/]")
            self.say(f"    “{_esc(c.quote)}”")

    def cmd_open(self, arg: str) -> None:
        """Print the passage around source N, with the quoted sentence highlighted."""
        answer = self._last_with_sources()
        if answer is None:
            return
        numbers = [c.n for c in answer.citations]
        citation = next((c for c in answer.citations if arg.isdigit() and c.n == int(arg)), None)
        if citation is None:
            self.say(f"Usage: /open N, where N is a source of the last answer ({', '.join(map(str, numbers))}).")
            return
        passage = self.loader.get().passage(citation.chunk_id, radius=PASSAGE_RADIUS)
        date = f" ({citation.date})" if citation.date else ""
        self.say(f"[cyan][{citation.n}][/] [bold]{_esc(citation.title)}[/]{_esc(date)} [dim]{_esc(citation.doc_id)}[/]")
        self.console.print(_highlighted(passage or citation.quote, citation.quote))

    def cmd_reset(self, arg: str) -> None:
        """Forget the conversation: the next question stands alone."""
        self.conversation.reset()
        self.last = None
        self.say("New conversation.")

    def cmd_mode(self, arg: str) -> None:
        """Which answerer, model, index and backend answer the questions."""
        info = self.loader.get().info
        for key in ("answerer", "model", "index", "backend"):
            self.say(f"[bold]{key:<9}[/] {_esc(str(info.get(key, '?')))}")

    def cmd_help(self, arg: str) -> None:
        """List the commands."""
        self.say("Type a question; follow-ups use the conversation so far. Commands:")
        for command in COMMANDS.values():
            self.say(f"  [bold]{command.usage:<9}[/] {command.help}")
        self.say("  [dim]help, exit, quit and clear typed alone work too (clear = /reset).[/]")
        if self.interactive:
            self.say("  [dim]Ctrl-C cancels an answer in progress; Ctrl-D quits.[/]")

    def cmd_quit(self, arg: str) -> None:
        """Leave the chat."""
        raise Quit


def _esc(text: str) -> str:
    """Text made safe to embed in rich markup (and for a terminal: no control sequences)."""
    from rich.markup import escape

    return escape(safe_text(text))


def _highlighted(passage: str, quote: str):
    """The passage as rich Text with the quoted sentence highlighted."""
    from rich.text import Text

    passage, quote = safe_text(passage), safe_text(quote)
    text = Text(passage)
    start = passage.find(quote)
    if start >= 0:
        text.stylize("bold yellow", start, start + len(quote))
    return text


# --- the loops -------------------------------------------------------------------------------------
@contextmanager
def keys_kept_for_prompt() -> Iterator[None]:
    """While an answer runs, keep typed keys for the next prompt instead of echoing them into the output.

    The tty's cbreak mode: no echo and no line discipline (so a Ctrl-D typed early is kept as a key for
    prompt_toolkit, not swallowed as end-of-file), while Ctrl-C still raises KeyboardInterrupt.
    """
    try:
        import termios
        import tty
    except ImportError:  # not POSIX: the terminal keeps its usual behaviour
        yield
        return
    fd = sys.stdin.fileno()
    try:
        saved = termios.tcgetattr(fd)
    except termios.error:
        yield
        return
    tty.setcbreak(fd, termios.TCSANOW)  # TCSANOW: keys already typed must not be flushed
    try:
        yield
    finally:
        termios.tcsetattr(fd, termios.TCSANOW, saved)


def _prompt_session(history_path: Path):
    """A prompt_toolkit session with persistent history and Tab-completion of commands."""
    from prompt_toolkit import PromptSession
    from prompt_toolkit.auto_suggest import AutoSuggestFromHistory
    from prompt_toolkit.completion import WordCompleter
    from prompt_toolkit.history import FileHistory, InMemoryHistory

    # No data dir means no index yet (or a typo): don't create one just to hold the history.
    history = FileHistory(str(history_path)) if history_path.parent.is_dir() else InMemoryHistory()
    return PromptSession(
        history=history,
        auto_suggest=AutoSuggestFromHistory(),
        completer=WordCompleter([*COMMANDS, *ALIASES], sentence=True),
        complete_while_typing=False,  # a pop-up while typing questions would be noise; Tab completes
    )


def interactive_loop(chat: ChatSession, history_path: Path) -> int:
    """The terminal REPL: prompt, answer, repeat until Ctrl-D or /quit."""
    prompt = _prompt_session(history_path)
    chat.say("[bold]qa chat[/] [dim]— ask about the articles. /help for commands, Ctrl-D to quit.[/]")
    chat.loader.start()  # after prompt_toolkit is imported: the two imports would only slow each other
    while True:
        try:
            line = prompt.prompt(PROMPT)
        except KeyboardInterrupt:  # Ctrl-C at the prompt clears the line, like a shell
            continue
        except EOFError:
            return EXIT_OK
        try:
            with keys_kept_for_prompt():
                chat.handle(line)
        except KeyboardInterrupt:
            chat.say("[dim]cancelled[/]")
        except Quit:
            return EXIT_OK


def piped_loop(chat: ChatSession, lines: Iterator[str]) -> int:
    """One question (or command) per line, plain answers; exit code 1 when any line failed."""
    chat.loader.start()
    try:
        for line in lines:
            chat.handle(line)
    except Quit:
        pass
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    return EXIT_SOME_FAILED if chat.failures else EXIT_OK


def _quiet_llm_warnings() -> None:
    """On a terminal the answer's note already says the LLM failed; its warning log line would repeat it."""
    if not logging.getLogger().isEnabledFor(logging.DEBUG):
        logging.getLogger("bot.answer.llm").setLevel(logging.ERROR)


def run_chat(settings: Settings) -> int:
    """Run `qa chat` with these settings; returns the exit code."""
    interactive = sys.stdin.isatty() and sys.stdout.isatty()
    console, err = make_consoles(interactive)
    chat = ChatSession(PipelineLoader(lambda: open_and_warm(settings)), console, err, interactive)
    if not interactive:
        import io

        # Bytes that are not UTF-8 in a piped question are replaced, not a traceback that ends the run.
        stdin = io.TextIOWrapper(sys.stdin.buffer, encoding="utf-8", errors="replace")
        return piped_loop(chat, iter(stdin.readline, ""))
    _quiet_llm_warnings()
    return interactive_loop(chat, Path(settings.data_dir) / HISTORY_FILE)
