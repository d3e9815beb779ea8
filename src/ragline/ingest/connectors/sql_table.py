"""Rows of a SQL table (or query) as documents, synced incrementally by a watermark.

    source = SqlTableSource(SqlConfig(url="postgresql://db/news", table="articles",
                                      text_columns=["body"], title_columns=["title"],
                                      updated_column="updated_at"), context)
    changes = source.changes({})            # every matching row, the first time
    changes = source.changes(state)         # rows changed since the saved watermark
    items = list(source.list())             # the id listing: finds deleted rows

Any database SQLAlchemy reaches works (PostgreSQL, MySQL/MariaDB with the ``mysql``
extra...). An incremental sync reads the rows whose updated-at column is at or after
the watermark less ``lookback_seconds``: a transaction that commits after a sync with
an older timestamp (one that began earlier) is still seen. A row's etag is its
updated-at value, so rows seen again in the look-back window cost nothing; the column
must therefore change whenever the row does.

The row filter (``where``, SQL of the source's dialect) is evaluated, not applied, in
an incremental sync: a row edited so that it no longer matches is deleted at once.
Rows deleted from the table are found by the id listing of a full sync, which reads
only ids and updated-at values.

Rows become documents of the configured ``format``: the title columns joined (" — ")
are the title, prepended to every chunk's embedded text; the text columns, joined by
blank lines, the body. Metadata columns are kept as filterable metadata, and the
category column picks the chunking profile of the source's ``profiles``.
"""

from __future__ import annotations

import datetime as dt
import html
import json
from collections.abc import Iterator
from typing import Any, Literal

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict, Field, model_validator
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from ragline.errors import ConfigurationError, IngestError, SourceUnavailable
from ragline.ingest.connectors.base import Changes, SourceItem
from ragline.ingest.connectors.kinds import Kind, SourceContext
from ragline.netguard import NetGuard, scrub

_MATCH = "ragline_match"
_TITLE_SEPARATOR = " — "
_SUFFIX = {"text": ".json", "markdown": ".md", "html": ".html"}


class SqlConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str | None = Field(
        default=None, description="SQLAlchemy URL without a password (e.g. peer/trust auth)."
    )
    url_env: str | None = Field(
        default=None, description="Environment variable holding the SQLAlchemy URL."
    )
    table: str | None = Field(default=None, description="Table, optionally schema.table.")
    query: str | None = Field(default=None, description="A SELECT used as the table.")
    id_column: str = "id"
    text_columns: list[str] = Field(min_length=1)
    title_columns: list[str] = []
    updated_column: str
    metadata_columns: list[str] = []
    category_column: str | None = None
    date_column: str | None = None
    where: str | None = Field(default=None, description="Row filter, SQL of the source.")
    format: Literal["text", "markdown", "html"] = "text"
    uri_template: str | None = Field(
        default=None, description="Citation link of a row, e.g. https://site/a/{id}."
    )
    lookback_seconds: float = Field(default=300.0, ge=0)
    batch_size: int = Field(default=500, ge=1, le=100_000)

    @model_validator(mode="after")
    def _one_of_each(self) -> SqlConfig:
        if (self.url is None) == (self.url_env is None):
            raise ValueError("set exactly one of url and url_env")
        if (self.table is None) == (self.query is None):
            raise ValueError("set exactly one of table and query")
        return self


class SqlTableSource:
    def __init__(self, config: SqlConfig, context: SourceContext) -> None:
        self.config = config
        self.context = context
        self.name = context.name
        self._engine: sa.Engine | None = None
        self._addresses: tuple[str, ...] = ()
        self._host = ""
        self._rows: dict[str, sa.RowMapping] = {}
        self._ids: dict[str, Any] = {}
        self._watermark: dt.datetime | None = None
        self._naive = False

    # -- the source contract -----------------------------------------------------------

    def changes(self, state: dict[str, Any]) -> Changes:
        self._restore(state)
        table = self._table()
        statement = sa.select(*self._columns(table), self._match(table))
        if self._watermark is not None:
            since = self._watermark - dt.timedelta(seconds=self.config.lookback_seconds)
            statement = statement.where(table.c[self.config.updated_column] >= self._bind(since))
        statement = statement.order_by(
            table.c[self.config.updated_column], table.c[self.config.id_column]
        )
        changes = Changes()
        for row in self._stream(statement):
            doc_id = str(row[self.config.id_column])
            if row[_MATCH] not in (1, True):
                changes.deleted[doc_id] = None
                continue
            changes.items.append(self._item(row))
        return changes

    def list(self) -> Iterator[SourceItem]:
        table = self._table()
        config = self.config
        names = (config.id_column, config.updated_column, *config.metadata_columns)
        names += (config.category_column,) if config.category_column else ()
        statement = sa.select(*(table.c[name] for name in dict.fromkeys(names)))
        if config.where:
            statement = statement.where(sa.text(f"({config.where})"))
        for row in self._stream(statement.order_by(table.c[config.id_column])):
            yield self._item(row)

    def read(self, item: SourceItem) -> bytes:
        row = self._rows.pop(item.doc_id, None)
        if row is None:
            row = self._fetch(item.doc_id)
        return self._render(row)

    def checkpoint(self) -> dict[str, Any]:
        if self._watermark is None:
            return {}
        return {"watermark": self._watermark.isoformat(), "naive": self._naive}

    # -- queries -------------------------------------------------------------------------

    @property
    def engine(self) -> sa.Engine:
        """The source database's engine, connecting only where the tenant's allowance
        lets it: checked (and its address pinned) when the engine is first made."""
        if self._engine is None:
            context = self.context
            what = f"sql source {self.name}"
            url = self.config.url or context.allowance.secret(
                self.config.url_env, what, context.settings
            )
            assert url is not None
            target = NetGuard(context.allowance, what).database(url, context.settings)
            self._addresses, self._host = target.addresses, make_url(url).host or ""
            try:
                self._engine = sa.create_engine(
                    target.url, poolclass=NullPool, connect_args=target.connect_args
                )
            except (sa.exc.ArgumentError, ImportError) as e:
                raise ConfigurationError(
                    f"source {self.name}: cannot use the database URL "
                    f"{make_url(url).render_as_string(hide_password=True)!r}: {e}"
                ) from e
        return self._engine

    def _table(self) -> sa.TableClause | sa.Subquery:
        names = self._column_names()
        if self.config.table is not None:
            schema, _, name = self.config.table.rpartition(".")
            return sa.table(name, *(sa.column(c) for c in names), schema=schema or None)
        assert self.config.query is not None
        return (
            sa.text(self.config.query)
            .columns(*(sa.column(c) for c in names))
            .subquery("ragline_source")
        )

    def _column_names(self) -> tuple[str, ...]:
        config = self.config
        names = [
            config.id_column,
            config.updated_column,
            *config.title_columns,
            *config.text_columns,
            *config.metadata_columns,
        ]
        names += [c for c in (config.category_column, config.date_column) if c]
        return tuple(dict.fromkeys(names))

    def _columns(self, table: sa.TableClause | sa.Subquery) -> tuple[sa.ColumnElement[Any], ...]:
        return tuple(table.c[name] for name in self._column_names())

    def _match(self, table: sa.TableClause | sa.Subquery) -> sa.ColumnElement[Any]:
        if not self.config.where:
            return sa.literal(1).label(_MATCH)
        return sa.case((sa.text(f"({self.config.where})"), 1), else_=0).label(_MATCH)

    def _stream(self, statement: sa.Select[Any]) -> Iterator[sa.RowMapping]:
        try:
            with self.engine.connect() as conn:
                result = conn.execution_options(
                    stream_results=True, yield_per=self.config.batch_size
                ).execute(statement)
                for row in result.mappings():
                    self._advance(row[self.config.updated_column])
                    yield row
        except sa.exc.SQLAlchemyError as e:
            reason = scrub(_first_line(e), self._addresses, self._host)
            raise SourceUnavailable(
                f"source {self.name}: the query failed: {reason}; check the URL, "
                "the table and column names and the row filter"
            ) from e

    def _fetch(self, doc_id: str) -> sa.RowMapping:
        table = self._table()
        key = self._ids.get(doc_id, doc_id)
        statement = sa.select(*self._columns(table)).where(
            table.c[self.config.id_column] == sa.literal(key)
        )
        for row in self._stream(statement):
            return row
        raise IngestError(f"row {doc_id} is no longer in the table")

    # -- rows as documents ------------------------------------------------------------

    def _item(self, row: sa.RowMapping) -> SourceItem:
        """The item of a row: a whole one, or one of the id listing (without texts)."""
        config = self.config
        doc_id = str(row[config.id_column])
        self._ids[doc_id] = row[config.id_column]
        if all(column in row for column in config.text_columns):
            self._rows[doc_id] = row
        updated = row[config.updated_column]
        metadata = {column: row[column] for column in config.metadata_columns}
        category: str | None = None
        if config.category_column:
            category = str(row[config.category_column])
            metadata[config.category_column] = category
        uri = (
            config.uri_template.format(id=doc_id)
            if config.uri_template
            else f"sql://{self.name}/{doc_id}"
        )
        return SourceItem(
            doc_id=doc_id,
            name=f"{doc_id}{_SUFFIX[config.format]}",
            uri=uri,
            etag=_etag(updated),
            modified=_utc(updated),
            metadata=metadata,
            profile=self.context.profiles.for_category(category),
        )

    def _render(self, row: sa.RowMapping) -> bytes:
        config = self.config
        title = _TITLE_SEPARATOR.join(
            str(row[c]).strip() for c in config.title_columns if row[c] not in (None, "")
        )
        parts = [str(row[c]) for c in config.text_columns if row[c] not in (None, "")]
        date = row[config.date_column] if config.date_column else None
        if config.format == "text":
            record: dict[str, Any] = {"title": title, "text": "\n\n".join(parts)}
            if date is not None:
                record["date"] = str(date)
            return json.dumps(record, default=str).encode()
        if config.format == "markdown":
            heading = f"# {title}\n\n" if title else ""
            return (heading + "\n\n".join(parts)).encode()
        head = f"<title>{html.escape(title)}</title>" if title else ""
        heading = f"<h1>{html.escape(title)}</h1>" if title else ""
        return f"<html><head>{head}</head><body>{heading}{''.join(parts)}</body></html>".encode()

    # -- the watermark --------------------------------------------------------------------

    def _restore(self, state: dict[str, Any]) -> None:
        watermark = state.get("watermark")
        self._watermark = dt.datetime.fromisoformat(watermark) if watermark else None
        self._naive = bool(state.get("naive"))

    def _advance(self, updated: Any) -> None:
        if not isinstance(updated, dt.datetime):
            return
        self._naive = updated.tzinfo is None
        value = _utc(updated)
        assert value is not None
        if self._watermark is None or value > self._watermark:
            self._watermark = value

    def _bind(self, when: dt.datetime) -> dt.datetime:
        """``when`` as the column compares: naive UTC for a column without time zone."""
        return when.astimezone(dt.UTC).replace(tzinfo=None) if self._naive else when


def _utc(value: Any) -> dt.datetime | None:
    if not isinstance(value, dt.datetime):
        return None
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


def _etag(updated: Any) -> str | None:
    if updated is None:
        return None
    when = _utc(updated)
    return when.isoformat() if when is not None else str(updated)


def _first_line(error: Exception) -> str:
    return str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__


def _build(config: SqlConfig, context: SourceContext) -> SqlTableSource:
    return SqlTableSource(config, context)


KIND = Kind(
    name="sql",
    config=SqlConfig,
    build=_build,
    summary="Rows of a table or query, synced by an updated-at watermark.",
)
