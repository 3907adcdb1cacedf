"""`qa chat` driven for real: the installed console script in a pseudo-terminal (pexpect), and piped.

Answer wording is tuned elsewhere, so these tests check structure: a `[1]` marker with a Sources list
naming a seed article, or the abstention line.
"""

from __future__ import annotations

import locale
import os
import re
import socket
import subprocess
import sys
import time
from io import StringIO
from pathlib import Path

import pexpect
import pytest

from bot.answer.extractive import ABSTAIN_TEXT
from tests.conftest import SEEDS, default_sigint, make_settings
from tests.fakes.openai_server import FakeOpenAI, Reply, Slow, Status

QA = Path(sys.executable).parent / "qa"
PROMPT = "qa>"  # prompt_toolkit draws the trailing space as a cursor move, so match without it
QUESTION = "Who is the president of Continental Hope Group?"
FOLLOW_UP = "When was its science and technology association established?"
SUBJECT = "Continental Hope Group"
DOC_IDS = sorted(p.name for p in SEEDS.iterdir() if p.is_file())
TITLES = sorted(p.read_text(encoding="utf-8").strip().splitlines()[0].strip() for p in SEEDS.iterdir() if p.is_file())
TOKEN = re.compile(r"\x1b\[([0-9;?]*)[ -/]*([@-~])|\x1b[@-Z\\-_]|\r|\n|[^\x1b\r\n]+")
ANSWERED = ("Sources", ABSTAIN_TEXT)  # what a reply to a question always shows
STARTUP_GOAL_S, STARTUP_LIMIT_S = 1.5, 4.0  # the limit is loose because CI machines are noisy

pytestmark = pytest.mark.timeout(60)


def clean(raw: str) -> str:
    """The text a terminal shows for raw output: just enough VT100 for rich's live display and prompt_toolkit."""
    lines, row, col = [""], 0, 0
    for m in TOKEN.finditer(raw):
        token, arg, op = m.group(0), m.group(1), m.group(2)
        if token == "\r":
            col = 0
        elif token == "\n":
            row, col = row + 1, 0
        elif op:  # a CSI sequence: cursor moves and erasing matter, colours and modes do not
            n = int(arg) if arg.isdigit() else 1
            if op == "A":
                row = max(0, row - n)
            elif op in "CD":
                col = max(0, col + (n if op == "C" else -n))
            elif op == "K":
                lines[row] = "" if arg == "2" else lines[row][:col]
            elif op == "J":
                lines[row] = lines[row][:col]
                del lines[row + 1 :]
        elif not token.startswith("\x1b"):
            line = lines[row].ljust(col)
            lines[row] = line[:col] + token + line[col + len(token) :]
            col += len(token)
        lines.extend("" for _ in range(row + 1 - len(lines)))
    return "\n".join(line.rstrip() for line in lines)


def assert_cited(text: str) -> None:
    """A cited answer: a [1] marker and a Sources list naming a seed article."""
    assert "[1]" in text, text
    assert "Sources" in text, text
    assert any(d in text for d in DOC_IDS) or any(t in text for t in TITLES), text


def assert_answered(text: str) -> None:
    """Either a cited answer or the abstention line."""
    if ABSTAIN_TEXT not in text:
        assert_cited(text)


def chat_env(settings, **extra: str) -> dict[str, str]:
    """The environment of a test REPL: no developer settings, the shared model cache, a wide xterm."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("QA_", "OPENAI_", "CHROMA_"))}
    env.update(
        QA_MODEL_CACHE_DIR=str(settings.model_cache_dir),
        TERM="xterm",
        COLUMNS="200",
        LINES="50",
        # pexpect is not a terminal emulator: it never answers prompt_toolkit's cursor-position request.
        PROMPT_TOOLKIT_NO_CPR="1",
    )
    env.update(extra)
    return env


class Repl:
    """A running `qa chat` in a pseudo-terminal, with helpers that wait for the next prompt."""

    def __init__(self, settings, tmp_path: Path, **env: str):
        self.log = StringIO()
        self.started = time.perf_counter()
        self.child = pexpect.spawn(
            str(QA), ["chat", "--data-dir", str(settings.data_dir)], cwd=str(tmp_path),  # cwd: no stray .env
            env=chat_env(settings, **env), dimensions=(50, 200), encoding="utf-8", timeout=20,
            preexec_fn=default_sigint,
        )
        self.child.logfile_read = self.log

    def wait_prompt(self) -> str:
        """Wait for the prompt; returns the raw output since the last match."""
        self.child.expect_exact(PROMPT)
        return self.child.before

    def send(self, line: str, *markers: str) -> str:
        """Type a line, wait for one of markers (text only the reply has) and the next prompt; return the reply."""
        self.child.sendline(line)
        self.child.expect_exact(list(markers))
        raw = self.child.before + self.child.after + self.wait_prompt()
        # The reply starts on the line after the prompt line (which prompt_toolkit may redraw several times).
        return clean(raw).partition("\n")[2]

    def exit_code(self) -> int:
        """Wait for the process to end and return its exit code."""
        self.child.expect(pexpect.EOF)
        self.child.close()
        assert "Traceback" not in self.log.getvalue(), clean(self.log.getvalue())
        return self.child.exitstatus

    def kill(self) -> None:
        """Stop the process if a test failed half-way."""
        if self.child.isalive():
            self.child.terminate(force=True)


@pytest.fixture
def spawn(tmp_path):
    """Start `qa chat` REPLs; any left running are killed at the end."""
    started: list[Repl] = []

    def start(settings, **env: str) -> Repl:
        repl = Repl(settings, tmp_path, **env)
        started.append(repl)
        return repl

    yield start
    for repl in started:
        repl.kill()


def test_prompt_appears_fast_and_ctrl_d_exits_0(spawn, seed_settings):
    repl = spawn(seed_settings)
    repl.wait_prompt()
    seconds = time.perf_counter() - repl.started
    print(f"\nqa chat: prompt after {seconds:.2f} s (goal <= {STARTUP_GOAL_S} s)")
    assert seconds < STARTUP_LIMIT_S
    repl.child.sendintr()  # Ctrl-C at an empty prompt just gives a fresh prompt
    # A prompt redraw may already be in the buffer from before the interrupt was handled, so prove the
    # REPL reads input again with a command before sending Ctrl-D.
    assert "this list" in repl.send("/help", "this list")
    repl.child.sendeof()
    assert repl.exit_code() == 0


def test_question_follow_up_and_commands(spawn, seed_settings):
    repl = spawn(seed_settings)
    repl.wait_prompt()

    first = repl.send(QUESTION, "Sources")
    assert_cited(first)

    # The follow-up's pronoun is resolved from the conversation (shown as the "↳" line).
    follow = repl.send(FOLLOW_UP, *ANSWERED)
    assert f"↳ When was {SUBJECT}" in follow, follow
    assert_answered(follow)

    sources = repl.send("/sources", "“")
    assert "[1]" in sources and any(d in sources for d in DOC_IDS), sources

    opened = repl.send("/open 1", "[1]")
    assert len(opened.strip()) > 200, opened  # the passage around the quote, not just a title
    assert "Usage: /open N" in repl.send("/open 99", "Usage")

    assert "Unknown command /frobnicate" in repl.send("/frobnicate", "Unknown")
    assert "Did you mean /sources" in repl.send("/sourcs", "Unknown")
    assert "/reset" in repl.send("/help", "/quit")
    mode = repl.send("/mode", "backend")
    assert "reader" in mode and "5 documents" in mode, mode

    assert "New conversation" in repl.send("/reset", "New conversation")
    assert "Ask a question first" in repl.send("/sources", "Ask a question first")
    # Ctrl-D typed while an answer is still coming is kept: the answer is shown, then the chat ends.
    repl.child.sendline(FOLLOW_UP)
    repl.child.sendeof()
    repl.child.expect_exact(list(ANSWERED))
    after_reset = clean(repl.child.before + repl.child.after).partition("\n")[2]
    assert "↳" not in after_reset, after_reset  # nothing left to resolve "its" against
    assert repl.exit_code() == 0
    assert QUESTION in (seed_settings.data_dir / "chat_history").read_text(encoding="utf-8")


def wait_for(predicate, timeout: float) -> bool:
    """Poll predicate until it is true or timeout seconds pass."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


def test_ctrl_c_cancels_an_answer_and_llm_failure_is_one_line(spawn, seed_settings):
    with FakeOpenAI() as srv:
        srv.script(Slow(30, "Too late [1]."), Reply("The president is Chen Bin [1]."), Status(500))
        repl = spawn(seed_settings, OPENAI_BASE_URL=srv.base_url, QA_LLM_MAX_RETRIES="0", QA_LLM_TIMEOUT="40")
        repl.wait_prompt()

        repl.child.sendline(QUESTION)
        assert wait_for(lambda: len(srv.requests) == 1, 15), "the question never reached the LLM"
        t0 = time.perf_counter()
        repl.child.sendintr()
        repl.child.expect_exact("cancelled")
        repl.wait_prompt()
        assert time.perf_counter() - t0 < 3

        # Streamed LLM answer; exactly one more request: the cancelled turn is not in the conversation,
        # so there is no follow-up rewrite call.
        answer = repl.send(QUESTION, "Sources")
        assert "Chen Bin [1]" in answer and "note:" not in answer, answer
        assert_cited(answer)
        assert len(srv.requests) == 2
        assert srv.requests[1]["stream"] is True

        repl.send("/reset", "New conversation")
        failed = repl.send(QUESTION, *ANSWERED)
        note = [line for line in failed.splitlines() if "LLM unavailable" in line]
        assert len(note) == 1 and "HTTP 500" in note[0], failed
        assert_answered(failed)  # the offline answer is shown instead
        assert "Traceback" not in failed and "WARNING" not in failed, failed

        repl.child.sendeof()
        assert repl.exit_code() == 0


def free_port() -> int:
    """A local TCP port nobody listens on."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_unreachable_chroma_server_prints_one_line_and_keeps_going(spawn, seed_settings):
    repl = spawn(seed_settings, CHROMA_HOST="127.0.0.1", CHROMA_PORT=str(free_port()))
    repl.wait_prompt()
    for line in (QUESTION, "/mode"):
        out = repl.send(line, "error:")
        lines = [ln for ln in out.splitlines() if ln.strip()]
        assert len(lines) == 1 and "Chroma" in lines[0], out
    repl.child.sendline("/quit")
    assert repl.exit_code() == 0


def _piped_env(settings, **extra_env: str) -> dict[str, str]:
    env = chat_env(settings, **extra_env)
    env.pop("COLUMNS")  # piped output must not depend on a terminal width
    return env


def start_piped(settings, cwd: Path, data: bytes, **extra_env: str) -> subprocess.Popen:
    """Start `qa chat` with data on stdin (not a terminal); finish_piped collects what it printed."""
    proc = subprocess.Popen([str(QA), "chat", "--data-dir", str(settings.data_dir)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=_piped_env(settings, **extra_env),
                            cwd=cwd)
    proc.stdin.write(data)  # small: fits the pipe's buffer
    proc.stdin.close()
    proc.stdin = None  # written and closed: communicate() has only the output to read
    return proc


def finish_piped(proc: subprocess.Popen, text: bool = True) -> subprocess.CompletedProcess:
    try:
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    if text:  # as subprocess.run(text=True) would: the locale's encoding, universal newlines
        encoding = locale.getpreferredencoding(False)
        out, err = (b.decode(encoding).replace("\r\n", "\n").replace("\r", "\n") for b in (out, err))
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


@pytest.fixture(scope="module")
def piped_runs(seed_settings, tmp_path_factory) -> dict:
    """Every piped `qa chat` run of this module, started at once (independent processes: this only saves
    wall time); each test collects its own. PYTHONPROFILEIMPORTTIME (= -X importtime) logs every import."""
    runs = {}
    lines = [QUESTION, "/sources", "/nope", "", "In which city was the 2023 Annual Meeting held?"]
    runs["piped"] = start_piped(seed_settings, tmp_path_factory.mktemp("piped"),
                                ("\n".join(lines) + "\n").encode(), PYTHONPROFILEIMPORTTIME="1")
    missing_root = tmp_path_factory.mktemp("errors")
    missing = make_settings(missing_root / "no-index", model_cache_dir=seed_settings.model_cache_dir)
    runs["errors"] = start_piped(missing, missing_root, f"{QUESTION}\n{FOLLOW_UP}\n".encode())
    runs["errors_root"] = missing_root
    lines = ["help", QUESTION, "clear", "Exit", "Who is the CEO of ADASpace?"]
    runs["commands"] = start_piped(seed_settings, tmp_path_factory.mktemp("commands"), ("\n".join(lines) + "\n").encode())
    data = b"Who is the CEO of \xff\xfe ADASpace? \x1b[2J\x1b]0;pwned\x07\n[/yellow] who founded Vivo?\n"
    runs["bytes"] = start_piped(seed_settings, tmp_path_factory.mktemp("bytes"), data)
    yield runs
    for proc in runs.values():
        if isinstance(proc, subprocess.Popen) and proc.poll() is None:
            proc.kill()
            proc.wait()


@pytest.fixture(scope="module")
def piped(piped_runs) -> subprocess.CompletedProcess:
    """One piped run shared by two tests."""
    return finish_piped(piped_runs["piped"])


def test_piped_questions_get_plain_answers(piped):
    assert piped.returncode == 0, piped.stderr[-2000:]
    out = piped.stdout
    assert "\x1b" not in out and "\x1b" not in piped.stderr
    assert PROMPT not in out
    assert not out.startswith("qa chat"), out  # no banner: the first line is the first answer
    first, hint, second = out.partition("Unknown command /nope")
    assert hint, out
    assert_cited(first)
    assert "“" in first  # /sources
    assert_answered(second)


def test_no_torch_on_the_way_to_an_answer(piped):
    imported = re.findall(r"^import time:.*\|\s*(\S+)\s*$", piped.stderr, re.M)
    assert "chromadb" in imported and "prompt_toolkit" not in imported  # the index was opened; no prompt UI
    heavy = sorted({m for m in imported if m.split(".")[0] in {"torch", "transformers"}})
    assert heavy == []


def test_piped_errors_are_one_line_each_on_stderr_and_exit_1(piped_runs):
    result = finish_piped(piped_runs["errors"])
    assert result.returncode == 1
    assert result.stdout == ""
    errors = result.stderr.splitlines()
    assert len(errors) == 2 and all(e.startswith("error: ") and "index" in e for e in errors), result.stderr
    assert not (piped_runs["errors_root"] / "no-index").exists()  # asking does not create a data dir


def test_bare_help_clear_and_exit_are_commands_not_questions(piped_runs):
    result = finish_piped(piped_runs["commands"])
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert out.startswith("Type a question") and "/sources" in out  # help, not an answer about "help"
    assert "New conversation." in out  # clear
    assert out.count("Sources:") == 1 and "Wang Lei" not in out  # exit stopped before the last question


def test_piped_bytes_and_escape_sequences_are_no_traceback(piped_runs):
    result = finish_piped(piped_runs["bytes"], text=False)
    out, err = result.stdout.decode("utf-8", "replace"), result.stderr.decode("utf-8", "replace")
    assert result.returncode == 0 and "Traceback" not in err, err
    assert out.count("Sources:") + out.count("Closest sources:") == 2 and "\x1b" not in out
