"""Answer -> Slack: mrkdwn text and Block Kit blocks within Slack's limits.

Layout of a finished answer message::

    section(s)   the answer in mrkdwn, [n] markers kept, split under 3000 characters each
    context      a note, when the pipeline attached one (e.g. "LLM unavailable; extractive answer")
    context(s)   *Sources* (or *Closest sources* for an abstention): [n] title · date, then the quoted sentence
    actions      👍 / 👎 buttons whose value is the stored answer id

When the answer is streamed (chat.startStream/appendStream), the text is the streamed markdown and only the
blocks after the answer sections (`tail_blocks`) are attached by chat.stopStream.

Blocks are built with `slack_sdk.models.blocks`, whose `to_dict()` checks Slack's limits (3000 characters a
section, 10 elements a context block...), so a bug here fails loudly instead of as `invalid_blocks` from Slack.
Every text that leaves for Slack has its terminal control characters removed (`strip_control`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from slack_sdk.models.blocks import (
    ActionsBlock,
    Block,
    ButtonElement,
    ContextBlock,
    MarkdownTextObject,
    PlainTextObject,
    SectionBlock,
)

from bot.types import Answer

__all__ = [
    "SECTION_LIMIT",
    "CONTEXT_ELEMENTS",
    "MAX_BLOCKS",
    "FEEDBACK_BLOCK_ID",
    "FEEDBACK_ACK_BLOCK_ID",
    "Source",
    "answer_blocks",
    "ANSWER_EVENT",
    "NOTICE_EVENT",
    "QUESTION_EVENT",
    "answer_markdown",
    "clean_question",
    "escape",
    "fallback_text",
    "feedback_ack",
    "feedback_block",
    "notice_blocks",
    "source_blocks",
    "sources",
    "metadata",
    "split_text",
    "strip_control",
    "tail_blocks",
    "to_mrkdwn",
    "with_feedback_ack",
]

SECTION_LIMIT = 3000  # characters of a section's text object
CONTEXT_ELEMENTS = 10  # elements of one context block
CONTEXT_TEXT_LIMIT = 3000  # characters of one context element
MAX_BLOCKS = 50  # blocks of one message
TEXT_LIMIT = 3000  # what we put in the top-level `text` (notifications, search, thread context)
QUOTE_LIMIT = 600  # a quoted sentence longer than this is cut
CLOSEST_SOURCES = 3  # sources listed under an abstention that carries no citations

SECTION_BUDGET = SECTION_LIMIT - 100  # headroom for escaping that lengthens the text
BLOCK_PREFIX = "qa_"  # every block we build has a block_id with this prefix
FEEDBACK_BLOCK_ID = "qa_feedback"
FEEDBACK_ACK_BLOCK_ID = "qa_feedback_ack"
FEEDBACK_UP = "qa_feedback_up"
FEEDBACK_DOWN = "qa_feedback_down"
VERDICT_LABEL = {"up": "👍 helpful", "down": "👎 not helpful"}

# Message metadata event types: how the bot recognises its own messages when it reads a thread back.
ANSWER_EVENT = "qa_answer"  # an answer
QUESTION_EVENT = "qa_question"  # a question the bot posted for /ask
NOTICE_EVENT = "qa_notice"  # errors, slow down and other notices: never part of a conversation


def metadata(event_type: str, payload: dict) -> dict:
    """Message metadata (values must be strings, numbers or booleans: None is left out)."""
    return {"event_type": event_type, "event_payload": {k: v for k, v in payload.items() if v is not None}}


# --- text ----------------------------------------------------------------------------
# ANSI escape sequences (CSI, OSC), then the remaining C0 controls except tab and newline, DEL and C1 controls:
# an article or an LLM may carry them, and they have no business in a chat message.
_CONTROL = re.compile(
    r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?|\x1b[@-_]?|[\x00-\x08\x0b-\x1f\x7f-\x9f]"
)


def strip_control(text: str) -> str:
    """The text without terminal escape sequences and control characters (tab and newline are kept)."""
    return _CONTROL.sub("", text.replace("\r\n", "\n"))


def escape(text: str) -> str:
    """Escape the three characters Slack treats as control characters in mrkdwn (and drop terminal controls)."""
    return strip_control(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


_LINK = re.compile(r"\[([^\]\n]+)\]\((https?://[^)\s]+)\)")
_BOLD = re.compile(r"\*\*(?=\S)(.+?)(?<=\S)\*\*|__(?=\S)(.+?)(?<=\S)__")
_STRIKE = re.compile(r"~~(?=\S)(.+?)(?<=\S)~~")
_HEADING = re.compile(r"^\s{0,3}#{1,6}\s+(.+?)\s*#*\s*$")
_BULLET = re.compile(r"^(\s*)[-*+]\s+")


def _inline(text: str) -> str:
    text = escape(text)
    text = _BOLD.sub(lambda m: f"*{m.group(1) or m.group(2)}*", text)
    return _STRIKE.sub(r"~\1~", text)


def to_mrkdwn(markdown: str) -> str:
    """Markdown (what an LLM writes) -> Slack mrkdwn; `[n]` citation markers stay as they are."""
    lines = []
    for line in strip_control(markdown).splitlines():
        heading = _HEADING.match(line)
        if heading:
            line = f"**{heading.group(1).strip('*')}**"
        line = _BULLET.sub(lambda m: f"{m.group(1)}• ", line)
        out, pos = [], 0
        for m in _LINK.finditer(line):
            out.append(_inline(line[pos : m.start()]))
            out.append(f"<{m.group(2)}|{escape(m.group(1))}>")
            pos = m.end()
        out.append(_inline(line[pos:]))
        lines.append("".join(out))
    return "\n".join(lines)


_USER_MENTION = re.compile(r"<@([UW][A-Z0-9]+)(?:\|[^>]*)?>")
_CHANNEL_MENTION = re.compile(r"<#([CG][A-Z0-9]+)(?:\|([^>]*))?>")
_SPECIAL = re.compile(r"<!(here|channel|everyone)(?:\|[^>]*)?>")
_LINK_IN = re.compile(r"<((?:https?|mailto):[^|>]+)(?:\|([^>]*))?>")


def clean_question(text: str, bot_user_id: str | None = None) -> str:
    """A Slack message (mrkdwn) as the plain question: the bot's mention dropped, links and entities unwrapped."""
    text = text or ""
    if bot_user_id:
        text = re.sub(rf"<@{re.escape(bot_user_id)}(?:\|[^>]*)?>", " ", text)
    text = _USER_MENTION.sub(r"@\1", text)
    text = _CHANNEL_MENTION.sub(lambda m: f"#{m.group(2) or m.group(1)}", text)
    text = _SPECIAL.sub(r"@\1", text)
    text = _LINK_IN.sub(lambda m: m.group(2) or m.group(1).removeprefix("mailto:"), text)
    text = text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
    return re.sub(r"[ \t]+", " ", text).strip(" \t\n,:")


def split_text(text: str, limit: int = SECTION_BUDGET) -> list[str]:
    """Split text into pieces of at most `limit` characters, preferring paragraph, line, sentence, word breaks."""
    pieces: list[str] = []
    rest = text.strip()
    while len(rest) > limit:
        window = rest[:limit]
        cut = -1
        for sep in ("\n\n", "\n", ". ", "? ", "! ", "; ", ", ", " "):
            at = window.rfind(sep)
            if at > limit // 3:
                cut = at + len(sep.rstrip()) if sep.strip() else at
                break
        if cut <= 0:
            cut = limit
        pieces.append(rest[:cut].rstrip())
        rest = rest[cut:].lstrip()
    if rest:
        pieces.append(rest)
    return pieces


def _clip(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


# --- sources -------------------------------------------------------------------------
@dataclass(frozen=True)
class Source:
    """One line of the Sources block."""

    n: int
    title: str
    date: str | None
    quote: str
    doc_id: str


def sources(answer: Answer) -> list[Source]:
    """The answer's citations; for an abstention without citations, the closest retrieved articles."""
    if answer.citations:
        return [Source(c.n, c.title, c.date, c.quote, c.doc_id) for c in answer.citations]
    if not answer.abstained:
        return []
    found: list[Source] = []
    seen: set[str] = set()
    for chunk in answer.retrieved:
        if chunk.doc_id in seen:
            continue
        seen.add(chunk.doc_id)
        first = chunk.sentence_texts()[0] if chunk.text else ""
        found.append(Source(len(found) + 1, chunk.title, chunk.date, first.strip(), chunk.doc_id))
        if len(found) == CLOSEST_SOURCES:
            break
    return found


def _dicts(blocks: list[Block]) -> list[dict]:
    return [b.to_dict() for b in blocks]  # to_dict() validates Slack's limits


def _source_element(s: Source) -> MarkdownTextObject:
    title = escape(_clip(s.title or s.doc_id, 200))
    date = f" · {escape(s.date)}" if s.date else ""
    quote = f"\n>“{escape(_clip(s.quote, QUOTE_LIMIT))}”" if s.quote else ""
    text = f"*[{s.n}]* {title}{date}{quote}"
    return MarkdownTextObject(text=text[:CONTEXT_TEXT_LIMIT])


def source_blocks(answer: Answer) -> list[dict]:
    """Context block(s): a *Sources* heading, then one element per source (at most 10 elements a block)."""
    found = sources(answer)
    if not found:
        return []
    heading = "*Closest sources* (none of them answers the question)" if answer.abstained else "*Sources*"
    elements = [MarkdownTextObject(text=heading)] + [_source_element(s) for s in found]
    return _dicts([
        ContextBlock(block_id=f"qa_sources_{i // CONTEXT_ELEMENTS}", elements=elements[i : i + CONTEXT_ELEMENTS])
        for i in range(0, len(elements), CONTEXT_ELEMENTS)
    ])


# --- feedback ------------------------------------------------------------------------
def feedback_block(answer_id: int | str) -> dict:
    """The 👍 / 👎 buttons; their value is the id of the stored answer."""
    value = str(answer_id)
    return ActionsBlock(block_id=FEEDBACK_BLOCK_ID, elements=[
        ButtonElement(action_id=FEEDBACK_UP, value=value, text=PlainTextObject(text="👍 Helpful", emoji=True)),
        ButtonElement(action_id=FEEDBACK_DOWN, value=value, text=PlainTextObject(text="👎 Not helpful", emoji=True)),
    ]).to_dict()


def feedback_ack(user: str, verdict: str) -> dict:
    """The context line that acknowledges a click."""
    label = VERDICT_LABEL.get(verdict, verdict)
    return ContextBlock(block_id=FEEDBACK_ACK_BLOCK_ID,
                        elements=[MarkdownTextObject(text=f"Thanks <@{user}>, feedback recorded: {label}")]).to_dict()


def with_feedback_ack(blocks: list[dict], user: str, verdict: str) -> list[dict] | None:
    """The message's blocks with the acknowledgement after the buttons, or None when the blocks are not ours.

    None means the message holds content we did not build (e.g. streamed text), so it must not be rewritten.
    """
    if not blocks or any(not str(b.get("block_id", "")).startswith(BLOCK_PREFIX) for b in blocks):
        return None
    kept = [b for b in blocks if b.get("block_id") != FEEDBACK_ACK_BLOCK_ID]
    at = next((i for i, b in enumerate(kept) if b.get("block_id") == FEEDBACK_BLOCK_ID), None)
    if at is None:
        return None
    return kept[: at + 1] + [feedback_ack(user, verdict)] + kept[at + 1 :]


# --- whole messages ------------------------------------------------------------------
def answer_markdown(answer: Answer) -> str:
    """The answer text for chat.*Stream (markdown)."""
    return strip_control(answer.text).strip()


def _note_block(answer: Answer) -> list[dict]:
    if not answer.note:
        return []
    note = MarkdownTextObject(text=f"_note: {escape(_clip(answer.note, 500))}_")
    return _dicts([ContextBlock(block_id="qa_note", elements=[note])])


def tail_blocks(answer: Answer, answer_id: int | str | None = None) -> list[dict]:
    """Everything after the answer text: note, sources, feedback buttons."""
    blocks = _note_block(answer) + source_blocks(answer)
    if answer_id is not None:
        blocks.append(feedback_block(answer_id))
    return blocks


def _span_in_bold(answer: Answer) -> str:
    """The answer text with the reader's span (when it has one) marked bold, once."""
    span = answer.span
    if not span or "*" in span or "_" in span or span not in answer.text:
        return answer.text
    return answer.text.replace(span, f"**{span}**", 1)


def answer_mrkdwn(answer: Answer) -> str:
    """The answer text as Slack mrkdwn, the reader's span in bold."""
    return to_mrkdwn(_span_in_bold(answer))


def answer_blocks(answer: Answer, answer_id: int | str | None = None) -> list[dict]:
    """The whole answer message: text section(s), then `tail_blocks`; never more than 50 blocks."""
    tail = tail_blocks(answer, answer_id)
    pieces = split_text(answer_mrkdwn(answer)) or [" "]
    room = MAX_BLOCKS - len(tail)
    if len(pieces) > room:
        pieces = pieces[: room - 1] + [pieces[room - 1][: SECTION_BUDGET - 40] + "\n_(answer cut: too long for Slack)_"]
    sections = [SectionBlock(block_id=f"qa_answer_{i}", text=MarkdownTextObject(text=p)) for i, p in enumerate(pieces)]
    return _dicts(sections) + tail


def fallback_text(answer: Answer) -> str:
    """The message's top-level text (notifications, thread context): the answer in mrkdwn, clipped."""
    text = to_mrkdwn(answer.text.strip())
    return text if len(text) <= TEXT_LIMIT else text[: TEXT_LIMIT - 1] + "…"


def notice_blocks(text: str) -> list[dict]:
    """A one-section message for notices (errors, slow down); `text` is mrkdwn."""
    text = strip_control(text)[:SECTION_LIMIT]
    return _dicts([SectionBlock(block_id="qa_notice", text=MarkdownTextObject(text=text))])
