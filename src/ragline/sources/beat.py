"""Celery Beat driven by the sources table: `ragline beat` runs it.

    celery beat --scheduler ragline.sources.beat:DatabaseScheduler   # what `ragline beat` runs

Beat's own schedule is empty; at every tick the scheduler queues the syncs of the
sources that are due (``ragline.sources.schedule.enqueue_due``) and publishes them to
their queue. Schedules are read from PostgreSQL at each tick, so sources added,
edited or removed take effect without restarting Beat; two Beats (a failover pair)
still queue each occurrence once.
"""

from __future__ import annotations

from typing import Any

from celery.beat import Scheduler
from sqlalchemy.engine import Engine

from ragline.config import get_settings
from ragline.db.engine import get_engine
from ragline.jobs.celery_app import task_name
from ragline.jobs.store import Job
from ragline.logs import get_logger
from ragline.sources.schedule import enqueue_due

log = get_logger(__name__)


class DatabaseScheduler(Scheduler):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.settings = get_settings()
        self._engine: Engine | None = None
        super().__init__(*args, **kwargs)

    @property
    def engine(self) -> Engine:
        if self._engine is None:
            self._engine = get_engine(self.settings)
        return self._engine

    def setup_schedule(self) -> None:
        log.info("beat_scheduler_started", interval=self.settings.scheduler_interval)

    def tick(self, *args: Any, **kwargs: Any) -> float:
        try:
            enqueue_due(self.engine, self._publish, self.settings)
        except Exception as e:  # the database is away: Beat carries on and looks again
            log.warning("beat_tick_failed", error=str(e))
        return self.settings.scheduler_interval

    def _publish(self, job: Job) -> None:
        self.app.send_task(task_name(job.kind), args=[str(job.id)], queue=job.queue)
