"""The consumers of a stream source: batches in, one ``Pipeline.apply`` per batch, acks
after the commit, a run recorded every ``report_every_seconds``.

    consume(config, context, ConsumeOptions(consumers=3))     # `ragline consume <source>`

Each consumer runs in its own thread with its own connection (kombu channels are not
thread-safe). It takes up to ``batch_size`` messages, waiting up to
``batch_wait_seconds`` for the batch to fill; dead-letters the malformed ones (then
acknowledges them); applies the rest; and acknowledges them only once ``apply`` has
returned. When ``apply`` fails (the database is down) the batch goes back to the
queue, or stays pending in the stream, and the consumer backs off. Consumers of one
queue may run in many processes: a document's versions are ordered by their
timestamps, not by who applies them.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Callable
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait

import sqlalchemy as sa

from ragline.domain import ItemFailure, SyncReport
from ragline.embedding.factory import get_embedder
from ragline.errors import ConfigurationError, MalformedEvent
from ragline.ingest.connectors.kinds import SourceContext
from ragline.ingest.connectors.stream.source import Change, StreamConfig, StreamSource
from ragline.ingest.connectors.stream.transports import (
    Delivery,
    Transport,
    open_transport,
    recoverable,
)
from ragline.ingest.pipeline import Pipeline
from ragline.ingest.runs import RunLabels, get_run
from ragline.logs import ensure_logging, get_logger
from ragline.retry import Backoff, call_with_retries
from ragline.sources.notify import Notifier
from ragline.sources.registry import ConsumeOptions

log = get_logger(__name__)

_BACKOFF = Backoff(first=1.0, cap=30.0)
_AT_ONCE = Backoff(first=0.0, cap=0.0)
_POLL_SECONDS = 1.0
# Deadlock and serialization failures: the batch is applied again at once, this often.
_CONFLICT_ATTEMPTS = 3
_CONFLICTS = frozenset({"40P01", "40001"})


def consume(config: StreamConfig, context: SourceContext, options: ConsumeOptions) -> None:
    """Run ``options.consumers`` consumers until ``options.stop()`` or until each has
    gone ``options.idle_timeout`` seconds without a message; record the last run."""
    source = StreamSource(config, context)
    if options.consumers < 1:
        raise ConfigurationError("consume needs at least one consumer")
    ensure_logging(context.settings)
    pipeline = Pipeline(context.engine, get_embedder(context.settings), context.settings)
    runs = _Runs(pipeline, context, every=source.config.report_every_seconds)
    halt = threading.Event()

    def stop() -> bool:
        return halt.is_set() or options.stop()

    bound = log.bind(source=context.name, tenant=context.tenant)
    bound.info("stream_consumers_started", consumers=options.consumers)
    consumers = [
        _Consumer(n, source, context, pipeline, runs, stop, options.idle_timeout)
        for n in range(options.consumers)
    ]
    try:
        with ThreadPoolExecutor(options.consumers, thread_name_prefix="ragline-consume") as pool:
            futures = [pool.submit(consumer.run) for consumer in consumers]
            try:
                wait(futures, return_when=FIRST_EXCEPTION)
            finally:
                halt.set()
    finally:
        runs.flush(force=True)
    errors = [error for f in futures if (error := f.exception()) is not None]
    for error in errors[1:]:
        bound.error("stream_consumer_failed", error=f"{type(error).__name__}: {error}")
    if errors:
        raise errors[0]
    bound.info("stream_consumers_stopped")


class _Consumer:
    def __init__(
        self,
        number: int,
        source: StreamSource,
        context: SourceContext,
        pipeline: Pipeline,
        runs: _Runs,
        stop: Callable[[], bool],
        idle_timeout: float | None,
    ) -> None:
        self.number = number
        self.source = source
        self.config = source.config
        self.context = context
        self.pipeline = pipeline
        self.runs = runs
        self.stop = stop
        self.idle_timeout = idle_timeout
        self.log = log.bind(source=context.name, consumer=number)

    def run(self) -> None:
        transport: Transport | None = None
        last_message = time.monotonic()
        failures = 0
        try:
            while not self.stop():
                idle = time.monotonic() - last_message
                if self.idle_timeout is not None and idle >= self.idle_timeout:
                    self.log.info("stream_consumer_idle", seconds=self.idle_timeout)
                    return
                try:
                    if transport is None:
                        transport = open_transport(self.config, self.context, self.number)
                    poll = _POLL_SECONDS
                    if self.idle_timeout is not None:
                        poll = max(0.05, min(poll, self.idle_timeout - idle))
                    deliveries = transport.fetch(
                        self.config.batch_size, self.config.batch_wait_seconds, poll
                    )
                    if not deliveries:
                        continue
                    applied = self._handle(transport, deliveries)
                    last_message = time.monotonic()
                except Exception as e:
                    if not recoverable(e):
                        raise
                    self.log.warning("stream_connection_failed", error=f"{type(e).__name__}: {e}")
                    applied = False
                failures = 0 if applied else failures + 1
                if failures:
                    # Waiting to retry, hold no message (a broker still hands a subscribed
                    # consumer its prefetch, which other consumers could be applying); a
                    # broken connection is dropped here too.
                    if transport is not None:
                        transport.close()
                    transport = None
                    self._sleep(_BACKOFF.delay(failures))
                    last_message = time.monotonic()  # waiting to retry is not being idle
        finally:
            if transport is not None:
                transport.close()

    def _handle(self, transport: Transport, deliveries: list[Delivery]) -> bool:
        """Dead-letter, apply and acknowledge one batch; False when it must be retried."""
        started = time.perf_counter()
        changes: list[Change] = []
        kept: list[Delivery] = []
        dead: list[ItemFailure] = []
        for delivery in deliveries:
            try:
                if delivery.problem is not None:
                    raise MalformedEvent(delivery.problem)
                change = self.source.decode(delivery.body, delivery.key)
            except MalformedEvent as e:
                transport.dead_letter(delivery, str(e))
                dead.append(ItemFailure(f"message {delivery.id}", f"dead-lettered: {e}"))
                self.log.warning("stream_message_dead_lettered", message=delivery.id, reason=str(e))
                continue
            kept.append(delivery)
            if change is not None:
                changes.append(change)
        report = SyncReport()
        if changes:
            try:
                report = self._apply(changes)
            except Exception as e:
                self.log.error(
                    "stream_batch_failed", messages=len(kept), error=f"{type(e).__name__}: {e}"
                )
                transport.retry(kept)
                self.runs.add(SyncReport(), dead)
                return False
        transport.ack(kept)
        self.runs.add(report, dead)
        self.log.info(
            "stream_batch_applied",
            messages=len(deliveries),
            dead_lettered=len(dead),
            added=report.added,
            updated=report.updated,
            unchanged=report.unchanged,
            deleted=report.deleted,
            failed=report.failed,
            seconds=round(time.perf_counter() - started, 3),
        )
        return True

    def _apply(self, changes: list[Change]) -> SyncReport:
        """One ``Pipeline.apply`` of the batch, run again when it lost a deadlock to
        another consumer (each document's write is its own transaction: the documents
        written before the conflict are found unchanged)."""
        batch, change_set = self.source.batch(changes)

        def lost_a_deadlock(error: BaseException) -> bool:
            return isinstance(error, sa.exc.OperationalError) and (
                getattr(error.orig, "sqlstate", None) in _CONFLICTS
            )

        return call_with_retries(
            lambda: self.pipeline.apply(
                batch, change_set, collection=self.context.collection, tenant=self.context.tenant
            ),
            attempts=_CONFLICT_ATTEMPTS,
            backoff=_AT_ONCE,
            transient=lost_a_deadlock,
            on_retry=lambda attempt, error, _: self.log.info(
                "stream_batch_conflict", attempt=attempt, error=str(error)
            ),
        )

    def _sleep(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while not self.stop() and (left := deadline - time.monotonic()) > 0:
            time.sleep(min(left, 0.2))


class _Runs:
    """The reports of a process's consumers, recorded as one run per interval."""

    def __init__(self, pipeline: Pipeline, context: SourceContext, *, every: float) -> None:
        self.pipeline = pipeline
        self.context = context
        self.every = every
        self.notifier = Notifier.from_settings(context.settings)
        self._lock = threading.Lock()
        self._record_lock = threading.Lock()
        self._report = SyncReport()
        self._started = dt.datetime.now(dt.UTC)
        self._due = time.monotonic() + every

    def add(self, report: SyncReport, dead: list[ItemFailure]) -> None:
        with self._lock:
            self._report.merge(report)
            self._report.failed += len(dead)
            self._report.failures.extend(dead)
        if time.monotonic() >= self._due:
            self.flush()

    def flush(self, *, force: bool = False) -> None:
        """Record the interval's run (if anything happened in it) and post it."""
        with self._record_lock:
            with self._lock:
                if not force and time.monotonic() < self._due:
                    return
                report, started = self._report, self._started
                self._report, self._started = SyncReport(), dt.datetime.now(dt.UTC)
                self._due = time.monotonic() + self.every
            if not any((report.added, report.updated, report.unchanged, report.deleted)) and (
                not report.failed
            ):
                return
            try:
                run_id = self.pipeline.record_run(
                    report,
                    source=self.context.name,
                    collection=self.context.collection,
                    tenant=self.context.tenant,
                    run=RunLabels(source_id=self.context.source_id, trigger="stream"),
                    started_at=started,
                )
            except sa.exc.SQLAlchemyError as e:  # kept for the next interval's run
                log.warning("stream_run_not_recorded", source=self.context.name, error=str(e))
                with self._lock:
                    report.merge(self._report)
                    self._report, self._started = report, started
                return
            if self.notifier.active:
                try:
                    with self.context.engine.connect() as conn:
                        run = get_run(conn, run_id)
                except sa.exc.SQLAlchemyError as e:
                    log.warning("run_report_unavailable", run_id=run_id, error=str(e))
                    return
                self.notifier.run_finished(run)
