"""Sync run reports: what each run of a source did, as ``ragline runs`` and
``/v1/runs`` show them and the notifier posts them."""

from __future__ import annotations

import uuid
from typing import Any

import sqlalchemy as sa

from ragline.errors import NotFound

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
    limit: int = 20,
) -> list[dict[str, Any]]:
    """The latest runs first, of one source or of all (in the connection's scope)."""
    rows = conn.execute(
        sa.text(
            _SELECT
            + """
            WHERE (CAST(:source_id AS uuid) IS NULL OR r.source_id = :source_id)
              AND (CAST(:status AS text) IS NULL OR r.status = :status)
            ORDER BY r.started_at DESC, r.id DESC LIMIT :limit
            """
        ),
        {"source_id": source_id, "status": status, "limit": limit},
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
