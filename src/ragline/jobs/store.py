"""Durable job state in PostgreSQL: the record the API reads, whoever runs the job.

    job = create_job(conn, tenant="acme", kind="index_upload", payload={...}, max_attempts=5)
    jobs = JobStore(engine)
    job = jobs.begin(job.id, worker="celery@host")   # None once it has finished
    jobs.succeed(job.id, result={...})

A job is queued, running, succeeded, failed, cancelled, or retrying (waiting to run
again after a transient error). Every start counts an attempt, a start that a stopped
worker never finished included: after ``max_attempts`` a transient error, or one more
interruption, fails the job for good. ``request_cancel`` cancels a waiting job at once
and asks whoever runs a running one to stop it (``cancel_requests``).
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from dataclasses import dataclass
from typing import Any, Literal

import sqlalchemy as sa
from sqlalchemy.engine import Engine

JobStatus = Literal["queued", "running", "succeeded", "failed", "retrying", "cancelled"]
JOB_STATES: tuple[JobStatus, ...] = (
    "queued",
    "running",
    "succeeded",
    "failed",
    "retrying",
    "cancelled",
)
FINISHED: tuple[JobStatus, ...] = ("succeeded", "failed", "cancelled")

# Each kind of job names the queue it runs on, so that a backlog of one kind (a big
# scheduled sync) does not hold up another (a user waiting on an upload). Workers
# consume these queues; a deployment can run workers per queue.
QUEUES = ("ingest", "sync", "default")
DEFAULT_QUEUE = "default"

_COLUMNS = (
    "id, tenant, kind, queue, payload, status, progress, attempts, max_attempts, error, "
    "result, worker, created_at, started_at, finished_at, updated_at"
)


@dataclass(frozen=True, slots=True)
class Job:
    id: uuid.UUID
    tenant: str
    kind: str
    queue: str
    payload: dict[str, Any]
    status: JobStatus
    progress: float
    attempts: int
    max_attempts: int
    error: str | None
    result: dict[str, Any] | None
    worker: str | None
    created_at: dt.datetime
    started_at: dt.datetime | None
    finished_at: dt.datetime | None
    updated_at: dt.datetime

    def as_dict(self) -> dict[str, Any]:
        def iso(value: dt.datetime | None) -> str | None:
            return value.isoformat() if value is not None else None

        return {
            "id": str(self.id),
            "kind": self.kind,
            "queue": self.queue,
            "status": self.status,
            "progress": round(self.progress, 4),
            "attempts": self.attempts,
            "max_attempts": self.max_attempts,
            "error": self.error,
            "result": self.result,
            "created_at": iso(self.created_at),
            "started_at": iso(self.started_at),
            "finished_at": iso(self.finished_at),
            "updated_at": iso(self.updated_at),
        }


def _job(row: Any) -> Job:
    return Job(**row)


# The reason a job fails with when its worker stopped while running its last attempt.
_INTERRUPTED = (
    "'interrupted ' || attempts || ' times (its worker stopped while running it); it is "
    "not run again: find out what stops the worker (memory, a time limit, a restart) "
    "before queueing it again' || coalesce('; last error: ' || error, '')"
)


def create_job(
    conn: sa.Connection,
    *,
    tenant: str,
    kind: str,
    queue: str,
    payload: dict[str, Any],
    max_attempts: int,
) -> Job:
    """Insert a queued job in the caller's transaction (commit it before dispatching)."""
    row = conn.execute(
        sa.text(
            f"""
            INSERT INTO jobs (id, tenant, kind, queue, payload, status, max_attempts)
            VALUES (:id, :tenant, :kind, :queue, CAST(:payload AS jsonb), 'queued', :max)
            RETURNING {_COLUMNS}
            """
        ),
        {
            "id": uuid.uuid4(),
            "tenant": tenant,
            "kind": kind,
            "queue": queue,
            "payload": json.dumps(payload),
            "max": max_attempts,
        },
    ).mappings()
    return _job(row.one())


def get_job(conn: sa.Connection, job_id: uuid.UUID) -> Job | None:
    row = conn.execute(
        sa.text(f"SELECT {_COLUMNS} FROM jobs WHERE id = :id"), {"id": job_id}
    ).mappings()
    found = row.first()
    return _job(found) if found is not None else None


def find_queued(
    conn: sa.Connection,
    *,
    kind: str,
    tenant: str,
    payload: dict[str, Any],
    key: str,
    has_key: bool,
) -> Job | None:
    """The oldest job of ``kind`` still waiting to start whose payload contains
    ``payload`` and has (or lacks) ``key``, locked for the caller's transaction."""
    row = conn.execute(
        sa.text(
            f"""
            SELECT {_COLUMNS} FROM jobs
            WHERE kind = :kind AND tenant = :tenant AND status = 'queued'
              AND payload @> CAST(:payload AS jsonb) AND (payload ? CAST(:key AS text)) = :has_key
            ORDER BY created_at LIMIT 1
            FOR UPDATE
            """
        ),
        {
            "kind": kind,
            "tenant": tenant,
            "payload": json.dumps(payload),
            "key": key,
            "has_key": has_key,
        },
    ).mappings()
    found = row.first()
    return _job(found) if found is not None else None


def extend_payload(conn: sa.Connection, job_id: uuid.UUID, key: str, values: list[Any]) -> Job:
    """Append ``values`` to the list ``payload[key]`` of a job that has not started."""
    row = conn.execute(
        sa.text(
            f"""
            UPDATE jobs SET payload = jsonb_set(payload, ARRAY[CAST(:key AS text)],
                coalesce(payload->CAST(:key AS text), '[]'::jsonb) || CAST(:values AS jsonb)),
                updated_at = now()
            WHERE id = :id
            RETURNING {_COLUMNS}
            """
        ),
        {"id": job_id, "key": key, "values": json.dumps(values)},
    ).mappings()
    return _job(row.one())


def waiting_by(
    conn: sa.Connection, *, kind: str, key: str, items: str
) -> dict[str, tuple[int, int]]:
    """For jobs of ``kind`` not finished yet, grouped by ``payload[key]``: how many
    there are, and how many entries their ``payload[items]`` lists hold together."""
    rows = conn.execute(
        sa.text(
            """
            SELECT payload->>CAST(:key AS text) AS ref, count(*) AS jobs,
                   coalesce(sum(CASE WHEN payload ? CAST(:items AS text)
                                THEN jsonb_array_length(payload->CAST(:items AS text)) END),
                            0) AS items
            FROM jobs
            WHERE kind = :kind AND status IN ('queued', 'retrying', 'running')
            GROUP BY 1
            """
        ),
        {"kind": kind, "key": key, "items": items},
    ).all()
    return {str(ref): (int(jobs), int(count)) for ref, jobs, count in rows}


def request_cancel(conn: sa.Connection, job_id: uuid.UUID, reason: str) -> Job | None:
    """Cancel a job that waits to run, at once; record a request to stop a running one
    (whoever runs it stops it within about a second, at its next checkpoint). In the
    caller's transaction; returns the job as it now is (a finished one unchanged), None
    when there is no such job."""
    row = conn.execute(
        sa.text(
            f"""
            UPDATE jobs SET
                status = CASE WHEN status = 'running' THEN status ELSE 'cancelled' END,
                error = CASE WHEN status = 'running' THEN error ELSE :reason END,
                finished_at = CASE WHEN status = 'running' THEN finished_at ELSE now() END,
                cancel_requested_at = coalesce(cancel_requested_at, now()),
                cancel_reason = coalesce(cancel_reason, :reason),
                updated_at = now()
            WHERE id = :id AND status IN ('queued', 'retrying', 'running')
            RETURNING {_COLUMNS}
            """
        ),
        {"id": job_id, "reason": reason},
    ).mappings()
    found = row.first()
    return _job(found) if found is not None else get_job(conn, job_id)


def list_jobs(
    conn: sa.Connection, *, status: JobStatus | None = None, limit: int = 50
) -> list[Job]:
    rows = conn.execute(
        sa.text(
            f"SELECT {_COLUMNS} FROM jobs WHERE CAST(:status AS text) IS NULL OR status = :status "
            "ORDER BY created_at DESC LIMIT :limit"
        ),
        {"status": status, "limit": limit},
    ).mappings()
    return [_job(row) for row in rows]


class JobStore:
    """The state transitions of jobs, for whoever runs them (not tenant-scoped)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def _update(self, sql: str, params: dict[str, Any]) -> Job | None:
        with self.engine.begin() as conn:
            row = conn.execute(sa.text(sql + f" RETURNING {_COLUMNS}"), params).mappings().first()
        return _job(row) if row is not None else None

    def begin(self, job_id: uuid.UUID, *, worker: str) -> Job | None:
        """Start an attempt. None when the job is unknown or already finished (a
        duplicate delivery). A job marked running was interrupted: it runs again, unless
        it was asked to stop (it ends cancelled) or has used its attempts (it fails)."""
        self._update(
            f"""
            UPDATE jobs SET
                status = CASE WHEN cancel_requested_at IS NULL THEN 'failed'
                              ELSE 'cancelled' END,
                error = CASE WHEN cancel_requested_at IS NULL THEN {_INTERRUPTED}
                             ELSE cancel_reason END,
                finished_at = now(), updated_at = now()
            WHERE id = :id AND status = 'running'
              AND (cancel_requested_at IS NOT NULL OR attempts >= max_attempts)
            """,
            {"id": job_id},
        )
        return self._update(
            """
            UPDATE jobs SET status = 'running', attempts = attempts + 1, worker = :worker,
                started_at = now(), heartbeat_at = now(), updated_at = now()
            WHERE id = :id AND status IN ('queued', 'retrying', 'running')
            """,
            {"id": job_id, "worker": worker},
        )

    def claim_next(self, *, worker: str) -> Job | None:
        """Start the next due job, if any; concurrent claimers never get the same one."""
        return self._update(
            """
            UPDATE jobs SET status = 'running', attempts = attempts + 1, worker = :worker,
                started_at = now(), heartbeat_at = now(), updated_at = now()
            WHERE id = (
                SELECT id FROM jobs
                WHERE status IN ('queued', 'retrying') AND run_after <= now()
                ORDER BY run_after, created_at
                FOR UPDATE SKIP LOCKED LIMIT 1
            )
            """,
            {"worker": worker},
        )

    def progress(self, job_id: uuid.UUID, value: float) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                sa.text(
                    "UPDATE jobs SET progress = :p, heartbeat_at = now(), updated_at = now() "
                    "WHERE id = :id AND status = 'running'"
                ),
                {"id": job_id, "p": max(0.0, min(1.0, value))},
            )

    def succeed(self, job_id: uuid.UUID, result: dict[str, Any]) -> None:
        self._finish(job_id, "succeeded", None, result)

    def fail(self, job_id: uuid.UUID, error: str, result: dict[str, Any] | None = None) -> None:
        self._finish(job_id, "failed", error, result)

    def cancel(self, job_id: uuid.UUID, reason: str, result: dict[str, Any] | None = None) -> None:
        self._finish(job_id, "cancelled", reason, result)

    def _finish(self, job_id: uuid.UUID, status: JobStatus, error: str | None, result: Any) -> None:
        self._update(
            """
            UPDATE jobs SET status = :status, error = :error, result = CAST(:result AS jsonb),
                progress = CASE WHEN :status = 'succeeded' THEN 1 ELSE progress END,
                finished_at = now(), updated_at = now()
            WHERE id = :id
            """,
            {"id": job_id, "status": status, "error": error, "result": json.dumps(result)},
        )

    def retry_later(self, job_id: uuid.UUID, error: str, delay: float) -> bool:
        """Schedule another attempt after ``delay`` seconds; when no attempt is left, fail
        the job instead. Returns whether it will be retried."""
        job = self._update(
            """
            UPDATE jobs SET
                status = CASE WHEN attempts < max_attempts THEN 'retrying' ELSE 'failed' END,
                error = :error, run_after = now() + make_interval(secs => :delay),
                finished_at = CASE WHEN attempts < max_attempts THEN NULL ELSE now() END,
                updated_at = now()
            WHERE id = :id
            """,
            {"id": job_id, "error": error, "delay": delay},
        )
        return job is not None and job.status == "retrying"

    def cancel_requests(self, job_ids: list[uuid.UUID]) -> dict[uuid.UUID, str]:
        """Of the running jobs ``job_ids``, those asked to stop, with the reason."""
        if not job_ids:
            return {}
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.text(
                    "SELECT id, cancel_reason FROM jobs WHERE id = ANY(:ids) "
                    "AND status = 'running' AND cancel_requested_at IS NOT NULL"
                ),
                {"ids": job_ids},
            ).all()
        return {row.id: row.cancel_reason or "cancelled" for row in rows}

    def heartbeat(self, job_ids: list[uuid.UUID]) -> None:
        if not job_ids:
            return
        with self.engine.begin() as conn:
            conn.execute(
                sa.text(
                    "UPDATE jobs SET heartbeat_at = now() "
                    "WHERE id = ANY(:ids) AND status = 'running'"
                ),
                {"ids": job_ids},
            )

    def requeue(self, *, worker_like: str, stale_after: float | None = None) -> int:
        """Put back in the queue the running jobs of workers matching ``worker_like`` (a
        LIKE pattern) whose heartbeat is older than ``stale_after`` seconds (any, when
        None): their runner stopped while running them. A job asked to stop ends
        cancelled instead; one whose lease ran out on its last attempt fails."""
        with self.engine.begin() as conn:
            result = conn.execute(
                sa.text(
                    f"""
                    UPDATE jobs SET
                        status = CASE WHEN cancel_requested_at IS NOT NULL THEN 'cancelled'
                                      WHEN :lapsed AND attempts >= max_attempts THEN 'failed'
                                      ELSE 'queued' END,
                        error = CASE WHEN cancel_requested_at IS NOT NULL THEN cancel_reason
                                     WHEN :lapsed AND attempts >= max_attempts
                                     THEN {_INTERRUPTED} ELSE error END,
                        finished_at = CASE WHEN cancel_requested_at IS NOT NULL
                                             OR (:lapsed AND attempts >= max_attempts)
                                           THEN now() END,
                        run_after = now(), updated_at = now()
                    WHERE status = 'running' AND worker LIKE :worker
                      AND (CAST(:stale AS float8) IS NULL
                           OR heartbeat_at < now() - make_interval(secs => :stale))
                    """
                ),
                {"worker": worker_like, "stale": stale_after, "lapsed": stale_after is not None},
            )
            return result.rowcount

    def counts(self) -> tuple[dict[str, int], dict[str, int]]:
        """(jobs by state, jobs waiting by queue), over every tenant, for metrics."""
        with self.engine.connect() as conn:
            states: dict[str, int] = dict.fromkeys(JOB_STATES, 0)
            states.update(
                conn.execute(sa.text("SELECT status, count(*) FROM jobs GROUP BY status")).all()
            )
            waiting = dict.fromkeys(QUEUES, 0)
            waiting.update(
                conn.execute(
                    sa.text(
                        "SELECT queue, count(*) FROM jobs "
                        "WHERE status IN ('queued', 'retrying') GROUP BY queue"
                    )
                ).all()
            )
        return states, waiting
