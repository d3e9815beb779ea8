"""The ``uploads`` table: the record of each uploaded file. The one module that holds
its SQL; every function runs in the caller's transaction (tenant-scoped for requests,
the engine's own for the job that indexes an upload).

    with tenant_scope(engine, "acme") as conn:
        upload = get_upload(conn, upload_id)
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

# An upload whose indexing job was cancelled before it could say so itself (while it
# waited to run) shows as failed, with the job's reason.
UPLOAD_COLUMNS = (
    "u.id, u.tenant, u.collection, u.filename, u.content_type, u.size_bytes, u.sha256, u.metadata, "
    "u.uploaded_by, "
    "CASE WHEN j.status = 'cancelled' AND u.status IN ('queued', 'indexing') THEN 'failed' "
    "ELSE u.status END AS status, "
    "CASE WHEN j.status = 'cancelled' AND u.status IN ('queued', 'indexing') THEN j.error "
    "ELSE u.error END AS error, "
    "u.job_id, u.created_at, u.updated_at, d.chunk_count, d.last_error"
)
_JOINS = (
    "LEFT JOIN documents d ON d.tenant = u.tenant "
    "AND d.collection = u.collection AND d.doc_id = u.id::text "
    "LEFT JOIN jobs j ON j.id = u.job_id"
)


@dataclass(frozen=True, slots=True)
class Upload:
    id: uuid.UUID
    tenant: str
    collection: str
    filename: str
    content_type: str
    size_bytes: int
    sha256: str
    metadata: dict[str, Any]
    uploaded_by: int | None
    status: str
    error: str | None
    job_id: uuid.UUID | None
    created_at: dt.datetime
    updated_at: dt.datetime
    chunk_count: int | None = None
    last_error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "document_id": str(self.id),
            "collection": self.collection,
            "filename": self.filename,
            "content_type": self.content_type,
            "size_bytes": self.size_bytes,
            "sha256": self.sha256,
            "metadata": self.metadata,
            "uploaded_by": self.uploaded_by,
            "status": self.status,
            "error": self.error or self.last_error,
            "chunks": self.chunk_count or 0,
            "job_id": str(self.job_id) if self.job_id else None,
            "created_at": self.created_at.isoformat(),
            "updated_at": self.updated_at.isoformat(),
        }


def insert_upload(
    conn: sa.Connection,
    *,
    upload_id: uuid.UUID,
    tenant: str,
    collection: str,
    filename: str,
    content_type: str,
    size: int,
    sha256: str,
    storage_key: str,
    metadata: dict[str, Any],
    uploaded_by: int | None,
    job_id: uuid.UUID,
) -> Upload:
    conn.execute(
        sa.text(
            """
            INSERT INTO uploads (id, tenant, collection, filename, content_type,
                                 size_bytes, sha256, storage_key, metadata,
                                 uploaded_by, status, job_id)
            VALUES (:id, :tenant, :collection, :filename, :content_type, :size,
                    :sha256, :key, CAST(:metadata AS jsonb), :by, 'queued', :job)
            """
        ),
        {
            "id": upload_id,
            "tenant": tenant,
            "collection": collection,
            "filename": filename,
            "content_type": content_type,
            "size": size,
            "sha256": sha256,
            "key": storage_key,
            "metadata": json.dumps(metadata),
            "by": uploaded_by,
            "job": job_id,
        },
    )
    upload = get_upload(conn, upload_id)
    assert upload is not None
    return upload


def get_upload(conn: sa.Connection, upload_id: uuid.UUID, *, lock: bool = False) -> Upload | None:
    row = (
        conn.execute(
            sa.text(
                f"""
                SELECT {UPLOAD_COLUMNS} FROM uploads u {_JOINS}
                WHERE u.id = :id {"FOR UPDATE OF u" if lock else ""}
                """
            ),
            {"id": upload_id},
        )
        .mappings()
        .first()
    )
    return Upload(**row) if row is not None else None


def list_uploads(
    conn: sa.Connection, *, collection: str | None, limit: int, offset: int
) -> list[Upload]:
    rows = conn.execute(
        sa.text(
            f"""
            SELECT {UPLOAD_COLUMNS} FROM uploads u {_JOINS}
            WHERE u.status <> 'deleted'
              AND (CAST(:collection AS text) IS NULL OR u.collection = :collection)
            ORDER BY u.created_at DESC, u.id LIMIT :limit OFFSET :offset
            """
        ),
        {"collection": collection, "limit": limit, "offset": offset},
    ).mappings()
    return [Upload(**row) for row in rows]


def storage_key_of(conn: sa.Connection, upload_id: uuid.UUID) -> str | None:
    """Where the file of a live upload is kept (None once deleted)."""
    key: str | None = conn.execute(
        sa.text("SELECT storage_key FROM uploads WHERE id = :id AND status <> 'deleted'"),
        {"id": upload_id},
    ).scalar()
    return key


def mark_deleted(conn: sa.Connection, upload_id: uuid.UUID) -> str:
    """Mark an upload deleted; returns the storage key of its file."""
    key: str = conn.execute(
        sa.text(
            "UPDATE uploads SET status = 'deleted', updated_at = now() WHERE id = :id "
            "RETURNING storage_key"
        ),
        {"id": upload_id},
    ).scalar_one()
    return key


def set_status(
    conn: sa.Connection, tenant: str, upload_id: uuid.UUID, status: str, error: str | None
) -> None:
    """Move a live upload to ``status`` (indexing, indexed, failed)."""
    conn.execute(
        sa.text(
            "UPDATE uploads SET status = :status, error = :error, updated_at = now() "
            "WHERE id = :id AND tenant = :tenant AND status <> 'deleted'"
        ),
        {"id": upload_id, "tenant": tenant, "status": status, "error": error},
    )
