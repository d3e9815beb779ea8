"""Conversations, answer traces and feedback, kept per tenant in PostgreSQL.

    memory = Memory(engine)
    conversation = memory.conversation("acme", conversation_id)   # NotFound if not acme's
    turns = memory.recent_turns("acme", conversation, 5)
    memory.record("acme", conversation, question, query, answer)
    memory.feedback("acme", trace_id, rating=-1, reason="wrong")  # once per trace

Every query runs in the tenant's scope: row-level security applies. This module holds
all the SQL of the ``conversations``, ``answers`` and ``feedback`` tables (the answer
cache is ``ragline.answer.cache``'s).
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from ragline.db.tenancy import tenant_scope
from ragline.domain import Answer
from ragline.errors import NotFound


@dataclass(frozen=True, slots=True)
class Turn:
    question: str
    query: str
    answer: str
    trace_id: str


class Memory:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def conversation(self, tenant: str, conversation_id: str | None) -> uuid.UUID:
        """The tenant's conversation ``conversation_id``, or a new one when None."""
        with tenant_scope(self.engine, tenant) as conn:
            if conversation_id is None:
                new = uuid.uuid4()
                conn.execute(
                    sa.text("INSERT INTO conversations (id, tenant) VALUES (:id, :tenant)"),
                    {"id": new, "tenant": tenant},
                )
                return new
            try:
                wanted = uuid.UUID(conversation_id)
            except ValueError as e:
                raise NotFound(f"no conversation {conversation_id}") from e
            found = conn.execute(
                sa.text("SELECT id FROM conversations WHERE id = :id"), {"id": wanted}
            ).scalar()
        if found is None:
            raise NotFound(f"no conversation {conversation_id}")
        return wanted

    def recent_turns(self, tenant: str, conversation_id: uuid.UUID, turns: int) -> list[Turn]:
        """The last ``turns`` turns, oldest first."""
        with tenant_scope(self.engine, tenant) as conn:
            rows = conn.execute(
                sa.text(
                    """
                    SELECT question, query, answer, trace_id FROM (
                        SELECT * FROM answers WHERE conversation_id = :id
                        ORDER BY created_at DESC LIMIT :n
                    ) recent ORDER BY created_at
                    """
                ),
                {"id": conversation_id, "n": turns},
            ).all()
        return [Turn(r.question, r.query, r.answer, r.trace_id) for r in rows]

    def record(
        self,
        tenant: str,
        conversation_id: uuid.UUID | None,
        question: str,
        query: str,
        answer: Answer,
        notes: Mapping[str, Any] | None = None,
    ) -> None:
        """The answer's trace. ``notes`` (sentences dropped, values redacted by kind)
        are kept in its ``usage`` column beside the provider's token counts."""
        usage = {**(answer.usage or {}), **notes} if notes else answer.usage
        with tenant_scope(self.engine, tenant) as conn:
            conn.execute(
                sa.text(
                    """
                    INSERT INTO answers (trace_id, tenant, conversation_id, question, query,
                                         answer, mode, citations, removed_citations,
                                         unsupported, provider, usage)
                    VALUES (:trace_id, :tenant, :conversation_id, :question, :query, :answer,
                            :mode, CAST(:citations AS jsonb), :removed, :unsupported,
                            :provider, CAST(:usage AS jsonb))
                    """
                ),
                {
                    "trace_id": answer.trace_id,
                    "tenant": tenant,
                    "conversation_id": conversation_id,
                    "question": question,
                    "query": query,
                    "answer": answer.answer,
                    "mode": answer.mode.value,
                    "citations": json.dumps([c.as_dict() for c in answer.citations]),
                    "removed": answer.removed_citations,
                    "unsupported": answer.unsupported,
                    "provider": answer.provider,
                    "usage": json.dumps(usage),
                },
            )
            if conversation_id is not None:
                conn.execute(
                    sa.text("UPDATE conversations SET updated_at = now() WHERE id = :id"),
                    {"id": conversation_id},
                )

    def feedback(
        self,
        tenant: str,
        trace_id: str,
        *,
        rating: int,
        reason: str | None = None,
        comment: str | None = None,
    ) -> bool:
        """Record feedback on the answer ``trace_id``: one row per trace, the latest
        word kept. Returns whether it was new; NotFound for an unknown trace."""
        with tenant_scope(self.engine, tenant) as conn:
            exists = conn.execute(
                sa.text("SELECT 1 FROM answers WHERE trace_id = :t"), {"t": trace_id}
            ).scalar()
            if exists is None:
                raise NotFound(f"no answer with trace id {trace_id}")
            created: bool = conn.execute(
                sa.text(
                    """
                    INSERT INTO feedback (trace_id, tenant, rating, reason, comment)
                    VALUES (:t, :tenant, :rating, :reason, :comment)
                    ON CONFLICT (trace_id) DO UPDATE SET rating = EXCLUDED.rating,
                        reason = EXCLUDED.reason, comment = EXCLUDED.comment,
                        updated_at = now()
                    RETURNING (xmax = 0)
                    """
                ),
                {
                    "t": trace_id,
                    "tenant": tenant,
                    "rating": rating,
                    "reason": reason,
                    "comment": comment,
                },
            ).scalar_one()
        return created

    def summary(self, tenant: str, conversation_id: uuid.UUID) -> tuple[str, int]:
        """The conversation's summary and the number of (oldest) turns it covers."""
        with tenant_scope(self.engine, tenant) as conn:
            row = conn.execute(
                sa.text("SELECT summary, summarised FROM conversations WHERE id = :id"),
                {"id": conversation_id},
            ).one()
        return row.summary, row.summarised

    def unsummarised(
        self, tenant: str, conversation_id: uuid.UUID, *, keep: int
    ) -> tuple[str, int, list[Turn]]:
        """(summary, turns it covers, the turns after those that are older than the
        last ``keep``): what a new summary must fold in."""
        summary, covered = self.summary(tenant, conversation_id)
        with tenant_scope(self.engine, tenant) as conn:
            total = conn.execute(
                sa.text("SELECT count(*) FROM answers WHERE conversation_id = :id"),
                {"id": conversation_id},
            ).scalar_one()
            rows = conn.execute(
                sa.text(
                    "SELECT question, query, answer, trace_id FROM answers "
                    "WHERE conversation_id = :id ORDER BY created_at OFFSET :skip LIMIT :n"
                ),
                {"id": conversation_id, "skip": covered, "n": max(0, total - keep - covered)},
            ).all()
        return summary, covered, [Turn(r.question, r.query, r.answer, r.trace_id) for r in rows]

    def set_summary(
        self, tenant: str, conversation_id: uuid.UUID, summary: str, covered: int
    ) -> None:
        with tenant_scope(self.engine, tenant) as conn:
            conn.execute(
                sa.text(
                    "UPDATE conversations SET summary = :summary, summarised = :covered "
                    "WHERE id = :id"
                ),
                {"id": conversation_id, "summary": summary, "covered": covered},
            )

    def list_feedback(
        self, tenant: str, *, rating: int | None = None, limit: int = 50
    ) -> list[dict[str, Any]]:
        """Feedback with the question, answer and citations it is about, newest first."""
        with tenant_scope(self.engine, tenant) as conn:
            rows = conn.execute(
                sa.text(
                    """
                    SELECT f.trace_id, f.rating, f.reason, f.comment, f.created_at,
                           f.updated_at, a.question, a.query, a.answer, a.mode, a.citations,
                           a.conversation_id, a.provider
                    FROM feedback f JOIN answers a ON a.trace_id = f.trace_id
                    WHERE CAST(:rating AS smallint) IS NULL OR f.rating = :rating
                    ORDER BY f.updated_at DESC LIMIT :limit
                    """
                ),
                {"rating": rating, "limit": limit},
            ).mappings()
            return [_jsonable(dict(row)) for row in rows]


def _jsonable(row: dict[str, Any]) -> dict[str, Any]:
    return {
        key: value.isoformat()
        if isinstance(value, dt.datetime)
        else str(value)
        if isinstance(value, uuid.UUID)
        else value
        for key, value in row.items()
    }
