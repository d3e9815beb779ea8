"""Celery on Redis or RabbitMQ: queues, routes, and one task per kind of job.

    app = create_celery(settings)                      # enough to send jobs
    app = create_celery(settings, kinds=JOB_KINDS)     # a worker: one task per kind
    app.send_task("ragline.index_upload", args=[job_id], queue="ingest")

Tasks take a job id and nothing else; the job's record in PostgreSQL says what to do
and holds its state. They are idempotent (a document's chunks are replaced in one
transaction, a finished job is skipped), which is why they acknowledge late: a worker
killed mid-job leaves the message to be delivered again, up to the job's attempts
(a job that kills its worker every time then fails with that reason). Transient
errors are retried with exponential backoff, up to RAGLINE_JOB_MAX_ATTEMPTS attempts.
A job runs under the executor's watch (RAGLINE_JOB_TIME_LIMIT, cancellation polled
by the worker), like an in-process one.

Start a worker with ``ragline worker``; watch workers with Flower:
``celery --broker=$RAGLINE_BROKER_URL flower``.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from celery import Celery, Task
from kombu import Exchange, Queue

from ragline.config import Settings
from ragline.errors import ConfigurationError, is_transient
from ragline.jobs.executor import JobExecutor, JobKind
from ragline.jobs.store import DEFAULT_QUEUE, QUEUES

EXCHANGE = Exchange("ragline", type="direct")


def task_name(kind: str) -> str:
    return f"ragline.{kind}"


def _transport_options(settings: Settings) -> dict[str, Any]:
    """Redis redelivers a job whose worker died once ``visibility_timeout`` has passed,
    at its next sweep of unacknowledged messages: sweeps run often enough for the
    redelivery to follow the timeout closely. (RabbitMQ redelivers when the dead
    worker's connection closes, and ignores these options.)"""
    timeout = settings.broker_visibility_timeout
    return {
        "visibility_timeout": timeout,
        "unacked_restore_interval": max(1, min(60, timeout // 4)),
        "unacked_restore_throttle": 1,
    }


def create_celery(settings: Settings, kinds: Sequence[JobKind] = ()) -> Celery:
    """The Celery app on the configured broker, with a task for each of ``kinds``."""
    if not settings.broker_url:
        raise ConfigurationError("RAGLINE_BROKER_URL is not set")
    app = Celery("ragline", broker=settings.broker_url, set_as_current=False)
    app.conf.update(
        # One direct exchange; each queue bound by its own name, so that a job sent
        # to a queue lands in that queue alone.
        task_queues=[Queue(name, EXCHANGE, routing_key=name) for name in QUEUES],
        task_default_queue=DEFAULT_QUEUE,
        task_default_exchange=EXCHANGE.name,
        task_default_exchange_type="direct",
        task_default_routing_key=DEFAULT_QUEUE,
        task_routes={task_name(kind.name): {"queue": kind.queue} for kind in kinds},
        task_serializer="json",
        accept_content=["json"],
        task_ignore_result=True,  # job state lives in PostgreSQL
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        # The job's own watch stops it at job_time_limit (at a checkpoint, with the
        # reason); Celery's limits are the backstop for work that reaches none.
        task_soft_time_limit=settings.job_time_limit + 10,
        task_time_limit=settings.job_time_limit + 30,
        broker_transport_options=_transport_options(settings),
        broker_connection_retry_on_startup=True,
        task_publish_retry_policy={"max_retries": 2, "interval_start": 0.2, "interval_step": 0.5},
        worker_send_task_events=True,
        task_send_sent_event=True,
        worker_hijack_root_logger=False,
    )
    if not kinds:
        return app
    executor = JobExecutor(settings, kinds=kinds)

    def run(task: Task[Any, Any], job_id: str) -> None:
        try:
            retry_in = executor.execute_id(
                uuid.UUID(job_id), worker=f"celery:{task.request.hostname}"
            )
        except Exception as e:
            if not is_transient(e):
                raise
            # The job's state could not even be recorded (the database is away): put
            # the message back rather than let the job sit in "running" for ever.
            raise task.retry(exc=e, countdown=executor.backoff(task.request.retries + 1)) from e
        if retry_in is not None:
            raise task.retry(countdown=retry_in)

    for kind in kinds:
        # The cap on attempts is the job's own (max_attempts, counted in PostgreSQL,
        # redeliveries included); Celery's count would restart with a redelivery.
        app.task(name=task_name(kind.name), bind=True, acks_late=True, max_retries=None)(run)
    return app
