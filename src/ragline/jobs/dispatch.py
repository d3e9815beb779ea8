"""Handing a queued job to whoever runs it: a Celery queue, or the in-process runner.

dispatcher = CeleryDispatcher(settings)    # RAGLINE_BROKER_URL is set
dispatcher = RunnerDispatcher(runner)      # the in-process runner
dispatcher = dispatcher_for(settings)      # a process that only queues jobs
dispatcher.dispatch(job)                   # after the job's row is committed
"""

from __future__ import annotations

from typing import Protocol

from kombu.utils.url import maybe_sanitize_url

from ragline.config import Settings
from ragline.errors import JobQueueUnavailable
from ragline.jobs.celery_app import create_celery, task_name
from ragline.jobs.runner import JobRunner
from ragline.jobs.store import Job


class Dispatcher(Protocol):
    def dispatch(self, job: Job) -> None: ...

    def ready(self) -> tuple[bool, str]:
        """Whether jobs can be run now, and what was checked."""
        ...


class CeleryDispatcher:
    def __init__(self, settings: Settings) -> None:
        self.app = create_celery(settings)

    def dispatch(self, job: Job) -> None:
        try:
            self.app.send_task(task_name(job.kind), args=[str(job.id)], queue=job.queue)
        except Exception as e:  # kombu raises its transports' own errors
            raise JobQueueUnavailable(
                f"the job queue at {_safe(self.app.conf.broker_url)} cannot take jobs: {e}"
            ) from e

    def ready(self) -> tuple[bool, str]:
        try:
            with self.app.connection_for_write() as conn:
                conn.ensure_connection(max_retries=1, timeout=2)
        except Exception as e:
            return False, f"broker unreachable: {e}"
        return True, "broker reachable"


class PollingDispatcher:
    """For processes that queue jobs without running them (a queue consumer, the CLI)
    when there is no broker: the in-process runner of `ragline serve` finds them in
    PostgreSQL at its next poll."""

    def dispatch(self, job: Job) -> None:
        pass

    def ready(self) -> tuple[bool, str]:
        return True, "jobs wait in PostgreSQL for `ragline serve`"


def dispatcher_for(settings: Settings) -> Dispatcher:
    """The dispatcher of a process that does not run jobs itself."""
    if settings.broker_url:
        return CeleryDispatcher(settings)
    return PollingDispatcher()


class RunnerDispatcher:
    def __init__(self, runner: JobRunner) -> None:
        self.runner = runner

    def dispatch(self, job: Job) -> None:
        self.runner.wake()

    def ready(self) -> tuple[bool, str]:
        if self.runner.alive:
            return True, "in-process runner running"
        return False, "in-process runner stopped"


def _safe(url: str | None) -> str:
    return str(maybe_sanitize_url(url or ""))
