"""What can be done with a configured source, whoever asks (the API, the CLI, the
scheduler, a queue consumer): add it, queue a sync, consume its stream, remove it.
The rules (who may, what applies to which kind, where a source runs) live here, so
the faces cannot disagree about them.

    service = SourceService(engine, settings, dispatcher)
    record = service.add(principal, spec)             # admin, within the tenant's allowance
    job = service.sync(principal, "crm", full=False)  # admin
    job, events = service.notify(principal, "bucket", message)   # writer

A tenant's admin adds sources of the kinds, and naming the environment variables,
that the operator allows its tenant (``ragline.reach.Allowance``); a ``files`` source
reads the service's own disk, so only the operator adds one. What a caller adds,
removes or syncs is written to the audit log in the same transaction.

The scheduler and the consumers act for no caller: they use ``queue_sync`` and
``consume_source`` on records they already hold.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from ragline import audit
from ragline.auth import Principal
from ragline.config import Settings
from ragline.db.locks import xact_lock
from ragline.db.tenancy import tenant_scope
from ragline.errors import Forbidden, Unsupported
from ragline.ingest.ledger import delete_documents, document_ids, source_lock_key
from ragline.ingest.runs import get_run, list_runs
from ragline.jobs.dispatch import Dispatcher
from ragline.jobs.store import Job, create_job, extend_payload, find_queued
from ragline.logs import get_logger
from ragline.sources.build import build_context, check_kind, check_variables
from ragline.sources.jobs import SYNC_SOURCE
from ragline.sources.registry import ConsumeOptions, get_consumer, get_kind
from ragline.sources.store import (
    SourceRecord,
    SourceSpec,
    create_source,
    delete_source,
    get_source,
    list_sources,
)
from ragline.tenants import get_policy

log = get_logger(__name__)


def enqueue_sync(
    engine: Engine,
    dispatcher: Dispatcher,
    record: SourceRecord,
    *,
    full: bool,
    trigger: str,
    events: list[dict[str, Any]] | None = None,
    max_attempts: int = 5,
) -> Job:
    """Queue a sync of ``record`` and hand it to the runner. A sync of the same sort
    already waiting to start is returned instead of queueing a second one. A source
    whose changes are consumed (a stream) cannot be synced: ``Unsupported``."""
    with engine.begin() as conn:
        job = queue_sync(
            conn, record, full=full, trigger=trigger, events=events, max_attempts=max_attempts
        )
    dispatcher.dispatch(job)
    return job


def queue_sync(
    conn: sa.Connection,
    record: SourceRecord,
    *,
    full: bool,
    trigger: str,
    events: list[dict[str, Any]] | None = None,
    max_attempts: int = 5,
) -> Job:
    """``enqueue_sync``'s insert, in the caller's transaction (dispatch after commit).

    Event records join those of an event sync of the source still waiting to start,
    so that a burst of notifications makes one sync rather than many competing for
    the source's lock."""
    if not events and not get_kind(record.kind).listable:
        raise Unsupported(
            f"a {record.kind} source is consumed, not synced: `ragline consume {record.name}` "
            "indexes its changes as they arrive"
        )
    xact_lock(conn, f"enqueue:{record.id}")
    waiting = find_queued(
        conn,
        kind=SYNC_SOURCE.name,
        tenant=record.tenant,
        payload={"source_id": str(record.id), "full": full},
        key="events",
        has_key=bool(events),
    )
    if waiting is not None:
        if events:
            return extend_payload(conn, waiting.id, "events", events)
        return waiting
    payload: dict[str, Any] = {"source_id": str(record.id), "full": full, "trigger": trigger}
    if events:
        payload["events"] = events
    return create_job(
        conn,
        tenant=record.tenant,
        kind=SYNC_SOURCE.name,
        queue=SYNC_SOURCE.queue,
        payload=payload,
        max_attempts=max_attempts,
    )


def notify_source(
    engine: Engine,
    dispatcher: Dispatcher,
    record: SourceRecord,
    notification: dict[str, Any],
    *,
    max_attempts: int = 5,
) -> tuple[Job | None, int]:
    """Queue a sync of exactly what an event notification names (an S3 event message).
    Returns the job (None when the notification names nothing) and the events taken."""
    kind = get_kind(record.kind)
    if kind.parse_notification is None:
        raise Unsupported(f"a {record.kind} source takes no event notifications")
    records = kind.parse_notification(kind.validate(record.config), notification)
    if not records:
        return None, 0
    job = enqueue_sync(
        engine,
        dispatcher,
        record,
        full=False,
        trigger="event",
        events=records,
        max_attempts=max_attempts,
    )
    return job, len(records)


def consume_source(
    engine: Engine, settings: Settings, record: SourceRecord, options: ConsumeOptions
) -> None:
    """Run the consumers of ``record``'s stream or event queue until ``options`` stop
    them. ``Unsupported`` when its kind has nothing to consume; ConfigurationError when
    the source does not run in this environment."""
    consume = get_consumer(record.kind)
    if consume is None:
        raise Unsupported(
            f"a {record.kind} source has nothing to consume; `ragline sync {record.name}` syncs it"
        )
    record.check_runs_in(settings.env)
    _, config, context = build_context(record, settings, engine)
    consume(config, context, options)


def remove_source(
    engine: Engine, record: SourceRecord, *, keep_documents: bool, actor: str | None = None
) -> int:
    """Remove a source's record and, unless ``keep_documents``, everything it indexed
    (under its sync lock, so no run of it is halfway). Returns documents removed. With
    an ``actor``, the removal is written to the audit log in the same transaction."""
    removed = 0
    with engine.begin() as conn:
        xact_lock(conn, source_lock_key(record.tenant, record.collection, record.ledger_name))
        if not keep_documents:
            ids = document_ids(
                conn, record.collection, tenant=record.tenant, source=record.ledger_name
            )
            delete_documents(conn, ids)
            removed = len(ids)
        delete_source(conn, record.id)
        if actor is not None:
            audit.record(
                conn,
                tenant=record.tenant,
                actor=actor,
                action="source.remove",
                target=record.name,
                details={"id": str(record.id), "kind": record.kind, "documents_removed": removed},
            )
    log.info("source_removed", source=record.name, documents=removed)
    return removed


class SourceService:
    """Configured sources as a caller may see and change them: each method checks the
    caller's role and works in the caller's tenant only."""

    def __init__(self, engine: Engine, settings: Settings, dispatcher: Dispatcher) -> None:
        self.engine = engine
        self.settings = settings
        self.dispatcher = dispatcher

    def add(self, principal: Principal, spec: SourceSpec) -> SourceRecord:
        """Configure a source (admin; a ``files`` source, operator), refused at once when
        its kind or the variables it names are outside the tenant's allowance."""
        principal.require("admin")
        if spec.kind == "files" and not principal.can("operator"):
            raise Forbidden(
                "a files source reads the service's own disk, so only the operator adds one "
                "(`ragline sources add` on the service's host, or an operator key); "
                "upload documents with POST /v1/documents instead"
            )
        with tenant_scope(self.engine, principal.tenant) as conn:
            allowance = get_policy(conn, principal.tenant).allowance
            check_kind(spec.kind, allowance, principal.tenant)
            spec.validate()
            check_variables(spec.config, allowance, principal.tenant, self.settings)
            record = create_source(conn, tenant=principal.tenant, spec=spec)
            audit.record(
                conn,
                tenant=principal.tenant,
                actor=principal.actor,
                action="source.add",
                target=record.name,
                details={
                    "id": str(record.id),
                    "kind": record.kind,
                    "collection": record.collection,
                    "config": record.config,
                },
            )
            return record

    def listing(self, principal: Principal) -> list[SourceRecord]:
        principal.require("admin")  # configurations name hosts and variables
        with tenant_scope(self.engine, principal.tenant) as conn:
            return list_sources(conn)

    def get(self, principal: Principal, ref: str) -> SourceRecord:
        principal.require("admin")
        return self._get(principal, ref)

    def remove(self, principal: Principal, ref: str, *, keep_documents: bool) -> int:
        principal.require("admin")
        return remove_source(
            self.engine,
            self._get(principal, ref),
            keep_documents=keep_documents,
            actor=principal.actor,
        )

    def sync(self, principal: Principal, ref: str, *, full: bool) -> Job:
        principal.require("admin")
        record = self._get(principal, ref)
        with self.engine.begin() as conn:
            job = queue_sync(
                conn,
                record,
                full=full,
                trigger="manual",
                max_attempts=self.settings.job_max_attempts,
            )
            audit.record(
                conn,
                tenant=record.tenant,
                actor=principal.actor,
                action="source.sync",
                target=record.name,
                details={"id": str(record.id), "full": full, "job_id": str(job.id)},
            )
        self.dispatcher.dispatch(job)
        return job

    def notify(
        self, principal: Principal, ref: str, notification: dict[str, Any]
    ) -> tuple[Job | None, int]:
        principal.require("writer")
        return notify_source(
            self.engine,
            self.dispatcher,
            self._get(principal, ref),
            notification,
            max_attempts=self.settings.job_max_attempts,
        )

    def consume(self, principal: Principal, ref: str, options: ConsumeOptions) -> None:
        principal.require("admin")
        consume_source(self.engine, self.settings, self._get(principal, ref), options)

    def runs(
        self,
        principal: Principal,
        *,
        source: str | None = None,
        status: str | None = None,
        limit: int = 20,
    ) -> list[dict[str, Any]]:
        principal.require("reader")
        with tenant_scope(self.engine, principal.tenant) as conn:
            source_id = get_source(conn, source).id if source else None
            return list_runs(conn, source_id=source_id, status=status, limit=limit)

    def run(self, principal: Principal, run_id: int) -> dict[str, Any]:
        principal.require("reader")
        with tenant_scope(self.engine, principal.tenant) as conn:
            return get_run(conn, run_id)

    def _get(self, principal: Principal, ref: str) -> SourceRecord:
        with tenant_scope(self.engine, principal.tenant) as conn:
            return get_source(conn, ref)
