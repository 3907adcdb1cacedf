"""Answers on a terminal and piped (bot/render.py): hostile text from articles, LLMs and users stays inert."""

from __future__ import annotations

import io

from rich.console import Console

from bot import render
from bot.types import Answer, Citation

HOSTILE = Answer(
    question="q",
    text="Rates held [1]. \x1b[2J\x1b]0;pwned\x07[/yellow] [bold]not bold\udcff",
    citations=(Citation(1, "x[/yellow].txt", "Title \x1b[31mred", "2024-01-01", "Quote\x07 [link=http://x]y[/link]",
                        "x[/yellow].txt#0"),),
    note="note [/]",
)


def _printed(terminal: bool) -> str:
    buf = io.StringIO()
    console = Console(file=buf, force_terminal=terminal, color_system=None, width=60)
    render.print_answer(HOSTILE, console)  # guards against: rich MarkupError, or raw escape sequences
    return buf.getvalue()


def test_hostile_text_is_printed_as_plain_text_on_a_terminal_and_piped():
    for terminal in (True, False):
        out = _printed(terminal)
        assert "\x1b" not in out and "\x07" not in out and "\udcff" not in out
        assert "[/yellow] [bold]not bold" in out and "x[/yellow].txt" in out and "[link=http://x]y[/link]" in out
        assert "Title red" in out and "note [/]" in out


def test_piped_answers_are_not_wrapped_and_wrapped_quotes_keep_their_indent():
    long = Answer("q", "word " * 40 + "[1]", (Citation(1, "d.txt", "T", None, "quoted " * 30, "d.txt#0"),))
    buf = io.StringIO()
    render.print_answer(long, Console(file=buf, width=60))
    lines = buf.getvalue().splitlines()
    assert len(lines[0]) > 60 and all(line == line.rstrip() for line in lines)
    buf = io.StringIO()
    render.print_answer(long, Console(file=buf, force_terminal=True, color_system=None, width=60))
    quote = [line for line in buf.getvalue().splitlines() if "quoted" in line]
    assert len(quote) > 2 and all(line.startswith(" " * render.QUOTE_INDENT) for line in quote)


def test_the_reader_span_is_bold_on_a_terminal_only():
    a = Answer(question="q", text="She received 49 of the 97 votes, well ahead. [1]", span="49 of the 97 votes")
    buf = io.StringIO()
    render.print_answer(a, Console(file=buf, force_terminal=True, color_system="standard", width=120))
    out = buf.getvalue()
    assert "\x1b[1m49 of the 97 votes" in out and out.count("\x1b[1m") == 1
    piped = io.StringIO()
    render.print_answer(a, Console(file=piped, force_terminal=False, width=120))
    assert "\x1b" not in piped.getvalue() and "49 of the 97 votes" in piped.getvalue()
