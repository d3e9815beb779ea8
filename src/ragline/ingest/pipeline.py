"""One sync of one source: list, decide, parse, chunk, embed, write, reconcile.

    pipeline = Pipeline.from_settings(get_settings())
    report = pipeline.sync(FileSource(Path("docs")), collection="docs")
    report.added, report.unchanged, report.embedded

Each item ends in exactly one outcome (added, updated, unchanged, failed); items the
source no longer lists are deleted. A bad item is recorded as failed with its reason
and the run goes on: one whose parsing and chunking take longer than
``parse_time_limit`` fails with that reason, and one that leaves no text to index
fails with "no text found". The run checks the watch of its job
(``ragline.cancel``) between items, embedding requests and writes, so a cancelled job
stops within one request. Running the same sync twice leaves the index as one run would.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import chain, islice
from typing import Any

from sqlalchemy.engine import Engine

from ragline.cancel import Watch, checkpoint, watching
from ragline.config import Settings
from ragline.db.engine import get_engine
from ragline.db.locks import session_lock
from ragline.db.migrate import check_embedding_model
from ragline.domain import Chunk, ItemFailure, Outcome, SyncReport
from ragline.embedding.base import Embedder
from ragline.embedding.cache import EmbeddingCache, model_calls
from ragline.embedding.factory import get_embedder
from ragline.errors import (
    ConfigurationError,
    IngestError,
    ParseError,
    Stopped,
    SyncInProgress,
    is_transient,
)
from ragline.ingest.chunking import Chunker
from ragline.ingest.connectors.base import Changes, IncrementalSource, Source, SourceItem
from ragline.ingest.ledger import Ledger, LedgerEntry, document_row, source_lock_key
from ragline.ingest.parsers import parser_for
from ragline.ingest.progress import Progress, Silent
from ragline.ingest.runs import RunLabels, finish_run, start_run
from ragline.ingest.store import ChunkStore
from ragline.ingest.text import sha256_of
from ragline.ingest.versions import latest_versions, pipeline_version
from ragline.logs import ensure_logging, get_logger

log = get_logger(__name__)


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

    @classmethod
    def on(cls, engine: Engine, settings: Settings) -> Pipeline:
        """A pipeline writing to ``engine`` with the configured embedder."""
        return cls(engine, get_embedder(settings), settings)

    def sync(
        self,
        source: Source,
        *,
        collection: str,
        tenant: str | None = None,
        progress: Progress | None = None,
        full: bool = True,
        state: dict[str, Any] | None = None,
        run: RunLabels | None = None,
    ) -> SyncReport:
        """Sync ``source`` into ``collection``, holding the source's lock.

        A full sync lists everything and deletes what is no longer listed. An
        incremental one (``full=False``, for an ``IncrementalSource``) takes the
        changes after ``state`` and leaves the rest alone; either way the report's
        ``state`` is the position to pass next time. ``run`` labels the run's record.
        """
        tenant = tenant or self.settings.tenant
        progress = progress or Silent()
        incremental = not full and isinstance(source, IncrementalSource)
        ledger = self._ledger(tenant, collection, source.name)
        report = SyncReport()
        started = time.perf_counter()
        with session_lock(self.engine, source_lock_key(tenant, collection, source.name)) as held:
            if not held:
                raise SyncInProgress(
                    f"another sync of {source.name} into {collection!r} is running; "
                    "wait for it to finish, then run this one again"
                )
            run_id = start_run(
                self.engine,
                tenant=tenant,
                collection=collection,
                source=source.name,
                mode="incremental" if incremental else "full",
                labels=run or RunLabels(),
                interrupt_others=True,
            )
            report.run_ids.append(run_id)
            bound = log.bind(tenant=tenant, collection=collection, source=source.name)
            bound = bound.bind(run_id=run_id)
            try:
                with model_calls() as calls:
                    if incremental:
                        assert isinstance(source, IncrementalSource)
                        changes = source.changes(dict(state or {}))
                        progress.started(len(changes.items) + len(changes.deleted))
                        self._index(source, changes.items, ledger, report, progress, listing=False)
                        gone = ledger.delete(changes.deleted, only_if_newer=False)
                    else:
                        items = list(source.list())
                        progress.started(len(items))
                        self._index(source, items, ledger, report, progress, listing=True)
                        gone = ledger.tombstone_missing({item.doc_id for item in items})
                    for doc_id in gone:
                        report.count(Outcome.DELETED)
                        bound.info("document_deleted", doc_id=doc_id)
                    if isinstance(source, IncrementalSource):
                        report.state = source.checkpoint()
                report.embedding_calls = calls.count
            except BaseException as e:
                report.embedding_calls = calls.count
                report.seconds = time.perf_counter() - started
                error = f"{type(e).__name__}: {e}"
                finish_run(self.engine, run_id, report, status="failed", error=error)
                raise
            report.seconds = time.perf_counter() - started
            finish_run(self.engine, run_id, report, status="succeeded")
        bound.info(
            "sync_finished", **{k: v for k, v in report.as_dict().items() if k != "failures"}
        )
        return report

    def apply(
        self,
        source: Source,
        changes: Changes,
        *,
        collection: str,
        tenant: str | None = None,
    ) -> SyncReport:
        """Index a change set pushed by a stream, without the source's lock: many
        consumers apply changes of one source at once. Versions are ordered by each
        item's ``modified`` (and deletions by their time): a change older than what is
        indexed is counted unchanged and dropped. Nothing is recorded as a run; the
        consumer aggregates reports and calls ``record_run``."""
        tenant = tenant or self.settings.tenant
        ledger = self._ledger(tenant, collection, source.name)
        items, deleted = latest_versions(changes)
        report = SyncReport()
        started = time.perf_counter()
        with model_calls() as calls:
            self._index(source, items, ledger, report, Silent(), listing=False, monotonic=True)
            for _ in ledger.delete(deleted, only_if_newer=True):
                report.count(Outcome.DELETED)
        report.embedding_calls = calls.count
        report.seconds = time.perf_counter() - started
        return report

    def record_run(
        self,
        report: SyncReport,
        *,
        source: str,
        collection: str,
        tenant: str | None = None,
        run: RunLabels | None = None,
        started_at: dt.datetime | None = None,
    ) -> int:
        """Record a finished run that ``apply`` calls made up (a stream's interval)."""
        run_id = start_run(
            self.engine,
            tenant=tenant or self.settings.tenant,
            collection=collection,
            source=source,
            mode="stream",
            labels=run or RunLabels(),
            interrupt_others=False,
            started_at=started_at,
        )
        report.run_ids.append(run_id)
        status = "failed" if report.failed else "succeeded"
        finish_run(self.engine, run_id, report, status=status)
        return run_id

    def _ledger(self, tenant: str, collection: str, source: str) -> Ledger:
        with self.engine.connect() as conn:
            check_embedding_model(conn, self.embedder.name, self.embedder.dimension)
        return Ledger(
            self.engine,
            tenant=tenant,
            collection=collection,
            source=source,
            embedding_model=self.embedder.name,
            pipeline_version=self.version,
        )

    def _index(
        self,
        source: Source,
        items: list[SourceItem],
        ledger: Ledger,
        report: SyncReport,
        progress: Progress,
        *,
        listing: bool,
        monotonic: bool = False,
    ) -> None:
        """Bring each of ``items`` to one outcome, embedding small documents together.
        ``listing``: the items are the source's whole listing, so the whole ledger of
        the collection is read at once rather than the rows of the items only."""
        ids = [item.doc_id for item in items]
        entries = ledger.load() if listing else ledger.load_some(ids)
        prepared: list[_Prepared] = []

        def done(item: SourceItem, result: _Result) -> None:
            report.count(result.outcome)
            report.chunks += result.chunks
            report.embedded += result.embedded
            progress.item_done(item.doc_id, result.outcome)
            log.debug("item_synced", doc_id=item.doc_id, outcome=result.outcome.value)

        def flush() -> None:
            report.embedded += self._embed_ahead(prepared, ledger.tenant)
            for step in prepared:
                checkpoint()
                done(step.item, self._write(step, ledger, report, monotonic=monotonic))
            prepared.clear()

        for item in items:
            checkpoint()
            progress.item_started(item.doc_id)
            entry = entries.get(item.doc_id)
            if monotonic and ledger.stale(entry, item):
                done(item, _Result(Outcome.UNCHANGED))
                continue
            step = self._prepare(source, item, entry, ledger, report, monotonic=monotonic)
            if isinstance(step, _Result):
                done(item, step)
                continue
            prepared.append(step)
            # A big document is written at once, so that only one is ever held.
            pending = sum(len(p.head) for p in prepared)
            if step.rest is not None or pending >= self.settings.write_batch_size:
                flush()
        flush()

    def _prepare(
        self,
        source: Source,
        item: SourceItem,
        entry: LedgerEntry | None,
        ledger: Ledger,
        report: SyncReport,
        *,
        monotonic: bool = False,
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
            with watching(self._parse_budget()):
                document = parser.parse(data, name=item.name)
                digest = sha256_of(document.iter_text())
                if ledger.unchanged_by_hash(entry, item, digest):
                    assert entry is not None
                    ledger.touch(entry, item, only_if_newer=monotonic)
                    return _Result(Outcome.UNCHANGED)
                chunks = self.chunker.split(document, item.profile)
                head = list(islice(chunks, self.settings.write_batch_size + 1))
            if not head:
                raise ParseError(
                    "no text found: nothing was left to index once running headers, "
                    "navigation and empty parts were removed"
                )
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
            pipeline_version=ledger.version_of(item),
            warnings=document.warnings,
        )
        if len(head) <= self.settings.write_batch_size:
            return _Prepared(item, entry, row, head, None, document.warnings)
        return _Prepared(item, entry, row, head, chunks, document.warnings)

    def _parse_budget(self) -> Watch:
        """The watch of one document's parse and chunking: past the limit it fails."""
        seconds = self.settings.parse_time_limit
        return Watch.limit(
            seconds,
            lambda: ParseError(
                f"parsing took longer than {seconds:g} s (RAGLINE_PARSE_TIME_LIMIT); "
                "split the document, or raise the limit if it is legitimate"
            ),
        )

    def _embed_ahead(self, prepared: list[_Prepared], tenant: str) -> int:
        """Embed the chunks of the small documents of a window in shared batches, so
        that writing them finds every vector in the cache. Returns chunks embedded."""
        chunks = [c for step in prepared if step.rest is None for c in step.head]
        if not chunks:
            return 0
        _, embedded = self.store.cache.embed(
            [c.embed_text for c in chunks], [c.sha256 for c in chunks], tenant=tenant
        )
        return embedded

    def _write(
        self, step: _Prepared, ledger: Ledger, report: SyncReport, *, monotonic: bool = False
    ) -> _Result:
        bound = log.bind(doc_id=step.item.doc_id, source=ledger.source)
        chunks = step.head if step.rest is None else chain(step.head, step.rest)
        try:
            result = self.store.replace(
                step.row,
                chunks,
                on_batch=lambda w, e: bound.debug("chunks_written", chunks=w, embedded=e),
                only_if_newer=monotonic,
            )
        except Exception as e:
            return self._failed(step.item, e, ledger, report)
        if result is None:  # a newer version was written meanwhile
            return _Result(Outcome.UNCHANGED)
        written, embedded = result
        report.warnings.extend(f"{step.item.doc_id}: {w}" for w in step.warnings)
        indexed_before = step.entry is not None and step.entry.indexed
        outcome = Outcome.UPDATED if indexed_before else Outcome.ADDED
        bound.info("document_indexed", outcome=outcome.value, chunks=written, embedded=embedded)
        return _Result(outcome, chunks=written, embedded=embedded)

    @staticmethod
    def _failed(item: SourceItem, error: Exception, ledger: Ledger, report: SyncReport) -> _Result:
        """Record ``item`` as failed. An outage (the database, the source or the embedding
        server away) and a configuration that cannot work (a model of another
        dimension) stop the run instead: the item is not at fault; so does work stopped
        on purpose (a job cancelled or past its time limit)."""
        if is_transient(error) or isinstance(error, ConfigurationError | Stopped):
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


def shared_pipeline(settings: Settings, engine: Engine) -> Pipeline:
    """The pipeline a job executor shares between its jobs (``JobExecutor.shared``)."""
    return Pipeline.on(engine, settings)
