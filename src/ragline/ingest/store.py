"""Writing a document's chunks: all of them replaced in one transaction.

Readers see the old version or the new one, never a mix; a process killed halfway
leaves the old version (or nothing, for a new document) and the ledger unchanged.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from itertools import islice
from typing import TypeVar

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from ragline.domain import Chunk
from ragline.ingest.embedders.cache import EmbeddingCache

T = TypeVar("T")

_UPSERT_DOCUMENT = sa.text(
    """
    INSERT INTO documents (tenant, collection, doc_id, source, doc_type, title, uri, doc_date,
                           metadata, sha256, etag, source_modified, size_bytes, embedding_model,
                           pipeline_version, status, last_error, warnings, chunk_count)
    VALUES (:tenant, :collection, :doc_id, :source, :doc_type, :title, :uri, :doc_date,
            CAST(:metadata AS jsonb), :sha256, :etag, :source_modified, :size_bytes,
            :embedding_model, :pipeline_version, 'active', NULL, CAST(:warnings AS jsonb), 0)
    ON CONFLICT (tenant, collection, doc_id) DO UPDATE SET
        source = EXCLUDED.source, doc_type = EXCLUDED.doc_type, title = EXCLUDED.title,
        uri = EXCLUDED.uri, doc_date = EXCLUDED.doc_date, metadata = EXCLUDED.metadata,
        sha256 = EXCLUDED.sha256, etag = EXCLUDED.etag,
        source_modified = EXCLUDED.source_modified, size_bytes = EXCLUDED.size_bytes,
        embedding_model = EXCLUDED.embedding_model,
        pipeline_version = EXCLUDED.pipeline_version, status = 'active', last_error = NULL,
        warnings = EXCLUDED.warnings, last_synced_at = now()
    RETURNING id
    """
)

_INSERT_CHUNK = sa.text(
    """
    INSERT INTO chunks (document_id, tenant, collection, source, doc_type, doc_date, ordinal,
                        section, page, context, text, token_count, sha256, embedding)
    VALUES (:document_id, :tenant, :collection, :source, :doc_type, :doc_date, :ordinal,
            :section, :page, :context, :text, :token_count, :sha256, :embedding)
    """
)

# The BM25 postings of a run of a document's chunks, and their lexical lengths:
# term counts in the context (weight A in the tsvector) and in the passage.
_INSERT_POSTINGS = sa.text(
    """
    INSERT INTO postings (tenant, term, collection, chunk_id, tf_context, tf_text)
    SELECT c.tenant, t.lexeme, c.collection, c.id,
           count(*) FILTER (WHERE w = 'A'), count(*) FILTER (WHERE w <> 'A')
    FROM chunks c, unnest(c.tsv) AS t, unnest(t.weights) AS w
    WHERE c.document_id = :document_id AND c.ordinal BETWEEN :first AND :last
    GROUP BY c.tenant, t.lexeme, c.collection, c.id
    """
)

_SET_LENGTHS = sa.text(
    """
    UPDATE chunks c SET len_context = s.len_context, len_text = s.len_text
    FROM (SELECT p.chunk_id, sum(p.tf_context) AS len_context, sum(p.tf_text) AS len_text
          FROM postings p JOIN chunks pc ON pc.id = p.chunk_id
          WHERE pc.document_id = :document_id AND pc.ordinal BETWEEN :first AND :last
          GROUP BY p.chunk_id) s
    WHERE c.id = s.chunk_id
    """
)


def batched(values: Iterable[T], size: int) -> Iterator[list[T]]:
    """Consecutive lists of ``size`` values (the last may be shorter)."""
    iterator = iter(values)
    while batch := list(islice(iterator, size)):
        yield batch


class ChunkStore:
    def __init__(self, engine: Engine, cache: EmbeddingCache, *, batch_size: int = 256) -> None:
        self.engine = engine
        self.cache = cache
        self.batch_size = batch_size

    def replace(
        self,
        document: dict[str, object],
        chunks: Iterable[Chunk],
        *,
        on_batch: Callable[[int, int], None] | None = None,
    ) -> tuple[int, int]:
        """Write ``document``'s ledger row and replace its chunks, atomically.

        ``chunks`` may be a generator: it is embedded and written batch by batch, so a
        huge document never sits in memory whole. Returns (chunks written, chunks the
        model embedded); ``on_batch`` hears the same after every batch.
        """
        written = embedded = 0
        with self.engine.begin() as conn:
            document_id = conn.execute(_UPSERT_DOCUMENT, document).scalar_one()
            conn.execute(sa.text("DELETE FROM chunks WHERE document_id = :id"), {"id": document_id})
            for batch in batched(chunks, self.batch_size):
                vectors, computed = self.cache.embed(
                    [c.embed_text for c in batch], [c.sha256 for c in batch]
                )
                conn.execute(
                    _INSERT_CHUNK,
                    [
                        {
                            "document_id": document_id,
                            "tenant": document["tenant"],
                            "collection": document["collection"],
                            "source": document["source"],
                            "doc_type": document["doc_type"],
                            "doc_date": document["doc_date"],
                            "ordinal": chunk.ordinal,
                            "section": " > ".join(chunk.section),
                            "page": chunk.page,
                            "context": chunk.context,
                            "text": chunk.text,
                            "token_count": chunk.token_count,
                            "sha256": chunk.sha256,
                            "embedding": vector,
                        }
                        for chunk, vector in zip(batch, vectors, strict=True)
                    ],
                )
                span = {
                    "document_id": document_id,
                    "first": batch[0].ordinal,
                    "last": batch[-1].ordinal,
                }
                conn.execute(_INSERT_POSTINGS, span)
                conn.execute(_SET_LENGTHS, span)
                written += len(batch)
                embedded += computed
                if on_batch is not None:
                    on_batch(written, embedded)
            conn.execute(
                sa.text("UPDATE documents SET chunk_count = :n WHERE id = :id"),
                {"n": written, "id": document_id},
            )
        return written, embedded
