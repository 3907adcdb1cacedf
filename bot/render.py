"""Answer -> plain text, rich terminal output (Slack blocks live in bot/slack/).

Every string shown comes from a user, a file or an LLM, so each goes through `safe_text` (no terminal
control sequences, valid Unicode) and is never parsed as rich markup.
"""

from __future__ import annotations

from bot.types import Answer, Citation
from index.sanitize import safe_text

QUOTE_INDENT = 6


def source_line(c: Citation) -> str:
    """`[n] Title (date) - doc_id` for one citation."""
    date = f" ({c.date})" if c.date else ""
    return f"[{c.n}] {safe_text(c.title)}{safe_text(date)} - {safe_text(c.doc_id)}"


def plain(answer: Answer, quotes: bool = True) -> str:
    """The answer as plain text: the text, then numbered sources (with the quoted sentences)."""
    lines = [safe_text(answer.text)]
    if answer.note:
        lines.append(f"(note: {safe_text(answer.note)})")
    if answer.citations:
        lines.append("")
        lines.append("Closest sources:" if answer.abstained else "Sources:")
        for c in answer.citations:
            lines.append(source_line(c))
            if quotes:
                lines.append(f'    "{safe_text(c.quote)}"')
    return "\n".join(lines)


def print_answer(answer: Answer, console=None, quotes: bool = True) -> None:
    """Print an answer with rich: the text, then the sources as footnotes.

    Piped (not a terminal), the plain text is written unwrapped: whatever reads it wraps it, and hard
    line breaks at 80 columns with trailing spaces only get in the way.
    """
    from rich.console import Console
    from rich.padding import Padding
    from rich.text import Text

    console = console or Console()
    if not console.is_terminal:
        console.print(plain(answer, quotes), markup=False, highlight=False, emoji=False, soft_wrap=True)
        return
    body = Text(safe_text(answer.text), style="italic" if answer.abstained else "")
    span = safe_text(answer.span) if answer.span else ""
    at = body.plain.find(span) if span else -1
    if at >= 0:  # the reader's short answer, in bold inside the sentence that says it
        body.stylize("bold", at, at + len(span))
    console.print(body)
    if answer.note:
        console.print(Text(f"note: {safe_text(answer.note)}", style="dim"))
    if answer.citations:
        console.print(Text("Closest sources" if answer.abstained else "Sources", style="bold"))
        for c in answer.citations:
            line = Text.assemble((f"[{c.n}]", "cyan"), " ", safe_text(c.title))
            if c.date:
                line.append(f" ({safe_text(c.date)})", style="dim")
            line.append(f" {safe_text(c.doc_id)}", style="dim")
            # Padding keeps wrapped lines at the indent (a leading run of spaces would not).
            console.print(Padding(line, (0, 0, 0, 2), expand=False))
            if quotes:
                console.print(Padding(Text(f"“{safe_text(c.quote)}”", style="dim"), (0, 0, 0, QUOTE_INDENT), expand=False))
