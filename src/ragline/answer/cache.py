"""Generated answers kept for reuse, per tenant, in PostgreSQL (the ``answer_cache``
table: this module holds all of its SQL).

    cache = AnswerCache(engine, ttl=3600)
    key = cache_key(query, search_filter, hits, model="vllm", temperature=0, max_tokens=512)
    cache.get("acme", key, trace_id)    # an Answer with cached=True, or None
    cache.put("acme", key, answer)      # only cited, generated answers are kept

The key is exact-match: the question as asked of the model (case and spacing
ignored), its filters, the prompt, the models and their settings, and the passages
retrieved (ids and text). Re-indexing a document gives its chunks new ids, so an
answer never outlives a change to the passages it was made from; a question that
differs in any word ("Q3", "Q4") is another key. A ``ttl`` of 0 turns the cache off.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from ragline.answer.prompt import PROMPT_VERSION
from ragline.db.tenancy import tenant_scope
from ragline.domain import Answer, AnswerMode, Citation, Filter, Hit


def cache_key(
    query: str,
    search_filter: Filter | None,
    hits: Sequence[Hit],
    *,
    model: str,
    temperature: float,
    max_tokens: int,
) -> str:
    material = [
        " ".join(query.lower().split()),
        repr(search_filter or Filter()),
        PROMPT_VERSION,
        model,
        temperature,
        max_tokens,
        [(hit.chunk_id, hashlib.sha256(hit.text.encode()).hexdigest()) for hit in hits],
    ]
    return hashlib.sha256(json.dumps(material, default=str).encode()).hexdigest()


class AnswerCache:
    def __init__(self, engine: Engine, ttl: float) -> None:
        self.engine = engine
        self.ttl = ttl

    @property
    def enabled(self) -> bool:
        return self.ttl > 0

    def get(self, tenant: str, key: str, trace_id: str) -> Answer | None:
        """The answer kept under ``key`` if younger than the ttl, under a new trace id."""
        if not self.enabled:
            return None
        with tenant_scope(self.engine, tenant) as conn:
            found: dict[str, Any] | None = conn.execute(
                sa.text(
                    "SELECT answer FROM answer_cache WHERE key = :key "
                    "AND created_at > now() - make_interval(secs => :ttl)"
                ),
                {"key": key, "ttl": self.ttl},
            ).scalar()
        if found is None:
            return None
        return Answer(
            found["answer"],
            AnswerMode(found["mode"]),
            [Citation(**c) for c in found["citations"]],
            trace_id,
            removed_citations=found["removed_citations"],
            unsupported=found["unsupported"],
            provider=found["provider"],
            cached=True,
        )

    def put(self, tenant: str, key: str, answer: Answer) -> bool:
        """Keep a generated answer that cites its sources (refusals and uncited answers
        are cheap to redo, or should be); the tenant's expired entries go at the same
        time. Returns whether it was kept."""
        if not self.enabled or answer.mode is not AnswerMode.GENERATIVE or answer.unsupported:
            return False
        with tenant_scope(self.engine, tenant) as conn:
            conn.execute(
                sa.text(
                    "DELETE FROM answer_cache "
                    "WHERE created_at <= now() - make_interval(secs => :ttl)"
                ),
                {"ttl": self.ttl},
            )
            conn.execute(
                sa.text(
                    """
                    INSERT INTO answer_cache (tenant, key, answer)
                    VALUES (:tenant, :key, CAST(:answer AS jsonb))
                    ON CONFLICT (tenant, key) DO UPDATE
                    SET answer = EXCLUDED.answer, created_at = now()
                    """
                ),
                {"tenant": tenant, "key": key, "answer": json.dumps(answer.as_dict())},
            )
        return True
