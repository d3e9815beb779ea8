"""Where a stream source's messages come from: a RabbitMQ queue (kombu, py-amqp) or a
Redis stream read by a consumer group. One transport per consumer thread.

    transport = open_transport(config, context, number=0)
    deliveries = transport.fetch(limit=200, wait=0.5, poll=1.0)
    transport.ack(deliveries)          # after the batch's commit
    transport.retry(deliveries)        # or: back to the queue / left pending

RabbitMQ: the queue must exist; the dead-letter queue is declared (durable) if it does
not. A message's body is the event; its key (which a deletion without ``before`` is
found by) is the ``key`` header, or else the correlation id. Malformed messages are
republished to the dead-letter queue unchanged, with the reason in the
``x-ragline-reason`` header, under publisher confirms, before the original is acked.

Redis: the group is created (from the start of the stream) if it does not exist. An
entry is a Debezium Server record: ``{"key": ..., "value": ...}``, or one field whose
name is the key and whose value is the event. Entries another consumer left pending
for ``claim_idle_seconds`` (it died) are claimed with XAUTOCLAIM. Dead letters are
added to the dead-letter stream as ``{reason, stream, entry_id, body[, key]}``, in the
same transaction as the acknowledgement.
"""

from __future__ import annotations

import contextlib
import os
import socket
import time
from dataclasses import dataclass
from typing import Any, Protocol, cast

import amqp.exceptions
import redis
import redis.exceptions
from kombu.connection import Connection
from kombu.messaging import Producer

from ragline.errors import ConfigurationError, SourceUnavailable
from ragline.ingest.connectors.kinds import SourceContext
from ragline.ingest.connectors.stream.source import StreamConfig
from ragline.netguard import NetGuard


@dataclass(frozen=True, slots=True)
class Delivery:
    """One message as a transport received it. ``problem`` says why it cannot even be
    decoded (a Redis entry of an unknown shape); ``tag`` is the transport's handle."""

    id: str
    body: bytes
    key: bytes | None
    tag: Any
    problem: str | None = None


class Transport(Protocol):
    def fetch(self, limit: int, wait: float, poll: float) -> list[Delivery]:
        """Up to ``limit`` messages: waits up to ``poll`` seconds for the first, then up
        to ``wait`` seconds more for the batch to fill."""
        ...

    def ack(self, deliveries: list[Delivery]) -> None: ...

    def retry(self, deliveries: list[Delivery]) -> None: ...

    def dead_letter(self, delivery: Delivery, reason: str) -> None:
        """Keep ``delivery`` with ``reason`` in the dead letters, then acknowledge it."""
        ...

    def close(self) -> None: ...


def broker_url(config: StreamConfig, context: SourceContext) -> str:
    """The broker's URL, if the tenant's allowance lets the source read its variable and
    reach its host (checked now, when the consumer connects)."""
    what = f"stream source {context.name}"
    url = config.url or context.allowance.secret(config.url_env, what, context.settings)
    assert url is not None
    NetGuard(context.allowance, what).check_broker(url)
    return url


def open_transport(config: StreamConfig, context: SourceContext, number: int) -> Transport:
    """A connected transport for consumer ``number`` of this process."""
    url = broker_url(config, context)
    if config.transport == "rabbitmq":
        if not url.startswith(("amqp://", "amqps://", "pyamqp://")):
            raise ConfigurationError(f"{context.name}: a rabbitmq url starts with amqp://")
        return RabbitTransport(url, config.channel, config.dead_letters, prefetch=config.batch_size)
    if not url.startswith(("redis://", "rediss://", "unix://")):
        raise ConfigurationError(f"{context.name}: a redis url starts with redis://")
    assert config.group is not None
    return RedisTransport(
        url,
        config.channel,
        config.group,
        config.dead_letters,
        consumer=f"{socket.gethostname()}-{os.getpid()}-{number}",
        claim_idle_ms=round(config.claim_idle_seconds * 1000),
    )


def backlog(config: StreamConfig, context: SourceContext) -> int:
    """Events waiting for the consumers: messages ready or unacknowledged in the queue
    (RabbitMQ), or entries not yet delivered to the group plus those pending (Redis)."""
    url = broker_url(config, context)
    try:
        if config.transport == "rabbitmq":
            with Connection(url, connect_timeout=5) as connection:
                channel = cast("Any", connection.channel())
                declared = channel.queue_declare(queue=config.channel, passive=True)
                return int(declared.message_count)
        client: redis.Redis = redis.Redis.from_url(url, socket_connect_timeout=5)
        try:
            for group in client.xinfo_groups(config.channel):
                name = group["name"]
                if (name.decode() if isinstance(name, bytes) else name) == config.group:
                    return int(group.get("lag") or 0) + int(group["pending"])
            return int(client.xlen(config.channel))
        finally:
            client.close()
    except (OSError, amqp.exceptions.AMQPError, redis.exceptions.RedisError) as e:
        raise SourceUnavailable(f"cannot count the events waiting for {context.name}: {e}") from e


def recoverable(error: BaseException) -> bool:
    """Whether ``error`` is a lost or refused connection that reconnecting may cure
    (not a refused login, a missing queue or a bad configuration)."""
    if isinstance(error, redis.exceptions.AuthenticationError | amqp.exceptions.AccessRefused):
        return False
    return isinstance(
        error,
        OSError
        | amqp.exceptions.RecoverableConnectionError
        | amqp.exceptions.MessageNacked
        | amqp.exceptions.RecoverableChannelError
        | redis.exceptions.ConnectionError
        | redis.exceptions.TimeoutError,
    )


class RabbitTransport:
    def __init__(self, url: str, queue: str, dead_letters: str, *, prefetch: int) -> None:
        self.queue = queue
        self.dead_letters = dead_letters
        self._received: list[Any] = []
        self.connection = Connection(
            url, transport_options={"confirm_publish": True}, connect_timeout=10
        )
        try:
            self.connection.connect()
            # kombu types its channels as the abstract StdChannel: py-amqp's methods are not
            # on it.
            self.channel = cast("Any", self.connection.channel())
            try:
                self.channel.queue_declare(queue=queue, passive=True)
            except amqp.exceptions.NotFound as e:
                raise SourceUnavailable(f"the queue {queue!r} does not exist") from e
            self._declare_dead_letters()
            self.channel.basic_qos(0, prefetch, False)
            self.channel.basic_consume(queue=queue, callback=self._received.append, no_ack=False)
        except BaseException:
            self.close()
            raise

    def _declare_dead_letters(self) -> None:
        """Declare the dead-letter queue, unless it exists (with arguments of its own)."""
        probe = cast("Any", self.connection.channel())
        try:
            probe.queue_declare(queue=self.dead_letters, passive=True)
        except amqp.exceptions.NotFound:  # the server closed the probe channel
            self.channel.queue_declare(queue=self.dead_letters, durable=True, auto_delete=False)
        else:
            probe.close()

    def fetch(self, limit: int, wait: float, poll: float) -> list[Delivery]:
        started = time.monotonic()
        filled_at = started if self._received else None
        while len(self._received) < limit:
            now = time.monotonic()
            timeout = (started + poll if filled_at is None else filled_at + wait) - now
            if timeout <= 0:
                break
            try:
                self.connection.drain_events(timeout=timeout)
            except TimeoutError:
                break
            if filled_at is None and self._received:
                filled_at = time.monotonic()
        taken, self._received[:] = self._received[:limit], self._received[limit:]
        return [self._delivery(message) for message in taken]

    @staticmethod
    def _delivery(message: Any) -> Delivery:
        body = message.body
        if isinstance(body, str):
            body = body.encode(message.properties.get("content_encoding") or "utf-8")
        key = (message.headers or {}).get("key") or message.properties.get("correlation_id")
        if isinstance(key, str):
            key = key.encode("utf-8")
        return Delivery(
            id=str(message.delivery_tag),
            body=body,
            key=key if isinstance(key, bytes) else None,
            tag=message,
        )

    def ack(self, deliveries: list[Delivery]) -> None:
        if deliveries:
            last = max(d.tag.delivery_tag for d in deliveries)
            self.channel.basic_ack(last, multiple=True)

    def retry(self, deliveries: list[Delivery]) -> None:
        for delivery in deliveries:
            self.channel.basic_reject(delivery.tag.delivery_tag, requeue=True)

    def dead_letter(self, delivery: Delivery, reason: str) -> None:
        message = delivery.tag
        headers = {
            **(message.headers or {}),
            "x-ragline-reason": reason,
            "x-ragline-queue": self.queue,
        }
        Producer(self.channel).publish(
            delivery.body,
            exchange="",
            routing_key=self.dead_letters,
            headers=headers,
            content_type=message.properties.get("content_type") or "application/octet-stream",
            content_encoding="binary",
            delivery_mode=2,
        )
        self.channel.basic_ack(message.delivery_tag)

    def close(self) -> None:
        # A connection already lost has nothing left to release.
        with contextlib.suppress(Exception):
            self.connection.release()


class RedisTransport:
    def __init__(
        self,
        url: str,
        stream: str,
        group: str,
        dead_letters: str,
        *,
        consumer: str,
        claim_idle_ms: int,
    ) -> None:
        self.stream = stream
        self.group = group
        self.dead_letters = dead_letters
        self.consumer = consumer
        self.claim_idle_ms = claim_idle_ms
        # Reads block for at most a few seconds (``poll``, ``batch_wait_seconds``).
        self.client: redis.Redis = redis.Redis.from_url(
            url, socket_connect_timeout=10, socket_timeout=60, health_check_interval=30
        )
        # A consumer first takes back what it left pending (a failed batch, a restart).
        self._own_pending = True
        self._claim_from = "0-0"
        self._claim_at = 0.0
        try:
            self.client.xgroup_create(stream, group, id="0", mkstream=True)
        except redis.exceptions.ResponseError as e:
            if "BUSYGROUP" not in str(e):
                raise
        except BaseException:
            self.close()
            raise

    def fetch(self, limit: int, wait: float, poll: float) -> list[Delivery]:
        if self._own_pending:
            entries = self._read("0", limit, block=None)
            if entries:
                return entries
            self._own_pending = False
        if time.monotonic() >= self._claim_at and (claimed := self._claim(limit)):
            return claimed
        entries = self._read(">", limit, block=poll)
        deadline = time.monotonic() + wait
        while entries and len(entries) < limit and (left := deadline - time.monotonic()) > 0:
            more = self._read(">", limit - len(entries), block=left)
            if not more:
                break
            entries.extend(more)
        return entries

    def _read(self, start: str, count: int, *, block: float | None) -> list[Delivery]:
        response = cast(
            "list[Any]",
            self.client.xreadgroup(
                self.group,
                self.consumer,
                {self.stream: start},
                count=count,
                block=None if block is None else max(1, round(block * 1000)),
            ),
        )
        entries = response[0][1] if response else []
        return self._deliveries(entries)

    def _claim(self, limit: int) -> list[Delivery]:
        """Entries of dead consumers; the scan resumes where it stopped, and starts over
        a while after it reached the end."""
        response = self.client.xautoclaim(
            self.stream,
            self.group,
            self.consumer,
            min_idle_time=self.claim_idle_ms,
            start_id=self._claim_from,
            count=limit,
        )
        cursor = response[0].decode() if isinstance(response[0], bytes) else str(response[0])
        self._claim_from = cursor
        if cursor == "0-0":
            self._claim_at = time.monotonic() + self.claim_idle_ms / 2000
            self._forget_idle_consumers()
        return self._deliveries(response[1])

    def _forget_idle_consumers(self) -> None:
        """Remove the group's consumers that hold nothing and were not seen for the claim
        time: those of stopped processes (a live one that is removed comes back on its
        next read)."""
        for info in self.client.xinfo_consumers(self.stream, self.group):
            name = info["name"].decode() if isinstance(info["name"], bytes) else info["name"]
            if name != self.consumer and info["pending"] == 0 and info["idle"] > self.claim_idle_ms:
                self.client.xgroup_delconsumer(self.stream, self.group, name)

    def _deliveries(self, entries: list[Any]) -> list[Delivery]:
        out: list[Delivery] = []
        gone: list[bytes] = []
        for entry_id, fields in entries:
            if not fields:  # trimmed from the stream while pending: nothing to do
                gone.append(entry_id)
                continue
            out.append(_entry(entry_id.decode(), fields))
        if gone:
            self.client.xack(self.stream, self.group, *gone)
        return out

    def ack(self, deliveries: list[Delivery]) -> None:
        if deliveries:
            self.client.xack(self.stream, self.group, *(d.id for d in deliveries))

    def retry(self, deliveries: list[Delivery]) -> None:
        self._own_pending = True

    def dead_letter(self, delivery: Delivery, reason: str) -> None:
        record: dict[str, str | bytes] = {
            "reason": reason,
            "stream": self.stream,
            "entry_id": delivery.id,
            "body": delivery.body,
        }
        if delivery.key is not None:
            record["key"] = delivery.key
        with self.client.pipeline(transaction=True) as pipe:
            pipe.xadd(self.dead_letters, record)  # type: ignore[arg-type]
            pipe.xack(self.stream, self.group, delivery.id)
            pipe.execute()

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.client.close()


def _entry(entry_id: str, fields: dict[bytes, bytes]) -> Delivery:
    """A Debezium Server record: ``{key, value}`` (extended) or ``{<key>: <value>}``."""
    if b"value" in fields:
        return Delivery(entry_id, fields[b"value"], fields.get(b"key"), entry_id)
    if len(fields) == 1:
        ((key, body),) = fields.items()
        return Delivery(entry_id, body, key, entry_id)
    body = b"\n".join(k + b"=" + v for k, v in fields.items())
    return Delivery(
        entry_id,
        body,
        None,
        entry_id,
        problem="an entry needs a 'value' field, or one field holding the event",
    )
