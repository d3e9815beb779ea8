"""The ``index_upload`` job: parse, chunk, embed and index one uploaded file (or
remove it, once deleted), on the ``ingest`` queue."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy.engine import Engine

from ragline.config import Settings
from ragline.errors import JobFailed, is_transient
from ragline.ingest.pipeline import shared_pipeline
from ragline.jobs.executor import JobExecutor, JobKind
from ragline.jobs.store import Job
from ragline.uploads.filestore import FileStore, get_filestore
from ragline.uploads.source import UploadSource
from ragline.uploads.store import get_upload, set_status


def _filestore(settings: Settings, engine: Engine) -> FileStore:
    return get_filestore(settings)


def index_upload(executor: JobExecutor, job: Job) -> dict[str, Any]:
    upload_id = uuid.UUID(job.payload["upload_id"])
    engine = executor.engine
    with engine.begin() as conn:
        upload = get_upload(conn, upload_id)
        if upload is None or upload.tenant != job.tenant:
            raise JobFailed(f"upload {upload_id} does not exist")
        set_status(conn, job.tenant, upload_id, "indexing", None)
    source = UploadSource(
        engine, executor.shared(_filestore), tenant=job.tenant, upload_id=upload_id
    )
    try:
        report = executor.shared(shared_pipeline).sync(
            source,
            collection=upload.collection,
            tenant=job.tenant,
            progress=executor.progress(job),
        )
    except Exception as e:
        # Stopped (cancelled, past its time limit) or failed for good: say so on the
        # upload too; a transient error leaves it indexing, to be retried.
        if not is_transient(e):
            with engine.begin() as conn:
                set_status(conn, job.tenant, upload_id, "failed", str(e) or type(e).__name__)
        raise
    result = report.as_dict()
    status, error = ("indexed", None)
    if report.failures:
        status, error = "failed", report.failures[0].reason
    with engine.begin() as conn:
        set_status(conn, job.tenant, upload_id, status, error)
    if error is not None:
        raise JobFailed(error, result)
    return result


INDEX_UPLOAD = JobKind("index_upload", queue="ingest", handler=index_upload)
