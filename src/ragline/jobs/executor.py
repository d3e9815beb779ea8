"""Running jobs: how an attempt ends, whoever runs it. Shared by the Celery worker and
the in-process runner: both call ``JobExecutor.execute``.

    executor = JobExecutor(settings, kinds=[INDEX_UPLOAD, SYNC_SOURCE])
    retry_in = executor.execute(job)     # None: finished (succeeded or failed)

The executor knows no kind of job itself: each layer that owns one declares a
``JobKind`` (its name, queue and handler), and the process that runs jobs passes the
kinds it runs. Transient errors (``ragline.errors.is_transient``: the database or a
source unreachable, a lock held) are retried with exponential backoff up to the
job's ``max_attempts``; any other error fails the job with its reason.

Each job runs under a ``ragline.cancel.Watch``: past RAGLINE_JOB_TIME_LIMIT its next
checkpoint stops it and it fails (not retried); asked to stop, it ends ``cancelled``.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import cached_property
from typing import Any, TypeVar

import structlog
from sqlalchemy.engine import Engine

from ragline.cancel import Watch, watching
from ragline.config import Settings
from ragline.db.engine import get_engine
from ragline.errors import Cancelled, JobFailed, RaglineError, TimeLimitExceeded, is_transient
from ragline.jobs.store import Job, JobStore
from ragline.jobs.watcher import RunningJobs
from ragline.logs import get_logger
from ragline.metrics import JOBS_FINISHED
from ragline.retry import Backoff

log = get_logger(__name__)

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class JobKind:
    """A kind of job: ``handler(executor, job)`` does one attempt and returns the
    job's result; it raises ``JobFailed`` for a failure retrying will not change."""

    name: str
    queue: str
    handler: Callable[[JobExecutor, Job], dict[str, Any]]


class JobProgress:
    """A job's progress through ``total`` items, written at most once a second."""

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

    def item_done(self, doc_id: str, outcome: object) -> None:
        self.done += 1
        now = time.monotonic()
        if self.total and (now - self.written_at >= 1 or self.done == self.total):
            self.written_at = now
            self.jobs.progress(self.job_id, self.done / self.total)


class JobExecutor:
    """Runs jobs of ``kinds`` in this process. What handlers share (a pipeline and its
    model, a file store) is built on first use by ``shared``. Requests to stop a
    running job are looked for every ``cancel_poll`` seconds."""

    def __init__(
        self,
        settings: Settings,
        engine: Engine | None = None,
        *,
        kinds: Iterable[JobKind],
        cancel_poll: float = 1.0,
    ) -> None:
        self.settings = settings
        self._engine = engine
        self.kinds = {kind.name: kind for kind in kinds}
        self.cancel_poll = cancel_poll
        self._shared: dict[Callable[..., Any], Any] = {}
        self._shared_lock = threading.Lock()

    @cached_property
    def engine(self) -> Engine:
        return self._engine or get_engine(self.settings)

    @cached_property
    def jobs(self) -> JobStore:
        return JobStore(self.engine)

    @cached_property
    def running(self) -> RunningJobs:
        """The jobs this executor runs now, their heartbeat and cancellation watched."""
        return RunningJobs(
            self.jobs,
            poll=self.cancel_poll,
            heartbeat_every=max(0.5, self.settings.job_lease_seconds / 3),
        )

    @property
    def backoff_policy(self) -> Backoff:
        return Backoff(
            first=self.settings.job_retry_backoff, cap=self.settings.job_retry_backoff_max
        )

    def shared(self, build: Callable[[Settings, Engine], T]) -> T:
        """``build(settings, engine)``, built once per executor and shared by its jobs."""
        with self._shared_lock:
            if build not in self._shared:
                self._shared[build] = build(self.settings, self.engine)
            value: T = self._shared[build]
            return value

    def progress(self, job: Job) -> JobProgress:
        return JobProgress(self.jobs, job.id)

    def backoff(self, attempts: int) -> float:
        return self.backoff_policy.delay(attempts)

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
        limit = self.settings.job_time_limit
        watch = Watch.limit(
            limit,
            lambda: TimeLimitExceeded(
                f"the job ran past its time limit of {limit} s (RAGLINE_JOB_TIME_LIMIT); "
                "split the work or raise the limit"
            ),
        )
        with (
            structlog.contextvars.bound_contextvars(
                job_id=str(job.id), tenant=job.tenant, kind=job.kind
            ),
            self.running.watch(job.id, watch),
            watching(watch),
        ):
            return self._execute(job, watch)

    def _execute(self, job: Job, watch: Watch) -> float | None:
        kind = self.kinds.get(job.kind)
        started = time.perf_counter()
        try:
            if kind is None:
                raise JobFailed(f"unknown job kind {job.kind!r}")
            log.info("job_started", attempt=job.attempts)
            result = kind.handler(self, job)
        except Exception as e:
            # However the handler reported it, a job stopped by its watch ends for that
            # reason: cancelled, or failed for its time limit, and never retried.
            partial = e.result if isinstance(e, JobFailed) else None
            if watch.cancelled or isinstance(e, Cancelled):
                self._cancel(job, watch.reason if watch.cancelled else str(e), partial, started)
                return None
            if watch.expired:
                self._fail(job, str(watch.error()), partial)
                return None
            if isinstance(e, JobFailed):
                self._fail(job, str(e), e.result)
                return None
            if is_transient(e):
                return self._retry(job, f"{type(e).__name__}: {e}")
            if not isinstance(e, RaglineError):
                log.error("job_crashed", exc_info=e)
            reason = (
                str(e) if isinstance(e, RaglineError) else f"unexpected {type(e).__name__}: {e}"
            )
            self._fail(job, reason, None)
            return None
        self.jobs.succeed(job.id, result)
        JOBS_FINISHED.labels(kind=job.kind, status="succeeded").inc()
        log.info("job_succeeded", seconds=round(time.perf_counter() - started, 3))
        return None

    def _retry(self, job: Job, reason: str) -> float | None:
        delay = self.backoff(job.attempts)
        if self.jobs.retry_later(job.id, reason, delay):
            log.warning("job_retrying", attempt=job.attempts, delay=delay, reason=reason)
            JOBS_FINISHED.labels(kind=job.kind, status="retrying").inc()
            return delay
        log.error("job_failed", attempt=job.attempts, reason=reason)
        JOBS_FINISHED.labels(kind=job.kind, status="failed").inc()
        return None

    def _cancel(self, job: Job, reason: str, result: dict[str, Any] | None, started: float) -> None:
        self.jobs.cancel(job.id, reason, result)
        log.info("job_cancelled", reason=reason, seconds=round(time.perf_counter() - started, 3))
        JOBS_FINISHED.labels(kind=job.kind, status="cancelled").inc()

    def _fail(self, job: Job, reason: str, result: dict[str, Any] | None) -> None:
        self.jobs.fail(job.id, reason, result)
        log.warning("job_failed", reason=reason)
        JOBS_FINISHED.labels(kind=job.kind, status="failed").inc()
