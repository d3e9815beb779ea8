"""The ``sync_runs`` table: what each run of a source did. The one module that holds
its SQL: the pipeline opens and closes runs; ``ragline runs``, ``/v1/runs``, the
notifier and freshness read them.

    run_id = start_run(engine, tenant="acme", collection="kb", source="sql:crm",
                       mode="incremental", labels=RunLabels(trigger="schedule"))
    finish_run(engine, run_id, report, status="succeeded")
    with tenant_scope(engine, "acme") as conn:
        runs = list_runs(conn, limit=20)
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from ragline.domain import SyncReport
from ragline.errors import NotFound


@dataclass(frozen=True, slots=True)
class RunLabels:
    """What a run is recorded as: which configured source and job ran it, and why."""

    source_id: uuid.UUID | None = None
    job_id: uuid.UUID | None = None
    trigger: str = "manual"


def start_run(
    engine: Engine,
    *,
    tenant: str,
    collection: str,
    source: str,
    mode: str,
    labels: RunLabels,
    interrupt_others: bool,
    started_at: dt.datetime | None = None,
) -> int:
    """Open a run. With ``interrupt_others`` (the caller holds the source's lock), a run
    of the source still marked running was interrupted and is closed as failed."""
    with engine.begin() as conn:
        if interrupt_others:
            conn.execute(
                sa.text(
                    """
                    UPDATE sync_runs SET status = 'failed', finished_at = now(),
                        errors = errors || '[{"reason": "interrupted"}]'::jsonb
                    WHERE tenant = :tenant AND collection = :collection
                      AND source = :source AND status = 'running'
                    """
                ),
                {"tenant": tenant, "collection": collection, "source": source},
            )
        run_id: int = conn.execute(
            sa.text(
                """
                INSERT INTO sync_runs (tenant, collection, source, status, mode, source_id,
                                       job_id, trigger, started_at)
                VALUES (:tenant, :collection, :source, 'running', :mode, :source_id,
                        :job_id, :trigger, coalesce(:started_at, now()))
                RETURNING id
                """
            ),
            {
                "tenant": tenant,
                "collection": collection,
                "source": source,
                "mode": mode,
                "source_id": labels.source_id,
                "job_id": labels.job_id,
                "trigger": labels.trigger,
                "started_at": started_at,
            },
        ).scalar_one()
        return run_id


def finish_run(
    engine: Engine, run_id: int, report: SyncReport, *, status: str, error: str | None = None
) -> None:
    errors = [{"doc_id": f.doc_id, "reason": f.reason} for f in report.failures]
    if error is not None:
        errors.append({"reason": error})
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                """
                UPDATE sync_runs SET status = :status, finished_at = now(),
                    added = :added, updated = :updated, unchanged = :unchanged,
                    deleted = :deleted, failed = :failed, chunks = :chunks,
                    embedded = :embedded, embedding_calls = :calls, seconds = :seconds,
                    errors = CAST(:errors AS jsonb), warnings = CAST(:warnings AS jsonb)
                WHERE id = :id
                """
            ),
            {
                "id": run_id,
                "status": status,
                "added": report.added,
                "updated": report.updated,
                "unchanged": report.unchanged,
                "deleted": report.deleted,
                "failed": report.failed,
                "chunks": report.chunks,
                "embedded": report.embedded,
                "calls": report.embedding_calls,
                "seconds": report.seconds,
                "errors": json.dumps(errors),
                "warnings": json.dumps(report.warnings),
            },
        )


_SELECT = """
    SELECT r.id, r.tenant, r.collection, r.source, r.source_id, s.name AS source_name,
           r.job_id, r.trigger, r.mode, r.status, r.started_at, r.finished_at, r.added,
           r.updated, r.unchanged, r.deleted, r.failed, r.chunks, r.embedded,
           r.embedding_calls, r.seconds, r.errors, r.warnings
    FROM sync_runs r LEFT JOIN sources s ON s.id = r.source_id
"""


def run_dict(row: Any) -> dict[str, Any]:
    out = dict(row)
    for key in ("started_at", "finished_at"):
        out[key] = out[key].isoformat() if out[key] is not None else None
    for key in ("source_id", "job_id"):
        out[key] = str(out[key]) if out[key] is not None else None
    if out["seconds"] is not None:
        out["seconds"] = round(out["seconds"], 3)
    return out


def list_runs(
    conn: sa.Connection,
    *,
    source_id: uuid.UUID | None = None,
    status: str | None = None,
    tenant: str | None = None,
    limit: int = 20,
) -> list[dict[str, Any]]:
    """The latest runs first, of one source or of all (in the connection's scope, and of
    ``tenant`` only when given)."""
    rows = conn.execute(
        sa.text(
            _SELECT
            + """
            WHERE (CAST(:source_id AS uuid) IS NULL OR r.source_id = :source_id)
              AND (CAST(:status AS text) IS NULL OR r.status = :status)
              AND (CAST(:tenant AS text) IS NULL OR r.tenant = :tenant)
            ORDER BY r.started_at DESC, r.id DESC LIMIT :limit
            """
        ),
        {"source_id": source_id, "status": status, "tenant": tenant, "limit": limit},
    ).mappings()
    return [run_dict(row) for row in rows]


def get_run(conn: sa.Connection, run_id: int) -> dict[str, Any]:
    row = conn.execute(sa.text(_SELECT + " WHERE r.id = :id"), {"id": run_id}).mappings().first()
    if row is None:
        raise NotFound(f"no sync run {run_id}")
    return run_dict(row)


def job_runs(conn: sa.Connection, job_id: uuid.UUID, *, after: int = 0) -> list[dict[str, Any]]:
    """The finished runs of a job with an id above ``after``, oldest first."""
    rows = conn.execute(
        sa.text(
            _SELECT
            + " WHERE r.job_id = :job_id AND r.id > :after AND r.status <> 'running' ORDER BY r.id"
        ),
        {"job_id": job_id, "after": after},
    ).mappings()
    return [run_dict(row) for row in rows]


def last_run_id(conn: sa.Connection) -> int:
    """The id of the latest run recorded (0 when none): runs after it are newer."""
    return int(conn.execute(sa.text("SELECT coalesce(max(id), 0) FROM sync_runs")).scalar_one())


def latest_by_source(conn: sa.Connection) -> dict[uuid.UUID, tuple[dt.datetime | None, str]]:
    """For each configured source that has run: (when it last succeeded, the status of
    its latest run)."""
    rows = conn.execute(
        sa.text(
            """
            SELECT source_id,
                   max(finished_at) FILTER (WHERE status = 'succeeded') AS last_success,
                   (array_agg(status ORDER BY id DESC))[1] AS last_status
            FROM sync_runs WHERE source_id IS NOT NULL
            GROUP BY source_id
            """
        )
    ).all()
    return {source_id: (success, status) for source_id, success, status in rows}
