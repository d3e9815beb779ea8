"""Writing a document's chunks: all of them replaced in one transaction.

Readers see the old version or the new one, never a mix; a process killed halfway
leaves the old version (or nothing, for a new document) and the ledger unchanged.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from itertools import islice
from typing import TypeVar

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from ragline.cancel import checkpoint
from ragline.domain import Chunk
from ragline.embedding.cache import EmbeddingCache

T = TypeVar("T")

_UPSERT_DOCUMENT = """
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
    {newer}
    RETURNING id
    """
# Change streams deliver versions out of order: a version older than the one indexed
# is refused under the row's lock, so concurrent consumers cannot reorder a document.
_UPSERT_ANY = sa.text(_UPSERT_DOCUMENT.format(newer=""))
_UPSERT_NEWER = sa.text(
    _UPSERT_DOCUMENT.format(
        newer="WHERE documents.source_modified IS NULL "
        "OR documents.source_modified <= EXCLUDED.source_modified"
    )
)

# Lexical lengths (lexeme occurrences in context and passage, as in the generated
# tsvector) are computed on insert: updating the rows afterwards would write every
# chunk, and its HNSW index entry, twice.
_INSERT_CHUNK = sa.text(
    """
    INSERT INTO chunks (document_id, tenant, collection, source, doc_type, doc_date, ordinal,
                        section, page, context, text, token_count, sha256, embedding,
                        len_context, len_text)
    VALUES (:document_id, :tenant, :collection, :source, :doc_type, :doc_date, :ordinal,
            :section, :page, :context, :text, :token_count, :sha256, :embedding,
            (SELECT coalesce(sum(array_length(positions, 1)), 0)
             FROM unnest(to_tsvector('english', :context))),
            (SELECT coalesce(sum(array_length(positions, 1)), 0)
             FROM unnest(to_tsvector('english', :text))))
    """
)

# The BM25 postings of a run of a document's chunks: each term's count in the context
# (weight A in the tsvector) and in the passage, with the chunk's lengths.
_INSERT_POSTINGS = sa.text(
    """
    INSERT INTO postings (tenant, term, collection, chunk_id, tf_context, tf_text,
                          len_context, len_text)
    SELECT c.tenant, t.lexeme, c.collection, c.id,
           count(*) FILTER (WHERE w = 'A'), count(*) FILTER (WHERE w <> 'A'),
           c.len_context, c.len_text
    FROM chunks c, unnest(c.tsv) AS t, unnest(t.weights) AS w
    WHERE c.document_id = :document_id AND c.ordinal BETWEEN :first AND :last
    GROUP BY c.tenant, t.lexeme, c.collection, c.id, c.len_context, c.len_text
    """
)

_CHUNK_TOTALS = sa.text(
    """
    SELECT tenant, collection, count(*) AS chunks, coalesce(sum(len_text), 0) AS len_text,
           coalesce(sum(len_context), 0) AS len_context
    FROM chunks WHERE document_id = ANY(:ids) GROUP BY tenant, collection
    """
)

_ADD_TO_STATS = sa.text(
    """
    INSERT INTO bm25_stats (tenant, collection, chunks, len_text, len_context)
    VALUES (:tenant, :collection, :chunks, :len_text, :len_context)
    ON CONFLICT (tenant, collection) DO UPDATE SET
        chunks = bm25_stats.chunks + EXCLUDED.chunks,
        len_text = bm25_stats.len_text + EXCLUDED.len_text,
        len_context = bm25_stats.len_context + EXCLUDED.len_context
    """
)

_TOTALS = ("chunks", "len_text", "len_context")


def chunk_totals(
    conn: sa.Connection, document_ids: list[int]
) -> dict[tuple[str, str], Counter[str]]:
    """Chunk count and lexical length sums of some documents, by (tenant, collection)."""
    rows = conn.execute(_CHUNK_TOTALS, {"ids": document_ids}).mappings()
    return {
        (row["tenant"], row["collection"]): Counter({key: int(row[key]) for key in _TOTALS})
        for row in rows
    }


def update_bm25_stats(
    conn: sa.Connection,
    before: dict[tuple[str, str], Counter[str]],
    after: dict[tuple[str, str], Counter[str]],
) -> None:
    """Move the scope statistics from ``before`` to ``after`` totals, in one statement
    per scope, as the last write of the transaction (the rows are locked till commit)."""
    for scope in sorted(before.keys() | after.keys()):
        delta = {
            key: after.get(scope, Counter())[key] - before.get(scope, Counter())[key]
            for key in _TOTALS
        }
        if any(delta.values()):
            conn.execute(_ADD_TO_STATS, {"tenant": scope[0], "collection": scope[1], **delta})


def _batched(values: Iterable[T], size: int) -> Iterator[list[T]]:
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
        only_if_newer: bool = False,
    ) -> tuple[int, int] | None:
        """Write ``document``'s ledger row and replace its chunks, atomically.

        ``chunks`` may be a generator: it is embedded and written batch by batch, so a
        huge document never sits in memory whole; the work's watch is checked before
        each batch (a cancelled job rolls the document back). Returns (chunks written, chunks the
        model embedded); ``on_batch`` hears the same after every batch. With
        ``only_if_newer``, a document whose recorded ``source_modified`` is later than
        this version's is left alone, and None is returned.
        """
        written = embedded = 0
        with self.engine.begin() as conn:
            upsert = _UPSERT_NEWER if only_if_newer else _UPSERT_ANY
            document_id = conn.execute(upsert, document).scalar()
            if document_id is None:
                return None
            before = chunk_totals(conn, [document_id])
            conn.execute(sa.text("DELETE FROM chunks WHERE document_id = :id"), {"id": document_id})
            for batch in _batched(chunks, self.batch_size):
                checkpoint()
                vectors, computed = self.cache.embed(
                    [c.embed_text for c in batch],
                    [c.sha256 for c in batch],
                    tenant=str(document["tenant"]),
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
                written += len(batch)
                embedded += computed
                if on_batch is not None:
                    on_batch(written, embedded)
            conn.execute(
                sa.text("UPDATE documents SET chunk_count = :n WHERE id = :id"),
                {"n": written, "id": document_id},
            )
            update_bm25_stats(conn, before, chunk_totals(conn, [document_id]))
        return written, embedded


def total_chunks(engine: Engine) -> int:
    """Chunks in the index, over every tenant."""
    with engine.connect() as conn:
        return int(
            conn.execute(sa.text("SELECT coalesce(sum(chunks), 0) FROM bm25_stats")).scalar_one()
        )
