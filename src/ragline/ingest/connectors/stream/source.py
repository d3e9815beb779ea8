"""Change events (Debezium envelopes) from a RabbitMQ queue or a Redis stream.

A stream source is consumed, not listed: ``ragline consume NAME`` runs its consumers,
each taking batches of events, indexing each batch with one ``Pipeline.apply`` and
acknowledging the batch once that has committed. A configuration::

    {
        "transport": "rabbitmq",
        "url_env": "CDC_BROKER_URL",
        "queue": "cdc.blog",
        "categories": {
            "posts": {"title_fields": ["title"], "text_fields": ["body"],
                      "metadata_fields": ["author"], "date_field": "published_at"}
        }
    }

An event's category is its table (``source.table``), or the value of
``category_field`` in its row; its document is ``<category>:<id>``, its version the
time of the change at the database (``source.ts_us`` or ``source.ts_ms``), so that a
late, older event never overwrites a newer one whichever consumer gets it. A message
that is not a change event this source can index goes to the dead-letter queue (or
stream) with the reason, and is acknowledged::

    source = StreamSource(config, context)
    change = source.decode(body, key=None)     # raises MalformedEvent
    batch, changes = source.batch([change])    # pipeline.apply(batch, changes, ...)
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from ragline.errors import IngestError, MalformedEvent, ParseError, SourceUnavailable, problems
from ragline.ingest.chunking import ChunkProfile
from ragline.ingest.connectors.base import Changes, SourceItem
from ragline.ingest.connectors.kinds import SourceContext
from ragline.ingest.parsers.html import HtmlParser
from ragline.ingest.parsers.text import title_from_name
from ragline.ingest.text import normalize, sha256_text

_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
# Microseconds per unit of a number since 1970, by the magnitude it stays under: days,
# seconds, milliseconds, microseconds (and nanoseconds beyond).
_EPOCH_UNITS = ((1e5, 86_400e6), (1e11, 1e6), (1e14, 1e3), (1e17, 1.0))
_HTML_FIELD = "ragline-html-field.html"
_HTML = re.compile(r"</?[a-zA-Z][a-zA-Z0-9-]*(\s[^<>]*)?/?>|&(#\d+|#x[0-9a-fA-F]+|[a-zA-Z]+);")


class CategoryConfig(BaseModel):
    """How the rows of one category (a table) become documents."""

    model_config = ConfigDict(extra="forbid")

    title_fields: list[str] = []
    text_fields: list[str] = Field(min_length=1)
    metadata_fields: list[str] = []
    date_field: str | None = None


class StreamConfig(BaseModel):
    """A queue (RabbitMQ) or a stream read by a consumer group (Redis) of change events."""

    model_config = ConfigDict(extra="forbid")

    transport: Literal["rabbitmq", "redis"]
    url: str | None = None
    url_env: str | None = None
    queue: str | None = None
    dead_letter_queue: str | None = None
    stream: str | None = None
    group: str | None = None
    dead_letter_stream: str | None = None
    # Entries a consumer took and left unacknowledged this long (it died) are claimed.
    claim_idle_seconds: float = Field(default=300.0, gt=0)
    id_field: str = "id"
    category_field: str | None = None
    categories: dict[str, CategoryConfig] = Field(min_length=1)
    batch_size: int = Field(default=200, ge=1, le=10_000)
    batch_wait_seconds: float = Field(default=0.5, ge=0, le=30)
    report_every_seconds: float = Field(default=60.0, gt=0)

    @model_validator(mode="after")
    def _check(self) -> StreamConfig:
        if (self.url is None) == (self.url_env is None):
            raise ValueError("set url, or url_env naming the environment variable holding it")
        if self.transport == "rabbitmq":
            if not self.queue:
                raise ValueError("a rabbitmq stream needs a queue")
            if self.stream or self.group or self.dead_letter_stream:
                raise ValueError("stream, group and dead_letter_stream are for redis streams")
        else:
            if not self.stream or not self.group:
                raise ValueError("a redis stream needs a stream and a consumer group")
            if self.queue or self.dead_letter_queue:
                raise ValueError("queue and dead_letter_queue are for rabbitmq streams")
        return self

    @property
    def channel(self) -> str:
        """The queue or stream consumed."""
        name = self.queue if self.transport == "rabbitmq" else self.stream
        assert name is not None
        return name

    @property
    def dead_letters(self) -> str:
        """Where malformed messages go."""
        given = self.dead_letter_queue if self.transport == "rabbitmq" else self.dead_letter_stream
        return given or f"{self.channel}.dlq"


class _SourceBlock(BaseModel):
    model_config = ConfigDict(extra="allow")

    ts_ms: int = Field(ge=0)
    ts_us: int | None = Field(default=None, ge=0)
    table: str | None = None


class Envelope(BaseModel):
    """A Debezium change event's value."""

    model_config = ConfigDict(extra="allow")

    op: Literal["c", "u", "r", "d"]
    before: dict[str, Any] | None = None
    after: dict[str, Any] | None = None
    source: _SourceBlock
    ts_ms: int | None = None


@dataclass(frozen=True, slots=True)
class Change:
    """One decoded event: a version of a document (``item``), or its deletion."""

    doc_id: str
    modified: dt.datetime
    item: SourceItem | None = None
    content: bytes = b""


class EventBatch:
    """The source a batch of changes is applied from: it reads the rendered versions."""

    def __init__(self, name: str, contents: dict[tuple[str, str | None], bytes]) -> None:
        self.name = name
        self._contents = contents

    def list(self) -> Iterator[SourceItem]:
        raise SourceUnavailable("a batch of change events is applied, never listed")

    def read(self, item: SourceItem) -> bytes:
        try:
            return self._contents[(item.doc_id, item.etag)]
        except KeyError:
            raise IngestError(f"{item.doc_id}: no such version in this batch") from None


class StreamSource:
    """Turns change events into document versions and deletions."""

    def __init__(self, config: StreamConfig, context: SourceContext) -> None:
        self.config = config
        self.name = context.name
        self._profiles = context.profiles

    def list(self) -> Iterator[SourceItem]:
        raise SourceUnavailable(
            f"{self.name} is a stream: it is consumed (ragline consume), not listed"
        )

    def read(self, item: SourceItem) -> bytes:
        raise IngestError(f"{self.name} is a stream: its documents come with its events")

    def batch(self, changes: Sequence[Change]) -> tuple[EventBatch, Changes]:
        """The source and change set that ``Pipeline.apply`` takes for ``changes``."""
        contents: dict[tuple[str, str | None], bytes] = {}
        out = Changes()
        for change in changes:
            if change.item is None:
                known = out.deleted.get(change.doc_id)
                if known is None or known < change.modified:
                    out.deleted[change.doc_id] = change.modified
                continue
            contents[(change.doc_id, change.item.etag)] = change.content
            out.items.append(change.item)
        return EventBatch(self.name, contents), out

    def decode(self, body: bytes, key: bytes | None = None) -> Change | None:
        """The change a message describes; None for a tombstone (an empty value, which
        follows a deletion). Raises ``MalformedEvent`` with the reason otherwise."""
        value = _json(body, "message")
        if isinstance(value, dict) and "payload" in value and "op" not in value:
            value = value["payload"]
        if value is None:
            return None
        try:
            event = Envelope.model_validate(value)
        except ValidationError as e:
            raise MalformedEvent(f"not a change event: {problems(e, root='value')}") from e
        ts = event.source.ts_us if event.source.ts_us is not None else event.source.ts_ms * 1000
        modified = _EPOCH + dt.timedelta(microseconds=ts)
        if event.op == "d":
            row, where = event.before, "before"
            if row is None:
                row, where = _key(key), "the message key"
            if row is None:
                raise MalformedEvent("a deletion needs 'before' or a message key")
        else:
            if event.after is None:
                raise MalformedEvent(f"an event with op {event.op!r} needs 'after'")
            row, where = event.after, "after"
        category = self._category(event, row)
        doc_id = f"{category}:{self._id(row, where)}"
        if event.op == "d":
            return Change(doc_id, modified)
        return self._version(doc_id, category, row, modified)

    def _category(self, event: Envelope, row: dict[str, Any]) -> str:
        field = self.config.category_field
        value = row.get(field) if field is not None else event.source.table
        if not isinstance(value, str) or not value:
            where = f"the row's {field!r}" if field is not None else "source.table"
            raise MalformedEvent(f"no category: {where} is missing")
        if value not in self.config.categories:
            known = ", ".join(sorted(self.config.categories))
            raise MalformedEvent(f"unknown category {value!r}; this source indexes {known}")
        return value

    def _id(self, row: dict[str, Any], where: str) -> str:
        value = row.get(self.config.id_field)
        if isinstance(value, bool) or not isinstance(value, str | int) or str(value).strip() == "":
            raise MalformedEvent(
                f"no id: {where} has no {self.config.id_field!r} string or integer"
            )
        return str(value).strip()

    def _version(
        self, doc_id: str, category: str, row: dict[str, Any], modified: dt.datetime
    ) -> Change:
        spec = self.config.categories[category]
        present = [f for f in spec.text_fields if f in row]
        if not present:
            raise MalformedEvent(f"'after' has none of the text fields {spec.text_fields}")
        record: dict[str, Any] = {
            "title": " — ".join(t for f in spec.title_fields if (t := _text(row.get(f)))),
            "text": "\n\n".join(t for f in present if (t := _text(row.get(f)))),
        }
        if spec.date_field is not None and (day := _date(row.get(spec.date_field))):
            record["date"] = day
        rendered = json.dumps(record, ensure_ascii=False)
        content = rendered.encode("utf-8")
        ts = round((modified - _EPOCH) / dt.timedelta(microseconds=1))
        profile: ChunkProfile | None = self._profiles.for_category(category)
        metadata = {f: row[f] for f in spec.metadata_fields if f in row}
        item = SourceItem(
            doc_id=doc_id,
            name=f"{doc_id.replace(':', '-')}.json",
            uri=f"{self.config.transport}:{self.config.channel}#{doc_id}",
            etag=f"{ts}-{sha256_text(rendered)[:16]}",
            modified=modified,
            size=len(content),
            metadata={**metadata, "category": category},
            profile=profile,
        )
        return Change(doc_id, modified, item, content)


def _json(data: bytes, what: str) -> Any:
    try:
        return json.loads(data)
    except UnicodeDecodeError as e:
        raise MalformedEvent(f"the {what} is not UTF-8 text") from e
    except json.JSONDecodeError as e:
        raise MalformedEvent(f"the {what} is not JSON: {e}") from e


def _key(key: bytes | None) -> dict[str, Any] | None:
    """A message key (``{"id": 7}``, possibly with its schema) as a row."""
    if not key:
        return None
    value = _json(key, "message key")
    if isinstance(value, dict) and "payload" in value:
        value = value["payload"]
    return value if isinstance(value, dict) else None


def _text(value: Any) -> str:
    """A field's value as clean text; HTML is reduced to its text, headings kept."""
    if value is None:
        return ""
    if isinstance(value, list):
        return "\n\n".join(t for v in value if (t := _text(v)))
    if isinstance(value, dict):
        return normalize(json.dumps(value, ensure_ascii=False))
    text = str(value)
    if _HTML.search(text):
        return _html_text(text)
    return normalize(text)


def _html_text(html: str) -> str:
    try:
        document = HtmlParser().parse(html.encode("utf-8"), name=_HTML_FIELD)
    except ParseError:
        return ""
    # The parser takes the first heading (or <title>) as the title: keep it as text.
    parts = [document.title] if document.title != title_from_name(_HTML_FIELD) else []
    section: tuple[str, ...] = ()
    for block in document.blocks:
        for depth, heading in enumerate(block.section):
            if section[: depth + 1] != block.section[: depth + 1]:
                parts.append(heading)
        section = block.section
        parts.append(block.text)
    return normalize("\n\n".join(parts))


def _date(value: Any) -> str | None:
    """An ISO date from an ISO string, or from a number as Debezium encodes dates and
    times (days, then seconds, milliseconds, micro- or nanoseconds since 1970)."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        factor = next((f for limit, f in _EPOCH_UNITS if abs(value) < limit), 1e-3)
        try:
            return (_EPOCH + dt.timedelta(microseconds=value * factor)).date().isoformat()
        except (OverflowError, ValueError):  # out of range, or NaN
            return None
    text = str(value).strip()
    for candidate in (text, text[:10]):
        try:
            return dt.date.fromisoformat(candidate).isoformat()
        except ValueError:
            continue
    return None
