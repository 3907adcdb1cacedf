"""Slack feedback -> a question set for `qa eval`: the votes become references for people to check.

The feedback store (bot/slack/feedback.py) only records answers and votes; what a question set looks
like is eval's business, so the conversion lives here and the CLI wires the two together.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

from bot.answer.citations import strip_markers
from eval.questions import EvalQuestion, write_questions

if TYPE_CHECKING:
    from bot.slack.feedback import FeedbackStore

ONLY = ("all", "up", "down")


def feedback_questions(store: FeedbackStore, only: str = "all") -> list[EvalQuestion]:
    """The voted questions, oldest first, as a question set.

    A 👍 answer becomes the reference (answers = its text without markers, gold_docs = the articles it
    cited); a 👍 abstention becomes an unanswerable question; a 👎 (or a tie) keeps empty references and
    needs_review = true for a person to fill in. A question asked several times is written once, from
    its latest voted answer. `only`: "all", "up" or "down".
    """
    if only not in ONLY:
        raise ValueError(f"only must be 'all', 'up' or 'down', not {only!r}")
    tally: dict[int, list[int]] = {}
    for vote in store.votes():
        counts = tally.setdefault(vote["answer_id"], [0, 0])
        counts[0 if vote["verdict"] == "up" else 1] += 1
    out: list[EvalQuestion] = []
    seen: set[str] = set()
    for answer_id in sorted(tally, reverse=True):  # latest first: it wins over earlier askings
        row = store.answer(answer_id)
        if row is None:
            continue
        key = re.sub(r"\W+", " ", row["question"].casefold()).strip()
        if key in seen:
            continue
        up, down = tally[answer_id]
        verdict = "up" if up > down else "down"  # a tie needs a person to look at it
        if only != "all" and verdict != only:
            continue
        seen.add(key)
        cited = tuple(dict.fromkeys(c["doc_id"] for c in row["citations"] or []))
        good = verdict == "up"
        reference = good and not row["abstained"]
        out.append(EvalQuestion(
            id=f"slack-{row['id']}",
            question=row["question"],
            answers=(strip_markers(row["answer"]),) if reference else (),
            gold_docs=cited if reference else (),
            answerable=not (good and row["abstained"]),
            extra={
                "verdict": verdict,
                "votes": {"up": up, "down": down},
                "needs_review": not good,
                "bot_answer": row["answer"],
                "bot_cited_docs": list(cited),
                "bot_abstained": bool(row["abstained"]),
                "mode": row["mode"],
                "source": "slack",
                "asked_at": row["created_at"].isoformat() if row["created_at"] else None,
            },
        ))
    out.reverse()  # oldest first, like a hand-written question set
    return out


def export_feedback(store: FeedbackStore, path: Path, only: str = "all") -> int:
    """Write the voted questions as a question set (JSON lines); returns how many were written."""
    questions = feedback_questions(store, only)
    write_questions(Path(path), questions)
    return len(questions)
