"""The embedding cache: vectors kept in PostgreSQL by (tenant, model, sha256 of the text).

An edited document re-embeds only the chunks whose text changed; a task delivered
twice, or a run killed halfway, embeds nothing a second time. Entries are written in
their own transactions so they survive a document transaction that rolls back.
Each tenant has its own entries: a tenant's run never finds (and so never reveals, by
embedding less) a text that only another tenant holds::

    cache = EmbeddingCache(engine, embedder)
    vectors, embedded = cache.embed(texts, hashes, tenant="acme")

The model is asked ``EMBED_SLICE`` texts at a time, and the work's watch is checked
before each request (``ragline.cancel.checkpoint``), so a cancelled job stops within
one request. ``model_calls()`` counts the requests that reach the model meanwhile, in
this thread (a sync run reports them)::

    with model_calls() as calls:
        ...
    calls.count
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

import numpy as np
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from ragline.cancel import checkpoint
from ragline.db.tenancy import tenant_scope
from ragline.embedding.base import Embedder, Vectors

# Texts per model request: a few seconds of a small model on a CPU at most.
EMBED_SLICE = 64


@dataclass(slots=True)
class CallCounter:
    count: int = 0


_calls: ContextVar[CallCounter | None] = ContextVar("embedding_calls", default=None)


@contextmanager
def model_calls() -> Iterator[CallCounter]:
    counter = CallCounter()
    token = _calls.set(counter)
    try:
        yield counter
    finally:
        _calls.reset(token)


class EmbeddingCache:
    def __init__(self, engine: Engine, embedder: Embedder) -> None:
        self.engine = engine
        self.embedder = embedder

    def embed(
        self, texts: Sequence[str], hashes: Sequence[str], *, tenant: str
    ) -> tuple[Vectors, int]:
        """Vectors for ``texts`` (one per text, in order), and how many the model
        computed; only ``tenant``'s entries are looked up and written."""
        found = self._get(tenant, set(hashes))
        missing: dict[str, str] = {}
        for text, digest in zip(texts, hashes, strict=True):
            if digest not in found:
                missing.setdefault(digest, text)
        digests = list(missing)
        for start in range(0, len(digests), EMBED_SLICE):
            checkpoint()
            part = digests[start : start + EMBED_SLICE]
            vectors = self.embedder.embed([missing[d] for d in part])
            if (counter := _calls.get()) is not None:
                counter.count += 1
            fresh = dict(zip(part, vectors, strict=True))
            self._put(tenant, fresh)
            found.update(fresh)
        out = (
            np.stack([found[digest] for digest in hashes])
            if hashes
            else np.zeros((0, self.embedder.dimension), dtype=np.float32)
        )
        return out.astype(np.float32, copy=False), len(missing)

    def _get(self, tenant: str, hashes: set[str]) -> dict[str, Vectors]:
        if not hashes:
            return {}
        with tenant_scope(self.engine, tenant) as conn:
            rows = conn.execute(
                sa.text(
                    "SELECT sha256, embedding FROM embedding_cache "
                    "WHERE tenant = :tenant AND model = :model AND sha256 = ANY(:hashes)"
                ),
                {"tenant": tenant, "model": self.embedder.name, "hashes": list(hashes)},
            ).all()
            return {
                digest: np.asarray(vector.to_numpy(), dtype=np.float32) for digest, vector in rows
            }

    def _put(self, tenant: str, vectors: dict[str, Vectors]) -> None:
        with tenant_scope(self.engine, tenant) as conn:
            conn.execute(
                sa.text(
                    "INSERT INTO embedding_cache (tenant, model, sha256, embedding) "
                    "VALUES (:tenant, :model, :sha256, :embedding) ON CONFLICT DO NOTHING"
                ),
                [
                    {
                        "tenant": tenant,
                        "model": self.embedder.name,
                        "sha256": digest,
                        "embedding": vector,
                    }
                    for digest, vector in vectors.items()
                ],
            )
