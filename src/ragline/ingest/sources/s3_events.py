"""Event notifications of an S3 source's bucket: by webhook or from a queue, each
becomes a sync of exactly the keys it names.

    records = kind.parse_notification(config, message)  # an S3 event notification (or SNS)
    changes = kind.events(source, records)              # what a sync of those events applies
    kind.consume(config, context, ConsumeOptions(consumers=2))   # from events_queue

An event only says which keys to look at: each key is checked with a HEAD request, so
events applied late, twice or out of order still leave the object's current state.
``consume`` reads notifications from a RabbitMQ queue (``events_queue``, which must
exist, bound to the exchange the bucket publishes to) and queues one sync job per
batch of them; malformed messages go to ``<events_queue>.dlq`` with their reason in
the header ``x-ragline-reason``.
"""

from __future__ import annotations

import datetime as dt
import json
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import unquote_plus

import sqlalchemy as sa
from kombu import Connection
from kombu.utils.url import maybe_sanitize_url
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ragline.errors import ConfigurationError, JobQueueUnavailable, SourceUnavailable
from ragline.ingest.sources.base import Changes, Source
from ragline.logs import get_logger

if TYPE_CHECKING:
    from ragline.ingest.sources.s3 import S3Config
    from ragline.ingest.sources.stream_transports import Delivery, RabbitTransport
    from ragline.jobs.dispatch import Dispatcher
    from ragline.sources.kinds import ConsumeOptions, SourceContext
    from ragline.sources.store import SourceRecord

log = get_logger(__name__)

DEAD_LETTER_SUFFIX = ".dlq"
# A consumer gathers the events that arrive within this long of the first, up to this
# many messages, into one sync job.
_BATCH_SECONDS = 1.0
_BATCH_MESSAGES = 100
_POLL_SECONDS = 0.5
_BACKOFF_MAX = 30.0

# Event notifications, in the shape S3 (and MinIO, Ceph) publish them.


class _Bucket(BaseModel):
    name: str


class _Object(BaseModel):
    key: str = Field(min_length=1)
    size: int | None = None
    eTag: str | None = None
    sequencer: str | None = None


class _Entity(BaseModel):
    bucket: _Bucket
    object: _Object


class _Record(BaseModel):
    eventVersion: str
    eventSource: str = Field(pattern=r"^[\w.-]+:s3$")
    eventTime: dt.datetime
    eventName: str = Field(min_length=1)
    s3: _Entity


class _Notification(BaseModel):
    Records: list[_Record]


class _Event(BaseModel):
    """One record as ``parse_notification`` returns it, and a sync job carries it."""

    model_config = ConfigDict(extra="forbid")

    key: str = Field(min_length=1)
    event: str
    time: dt.datetime
    sequencer: str | None = None


def _action(event_name: str) -> Literal["created", "removed"] | None:
    """What an event says of its object's content; None for events that leave it as it
    is (tagging, ACLs, restores, replication)."""
    name = event_name.removeprefix("s3:")
    if name.startswith("ObjectCreated:"):
        return "created"
    if name.startswith(("ObjectRemoved:", "LifecycleExpiration:")):
        return "removed"
    return None


def parse_notification(config: S3Config, body: dict[str, Any]) -> list[dict[str, Any]]:
    """The records of an S3 event notification (bare, or in an SNS envelope) that concern
    this source's objects, as ``{"key", "event", "time", "sequencer"}`` with the key
    decoded. A test event gives none; a malformed message raises ``ConfigurationError``."""
    body = _unwrap(body)
    if body.get("Event") == "s3:TestEvent":
        return []
    if "Records" not in body:
        raise ConfigurationError(
            'not an S3 event notification: expected {"Records": [...]}, got the keys '
            f"{sorted(body)[:10]}"
        )
    try:
        notification = _Notification.model_validate(body)
    except ValidationError as e:
        raise ConfigurationError(f"malformed S3 event notification: {_problems(e)}") from e
    keys = config.key_filter()
    records = []
    for record in notification.Records:
        key = unquote_plus(record.s3.object.key)
        if record.s3.bucket.name != config.bucket or not keys.wanted(key):
            continue
        if _action(record.eventName) is None:
            continue
        event = _Event(
            key=key,
            event=record.eventName.removeprefix("s3:"),
            time=record.eventTime,
            sequencer=record.s3.object.sequencer,
        )
        records.append(event.model_dump(mode="json"))
    return records


def _unwrap(body: Any) -> dict[str, Any]:
    """The S3 message of ``body``, taken out of its SNS envelope if it has one."""
    if not isinstance(body, dict):
        raise ConfigurationError("an S3 event notification must be a JSON object")
    if body.get("Type") == "SubscriptionConfirmation":
        raise ConfigurationError(
            "an SNS subscription confirmation, not an event: confirm the subscription by "
            "opening its SubscribeURL"
        )
    if body.get("Type") != "Notification":
        return body
    message = body.get("Message")
    try:
        inner = json.loads(message) if isinstance(message, str) else None
    except json.JSONDecodeError as e:
        raise ConfigurationError(f"the SNS notification's Message is not JSON: {e}") from e
    if not isinstance(inner, dict):
        raise ConfigurationError(
            "the SNS notification's Message must hold an S3 event notification "
            "(a JSON object, as a string)"
        )
    return inner


def _problems(error: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(p) for p in err['loc']) or 'message'}: {err['msg']}"
        for err in error.errors()
    )


def events(source: Source, records: list[dict[str, Any]]) -> Changes:
    """The changes ``records`` point at: each key's object as it is now (a HEAD request),
    or its deletion, at the time of the key's last event when that event removed it."""
    from ragline.ingest.sources.s3 import S3Source

    if not isinstance(source, S3Source):
        raise ConfigurationError(f"S3 events apply to an S3 source, not {source.name}")
    try:
        parsed = [_Event.model_validate(record) for record in records]
    except ValidationError as e:
        raise ConfigurationError(f"malformed S3 event records: {_problems(e)}") from e
    by_key: dict[str, list[tuple[int, _Event]]] = {}
    for position, event in enumerate(parsed):
        by_key.setdefault(event.key, []).append((position, event))
    changes = Changes()
    for key, seen in sorted(by_key.items()):
        last = _last(seen)
        item = source.head(key)
        if item is not None:
            changes.items.append(item)
        else:
            changes.deleted[key] = last.time if _action(last.event) == "removed" else None
    return changes


def _last(events: list[tuple[int, _Event]]) -> _Event:
    """The last of one key's events: by sequencer when they all have one (S3's order for
    a key), else by time; ties go to the one delivered last."""
    if all(event.sequencer for _, event in events):
        width = max(len(event.sequencer or "") for _, event in events)

        def order(entry: tuple[int, _Event]) -> tuple[str, int]:
            return (entry[1].sequencer or "").rjust(width, "0").upper(), entry[0]

        return max(events, key=order)[1]
    return max(events, key=lambda entry: (entry[1].time, entry[0]))[1]


# Consuming notifications from an AMQP queue.


def consume(config: S3Config, context: SourceContext, options: ConsumeOptions) -> None:
    """Turn the notifications of ``events_queue`` into sync jobs until ``options.stop()``
    or ``options.idle_timeout`` seconds without a message; ``options.consumers``
    connections share the queue."""
    from ragline.jobs.dispatch import dispatcher_for
    from ragline.sources.store import get_source

    if options.consumers < 1:
        raise ConfigurationError("consume needs at least one consumer")
    url = _events_url(config, context)
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
        from ragline.ingest.sources.stream_transports import RabbitTransport, recoverable

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
                    delay = min(_BACKOFF_MAX, 2.0 ** (failures - 1))
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
        from ragline.sources.service import enqueue_sync

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
                self.log.warning("events_job_not_queued", error=str(e), retry_in=_BACKOFF_MAX)
                transport.retry(kept)
                self._sleep(_BACKOFF_MAX)
                return
        transport.ack(kept)

    def _sleep(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while not self.stopping() and (left := deadline - time.monotonic()) > 0:
            time.sleep(min(left, 0.2))


def backlog(config: S3Config, context: SourceContext) -> int:
    """Notifications waiting in ``events_queue`` (0 when the source has none)."""
    if not config.events_queue:
        return 0
    url = _events_url(config, context)
    connection = Connection(url, connect_timeout=5)
    try:
        with connection:
            channel: Any = connection.channel()
            declared = channel.queue_declare(queue=config.events_queue, passive=True)
    except (*connection.connection_errors, *connection.channel_errors) as e:
        raise SourceUnavailable(
            f"cannot count the messages of {config.events_queue!r} at {_safe(url)}: {e}"
        ) from e
    return int(declared.message_count)


def _events_url(config: S3Config, context: SourceContext) -> str:
    from ragline.sources.kinds import secret

    if not config.events_queue:
        raise ConfigurationError(
            f"{context.name} has no events_queue to consume; set events_queue and "
            "events_url_env in its configuration"
        )
    url = secret(config.events_url_env, f"{context.name} events_url_env") or config.events_url
    if not url:
        raise ConfigurationError(f"{context.name}: set events_url_env to the broker's URL")
    return url


def _safe(url: str) -> str:
    return str(maybe_sanitize_url(url))
