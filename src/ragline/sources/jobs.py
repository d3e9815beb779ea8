"""The ``sync_source`` job, on the ``sync`` queue: one run of a configured source.

It builds the source from its record, runs the pipeline (full, incremental, or on the
changes a batch of events describes), saves the source's new position once the run
has committed, and posts the run's report to the configured webhooks.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from ragline.config import Settings
from ragline.errors import ConfigurationError, JobFailed, NotFound, Unsupported
from ragline.ingest.connectors.base import Changes, Source, SourceItem
from ragline.ingest.pipeline import shared_pipeline
from ragline.ingest.runs import RunLabels, job_runs, last_run_id
from ragline.jobs.executor import JobExecutor, JobKind
from ragline.jobs.store import Job
from ragline.logs import get_logger
from ragline.sources.build import build_source
from ragline.sources.notify import Notifier
from ragline.sources.store import get_source, save_state

log = get_logger(__name__)


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


def _notifier(settings: Settings, engine: Engine) -> Notifier:
    return Notifier.from_settings(settings)


def sync_source(executor: JobExecutor, job: Job) -> dict[str, Any]:
    engine = executor.engine
    settings = executor.settings
    try:
        with engine.connect() as conn:
            record = get_source(conn, uuid.UUID(job.payload["source_id"]))
    except NotFound as e:
        raise JobFailed(f"{e} (it was removed after this sync was queued)") from e
    if record.tenant != job.tenant:
        raise JobFailed("the source belongs to another tenant")
    events = job.payload.get("events")
    full = bool(job.payload.get("full")) and not events
    try:
        record.check_runs_in(settings.env)
        kind, _, source = build_source(record, settings, engine)
        if events:
            if kind.events is None:
                raise Unsupported(f"a {record.kind} source takes no events")
            source = EventChanges(source, kind.events(source, events))
        elif not kind.listable:
            raise Unsupported(
                f"a {record.kind} source is consumed, not synced: `ragline consume "
                f"{record.name}` indexes its changes as they arrive"
            )
    except ConfigurationError as e:
        raise JobFailed(str(e)) from e
    with engine.connect() as conn:
        after = last_run_id(conn)
    try:
        report = executor.shared(shared_pipeline).sync(
            source,
            collection=record.collection,
            tenant=record.tenant,
            progress=executor.progress(job),
            full=full,
            state=record.state,
            run=RunLabels(
                source_id=record.id,
                job_id=job.id,
                trigger="event" if events else job.payload.get("trigger", "manual"),
            ),
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
    notifier = executor.shared(_notifier)
    if not notifier.active:
        return
    try:
        with executor.engine.connect() as conn:
            runs = job_runs(conn, job.id, after=after)
    except sa.exc.SQLAlchemyError as e:
        log.warning("run_report_unavailable", error=str(e))
        return
    for run in runs:
        notifier.run_finished(run)


SYNC_SOURCE = JobKind("sync_source", queue="sync", handler=sync_source)
