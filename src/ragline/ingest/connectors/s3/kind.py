"""The ``s3`` kind: objects in an S3-compatible bucket, kept fresh by its event
notifications."""

from __future__ import annotations

from ragline.ingest.connectors.kinds import Kind
from ragline.ingest.connectors.s3.events import backlog, events, parse_notification
from ragline.ingest.connectors.s3.source import S3Config, build

KIND = Kind(
    name="s3",
    config=S3Config,
    build=build,
    summary="Objects in an S3-compatible bucket, kept fresh by its event notifications.",
    parse_notification=parse_notification,
    events=events,
    backlog=backlog,
)
