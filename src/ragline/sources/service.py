"""Syncing a configured source: queueing the job, and what the job does.

    job = enqueue_sync(engine, dispatcher, record, full=False, trigger="schedule")
    # ...in a worker: HANDLERS["sync_source"](executor, job)

A sync job builds the source from its record, runs the pipeline (full, incremental,
or on the changes a batch of events describes), saves the source's new position once
the run has committed, and posts the run's report to the configured webhooks. A
source runs only in the environments (``RAGLINE_ENV``) its record names.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from ragline.config import Settings
from ragline.errors import ConfigurationError, NotFound
from ragline.ingest.ledger import delete_documents, source_lock_key
from ragline.ingest.sources.base import Changes, Source, SourceItem
from ragline.jobs.store import Job, create_job, get_job
from ragline.logs import get_logger
from ragline.sources.kinds import Kind, Profiles, SourceContext, get_kind
from ragline.sources.runs import job_runs, last_run_id
from ragline.sources.store import SourceRecord, delete_source, get_source, save_state

if TYPE_CHECKING:
    from ragline.jobs.dispatch import Dispatcher
    from ragline.jobs.tasks import JobExecutor

log = get_logger(__name__)

KIND = "sync_source"


def build_context(
    record: SourceRecord, settings: Settings, engine: Engine
) -> tuple[Kind[Any], Any, SourceContext]:
    """The kind, validated configuration and build context of ``record``."""
    kind = get_kind(record.kind)
    config = kind.validate(record.config)
    context = SourceContext(
        name=record.ledger_name,
        source_id=record.id,
        tenant=record.tenant,
        collection=record.collection,
        settings=settings,
        engine=engine,
        profiles=Profiles.parse(record.profiles),
    )
    return kind, config, context


def build_source(
    record: SourceRecord, settings: Settings, engine: Engine
) -> tuple[Kind[Any], Any, Source]:
    """The kind, validated configuration and connector of ``record``."""
    kind, config, context = build_context(record, settings, engine)
    return kind, config, kind.build(config, context)


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
    already waiting to start is returned instead of queueing a second one."""
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
    conn.execute(
        sa.text("SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))"),
        {"key": f"enqueue:{record.id}"},
    )
    waiting = conn.execute(
        sa.text(
            """
            SELECT id FROM jobs
            WHERE kind = :kind AND tenant = :tenant AND status = 'queued'
              AND payload->>'source_id' = :source_id
              AND (payload->>'full')::boolean = :full AND (payload ? 'events') = :events
            ORDER BY created_at LIMIT 1
            FOR UPDATE
            """
        ),
        {
            "kind": KIND,
            "tenant": record.tenant,
            "source_id": str(record.id),
            "full": full,
            "events": bool(events),
        },
    ).scalar()
    if waiting is not None:
        if events:
            conn.execute(
                sa.text(
                    """
                    UPDATE jobs SET payload = jsonb_set(payload, '{events}',
                        payload->'events' || CAST(:events AS jsonb)), updated_at = now()
                    WHERE id = :id
                    """
                ),
                {"id": waiting, "events": json.dumps(events)},
            )
        existing = get_job(conn, waiting)
        assert existing is not None
        return existing
    payload: dict[str, Any] = {"source_id": str(record.id), "full": full, "trigger": trigger}
    if events:
        payload["events"] = events
    return create_job(
        conn, tenant=record.tenant, kind=KIND, payload=payload, max_attempts=max_attempts
    )


def remove_source(engine: Engine, record: SourceRecord, *, keep_documents: bool) -> int:
    """Remove a source's record and, unless ``keep_documents``, everything it indexed
    (under its sync lock, so no run of it is halfway). Returns documents removed."""
    removed = 0
    with engine.begin() as conn:
        key = source_lock_key(record.tenant, record.collection, record.ledger_name)
        conn.execute(
            sa.text("SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))"), {"key": key}
        )
        if not keep_documents:
            ids = list(
                conn.execute(
                    sa.text(
                        """
                        SELECT id FROM documents
                        WHERE tenant = :tenant AND collection = :collection
                          AND source = :source AND status <> 'deleted'
                        """
                    ),
                    {
                        "tenant": record.tenant,
                        "collection": record.collection,
                        "source": record.ledger_name,
                    },
                ).scalars()
            )
            delete_documents(conn, ids)
            removed = len(ids)
        delete_source(conn, record.id)
    log.info("source_removed", source=record.name, documents=removed)
    return removed


class EventChanges:
    """A source whose changes are the ones a batch of events described."""

    def __init__(self, source: Source, changes: Changes) -> None:
        self.source = source
        self.name = source.name
        self._changes = changes

    def close(self) -> None:
        close = getattr(self.source, "close", None)
        if callable(close):
            close()

    def list(self) -> Iterator[SourceItem]:
        return self.source.list()

    def read(self, item: SourceItem) -> bytes:
        return self.source.read(item)

    def changes(self, state: dict[str, Any]) -> Changes:
        return self._changes

    def checkpoint(self) -> dict[str, Any]:
        return {}


def sync_source(executor: JobExecutor, job: Job) -> dict[str, Any]:
    """The ``sync_source`` job: one run of a configured source."""
    from ragline.jobs.tasks import JobFailed, JobProgress

    engine = executor.engine
    settings = executor.settings
    try:
        with engine.connect() as conn:
            record = get_source(conn, uuid.UUID(job.payload["source_id"]))
    except NotFound as e:
        raise JobFailed(f"{e} (it was removed after this sync was queued)", {}) from e
    if record.tenant != job.tenant:
        raise JobFailed("the source belongs to another tenant", {})
    if settings.env not in record.environments:
        raise JobFailed(
            f"source {record.name!r} runs only in {', '.join(record.environments)}; "
            f"this deployment is {settings.env} (RAGLINE_ENV)",
            {},
        )
    try:
        kind, _, source = build_source(record, settings, engine)
    except ConfigurationError as e:
        raise JobFailed(str(e), {}) from e
    events = job.payload.get("events")
    full = bool(job.payload.get("full")) and not events
    if events:
        if kind.events is None:
            raise JobFailed(f"a {record.kind} source takes no events", {})
        try:
            source = EventChanges(source, kind.events(source, events))
        except ConfigurationError as e:
            raise JobFailed(str(e), {}) from e
    with engine.connect() as conn:
        after = last_run_id(conn)
    try:
        report = executor.pipeline.sync(
            source,
            collection=record.collection,
            tenant=record.tenant,
            progress=JobProgress(executor.jobs, job.id),
            full=full,
            state=record.state,
            run={
                "source_id": record.id,
                "job_id": job.id,
                "trigger": "event" if events else job.payload.get("trigger", "manual"),
            },
        )
    finally:
        close = getattr(source, "close", None)
        if callable(close):
            close()
        _report_runs(executor, job, after)
    if report.state is not None and not events:
        with engine.begin() as conn:
            save_state(conn, record.id, report.state)
    return report.as_dict()


def _report_runs(executor: JobExecutor, job: Job, after: int) -> None:
    """Post the runs this attempt of ``job`` finished to the webhooks."""
    if not executor.notifier.active:
        return
    try:
        with executor.engine.connect() as conn:
            runs = job_runs(conn, job.id, after=after)
    except sa.exc.SQLAlchemyError as e:
        log.warning("run_report_unavailable", error=str(e))
        return
    for run in runs:
        executor.notifier.run_finished(run)
