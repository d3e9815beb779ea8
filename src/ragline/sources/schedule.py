"""Source schedules: which sources are due, and the embedded scheduler.

    jobs = enqueue_due(engine, dispatcher, settings)      # one look; returns the jobs queued
    scheduler = EmbeddedScheduler(engine, dispatcher, settings)
    scheduler.start() ... scheduler.stop()

A source has a ``schedule`` (cron) for incremental syncs and an optional
``full_schedule`` for full listing passes (which find deleted items). Every look runs
in one transaction that takes the due sources ``FOR UPDATE SKIP LOCKED``, queues their
syncs and moves their next times forward; so however many schedulers look at once
(Celery Beat, several `ragline serve` processes) each occurrence is queued once, and a
scheduler that was down runs a missed source once, not once per missed occurrence.
Schedules are read from the database at every look: edits apply without a restart.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable

from sqlalchemy.engine import Engine

from ragline.config import Settings
from ragline.jobs.store import Job
from ragline.logs import get_logger
from ragline.sources.service import queue_sync
from ragline.sources.store import due_sources, next_time, set_next_times

log = get_logger(__name__)


def enqueue_due(
    engine: Engine,
    dispatch: Callable[[Job], None],
    settings: Settings,
    *,
    now: dt.datetime | None = None,
) -> list[Job]:
    """Queue a sync of every source due at ``now`` in this environment."""
    now = now or dt.datetime.now(dt.UTC)
    jobs: list[Job] = []
    with engine.begin() as conn:
        for record in due_sources(conn, env=settings.env, now=now):
            full_due = record.next_full_at is not None and record.next_full_at <= now
            jobs.append(
                queue_sync(
                    conn,
                    record,
                    full=full_due,
                    trigger="schedule",
                    max_attempts=settings.job_max_attempts,
                )
            )
            set_next_times(
                conn,
                record.id,
                next_run=next_time(record.schedule, now),
                next_full=next_time(record.full_schedule, now),
            )
    for job in jobs:
        try:
            dispatch(job)
        except Exception as e:  # the job stays queued; the runner or a sweep takes it
            log.warning("scheduled_sync_not_dispatched", job_id=str(job.id), error=str(e))
    if jobs:
        log.info("scheduled_syncs_queued", count=len(jobs))
    return jobs


class EmbeddedScheduler:
    """A thread of `ragline serve` that queues due syncs for the in-process runner."""

    def __init__(self, engine: Engine, dispatch: Callable[[Job], None], settings: Settings) -> None:
        self.engine = engine
        self.dispatch = dispatch
        self.settings = settings
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="ragline-scheduler", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _loop(self) -> None:
        while not self._stopping.is_set():
            try:
                enqueue_due(self.engine, self.dispatch, self.settings)
            except Exception as e:  # the database is away: look again later
                log.warning("scheduler_look_failed", error=str(e))
            self._stopping.wait(self.settings.scheduler_interval)
