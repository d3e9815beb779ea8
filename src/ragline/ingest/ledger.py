"""The ledger: what is indexed from each source, and the decision for each item.

Every document a source has shown us has one row in ``documents``: its content hash,
the source's etag and modification time, the embedding model and pipeline version it
was indexed with, its chunk count, and its state (active, failed, deleted)::

    ledger = Ledger(engine, tenant="default", collection="docs", source=source.name)
    entries = ledger.load()
    if ledger.unchanged_by_etag(entries.get(item.doc_id), item): ...
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from ragline.domain import DocStatus
from ragline.ingest.connectors.base import SourceItem
from ragline.ingest.store import chunk_totals, update_bm25_stats
from ragline.ingest.text import sha256_text


@dataclass(frozen=True, slots=True)
class LedgerEntry:
    id: int
    doc_id: str
    source: str
    status: DocStatus
    sha256: str | None
    etag: str | None
    embedding_model: str | None
    pipeline_version: str | None
    chunk_count: int
    source_modified: dt.datetime | None = None

    @property
    def indexed(self) -> bool:
        """Whether chunks of some version of this document are in the index."""
        return self.chunk_count > 0 and self.status is not DocStatus.DELETED


class Ledger:
    def __init__(
        self,
        engine: Engine,
        *,
        tenant: str,
        collection: str,
        source: str,
        embedding_model: str,
        pipeline_version: str,
    ) -> None:
        self.engine = engine
        self.tenant = tenant
        self.collection = collection
        self.source = source
        self.embedding_model = embedding_model
        self.pipeline_version = pipeline_version

    def load(self) -> dict[str, LedgerEntry]:
        """Every ledger row of this collection, by document id."""
        return self._entries("")

    def load_some(self, doc_ids: list[str]) -> dict[str, LedgerEntry]:
        """The ledger rows of some documents of this collection, by document id."""
        return self._entries(" AND doc_id = ANY(:doc_ids)", doc_ids=doc_ids)

    def _entries(self, where: str, **params: object) -> dict[str, LedgerEntry]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.text(
                    """
                    SELECT id, doc_id, source, status, sha256, etag, embedding_model,
                           pipeline_version, chunk_count, source_modified
                    FROM documents WHERE tenant = :tenant AND collection = :collection
                    """
                    + where
                ),
                {"tenant": self.tenant, "collection": self.collection, **params},
            ).mappings()
            return {
                row["doc_id"]: LedgerEntry(**{**row, "status": DocStatus(row["status"])})
                for row in rows
            }

    def version_of(self, item: SourceItem) -> str:
        """The pipeline version ``item`` is indexed with: its own chunking profile,
        when it has one, is part of it."""
        if item.profile is None:
            return self.pipeline_version
        return sha256_text(f"{self.pipeline_version}|{item.profile.fingerprint()}")[:16]

    def current(self, entry: LedgerEntry | None, item: SourceItem) -> bool:
        """Whether ``entry`` is active and was indexed the way this run would index it."""
        return (
            entry is not None
            and entry.status is DocStatus.ACTIVE
            and entry.embedding_model == self.embedding_model
            and entry.pipeline_version == self.version_of(item)
        )

    def unchanged_by_etag(self, entry: LedgerEntry | None, item: SourceItem) -> bool:
        return (
            self.current(entry, item)
            and item.etag is not None
            and entry is not None
            and (entry.etag == item.etag and entry.source == self.source)
        )

    def unchanged_by_hash(self, entry: LedgerEntry | None, item: SourceItem, sha256: str) -> bool:
        return self.current(entry, item) and entry is not None and entry.sha256 == sha256

    @staticmethod
    def stale(entry: LedgerEntry | None, item: SourceItem) -> bool:
        """Whether ``entry`` records a later version of the document than ``item`` (a
        change event delivered after a newer one)."""
        return (
            entry is not None
            and entry.source_modified is not None
            and item.modified is not None
            and item.modified < entry.source_modified
        )

    def touch(self, entry: LedgerEntry, item: SourceItem, *, only_if_newer: bool = False) -> None:
        """Record that an item whose content is unchanged was seen: its etag, link and
        the metadata its source gives (a row's columns, a page's ancestors) may have
        moved. With ``only_if_newer``, a version older than the one recorded changes
        nothing."""
        newer = (
            " AND (source_modified IS NULL OR source_modified <= :modified)"
            if only_if_newer
            else ""
        )
        with self.engine.begin() as conn:
            conn.execute(
                sa.text(
                    """
                    UPDATE documents
                    SET etag = :etag, source_modified = :modified, size_bytes = :size,
                        source = :source, uri = :uri,
                        metadata = metadata || CAST(:metadata AS jsonb), last_synced_at = now()
                    WHERE id = :id
                    """
                    + newer
                ),
                {
                    "id": entry.id,
                    "etag": item.etag,
                    "modified": item.modified,
                    "size": item.size,
                    "source": self.source,
                    "uri": item.uri,
                    "metadata": json.dumps(item.metadata, default=str),
                },
            )

    def record_failure(self, item: SourceItem, reason: str) -> None:
        """Mark an item failed with its reason. Chunks of an earlier good version stay
        searchable until the item is fixed or deleted at the source."""
        with self.engine.begin() as conn:
            conn.execute(
                sa.text(
                    """
                    INSERT INTO documents (tenant, collection, doc_id, source, uri, etag,
                                           source_modified, size_bytes, status, last_error)
                    VALUES (:tenant, :collection, :doc_id, :source, :uri, :etag,
                            :modified, :size, 'failed', :reason)
                    ON CONFLICT (tenant, collection, doc_id) DO UPDATE
                    SET status = 'failed', last_error = EXCLUDED.last_error,
                        source = EXCLUDED.source, uri = EXCLUDED.uri,
                        etag = NULL, last_synced_at = now()
                    """
                ),
                {
                    "tenant": self.tenant,
                    "collection": self.collection,
                    "doc_id": item.doc_id,
                    "source": self.source,
                    "uri": item.uri,
                    "etag": item.etag,
                    "modified": item.modified,
                    "size": item.size,
                    "reason": reason,
                },
            )

    def tombstone_missing(self, seen: set[str]) -> list[str]:
        """Delete the chunks of this source's documents that the source no longer lists,
        and mark them deleted. Returns their document ids."""
        with self.engine.begin() as conn:
            rows = conn.execute(
                sa.text(
                    """
                    SELECT id, doc_id, status FROM documents
                    WHERE tenant = :tenant AND collection = :collection AND source = :source
                      AND status <> 'deleted'
                    FOR UPDATE
                    """
                ),
                {"tenant": self.tenant, "collection": self.collection, "source": self.source},
            ).all()
            gone = [row for row in rows if row.doc_id not in seen]
            delete_documents(conn, [row.id for row in gone])
            return [row.doc_id for row in gone]

    def delete(self, deleted: dict[str, dt.datetime | None], *, only_if_newer: bool) -> list[str]:
        """Remove the documents a change set says are gone; returns the ids removed.

        With ``only_if_newer``, a deletion older than the version indexed is ignored,
        and a deletion of a document not yet seen leaves a tombstone with its time, so
        that a late, older creation does not bring it back. Each document is removed
        in a transaction of its own: concurrent consumers never wait on one another's
        batches.
        """
        removed: list[str] = []
        for doc_id, when in sorted(deleted.items()):
            with self.engine.begin() as conn:
                if self._delete_one(conn, doc_id, when, only_if_newer=only_if_newer):
                    removed.append(doc_id)
        return removed

    def _delete_one(
        self, conn: sa.Connection, doc_id: str, when: dt.datetime | None, *, only_if_newer: bool
    ) -> bool:
        key = {"tenant": self.tenant, "collection": self.collection, "doc_id": doc_id}
        for _ in range(2):
            row = conn.execute(
                sa.text(
                    """
                    SELECT id, status, source, source_modified FROM documents
                    WHERE tenant = :tenant AND collection = :collection AND doc_id = :doc_id
                    FOR UPDATE
                    """
                ),
                key,
            ).first()
            if row is None:
                if only_if_newer and when is not None and not self._tombstone(conn, doc_id, when):
                    continue  # created meanwhile: look at it again
                return False
            if row.source != self.source:
                return False  # another source's document of the same id
            older = (
                row.source_modified is not None and when is not None and when < row.source_modified
            )
            if only_if_newer and older:
                return False
            gone = bool(row.status != DocStatus.DELETED.value)
            if gone:
                delete_documents(conn, [row.id])
            if when is not None:
                conn.execute(
                    sa.text("UPDATE documents SET source_modified = :when WHERE id = :id"),
                    {"when": when, "id": row.id},
                )
            return gone
        return False

    def _tombstone(self, conn: sa.Connection, doc_id: str, when: dt.datetime) -> bool:
        """Record that ``doc_id`` was deleted at ``when`` before it was ever seen; False
        when a row for it appeared meanwhile."""
        inserted = conn.execute(
            sa.text(
                """
                INSERT INTO documents (tenant, collection, doc_id, source, uri,
                                       source_modified, status)
                VALUES (:tenant, :collection, :doc_id, :source, '', :when, 'deleted')
                ON CONFLICT (tenant, collection, doc_id) DO NOTHING
                RETURNING id
                """
            ),
            {
                "tenant": self.tenant,
                "collection": self.collection,
                "doc_id": doc_id,
                "source": self.source,
                "when": when,
            },
        ).first()
        return inserted is not None


def source_lock_key(tenant: str, collection: str, source: str) -> str:
    """The advisory lock a sync of a source holds (also taken to delete one upload)."""
    return f"sync:{tenant}:{collection}:{source}"


def document_ids(
    conn: sa.Connection,
    collection: str,
    doc_ids: list[str] | None = None,
    *,
    tenant: str | None = None,
    source: str | None = None,
) -> list[int]:
    """Row ids of the documents not deleted in ``collection`` with one of ``doc_ids``
    (any, when None), of ``tenant`` and ``source`` when given (in ``conn``'s scope)."""
    return list(
        conn.execute(
            sa.text(
                """
                SELECT id FROM documents
                WHERE collection = :collection AND status <> 'deleted'
                  AND (CAST(:doc_ids AS text[]) IS NULL OR doc_id = ANY(:doc_ids))
                  AND (CAST(:tenant AS text) IS NULL OR tenant = :tenant)
                  AND (CAST(:source AS text) IS NULL OR source = :source)
                """
            ),
            {"collection": collection, "doc_ids": doc_ids, "tenant": tenant, "source": source},
        ).scalars()
    )


def document_counts(conn: sa.Connection) -> dict[tuple[str, str, str], tuple[int, int]]:
    """Documents active and failed, by (tenant, collection, source), in ``conn``'s scope."""
    rows = conn.execute(
        sa.text(
            """
            SELECT tenant, collection, source,
                   count(*) FILTER (WHERE status = 'active'),
                   count(*) FILTER (WHERE status = 'failed')
            FROM documents GROUP BY tenant, collection, source
            """
        )
    ).all()
    return {(t, c, s): (int(active), int(failed)) for t, c, s, active, failed in rows}


def delete_documents(conn: sa.Connection, ids: list[int]) -> None:
    """Remove the chunks of some documents and mark them deleted, in ``conn``'s
    transaction; the BM25 statistics move with them."""
    if not ids:
        return
    before = chunk_totals(conn, ids)
    conn.execute(sa.text("DELETE FROM chunks WHERE document_id = ANY(:ids)"), {"ids": ids})
    update_bm25_stats(conn, before, {})
    conn.execute(
        sa.text(
            """
            UPDATE documents
            SET status = 'deleted', chunk_count = 0, etag = NULL, last_synced_at = now()
            WHERE id = ANY(:ids)
            """
        ),
        {"ids": ids},
    )


def document_row(
    *,
    tenant: str,
    collection: str,
    source: str,
    item: SourceItem,
    title: str,
    doc_type: str,
    doc_date: dt.date | None,
    metadata: dict[str, object],
    sha256: str,
    embedding_model: str,
    pipeline_version: str,
    warnings: list[str],
) -> dict[str, object]:
    """The parameters of a document's ledger row, as ``ChunkStore.replace`` writes it."""
    return {
        "tenant": tenant,
        "collection": collection,
        "doc_id": item.doc_id,
        "source": source,
        "doc_type": doc_type,
        "title": title,
        "uri": item.uri,
        "doc_date": doc_date,
        "metadata": json.dumps(metadata, default=str),
        "sha256": sha256,
        "etag": item.etag,
        "source_modified": item.modified,
        "size_bytes": item.size,
        "embedding_model": embedding_model,
        "pipeline_version": pipeline_version,
        "warnings": json.dumps(warnings),
    }
