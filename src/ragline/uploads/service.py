"""Uploads: accept a file, store it, record it, and queue the job that indexes it.

    service = UploadService(engine, filestore, settings, dispatcher)
    upload, job = service.accept(principal, fileobj, filename="manual.pdf",
                                 content_type="application/pdf", collection="uploads")
    service.get(principal, upload.id)       # with its indexing state
    service.delete(principal, upload.id)    # its job cancelled; file, chunks and ledger row go

Every read and write here runs in the tenant's scope (row-level security applies).
The upload's ledger row has ``doc_id`` = the upload id, so a search can be limited to
one upload with the ``document_id`` filter.
"""

from __future__ import annotations

import hashlib
import time
import uuid
from pathlib import PurePosixPath
from typing import Any, BinaryIO

from sqlalchemy import Connection
from sqlalchemy.engine import Engine

from ragline.audit import record
from ragline.auth import Principal
from ragline.config import Settings
from ragline.db.locks import try_xact_lock
from ragline.db.tenancy import tenant_scope
from ragline.errors import (
    Conflict,
    InvalidInput,
    JobQueueUnavailable,
    NotFound,
    UploadRejected,
    UploadTooLarge,
)
from ragline.ingest.ledger import delete_documents, document_ids, source_lock_key
from ragline.jobs.dispatch import Dispatcher
from ragline.jobs.store import Job, JobStore, create_job, request_cancel
from ragline.uploads.filestore import FileStore
from ragline.uploads.jobs import INDEX_UPLOAD
from ragline.uploads.metadata import check_metadata
from ragline.uploads.names import parse_name, storage_key, upload_source_name
from ragline.uploads.store import Upload, get_upload, insert_upload, list_uploads, mark_deleted

# How long a deletion waits for the indexing job it cancelled to let go of the document.
CANCEL_WAIT_SECONDS = 10.0


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
    """(size, sha256) of a seekable file, rewound; UploadTooLarge when over ``limit``."""
    digest = hashlib.sha256()
    size = 0
    while block := data.read(1024 * 1024):
        size += len(block)
        if size > limit:
            raise UploadTooLarge(
                f"the file is over the upload limit of {limit:,} bytes (RAGLINE_MAX_UPLOAD_BYTES)"
            )
        digest.update(block)
    data.seek(0)
    return size, digest.hexdigest()


class UploadService:
    """Uploads as a caller may see and change them: each method checks the caller's
    role (reader to read, writer to upload or delete) and works in its tenant only."""

    def __init__(
        self, engine: Engine, filestore: FileStore, settings: Settings, dispatcher: Dispatcher
    ) -> None:
        self.engine = engine
        self.filestore = filestore
        self.settings = settings
        self.dispatcher = dispatcher

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
        """Store the file, record it with a queued indexing job, and hand the job to the
        runner. When the job queue cannot take it, the job is failed with the reason and
        ``JobQueueUnavailable`` raised: the upload stays recorded, its job failed."""
        principal.require("writer")
        upload, job = self._store(
            principal, data, filename, content_type, collection, metadata or {}
        )
        try:
            self.dispatcher.dispatch(job)
        except JobQueueUnavailable as e:
            JobStore(self.engine).fail(job.id, str(e))
            raise
        return upload, job

    def _store(
        self,
        principal: Principal,
        data: BinaryIO,
        filename: str,
        content_type: str,
        collection: str,
        metadata: dict[str, Any],
    ) -> tuple[Upload, Job]:
        filename = PurePosixPath(filename.replace("\\", "/")).name.strip()
        if not filename:
            raise UploadRejected("the upload has no file name")
        if not collection.strip():
            raise UploadRejected("the collection cannot be empty")
        if _has_nul([filename, collection, metadata]):
            raise InvalidInput(
                "the file name, collection and metadata cannot contain NUL (\\u0000) characters"
            )
        check_metadata(metadata)
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
                    kind=INDEX_UPLOAD.name,
                    queue=INDEX_UPLOAD.queue,
                    payload={"upload_id": str(upload_id)},
                    max_attempts=self.settings.job_max_attempts,
                )
                upload = insert_upload(
                    conn,
                    upload_id=upload_id,
                    tenant=principal.tenant,
                    collection=collection,
                    filename=filename,
                    content_type=content_type or "application/octet-stream",
                    size=size,
                    sha256=sha256,
                    storage_key=key,
                    metadata=metadata,
                    uploaded_by=principal.key_id,
                    job_id=job.id,
                )
        except BaseException:
            self.filestore.delete(key)
            raise
        return upload, job

    def get(self, principal: Principal, upload_id: uuid.UUID) -> Upload:
        principal.require("reader")
        with tenant_scope(self.engine, principal.tenant) as conn:
            upload = get_upload(conn, upload_id)
        if upload is None or upload.status == "deleted":
            raise NotFound(f"no document {upload_id}")
        return upload

    def listing(
        self,
        principal: Principal,
        *,
        collection: str | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> list[Upload]:
        principal.require("reader")
        with tenant_scope(self.engine, principal.tenant) as conn:
            return list_uploads(conn, collection=collection, limit=limit, offset=offset)

    def delete(self, principal: Principal, upload_id: uuid.UUID) -> None:
        """Cancel the upload's indexing job if it waits or runs, then remove the file,
        the chunks and the upload; the ledger row is kept, deleted. A running job is
        waited for (it stops at its next checkpoint, within seconds); Conflict when it
        still holds the document after ``CANCEL_WAIT_SECONDS``."""
        principal.require("writer")
        tenant = principal.tenant
        with tenant_scope(self.engine, tenant) as conn:
            upload = get_upload(conn, upload_id)
            if upload is None or upload.status == "deleted":
                raise NotFound(f"no document {upload_id}")
            job = None
            if upload.job_id is not None:
                reason = f"cancelled: its document was deleted by {principal.actor}"
                job = request_cancel(conn, upload.job_id, reason)
        wait = CANCEL_WAIT_SECONDS if job is not None and job.status == "running" else 0.0
        key = source_lock_key(tenant, upload.collection, upload_source_name(upload_id))
        with tenant_scope(self.engine, tenant) as conn:
            if not _lock_within(conn, key, wait):
                asked = " was asked to stop, and" if wait else ""
                raise Conflict(
                    f"document {upload_id} is being indexed: its job {upload.job_id}{asked} "
                    "still holds it; delete the document again once the job has ended"
                )
            upload = get_upload(conn, upload_id, lock=True)
            if upload is None or upload.status == "deleted":
                raise NotFound(f"no document {upload_id}")
            delete_documents(conn, document_ids(conn, upload.collection, [str(upload_id)]))
            storage = mark_deleted(conn, upload_id)
            record(
                conn,
                tenant=tenant,
                actor=principal.actor,
                action="document.delete",
                target=str(upload_id),
                details={"collection": upload.collection, "filename": upload.filename},
            )
        self.filestore.delete(storage)


def _lock_within(conn: Connection, key: str, seconds: float) -> bool:
    """Take the document's lock for ``conn``'s transaction, waiting up to ``seconds``."""
    deadline = time.monotonic() + seconds
    while not try_xact_lock(conn, key):
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.1)
    return True
