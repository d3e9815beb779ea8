"""Uploads: accept a file, store it, record it, and queue the job that indexes it.

    service = UploadService(engine, filestore, settings)
    upload, job = service.accept(principal, fileobj, filename="manual.pdf",
                                 content_type="application/pdf", collection="uploads")
    service.get(tenant, upload.id)          # with its indexing state
    service.delete(tenant, upload.id)       # file, chunks and ledger row go

Every read and write here runs in the tenant's scope (row-level security applies).
The upload's ledger row has ``doc_id`` = the upload id, so a search can be limited to
one upload with the ``document_id`` filter.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import uuid
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any, BinaryIO
from urllib.parse import quote

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from ragline.auth import Principal
from ragline.config import Settings
from ragline.db.tenancy import tenant_scope
from ragline.errors import Conflict, NotFound, UploadRejected
from ragline.ingest.ledger import delete_documents, source_lock_key
from ragline.ingest.parsers import SUPPORTED_SUFFIXES
from ragline.jobs.store import Job, create_job
from ragline.uploads.filestore import FileStore

# The content types accepted for each kind of file; a file whose declared type is
# generic is judged by its name.
_TYPES = {
    "application/pdf": ".pdf",
    "text/html": ".html",
    "application/xhtml+xml": ".html",
    "text/markdown": ".md",
    "text/x-markdown": ".md",
    "text/plain": ".txt",
    "application/json": ".json",
}
_GENERIC = {"", "application/octet-stream", "binary/octet-stream"}
_TEXT_SUFFIXES = {".md", ".markdown", ".txt", ".text", ".rst", ".log"}

UPLOAD_COLUMNS = (
    "u.id, u.collection, u.filename, u.content_type, u.size_bytes, u.sha256, u.metadata, "
    "u.uploaded_by, u.status, u.error, u.job_id, u.created_at, u.updated_at, "
    "d.chunk_count, d.last_error"
)


@dataclass(frozen=True, slots=True)
class Upload:
    id: uuid.UUID
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


def parse_name(filename: str, content_type: str) -> str:
    """The name the parser goes by: the file's own, or one with the suffix of its type.

    Raises ``UploadRejected`` (415) when neither the name nor the type is supported, or
    when they disagree (a PNG named ``.pdf``, say)."""
    media = content_type.split(";", 1)[0].strip().lower()
    suffix = PurePosixPath(filename).suffix.lower()
    expected = _TYPES.get(media)
    supported = ", ".join(sorted(_TYPES))
    if media not in _GENERIC and expected is None:
        raise UploadRejected(
            f"content type {media!r} is not supported; send one of {supported} "
            "(or application/octet-stream with a file name ending in "
            f"{', '.join(sorted(SUPPORTED_SUFFIXES))})",
            status=415,
        )
    if suffix in SUPPORTED_SUFFIXES:
        agrees = (
            expected is None
            or expected == suffix
            or (expected == ".html" and suffix in {".htm", ".xhtml"})
            or (expected in {".txt", ".md"} and suffix in _TEXT_SUFFIXES)
        )
        if not agrees:
            raise UploadRejected(
                f"{filename!r} is sent as {media!r}, which does not match its name; "
                "send the file's own content type",
                status=415,
            )
        return filename
    if expected is None:
        raise UploadRejected(
            f"cannot tell the type of {filename!r}: name it with one of "
            f"{', '.join(sorted(SUPPORTED_SUFFIXES))} or send its content type",
            status=415,
        )
    return filename + expected


def storage_key(tenant: str, upload_id: uuid.UUID) -> str:
    return f"{quote(tenant, safe='')}/{upload_id}"


def upload_source_name(upload_id: uuid.UUID) -> str:
    return f"upload:{upload_id}"


def _has_nul(value: object) -> bool:
    """Whether a JSON-like value holds a NUL character, which PostgreSQL text refuses."""
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    if isinstance(value, list | tuple):
        return any(_has_nul(v) for v in value)
    return False


def _measure(data: BinaryIO, limit: int) -> tuple[int, str]:
    """(size, sha256) of a seekable file, rewound; UploadRejected when over ``limit``."""
    digest = hashlib.sha256()
    size = 0
    while block := data.read(1024 * 1024):
        size += len(block)
        if size > limit:
            raise UploadRejected(
                f"the file is over the upload limit of {limit:,} bytes (RAGLINE_MAX_UPLOAD_BYTES)",
                status=413,
            )
        digest.update(block)
    data.seek(0)
    return size, digest.hexdigest()


class UploadService:
    def __init__(self, engine: Engine, filestore: FileStore, settings: Settings) -> None:
        self.engine = engine
        self.filestore = filestore
        self.settings = settings

    def accept(
        self,
        principal: Principal,
        data: BinaryIO,
        *,
        filename: str,
        content_type: str,
        collection: str,
        metadata: dict[str, Any] | None = None,
    ) -> tuple[Upload, Job]:
        """Store the file and record it with a queued indexing job (not yet dispatched)."""
        filename = PurePosixPath(filename.replace("\\", "/")).name.strip()
        if not filename:
            raise UploadRejected("the upload has no file name")
        if not collection.strip():
            raise UploadRejected("the collection cannot be empty")
        if _has_nul([filename, collection, metadata]):
            raise UploadRejected(
                "the file name, collection and metadata cannot contain NUL (\\u0000) characters",
                status=422,
            )
        parse_name(filename, content_type)
        size, sha256 = _measure(data, self.settings.max_upload_bytes)
        if size == 0:
            raise UploadRejected("the file is empty (0 bytes)")
        upload_id = uuid.uuid4()
        key = storage_key(principal.tenant, upload_id)
        self.filestore.put(key, data)
        try:
            with tenant_scope(self.engine, principal.tenant) as conn:
                job = create_job(
                    conn,
                    tenant=principal.tenant,
                    kind="index_upload",
                    payload={"upload_id": str(upload_id)},
                    max_attempts=self.settings.job_max_attempts,
                )
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
                        "tenant": principal.tenant,
                        "collection": collection,
                        "filename": filename,
                        "content_type": content_type or "application/octet-stream",
                        "size": size,
                        "sha256": sha256,
                        "key": key,
                        "metadata": json.dumps(metadata or {}),
                        "by": principal.key_id,
                        "job": job.id,
                    },
                )
                upload = self._get(conn, upload_id)
        except BaseException:
            self.filestore.delete(key)
            raise
        assert upload is not None
        return upload, job

    def get(self, tenant: str, upload_id: uuid.UUID) -> Upload:
        with tenant_scope(self.engine, tenant) as conn:
            upload = self._get(conn, upload_id)
        if upload is None or upload.status == "deleted":
            raise NotFound(f"no document {upload_id}")
        return upload

    def list(
        self, tenant: str, *, collection: str | None = None, limit: int = 50, offset: int = 0
    ) -> list[Upload]:
        with tenant_scope(self.engine, tenant) as conn:
            rows = conn.execute(
                sa.text(
                    f"""
                    SELECT {UPLOAD_COLUMNS} FROM uploads u
                    LEFT JOIN documents d ON d.tenant = u.tenant
                         AND d.collection = u.collection AND d.doc_id = u.id::text
                    WHERE u.status <> 'deleted'
                      AND (CAST(:collection AS text) IS NULL OR u.collection = :collection)
                    ORDER BY u.created_at DESC, u.id LIMIT :limit OFFSET :offset
                    """
                ),
                {"collection": collection, "limit": limit, "offset": offset},
            ).mappings()
            return [Upload(**row) for row in rows]

    def delete(self, tenant: str, upload_id: uuid.UUID) -> None:
        """Remove the file, the chunks and the upload; the ledger row is kept, deleted.
        Refused (Conflict) while the upload's indexing job holds its lock."""
        with tenant_scope(self.engine, tenant) as conn:
            upload = self._get(conn, upload_id, lock=True)
            if upload is None or upload.status == "deleted":
                raise NotFound(f"no document {upload_id}")
            key = source_lock_key(tenant, upload.collection, upload_source_name(upload_id))
            locked = conn.execute(
                sa.text("SELECT pg_try_advisory_xact_lock(hashtextextended(:key, 0))"),
                {"key": key},
            ).scalar_one()
            if not locked:
                raise Conflict(
                    f"document {upload_id} is being indexed; delete it once its job "
                    f"{upload.job_id} has finished"
                )
            ids = conn.execute(
                sa.text(
                    "SELECT id FROM documents WHERE collection = :c AND doc_id = :d "
                    "AND status <> 'deleted'"
                ),
                {"c": upload.collection, "d": str(upload_id)},
            ).scalars()
            delete_documents(conn, list(ids))
            conn.execute(
                sa.text("UPDATE uploads SET status = 'deleted', updated_at = now() WHERE id = :id"),
                {"id": upload_id},
            )
            storage = conn.execute(
                sa.text("SELECT storage_key FROM uploads WHERE id = :id"), {"id": upload_id}
            ).scalar_one()
        self.filestore.delete(storage)

    @staticmethod
    def _get(conn: sa.Connection, upload_id: uuid.UUID, *, lock: bool = False) -> Upload | None:
        row = (
            conn.execute(
                sa.text(
                    f"""
                    SELECT {UPLOAD_COLUMNS} FROM uploads u
                    LEFT JOIN documents d ON d.tenant = u.tenant
                         AND d.collection = u.collection AND d.doc_id = u.id::text
                    WHERE u.id = :id {"FOR UPDATE OF u" if lock else ""}
                    """
                ),
                {"id": upload_id},
            )
            .mappings()
            .first()
        )
        return Upload(**row) if row is not None else None
