"""How fresh each source is: time since its last successful sync, items waiting to
be indexed, items that failed. Shown by `ragline status` and exported as metrics.

    rows = source_freshness(engine, tenant="acme")     # tenant=None: every tenant's
    rows[0]["seconds_since_success"], rows[0]["pending"], rows[0]["failed_items"]

``pending`` counts what ragline already knows to be waiting: event records in queued
syncs and, for a consumed source whose kind can tell, messages still in its queue
(``with_backlog=True``, which asks the broker).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from ragline.config import Settings
from ragline.errors import RaglineError
from ragline.logs import get_logger

log = get_logger(__name__)

_FRESHNESS = sa.text(
    """
    SELECT s.id, s.tenant, s.name, s.kind, s.collection, s.enabled, s.schedule,
           s.next_run_at,
           (SELECT max(r.finished_at) FROM sync_runs r
            WHERE r.source_id = s.id AND r.status = 'succeeded') AS last_success_at,
           (SELECT r.status FROM sync_runs r WHERE r.source_id = s.id
            ORDER BY r.id DESC LIMIT 1) AS last_status,
           (SELECT count(*) FROM documents d
            WHERE d.tenant = s.tenant AND d.collection = s.collection
              AND d.source = s.kind || ':' || s.name AND d.status = 'failed') AS failed_items,
           (SELECT count(*) FROM documents d
            WHERE d.tenant = s.tenant AND d.collection = s.collection
              AND d.source = s.kind || ':' || s.name AND d.status = 'active') AS documents,
           (SELECT coalesce(sum(CASE WHEN j.payload ? 'events'
                                     THEN jsonb_array_length(j.payload->'events') END), 0)
            FROM jobs j
            WHERE j.kind = 'sync_source' AND j.status IN ('queued', 'retrying', 'running')
              AND j.payload->>'source_id' = s.id::text) AS pending_events,
           (SELECT count(*) FROM jobs j
            WHERE j.kind = 'sync_source' AND j.status IN ('queued', 'retrying', 'running')
              AND j.payload->>'source_id' = s.id::text) AS syncs_waiting
    FROM sources s
    WHERE CAST(:tenant AS text) IS NULL OR s.tenant = :tenant
    ORDER BY s.tenant, s.name
    """
)


def source_freshness(
    engine: Engine,
    *,
    tenant: str | None,
    settings: Settings | None = None,
    with_backlog: bool = False,
) -> list[dict[str, Any]]:
    now = dt.datetime.now(dt.UTC)
    with engine.connect() as conn:
        rows = [dict(row) for row in conn.execute(_FRESHNESS, {"tenant": tenant}).mappings()]
    out = []
    for row in rows:
        last = row["last_success_at"]
        backlog = _backlog(row, engine, settings) if with_backlog and settings else None
        out.append(
            {
                "id": str(row["id"]),
                "tenant": row["tenant"],
                "name": row["name"],
                "kind": row["kind"],
                "collection": row["collection"],
                "enabled": row["enabled"],
                "schedule": row["schedule"],
                "next_run_at": row["next_run_at"].isoformat() if row["next_run_at"] else None,
                "last_success_at": last.isoformat() if last else None,
                "seconds_since_success": (now - last).total_seconds() if last else None,
                "last_status": row["last_status"],
                "documents": row["documents"],
                "failed_items": row["failed_items"],
                "syncs_waiting": row["syncs_waiting"],
                "pending": int(row["pending_events"]) + (backlog or 0),
                "queue_backlog": backlog,
            }
        )
    return out


def _backlog(row: dict[str, Any], engine: Engine, settings: Settings) -> int | None:
    """Messages waiting in a consumed source's queue, when its kind can tell."""
    from ragline.sources.service import build_context
    from ragline.sources.store import get_source

    try:
        with engine.connect() as conn:
            record = get_source(conn, row["id"])
        kind, config, context = build_context(record, settings, engine)
        if kind.backlog is None:
            return None
        return kind.backlog(config, context)
    except RaglineError as e:
        log.warning("backlog_unavailable", source=row["name"], error=str(e))
        return None
