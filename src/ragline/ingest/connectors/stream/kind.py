"""The ``stream`` kind: change events (Debezium) from a RabbitMQ queue or a Redis
stream. Its changes are pushed, never listed: ``ragline.sources.consumers.stream``
consumes them."""

from __future__ import annotations

from ragline.ingest.connectors.kinds import Kind, SourceContext
from ragline.ingest.connectors.stream.source import StreamConfig, StreamSource
from ragline.ingest.connectors.stream.transports import backlog


def build(config: StreamConfig, context: SourceContext) -> StreamSource:
    return StreamSource(config, context)


KIND = Kind(
    name="stream",
    config=StreamConfig,
    build=build,
    summary="Change events (Debezium) from a RabbitMQ queue or a Redis stream.",
    backlog=backlog,
    listable=False,
)
