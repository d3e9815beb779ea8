"""One sync of one source: list, decide, parse, chunk, embed, write, reconcile.

    pipeline = Pipeline.from_settings(get_settings())
    report = pipeline.sync(FileSource(Path("docs")), collection="docs")
    report.added, report.unchanged, report.embedded

Each item ends in exactly one outcome (added, updated, unchanged, failed); items the
source no longer lists are deleted. A bad item is recorded as failed with its reason
and the run goes on. Running the same sync twice leaves the index as one run would.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from itertools import chain, islice
from typing import Protocol

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from ragline.config import Settings
from ragline.db.engine import get_engine
from ragline.db.migrate import check_embedding_model
from ragline.domain import Chunk, ItemFailure, Outcome, SyncReport
from ragline.errors import IngestError, ParseError, SourceUnavailable, SyncInProgress
from ragline.ingest.chunking import PROFILES, Chunker
from ragline.ingest.embedders import Embedder, get_embedder
from ragline.ingest.embedders.cache import EmbeddingCache
from ragline.ingest.ledger import Ledger, LedgerEntry, document_row, source_lock_key
from ragline.ingest.parsers import parser_for
from ragline.ingest.sources.base import Source, SourceItem
from ragline.ingest.store import ChunkStore
from ragline.ingest.text import sha256_of, sha256_text
from ragline.logs import ensure_logging, get_logger

# Bump when parsing or chunking changes in a way that should re-chunk unchanged files.
PARSER_VERSION = "2"

log = get_logger(__name__)


class Progress(Protocol):
    """Hears about a sync as it goes (a progress bar, a job's progress field)."""

    def started(self, total: int) -> None: ...

    def item_started(self, doc_id: str) -> None: ...

    def item_done(self, doc_id: str, outcome: Outcome) -> None: ...


class _Silent:
    def started(self, total: int) -> None:
        pass

    def item_started(self, doc_id: str) -> None:
        pass

    def item_done(self, doc_id: str, outcome: Outcome) -> None:
        pass


@dataclass(slots=True)
class _Result:
    outcome: Outcome
    chunks: int = 0
    embedded: int = 0


@dataclass(slots=True)
class _Prepared:
    """A parsed, chunked document waiting to be written. ``rest`` is None when
    ``head`` holds all its chunks; otherwise they stream from ``rest`` after it.

    Small documents wait until about ``write_batch_size`` of their chunks are
    pending, then are embedded in shared batches and written one by one."""

    item: SourceItem
    entry: LedgerEntry | None
    row: dict[str, object]
    head: list[Chunk]
    rest: Iterator[Chunk] | None
    warnings: list[str]


def pipeline_version(chunker_window: int) -> str:
    """Fingerprint of everything besides the content that shapes a document's chunks."""
    profiles = ";".join(PROFILES[t].fingerprint() for t in sorted(PROFILES))
    return sha256_text(f"{PARSER_VERSION}|{chunker_window}|{profiles}")[:16]


class Pipeline:
    def __init__(self, engine: Engine, embedder: Embedder, settings: Settings) -> None:
        self.engine = engine
        self.embedder = embedder
        self.settings = settings
        self.chunker = Chunker(embedder.tokenizer, window=embedder.max_tokens)
        self.version = pipeline_version(embedder.max_tokens)
        self.store = ChunkStore(
            engine, EmbeddingCache(engine, embedder), batch_size=settings.write_batch_size
        )

    @classmethod
    def from_settings(cls, settings: Settings) -> Pipeline:
        ensure_logging(settings)
        return cls(get_engine(settings), get_embedder(settings), settings)

    def sync(
        self,
        source: Source,
        *,
        collection: str,
        tenant: str | None = None,
        progress: Progress | None = None,
    ) -> SyncReport:
        tenant = tenant or self.settings.tenant
        progress = progress or _Silent()
        bound = log.bind(tenant=tenant, collection=collection, source=source.name)
        with self.engine.connect() as conn:
            check_embedding_model(conn, self.embedder.name, self.embedder.dimension)
        ledger = Ledger(
            self.engine,
            tenant=tenant,
            collection=collection,
            source=source.name,
            embedding_model=self.embedder.name,
            pipeline_version=self.version,
        )
        report = SyncReport()
        started = time.perf_counter()
        with self._source_lock(tenant, collection, source.name):
            run_id = self._start_run(tenant, collection, source.name)
            report.run_ids.append(run_id)
            bound = bound.bind(run_id=run_id)
            try:
                items = list(source.list())
                progress.started(len(items))
                entries = ledger.load()

                def done(item: SourceItem, result: _Result) -> None:
                    report.count(result.outcome)
                    report.chunks += result.chunks
                    report.embedded += result.embedded
                    progress.item_done(item.doc_id, result.outcome)
                    bound.debug("item_synced", doc_id=item.doc_id, outcome=result.outcome.value)

                prepared: list[_Prepared] = []

                def flush() -> None:
                    report.embedded += self._embed_ahead(prepared)
                    for step in prepared:
                        done(step.item, self._write(step, ledger, report))
                    prepared.clear()

                for item in items:
                    progress.item_started(item.doc_id)
                    step = self._prepare(source, item, entries.get(item.doc_id), ledger, report)
                    if isinstance(step, _Result):
                        done(item, step)
                        continue
                    prepared.append(step)
                    # A big document is written at once, so that only one is ever held.
                    pending = sum(len(p.head) for p in prepared)
                    if step.rest is not None or pending >= self.settings.write_batch_size:
                        flush()
                flush()
                for doc_id in ledger.tombstone_missing({item.doc_id for item in items}):
                    report.count(Outcome.DELETED)
                    bound.info("document_deleted", doc_id=doc_id)
            except BaseException as e:
                report.seconds = time.perf_counter() - started
                self._finish_run(run_id, report, status="failed", error=f"{type(e).__name__}: {e}")
                raise
            report.seconds = time.perf_counter() - started
            self._finish_run(run_id, report, status="succeeded")
        bound.info(
            "sync_finished", **{k: v for k, v in report.as_dict().items() if k != "failures"}
        )
        return report

    def _prepare(
        self,
        source: Source,
        item: SourceItem,
        entry: LedgerEntry | None,
        ledger: Ledger,
        report: SyncReport,
    ) -> _Result | _Prepared:
        """Decide what to do with ``item``; parse and chunk it when it must be indexed."""
        if ledger.unchanged_by_etag(entry, item):
            return _Result(Outcome.UNCHANGED)
        try:
            if item.size is not None and item.size > self.settings.max_file_bytes:
                raise IngestError(
                    f"{item.size:,} bytes is over the limit of {self.settings.max_file_bytes:,} "
                    "(RAGLINE_MAX_FILE_BYTES)"
                )
            parser = parser_for(item.name)
            if parser is None:
                raise ParseError(f"unsupported file type: {item.name}")
            data = source.read(item)
            if not data:
                raise ParseError("the file is empty (0 bytes)")
            document = parser.parse(data, name=item.name)
            digest = sha256_of(document.iter_text())
            if ledger.unchanged_by_hash(entry, digest):
                assert entry is not None
                ledger.touch(entry, item)
                return _Result(Outcome.UNCHANGED)
            chunks = self.chunker.split(document)
            head = list(islice(chunks, self.settings.write_batch_size + 1))
        except Exception as e:
            return self._failed(item, e, ledger, report)
        row = document_row(
            tenant=ledger.tenant,
            collection=ledger.collection,
            source=ledger.source,
            item=item,
            title=document.title,
            doc_type=document.doc_type.value,
            doc_date=document.doc_date or (item.modified.date() if item.modified else None),
            metadata={**document.metadata, **item.metadata},
            sha256=digest,
            embedding_model=self.embedder.name,
            pipeline_version=self.version,
            warnings=document.warnings,
        )
        if len(head) <= self.settings.write_batch_size:
            return _Prepared(item, entry, row, head, None, document.warnings)
        return _Prepared(item, entry, row, head, chunks, document.warnings)

    def _embed_ahead(self, prepared: list[_Prepared]) -> int:
        """Embed the chunks of the small documents of a window in shared batches, so
        that writing them finds every vector in the cache. Returns chunks embedded."""
        chunks = [c for step in prepared if step.rest is None for c in step.head]
        if not chunks:
            return 0
        _, embedded = self.store.cache.embed(
            [c.embed_text for c in chunks], [c.sha256 for c in chunks]
        )
        return embedded

    def _write(self, step: _Prepared, ledger: Ledger, report: SyncReport) -> _Result:
        bound = log.bind(doc_id=step.item.doc_id, source=ledger.source)
        chunks = step.head if step.rest is None else chain(step.head, step.rest)
        try:
            written, embedded = self.store.replace(
                step.row,
                chunks,
                on_batch=lambda w, e: bound.debug("chunks_written", chunks=w, embedded=e),
            )
        except Exception as e:
            return self._failed(step.item, e, ledger, report)
        report.warnings.extend(f"{step.item.doc_id}: {w}" for w in step.warnings)
        indexed_before = step.entry is not None and step.entry.indexed
        outcome = Outcome.UPDATED if indexed_before else Outcome.ADDED
        bound.info("document_indexed", outcome=outcome.value, chunks=written, embedded=embedded)
        return _Result(outcome, chunks=written, embedded=embedded)

    @staticmethod
    def _failed(item: SourceItem, error: Exception, ledger: Ledger, report: SyncReport) -> _Result:
        """Record ``item`` as failed. Errors of the database itself, and a source that
        cannot be reached at all, stop the run instead: the item is not at fault."""
        if isinstance(error, sa.exc.OperationalError | sa.exc.InterfaceError | SourceUnavailable):
            raise error
        if isinstance(error, IngestError):
            reason = str(error)
        else:  # a parser library's own bug must not stop the run
            log.error("item_crashed", doc_id=item.doc_id, exc_info=error)
            reason = f"unexpected {type(error).__name__}: {error}"
        ledger.record_failure(item, reason)
        report.failures.append(ItemFailure(item.doc_id, reason))
        log.warning("document_failed", doc_id=item.doc_id, source=ledger.source, reason=reason)
        return _Result(Outcome.FAILED)

    @contextmanager
    def _source_lock(self, tenant: str, collection: str, source: str) -> Iterator[None]:
        """Hold a session lock for the source: two syncs of one source never overlap."""
        with self.engine.connect() as conn:
            key = source_lock_key(tenant, collection, source)
            locked = conn.execute(
                sa.text("SELECT pg_try_advisory_lock(hashtextextended(:key, 0))"), {"key": key}
            ).scalar_one()
            conn.commit()
            if not locked:
                raise SyncInProgress(
                    f"another sync of {source} into {collection!r} is running; "
                    "wait for it to finish, then run this one again"
                )
            try:
                yield
            finally:
                conn.execute(
                    sa.text("SELECT pg_advisory_unlock(hashtextextended(:key, 0))"), {"key": key}
                )
                conn.commit()

    def _start_run(self, tenant: str, collection: str, source: str) -> int:
        with self.engine.begin() as conn:
            # We hold the source's lock: a run still marked running was interrupted.
            conn.execute(
                sa.text(
                    """
                    UPDATE sync_runs SET status = 'failed', finished_at = now(),
                        errors = errors || '[{"reason": "interrupted"}]'::jsonb
                    WHERE tenant = :tenant AND collection = :collection AND source = :source
                      AND status = 'running'
                    """
                ),
                {"tenant": tenant, "collection": collection, "source": source},
            )
            run_id: int = conn.execute(
                sa.text(
                    "INSERT INTO sync_runs (tenant, collection, source, status) "
                    "VALUES (:tenant, :collection, :source, 'running') RETURNING id"
                ),
                {"tenant": tenant, "collection": collection, "source": source},
            ).scalar_one()
            return run_id

    def _finish_run(
        self, run_id: int, report: SyncReport, *, status: str, error: str | None = None
    ) -> None:
        errors = [{"doc_id": f.doc_id, "reason": f.reason} for f in report.failures]
        if error is not None:
            errors.append({"reason": error})
        with self.engine.begin() as conn:
            conn.execute(
                sa.text(
                    """
                    UPDATE sync_runs SET status = :status, finished_at = now(),
                        added = :added, updated = :updated, unchanged = :unchanged,
                        deleted = :deleted, failed = :failed, chunks = :chunks,
                        embedded = :embedded, seconds = :seconds,
                        errors = CAST(:errors AS jsonb), warnings = CAST(:warnings AS jsonb)
                    WHERE id = :id
                    """
                ),
                {
                    "id": run_id,
                    "status": status,
                    "added": report.added,
                    "updated": report.updated,
                    "unchanged": report.unchanged,
                    "deleted": report.deleted,
                    "failed": report.failed,
                    "chunks": report.chunks,
                    "embedded": report.embedded,
                    "seconds": report.seconds,
                    "errors": json.dumps(errors),
                    "warnings": json.dumps(report.warnings),
                },
            )
