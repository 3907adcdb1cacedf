"""The feedback store: every answer the Slack bot posts, and the 👍 / 👎 votes on it.

SQLAlchemy Core, so any SQLAlchemy URL works: SQLite under the data dir by default, PostgreSQL with
`QA_FEEDBACK_DB_URL=postgresql+psycopg://...` (install the driver). Tables are created on first use.

The question-set export of the votes lives in eval/feedback.py (eval's format, eval's module).
"""

from __future__ import annotations

import logging
from datetime import datetime, timezone
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from bot.errors import QAError, StoreUnavailable
from bot.types import Answer

__all__ = ["FeedbackStore", "UnknownAnswer", "VERDICTS"]

log = logging.getLogger(__name__)

VERDICTS = ("up", "down")

metadata = sa.MetaData()

answers = sa.Table(
    "qa_answers",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("question", sa.Text, nullable=False),
    sa.Column("standalone_question", sa.Text),
    sa.Column("answer", sa.Text, nullable=False),
    sa.Column("citations", sa.JSON, nullable=False),
    sa.Column("abstained", sa.Boolean, nullable=False, default=False),
    sa.Column("mode", sa.String(32)),
    sa.Column("latency_ms", sa.Float),
    sa.Column("user_id", sa.String(64)),
    sa.Column("team_id", sa.String(64)),
    sa.Column("channel", sa.String(64)),
    sa.Column("thread_ts", sa.String(32)),
    sa.Column("message_ts", sa.String(32)),
)

votes = sa.Table(
    "qa_feedback",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("answer_id", sa.Integer, sa.ForeignKey("qa_answers.id", ondelete="CASCADE"), nullable=False),
    sa.Column("user_id", sa.String(64), nullable=False),
    sa.Column("verdict", sa.String(8), nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    sa.UniqueConstraint("answer_id", "user_id", name="uq_qa_feedback_answer_user"),
)


class UnknownAnswer(QAError):
    """A vote names an answer id the store does not have."""


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _safe_url(url: str) -> str:
    """The URL without its password, for messages and logs."""
    try:
        return sa.engine.make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - a malformed URL: show only its scheme
        return url.split(":", 1)[0] + ":…"


def _create_tables(engine: sa.Engine) -> None:
    """Create the tables unless they exist, race-free when several processes start on a fresh database.

    metadata.create_all checks, then creates: a process between another's check and create fails with
    "table already exists". CREATE TABLE IF NOT EXISTS leaves that decision to the database.
    """
    with engine.begin() as conn:
        for table in metadata.sorted_tables:
            conn.execute(sa.schema.CreateTable(table, if_not_exists=True))


class FeedbackStore:
    """Answers and votes in any SQLAlchemy database."""

    def __init__(self, url: str):
        self.url = url
        try:
            parsed = sa.engine.make_url(url)
            kwargs: dict = {"pool_pre_ping": True}
            if parsed.get_backend_name() == "sqlite":
                if parsed.database and parsed.database != ":memory:":
                    Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
                kwargs["connect_args"] = {"timeout": 30}  # concurrent answers wait for the write lock
            self.engine = sa.create_engine(url, **kwargs)
            _create_tables(self.engine)
        except Exception as exc:  # noqa: BLE001 - bad URL, missing driver, unreachable server
            raise StoreUnavailable(
                f"The feedback database {_safe_url(url)} cannot be opened ({type(exc).__name__})."
            ) from exc

    def close(self) -> None:
        """Release pooled connections."""
        self.engine.dispose()

    # --- writes --------------------------------------------------------------------
    def record_answer(
        self,
        answer: Answer,
        *,
        user: str | None = None,
        channel: str | None = None,
        thread_ts: str | None = None,
        team: str | None = None,
        message_ts: str | None = None,
    ) -> int:
        """Store one posted answer; returns its id (the value of its feedback buttons)."""
        row = {
            "created_at": _now(),
            "question": answer.question,
            "standalone_question": answer.standalone_question,
            "answer": answer.text,
            "citations": [
                {"n": c.n, "doc_id": c.doc_id, "title": c.title, "date": c.date, "quote": c.quote, "chunk_id": c.chunk_id}
                for c in answer.citations
            ],
            "abstained": answer.abstained,
            "mode": answer.mode,
            "latency_ms": round(answer.latency_ms, 1),
            "user_id": user,
            "team_id": team,
            "channel": channel,
            "thread_ts": thread_ts,
            "message_ts": message_ts,
        }
        with self.engine.begin() as conn:
            return int(conn.execute(answers.insert().values(**row)).inserted_primary_key[0])

    def set_message_ts(self, answer_id: int, message_ts: str) -> None:
        """Remember which Slack message shows the answer."""
        with self.engine.begin() as conn:
            conn.execute(answers.update().where(answers.c.id == answer_id).values(message_ts=message_ts))

    def record_vote(self, answer_id: int, verdict: str, *, user: str) -> dict:
        """Store a user's 👍 ("up") or 👎 ("down") on an answer; a later click by the same user replaces it.

        Returns the vote joined with its answer (question, answer, citations, user, channel, thread, latency, verdict).
        """
        if verdict not in VERDICTS:
            raise ValueError(f"verdict must be one of {VERDICTS}, not {verdict!r}")
        for attempt in range(2):
            try:
                with self.engine.begin() as conn:
                    if conn.execute(sa.select(answers.c.id).where(answers.c.id == answer_id)).first() is None:
                        raise UnknownAnswer("That answer is no longer in the feedback store.")
                    now = _now()
                    updated = conn.execute(
                        votes.update()
                        .where(votes.c.answer_id == answer_id, votes.c.user_id == user)
                        .values(verdict=verdict, updated_at=now)
                    ).rowcount
                    if not updated:
                        conn.execute(votes.insert().values(
                            answer_id=answer_id, user_id=user, verdict=verdict, created_at=now, updated_at=now))
                break
            except IntegrityError:  # two clicks raced to insert; the retry updates instead
                if attempt:
                    raise
        return next(v for v in self.votes(answer_id) if v["user"] == user)

    # --- reads ---------------------------------------------------------------------
    def answer(self, answer_id: int) -> dict | None:
        """One stored answer as a dict, or None."""
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(answers).where(answers.c.id == answer_id)).mappings().first()
        return dict(row) if row else None

    def votes(self, answer_id: int | None = None) -> list[dict]:
        """Every vote (or those of one answer) with the answer it is about, oldest first."""
        query = (
            sa.select(
                votes.c.id, votes.c.answer_id, votes.c.user_id.label("user"), votes.c.verdict,
                votes.c.updated_at.label("voted_at"), answers.c.question, answers.c.answer, answers.c.citations,
                answers.c.abstained, answers.c.channel, answers.c.thread_ts, answers.c.latency_ms,
                answers.c.user_id.label("asked_by"),
            )
            .join(answers, answers.c.id == votes.c.answer_id)
            .order_by(votes.c.id)
        )
        if answer_id is not None:
            query = query.where(votes.c.answer_id == answer_id)
        with self.engine.connect() as conn:
            return [dict(r) for r in conn.execute(query).mappings()]

