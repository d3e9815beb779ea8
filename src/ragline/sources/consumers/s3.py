"""Consuming an S3 source's event notifications from a RabbitMQ queue: each batch of
them becomes one sync job of exactly the keys it names.

    consume(config, context, ConsumeOptions(consumers=2))     # `ragline consume <source>`

``events_queue`` must exist, bound to the exchange the bucket publishes to. Malformed
messages go to ``<events_queue>.dlq`` with their reason in the header
``x-ragline-reason``; the others are acknowledged once the sync job of their batch is
committed, or go back to the queue when it cannot be.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa

from ragline.errors import ConfigurationError, JobQueueUnavailable
from ragline.ingest.connectors.kinds import SourceContext
from ragline.ingest.connectors.s3.events import events_url, parse_notification
from ragline.ingest.connectors.s3.source import S3Config
from ragline.ingest.connectors.stream.transports import Delivery, RabbitTransport, recoverable
from ragline.jobs.dispatch import Dispatcher, dispatcher_for
from ragline.logs import get_logger
from ragline.retry import Backoff
from ragline.sources.registry import ConsumeOptions
from ragline.sources.service import enqueue_sync
from ragline.sources.store import SourceRecord, get_source

log = get_logger(__name__)

DEAD_LETTER_SUFFIX = ".dlq"
# A consumer gathers the events that arrive within this long of the first, up to this
# many messages, into one sync job.
_BATCH_SECONDS = 1.0
_BATCH_MESSAGES = 100
_POLL_SECONDS = 0.5
_BACKOFF = Backoff(first=1.0, cap=30.0)


def consume(config: S3Config, context: SourceContext, options: ConsumeOptions) -> None:
    """Turn the notifications of ``events_queue`` into sync jobs until ``options.stop()``
    or ``options.idle_timeout`` seconds without a message; ``options.consumers``
    connections share the queue."""
    if options.consumers < 1:
        raise ConfigurationError("consume needs at least one consumer")
    url = events_url(config, context)
    with context.engine.connect() as conn:
        record = get_source(conn, context.source_id)
    dispatcher = dispatcher_for(context.settings)
    activity = _Activity(options.idle_timeout)
    errors: list[BaseException] = []

    def stopping() -> bool:
        return bool(errors) or options.stop() or activity.idle()

    def run(consumer: _Consumer) -> None:
        try:
            consumer.run()
        except BaseException as e:
            errors.append(e)

    consumers = [
        _Consumer(config, context, url, record, dispatcher, activity, stopping)
        for _ in range(options.consumers)
    ]
    threads = [
        threading.Thread(target=run, args=(c,), name=f"s3-events-{i}", daemon=True)
        for i, c in enumerate(consumers)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]


class _Activity:
    """When any consumer last got a message, for ``idle_timeout``."""

    def __init__(self, idle_timeout: float | None) -> None:
        self.idle_timeout = idle_timeout
        self.last = time.monotonic()
        self.lock = threading.Lock()

    def touch(self) -> None:
        with self.lock:
            self.last = time.monotonic()

    def idle(self) -> bool:
        with self.lock:
            return self.idle_timeout is not None and (
                time.monotonic() - self.last >= self.idle_timeout
            )


class _Consumer:
    """One connection to the events queue (the stream sources' RabbitMQ transport):
    malformed messages are dead-lettered; the others are acknowledged once the sync job
    of their batch is committed, or go back to the queue when it cannot be."""

    def __init__(
        self,
        config: S3Config,
        context: SourceContext,
        url: str,
        record: SourceRecord,
        dispatcher: Dispatcher,
        activity: _Activity,
        stopping: Callable[[], bool],
    ) -> None:
        assert config.events_queue is not None
        self.config = config
        self.context = context
        self.url = url
        self.queue = config.events_queue
        self.record = record
        self.dispatcher = dispatcher
        self.activity = activity
        self.stopping = stopping
        self.log = log.bind(source=context.name, queue=config.events_queue)

    def run(self) -> None:
        transport: RabbitTransport | None = None
        failures = 0
        try:
            while not self.stopping():
                try:
                    if transport is None:
                        transport = RabbitTransport(
                            self.url,
                            self.queue,
                            self.queue + DEAD_LETTER_SUFFIX,
                            prefetch=_BATCH_MESSAGES,
                        )
                    deliveries = transport.fetch(_BATCH_MESSAGES, _BATCH_SECONDS, _POLL_SECONDS)
                    if deliveries:
                        self.activity.touch()
                        self._handle(transport, deliveries)
                    failures = 0
                except Exception as e:
                    if not recoverable(e):
                        raise
                    failures += 1
                    delay = _BACKOFF.delay(failures)
                    self.log.warning(
                        "events_queue_unreachable", error=f"{type(e).__name__}: {e}", retry_in=delay
                    )
                    if transport is not None:
                        transport.close()
                    transport = None
                    self._sleep(delay)
        finally:
            if transport is not None:
                transport.close()

    def _handle(self, transport: RabbitTransport, deliveries: list[Delivery]) -> None:
        kept: list[Delivery] = []
        records: list[dict[str, Any]] = []
        for delivery in deliveries:
            try:
                records.extend(parse_notification(self.config, json.loads(delivery.body)))
            except (json.JSONDecodeError, UnicodeDecodeError) as e:
                reason = f"not JSON: {e}"
            except ConfigurationError as e:
                reason = str(e)
            else:
                kept.append(delivery)
                continue
            transport.dead_letter(delivery, reason)
            self.log.warning("event_dead_lettered", message=delivery.id, reason=reason)
        if records:
            try:
                job = enqueue_sync(
                    self.context.engine,
                    self.dispatcher,
                    self.record,
                    full=False,
                    trigger="event",
                    events=records,
                )
                self.log.info("events_queued", job_id=str(job.id), events=len(records))
            except JobQueueUnavailable as e:  # the job is in PostgreSQL: a runner finds it
                self.log.warning("events_job_not_dispatched", error=str(e))
            except (sa.exc.OperationalError, sa.exc.InterfaceError) as e:
                self.log.warning("events_job_not_queued", error=str(e), retry_in=_BACKOFF.cap)
                transport.retry(kept)
                self._sleep(_BACKOFF.cap)
                return
        transport.ack(kept)

    def _sleep(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while not self.stopping() and (left := deadline - time.monotonic()) > 0:
            time.sleep(min(left, 0.2))
