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

from sqlalchemy.engine import Engine

from ragline.config import Settings
from ragline.errors import RaglineError
from ragline.ingest.ledger import document_counts
from ragline.ingest.runs import latest_by_source
from ragline.jobs.store import waiting_by
from ragline.logs import get_logger
from ragline.sources.build import build_context
from ragline.sources.jobs import SYNC_SOURCE
from ragline.sources.store import SourceRecord, list_sources

log = get_logger(__name__)


def source_freshness(
    engine: Engine,
    *,
    tenant: str | None,
    settings: Settings | None = None,
    with_backlog: bool = False,
) -> list[dict[str, Any]]:
    now = dt.datetime.now(dt.UTC)
    with engine.connect() as conn:
        records = list_sources(conn, tenant=tenant)
        runs = latest_by_source(conn)
        documents = document_counts(conn)
        waiting = waiting_by(conn, kind=SYNC_SOURCE.name, key="source_id", items="events")
    out = []
    for record in records:
        last, last_status = runs.get(record.id, (None, None))
        active, failed = documents.get(
            (record.tenant, record.collection, record.ledger_name), (0, 0)
        )
        syncs, events = waiting.get(str(record.id), (0, 0))
        backlog = _backlog(record, engine, settings) if with_backlog and settings else None
        out.append(
            {
                "id": str(record.id),
                "tenant": record.tenant,
                "name": record.name,
                "kind": record.kind,
                "collection": record.collection,
                "enabled": record.enabled,
                "schedule": record.schedule,
                "next_run_at": record.next_run_at.isoformat() if record.next_run_at else None,
                "last_success_at": last.isoformat() if last else None,
                "seconds_since_success": (now - last).total_seconds() if last else None,
                "last_status": last_status,
                "documents": active,
                "failed_items": failed,
                "syncs_waiting": syncs,
                "pending": events + (backlog or 0),
                "queue_backlog": backlog,
            }
        )
    return out


def _backlog(record: SourceRecord, engine: Engine, settings: Settings) -> int | None:
    """Messages waiting in a consumed source's queue, when its kind can tell."""
    try:
        kind, config, context = build_context(record, settings, engine)
        if kind.backlog is None:
            return None
        return kind.backlog(config, context)
    except RaglineError as e:
        log.warning("backlog_unavailable", source=record.name, error=str(e))
        return None
