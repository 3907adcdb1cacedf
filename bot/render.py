"""Answer -> plain text, rich terminal output (Slack blocks live in bot/slack/)."""

from __future__ import annotations

from bot.types import Answer, Citation


def source_line(c: Citation) -> str:
    """`[n] Title (date) - doc_id` for one citation."""
    date = f" ({c.date})" if c.date else ""
    return f"[{c.n}] {c.title}{date} - {c.doc_id}"


def plain(answer: Answer, quotes: bool = True) -> str:
    """The answer as plain text: the text, then numbered sources (with the quoted sentences)."""
    lines = [answer.text]
    if answer.note:
        lines.append(f"(note: {answer.note})")
    if answer.citations:
        lines.append("")
        lines.append("Closest sources:" if answer.abstained else "Sources:")
        for c in answer.citations:
            lines.append(source_line(c))
            if quotes:
                lines.append(f'    "{c.quote}"')
    return "\n".join(lines)


def print_answer(answer: Answer, console=None, quotes: bool = True) -> None:
    """Print an answer with rich: the text, then the sources as footnotes."""
    from rich.console import Console
    from rich.markup import escape

    console = console or Console()
    style = "italic" if answer.abstained else ""
    console.print(escape(answer.text), style=style)
    if answer.note:
        console.print(f"[dim]note: {escape(answer.note)}[/]")
    if answer.citations:
        console.print("[bold]Closest sources[/]" if answer.abstained else "[bold]Sources[/]")
        for c in answer.citations:
            date = f" [dim]({c.date})[/]" if c.date else ""
            console.print(f"  [cyan][{c.n}][/] {escape(c.title)}{date} [dim]{escape(c.doc_id)}[/]", highlight=False)
            if quotes:
                console.print(f"      [dim]“{escape(c.quote)}”[/]", highlight=False)
