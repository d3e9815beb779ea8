"""What each kind of job does, and how a job's attempt ends. Shared by the Celery
worker and the in-process runner: both call ``JobExecutor.execute``.

    executor = JobExecutor(settings)
    retry_in = executor.execute(job)     # None: finished (succeeded or failed)

Transient errors (the database or the file store unreachable, the document's lock
held by another attempt) are retried with exponential backoff up to the job's
``max_attempts``; any other error fails the job with its reason.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from functools import cached_property
from typing import Any

import sqlalchemy as sa
import structlog
from sqlalchemy.engine import Engine

from ragline.config import Settings
from ragline.db.engine import get_engine
from ragline.domain import Outcome
from ragline.errors import RaglineError, SourceUnavailable, SyncInProgress, TransientJobError
from ragline.ingest.pipeline import Pipeline
from ragline.jobs.store import Job, JobStore
from ragline.logs import get_logger
from ragline.metrics import JOBS_FINISHED
from ragline.notify import Notifier
from ragline.uploads.filestore import FileStore, get_filestore
from ragline.uploads.source import UploadSource

log = get_logger(__name__)

TRANSIENT = (
    TransientJobError,
    SourceUnavailable,
    SyncInProgress,
    sa.exc.OperationalError,
    sa.exc.InterfaceError,
)


class JobFailed(RaglineError):
    """The job ran to its end and failed for a reason that retrying will not change."""

    def __init__(self, reason: str, result: dict[str, Any]) -> None:
        super().__init__(reason)
        self.result = result


class JobProgress:
    """The pipeline's progress, written to the job at most once a second."""

    def __init__(self, jobs: JobStore, job_id: uuid.UUID) -> None:
        self.jobs = jobs
        self.job_id = job_id
        self.total = 0
        self.done = 0
        self.written_at = 0.0

    def started(self, total: int) -> None:
        self.total = total

    def item_started(self, doc_id: str) -> None:
        pass

    def item_done(self, doc_id: str, outcome: Outcome) -> None:
        self.done += 1
        now = time.monotonic()
        if self.total and (now - self.written_at >= 1 or self.done == self.total):
            self.written_at = now
            self.jobs.progress(self.job_id, self.done / self.total)


class JobExecutor:
    """Runs jobs in this process; the pipeline (and its model) loads on first use."""

    def __init__(self, settings: Settings, engine: Engine | None = None) -> None:
        self.settings = settings
        self._engine = engine

    @cached_property
    def engine(self) -> Engine:
        return self._engine or get_engine(self.settings)

    @cached_property
    def jobs(self) -> JobStore:
        return JobStore(self.engine)

    @cached_property
    def pipeline(self) -> Pipeline:
        return Pipeline.from_settings(self.settings)

    @cached_property
    def notifier(self) -> Notifier:
        return Notifier.from_settings(self.settings)

    @cached_property
    def filestore(self) -> FileStore:
        return get_filestore(self.settings)

    def backoff(self, attempts: int) -> float:
        delay = self.settings.job_retry_backoff * 2 ** max(0, attempts - 1)
        return float(min(self.settings.job_retry_backoff_max, delay))

    def execute_id(self, job_id: uuid.UUID, *, worker: str) -> float | None:
        """Begin and run the job ``job_id`` (a delivered message). None when it has
        finished, or had already: a duplicate delivery does nothing."""
        job = self.jobs.begin(job_id, worker=worker)
        if job is None:
            log.info("job_skipped", job_id=str(job_id), reason="finished or unknown")
            return None
        return self.execute(job)

    def execute(self, job: Job) -> float | None:
        """Run a job that has begun; returns the delay before a retry, or None. Every
        log line written meanwhile, by this thread, carries the job id and tenant."""
        with structlog.contextvars.bound_contextvars(
            job_id=str(job.id), tenant=job.tenant, kind=job.kind
        ):
            return self._execute(job)

    def _execute(self, job: Job) -> float | None:
        handler = HANDLERS.get(job.kind)
        started = time.perf_counter()
        try:
            if handler is None:
                raise JobFailed(f"unknown job kind {job.kind!r}", {})
            log.info("job_started", attempt=job.attempts)
            result = handler(self, job)
        except TRANSIENT as e:
            reason = f"{type(e).__name__}: {e}"
            delay = self.backoff(job.attempts)
            if self.jobs.retry_later(job.id, reason, delay):
                log.warning("job_retrying", attempt=job.attempts, delay=delay, reason=reason)
                JOBS_FINISHED.labels(kind=job.kind, status="retrying").inc()
                return delay
            log.error("job_failed", attempt=job.attempts, reason=reason)
            JOBS_FINISHED.labels(kind=job.kind, status="failed").inc()
            return None
        except JobFailed as e:
            self.jobs.fail(job.id, str(e), e.result)
            log.warning("job_failed", reason=str(e))
            JOBS_FINISHED.labels(kind=job.kind, status="failed").inc()
            return None
        except Exception as e:
            reason = (
                str(e) if isinstance(e, RaglineError) else f"unexpected {type(e).__name__}: {e}"
            )
            if not isinstance(e, RaglineError):
                log.error("job_crashed", exc_info=e)
            self.jobs.fail(job.id, reason)
            JOBS_FINISHED.labels(kind=job.kind, status="failed").inc()
            return None
        self.jobs.succeed(job.id, result)
        JOBS_FINISHED.labels(kind=job.kind, status="succeeded").inc()
        log.info("job_succeeded", seconds=round(time.perf_counter() - started, 3))
        return None


def index_upload(executor: JobExecutor, job: Job) -> dict[str, Any]:
    """Parse, chunk, embed and index one uploaded file (or remove it, if deleted)."""
    upload_id = uuid.UUID(job.payload["upload_id"])
    engine = executor.engine
    _set_upload_status(engine, job.tenant, upload_id, "indexing", None)
    with engine.connect() as conn:
        collection = conn.execute(
            sa.text("SELECT collection FROM uploads WHERE id = :id AND tenant = :tenant"),
            {"id": upload_id, "tenant": job.tenant},
        ).scalar()
    if collection is None:
        raise JobFailed(f"upload {upload_id} does not exist", {})
    source = UploadSource(engine, executor.filestore, tenant=job.tenant, upload_id=upload_id)
    report = executor.pipeline.sync(
        source,
        collection=collection,
        tenant=job.tenant,
        progress=JobProgress(executor.jobs, job.id),
    )
    result = report.as_dict()
    if report.failures:
        reason = report.failures[0].reason
        _set_upload_status(engine, job.tenant, upload_id, "failed", reason)
        raise JobFailed(reason, result)
    _set_upload_status(engine, job.tenant, upload_id, "indexed", None)
    return result


def _set_upload_status(
    engine: Engine, tenant: str, upload_id: uuid.UUID, status: str, error: str | None
) -> None:
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "UPDATE uploads SET status = :status, error = :error, updated_at = now() "
                "WHERE id = :id AND tenant = :tenant AND status <> 'deleted'"
            ),
            {"id": upload_id, "tenant": tenant, "status": status, "error": error},
        )


def sync_source(executor: JobExecutor, job: Job) -> dict[str, Any]:
    """One run of a configured source (see ``ragline.sources.service``)."""
    from ragline.sources.service import sync_source as run

    return run(executor, job)


HANDLERS: dict[str, Callable[[JobExecutor, Job], dict[str, Any]]] = {
    "index_upload": index_upload,
    "sync_source": sync_source,
}
