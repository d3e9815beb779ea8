"""Event notifications of an S3 source's bucket: by webhook or from a queue, each
becomes a sync of exactly the keys it names.

    records = kind.parse_notification(config, message)  # an S3 event notification (or SNS)
    changes = kind.events(source, records)              # what a sync of those events applies
    kind.backlog(config, context)                       # notifications waiting in the queue

An event only says which keys to look at: each key is checked with a HEAD request, so
events applied late, twice or out of order still leave the object's current state.
Notifications published to a RabbitMQ queue (``events_queue``, which must exist,
bound to the exchange the bucket publishes to) are read by
``ragline.sources.consumers.s3``.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any, Literal
from urllib.parse import unquote_plus

from kombu import Connection
from kombu.utils.url import maybe_sanitize_url
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ragline.errors import ConfigurationError, SourceUnavailable, problems
from ragline.ingest.connectors.base import Changes, Source
from ragline.ingest.connectors.kinds import SourceContext
from ragline.ingest.connectors.s3.source import S3Config, S3Source
from ragline.netguard import NetGuard

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
        raise ConfigurationError(
            f"malformed S3 event notification: {problems(e, root='message')}"
        ) from e
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


def events(source: Source, records: list[dict[str, Any]]) -> Changes:
    """The changes ``records`` point at: each key's object as it is now (a HEAD request),
    or its deletion, at the time of the key's last event when that event removed it."""
    if not isinstance(source, S3Source):
        raise ConfigurationError(f"S3 events apply to an S3 source, not {source.name}")
    try:
        parsed = [_Event.model_validate(record) for record in records]
    except ValidationError as e:
        raise ConfigurationError(
            f"malformed S3 event records: {problems(e, root='message')}"
        ) from e
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


def backlog(config: S3Config, context: SourceContext) -> int:
    """Notifications waiting in ``events_queue`` (0 when the source has none)."""
    if not config.events_queue:
        return 0
    url = events_url(config, context)
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


def events_url(config: S3Config, context: SourceContext) -> str:
    """The URL of the broker holding ``events_queue``."""
    if not config.events_queue:
        raise ConfigurationError(
            f"{context.name} has no events_queue to consume; set events_queue and "
            "events_url_env in its configuration"
        )
    what = f"s3 source {context.name}"
    allowance = context.allowance
    url = allowance.secret(config.events_url_env, what, context.settings) or config.events_url
    if not url:
        raise ConfigurationError(f"{context.name}: set events_url_env to the broker's URL")
    NetGuard(allowance, what).check_broker(url)
    return url


def _safe(url: str) -> str:
    return str(maybe_sanitize_url(url))
