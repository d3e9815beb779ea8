"""The ``ragline`` command line.

ragline ingest docs/ --collection handbook
ragline search "how do I calibrate the oxygen sensor" --k 5
ragline status --json
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from ragline.config import SearchMode, Settings, get_settings
from ragline.domain import Outcome, SyncReport
from ragline.errors import ConfigurationError, RaglineError
from ragline.logs import configure_logging

app = typer.Typer(
    name="ragline",
    help="Keep a knowledge base fresh in PostgreSQL + pgvector, and search it.",
    no_args_is_help=True,
    add_completion=False,
)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
app.add_typer(db_app, name="db")
eval_app = typer.Typer(help="Measure retrieval quality.", no_args_is_help=True)
app.add_typer(eval_app, name="eval")
keys_app = typer.Typer(help="API keys of the HTTP API.", no_args_is_help=True)
app.add_typer(keys_app, name="keys")
sources_app = typer.Typer(
    help="Configured sources: SQL tables, Confluence spaces, S3 buckets, event streams.",
    no_args_is_help=True,
)
app.add_typer(sources_app, name="sources")

out = Console()
err = Console(stderr=True)

JsonOption = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")]


def _settings() -> Settings:
    settings = get_settings()
    configure_logging(settings)
    return settings


@contextmanager
def _errors() -> Iterator[None]:
    """Turn ragline's errors into a one-line message and exit status 1."""
    try:
        yield
    except RaglineError as e:
        err.print(f"[bold red]error:[/] {e}", highlight=False)
        raise typer.Exit(1) from e


def _print_json(value: Any) -> None:
    """JSON on stdout, unwrapped and uncoloured, for scripts."""
    typer.echo(json.dumps(value, indent=2, ensure_ascii=False))


def _progress(*, disable: bool) -> Progress:
    return Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err,
        transient=True,
        disable=disable,
    )


class _Bar:
    """Shows a sync's progress: one step per document."""

    def __init__(self, progress: Progress, label: str) -> None:
        self.progress = progress
        self.label = label
        self.task = progress.add_task(label, total=None)

    def started(self, total: int) -> None:
        self.progress.update(self.task, total=total)

    def item_started(self, doc_id: str) -> None:
        self.progress.update(self.task, description=f"{self.label} [dim]{doc_id}[/]")

    def item_done(self, doc_id: str, outcome: Outcome) -> None:
        self.progress.advance(self.task)


@app.command()
def ingest(
    paths: Annotated[list[Path], typer.Argument(help="Files or folders to ingest.")],
    collection: Annotated[str, typer.Option(help="Collection to index into.")] = "default",
    include: Annotated[
        list[str] | None, typer.Option(help="Glob of relative paths to include (repeatable).")
    ] = None,
    exclude: Annotated[
        list[str] | None, typer.Option(help="Glob of relative paths to skip (repeatable).")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Index files and folders; unchanged files cost nothing, removed files leave the index."""
    from ragline.ingest.pipeline import Pipeline
    from ragline.ingest.sources import FileSource

    settings = _settings()
    with _errors():
        missing = [str(p) for p in paths if not p.exists()]
        if missing:
            raise typer.BadParameter(f"no such file or folder: {', '.join(missing)}")
        with err.status("Starting the database and loading the embedding model…"):
            pipeline = Pipeline.from_settings(settings)
        report = SyncReport()
        progress = _progress(disable=as_json or not err.is_terminal)
        with progress:
            for path in paths:
                source = FileSource(path, include=include or (), exclude=exclude or ())
                bar = _Bar(progress, f"Ingesting {path}")
                report.merge(pipeline.sync(source, collection=collection, progress=bar))
    if as_json:
        _print_json(report.as_dict())
        return
    _print_report(report)


def _print_report(report: SyncReport) -> None:
    out.print(
        f"[bold]added[/] {report.added}  [bold]updated[/] {report.updated}  "
        f"[bold]unchanged[/] {report.unchanged}  [bold]deleted[/] {report.deleted}  "
        f"[bold]failed[/] {report.failed}  —  {report.chunks} chunks written, "
        f"{report.embedded} embedded, {report.seconds:.1f}s",
        highlight=False,
    )
    for failure in report.failures:
        out.print(f"  [red]failed[/] {failure.doc_id}: {failure.reason}", highlight=False)
    for warning in report.warnings:
        out.print(f"  [yellow]warning[/] {warning}", highlight=False)


@app.command()
def search(
    query: Annotated[str, typer.Argument(help="What to look for.")],
    k: Annotated[int, typer.Option("--k", min=1, max=1000, help="Number of hits.")] = 10,
    mode: Annotated[
        str | None, typer.Option(help="dense, lexical or hybrid (default: RAGLINE_SEARCH_MODE).")
    ] = None,
    filters: Annotated[
        list[str] | None,
        typer.Option(
            "--filter",
            help="key=value (repeatable): collection, source, type, document, date, "
            "date_from, date_to, or any metadata key.",
        ),
    ] = None,
    dense_weight: Annotated[
        float | None, typer.Option(min=0, help="Weight of the dense list in hybrid fusion.")
    ] = None,
    lexical_weight: Annotated[
        float | None, typer.Option(min=0, help="Weight of the BM25 list in hybrid fusion.")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Search the index."""
    from ragline.search.filters import parse_filters
    from ragline.search.hybrid import Searcher

    settings = _settings()
    with _errors():
        if mode not in (None, "dense", "lexical", "hybrid"):
            raise typer.BadParameter("--mode must be dense, lexical or hybrid")
        search_filter = parse_filters(filters or [])
        weights = {"dense_weight": dense_weight, "lexical_weight": lexical_weight}
        overrides = {key: value for key, value in weights.items() if value is not None}
        if overrides:
            try:
                settings = Settings.model_validate({**settings.model_dump(), **overrides})
            except ValidationError as e:
                raise typer.BadParameter(e.errors()[0]["msg"]) from e
        searcher = Searcher.from_settings(settings)
        search_mode: SearchMode | None = mode  # type: ignore[assignment]
        hits = searcher.search(query, k=k, mode=search_mode, search_filter=search_filter)
    if as_json:
        keys = ("doc_id", "chunk_id", "score", "title", "section", "text", "source", "collection")
        _print_json([{key: hit.as_dict()[key] for key in keys} for hit in hits])
        return
    if not hits:
        out.print("No results. Try other words, another --mode, or fewer filters.")
        return
    for rank, hit in enumerate(hits, start=1):
        where = f"{hit.doc_id}" + (f" › {hit.section}" if hit.section else "")
        out.print(f"[bold]{rank}.[/] [cyan]{where}[/]  [dim]{hit.score:.4f}[/]", highlight=False)
        snippet = hit.text if len(hit.text) <= 400 else hit.text[:400].rsplit(" ", 1)[0] + " …"
        out.print(f"   {snippet}", highlight=False, soft_wrap=False)


@app.command()
def ask(
    question: Annotated[str, typer.Argument(help="A whole question.")],
    conversation: Annotated[
        str | None,
        typer.Option("--conversation", help="Continue this conversation (an id from --json)."),
    ] = None,
    k: Annotated[int | None, typer.Option("--k", min=1, max=50, help="Passages to use.")] = None,
    filters: Annotated[
        list[str] | None, typer.Option("--filter", help="key=value, as for search.")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Answer a question from the index, citing the passages used. With no language
    model configured (RAGLINE_LLM_PROVIDERS), the answer quotes the best sentences."""
    from ragline.answer.service import Answerer
    from ragline.search.filters import parse_filters

    settings = _settings()
    with _errors():
        search_filter = parse_filters(filters or [])
        answerer = Answerer.from_settings(settings)
        stream = answerer.stream(
            question,
            tenant=settings.tenant,
            conversation_id=conversation,
            search_filter=search_filter,
            k=k,
        )
        done: dict[str, Any] = {}
        streamed = False
        with stream, err.status("Searching…") as status:
            for event in stream:
                if event.kind == "token" and not as_json:
                    if not streamed:
                        status.stop()
                        label = "Answer" if answerer.llm else "Extractive answer"
                        out.print(f"[bold]{label}[/]")
                        streamed = True
                    out.file.write(event.data["text"])  # raw: the terminal wraps it
                    out.file.flush()
                elif event.kind == "status" and event.data["stage"] == "generating":
                    status.update("Writing…")
                elif event.kind == "done":
                    done = event.data
    if as_json:
        _print_json(done)
        return
    answer = done
    if streamed:
        out.print()
    else:
        labels = {"refused": "Not found", "clarify": "More words, please"}
        out.print(f"[bold]{labels.get(answer['mode'], 'Answer')}[/]")
        out.print(answer["answer"], highlight=False, markup=False)
    if answer["citations"]:
        out.print()
    for citation in answer["citations"]:
        where = " › ".join(part for part in (citation["title"], citation["section"]) if part)
        out.print(
            f"  [bold]\\[{citation['n']}][/] {escape(citation['doc_id'])} — {escape(where)}",
            highlight=False,
        )
    if answer["removed_citations"]:
        out.print(f"[yellow]{answer['removed_citations']} citation(s) to no source removed[/]")
    if answer["unsupported"]:
        out.print("[yellow]This answer cites no source: treat it with care.[/]")
    err.print(
        f"[dim]{answer['mode']} answer; conversation {answer['conversation_id']} "
        f"(continue with --conversation); trace {answer['trace_id']}[/]",
        highlight=False,
    )


@app.command()
def status(as_json: JsonOption = False) -> None:
    """Documents, chunks, failed documents with their reasons, the freshness of each
    source, and recent sync runs."""
    from ragline.catalog import index_status
    from ragline.db.engine import get_engine
    from ragline.sources.freshness import source_freshness

    settings = _settings()
    with _errors():
        engine = get_engine(settings)
        info = index_status(engine, settings.tenant)
        info["sources"] = source_freshness(
            engine, tenant=settings.tenant, settings=settings, with_backlog=True
        )
    if as_json:
        _print_json(info)
        return
    docs = info["documents"]
    out.print(
        f"[bold]{docs['active']}[/] documents indexed in {info['chunks']} chunks "
        f"({docs['failed']} failed, {docs['deleted']} deleted) — "
        f"embedding model {info['embedding_model']} ({info['embedding_dim']}-d)",
        highlight=False,
    )
    for row in info["collections"]:
        out.print(f"  {row['collection']}: {row['documents']} documents, {row['chunks']} chunks")
    if info["failed"]:
        out.print("[bold red]Failed documents[/]")
        for row in info["failed"]:
            out.print(f"  {row['collection']}/{row['doc_id']}: {row['reason']}", highlight=False)
    if info["sources"]:
        _print_freshness(info["sources"])
    if info["runs"]:
        table = Table(
            "run", "started", "source", "status", "+", "~", "=", "-", "!", "embedded", "s"
        )
        for run in info["runs"]:
            table.add_row(
                str(run["id"]),
                run["started_at"][:19],
                _short(run["source"]),
                run["status"],
                *(str(run[key]) for key in ("added", "updated", "unchanged", "deleted", "failed")),
                str(run["embedded"]),
                f"{run['seconds']:.1f}" if run["seconds"] is not None else "",
            )
        out.print(table)


def _short(text: str, width: int = 48) -> str:
    return text if len(text) <= width else "…" + text[-(width - 1) :]


@eval_app.command("retrieval")
def eval_retrieval(
    beir: Annotated[
        Path, typer.Option(help="BEIR dataset folder: corpus.jsonl, queries.jsonl, qrels/.")
    ],
    split: Annotated[str, typer.Option(help="qrels split to evaluate (qrels/SPLIT.tsv).")] = "test",
    mode: Annotated[str, typer.Option(help="dense, lexical, hybrid or all.")] = "all",
    as_json: JsonOption = False,
) -> None:
    """Ingest a BEIR dataset into its own collection (unchanged documents cost nothing on
    later runs), run its judged queries, and report nDCG@10, Recall@100, MRR@10 and
    search latency per mode."""
    from ragline.eval.beir import BeirDataset
    from ragline.eval.retrieval import evaluate_retrieval
    from ragline.ingest.pipeline import Pipeline
    from ragline.search.hybrid import Searcher

    settings = _settings()
    modes: tuple[SearchMode, ...]
    if mode == "all":
        modes = ("lexical", "dense", "hybrid")
    elif mode in ("dense", "lexical", "hybrid"):
        modes = (mode,)  # type: ignore[assignment]
    else:
        raise typer.BadParameter("--mode must be dense, lexical, hybrid or all")
    with _errors():
        dataset = BeirDataset(beir)
        queries = len(dataset.queries(split))
        with err.status("Starting the database and loading the embedding model…"):
            pipeline = Pipeline.from_settings(settings)
        searcher = Searcher(pipeline.engine, settings, pipeline.embedder)
        progress = _progress(disable=as_json or not err.is_terminal)
        with progress:
            task = progress.add_task("Querying", total=queries * len(modes), visible=False)

            def advance() -> None:
                progress.update(task, visible=True)
                progress.advance(task)

            result = evaluate_retrieval(
                pipeline,
                searcher,
                dataset,
                split=split,
                modes=modes,
                ingest_progress=_Bar(progress, f"Ingesting {dataset.name}"),
                on_query=advance,
            )
    if as_json:
        _print_json(result.as_dict())
        return
    ingest = result.ingest
    out.print(
        f"{dataset.name} ({split}, {queries} queries) in collection {result.collection!r}: "
        f"{ingest.added + ingest.updated} documents indexed, {ingest.unchanged} unchanged, "
        f"{ingest.embedded} chunks embedded",
        highlight=False,
    )
    table = Table("mode", "nDCG@10", "Recall@100", "MRR@10", "p50 ms", "p95 ms")
    for name, figures in result.as_dict().items():
        table.add_row(
            name,
            *(
                f"{figures[key]:.4f}"
                if key.startswith(("ndcg", "recall", "mrr"))
                else f"{figures[key]:.1f}"
                for key in ("ndcg@10", "recall@100", "mrr@10", "p50_ms", "p95_ms")
            ),
        )
    out.print(table)


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Apply schema migrations (also done automatically on first use)."""
    import sqlalchemy as sa

    from ragline.db.engine import get_engine
    from ragline.db.migrate import current_revision

    settings = _settings()
    with _errors():
        engine = get_engine(settings)
        with engine.connect() as conn:
            revision = current_revision(conn)
            version = conn.execute(sa.text("SHOW server_version")).scalar_one()
    out.print(f"schema at revision {revision} (PostgreSQL {version})", highlight=False)


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Address to bind (RAGLINE_HOST).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (RAGLINE_PORT).")] = None,
) -> None:
    """Run the HTTP API (OpenAPI docs at /docs). Without RAGLINE_BROKER_URL, background
    jobs run in this process too."""
    import uvicorn

    from ragline.api.app import create_app

    settings = _settings()
    with _errors():
        application = create_app(settings)
        uvicorn.run(
            application,
            host=host or settings.host,
            port=port or settings.port,
            log_level=settings.log_level,
            access_log=False,
        )


@app.command()
def worker(
    queues: Annotated[
        str, typer.Option(help="Comma-separated queues to consume.")
    ] = "ingest,sync,default",
    concurrency: Annotated[int, typer.Option(min=1, help="Processes running jobs.")] = 1,
    loglevel: Annotated[str, typer.Option(help="Celery's own log level.")] = "warning",
) -> None:
    """Run a Celery worker for background jobs (needs RAGLINE_BROKER_URL)."""
    from ragline.jobs.celery_app import create_celery

    settings = _settings()
    with _errors():
        if not settings.broker_url:
            raise ConfigurationError(
                "set RAGLINE_BROKER_URL (redis://... or amqp://...) to run a worker; "
                "without a broker, `ragline serve` runs jobs itself"
            )
        celery = create_celery(settings)
        celery.worker_main(
            [
                "worker",
                f"--queues={queues}",
                f"--concurrency={concurrency}",
                f"--loglevel={loglevel}",
                "--without-gossip",
                "--without-mingle",
            ]
        )


def _json_option(value: str, what: str) -> dict[str, Any]:
    """A JSON object given inline or as @path/to/file.json."""
    text = value
    if value.startswith("@"):
        try:
            text = Path(value[1:]).read_text()
        except OSError as e:
            raise typer.BadParameter(f"{what}: cannot read {value[1:]}: {e.strerror}") from e
    try:
        parsed = json.loads(text)
    except json.JSONDecodeError as e:
        raise typer.BadParameter(f"{what} is not valid JSON: {e}") from e
    if not isinstance(parsed, dict):
        raise typer.BadParameter(f"{what} must be a JSON object")
    return parsed


@sources_app.command("add")
def sources_add(
    name: Annotated[str, typer.Argument(help="A name unique in the tenant.")],
    kind: Annotated[str, typer.Option(help="sql, confluence, s3, stream or files.")],
    config: Annotated[
        str,
        typer.Option(
            help="Connection settings as JSON, or @file.json; secrets only as *_env names "
            "of environment variables."
        ),
    ],
    collection: Annotated[str, typer.Option(help="Collection to index into.")] = "default",
    schedule: Annotated[
        str | None, typer.Option(help="Cron of incremental syncs, e.g. '*/15 * * * *'.")
    ] = None,
    full_schedule: Annotated[
        str | None, typer.Option(help="Cron of full syncs, which also find deleted items.")
    ] = None,
    profiles: Annotated[
        str | None,
        typer.Option(help='Chunking by category as JSON: \'{"video": {"max_tokens": 600}}\'.'),
    ] = None,
    env: Annotated[
        list[str] | None,
        typer.Option(help="Environment it may run in (repeatable); default: all."),
    ] = None,
    disabled: Annotated[bool, typer.Option(help="Add it without scheduling it.")] = False,
    as_json: JsonOption = False,
) -> None:
    """Configure a source; `ragline sync NAME` then syncs it."""
    from ragline.db.engine import get_engine
    from ragline.db.tenancy import tenant_scope
    from ragline.sources.store import ENVIRONMENTS, SourceSpec, create_source

    settings = _settings()
    spec = SourceSpec(
        name=name,
        kind=kind,
        collection=collection,
        config=_json_option(config, "--config"),
        profiles=_json_option(profiles, "--profiles") if profiles else {},
        schedule=schedule,
        full_schedule=full_schedule,
        environments=tuple(env) if env else ENVIRONMENTS,
        enabled=not disabled,
    )
    with _errors():
        engine = get_engine(settings)
        with tenant_scope(engine, settings.tenant) as conn:
            record = create_source(conn, tenant=settings.tenant, spec=spec)
    if as_json:
        _print_json(record.as_dict())
        return
    out.print(f"added source [bold]{record.name}[/] ({record.kind}) id {record.id}")


@sources_app.command("list")
def sources_list(as_json: JsonOption = False) -> None:
    """The configured sources with their schedules and freshness."""
    from ragline.db.engine import get_engine
    from ragline.sources.freshness import source_freshness

    settings = _settings()
    with _errors():
        rows = source_freshness(get_engine(settings), tenant=settings.tenant)
    if as_json:
        _print_json(rows)
        return
    _print_freshness(rows)


def _print_freshness(rows: list[dict[str, Any]]) -> None:
    if not rows:
        out.print("no sources configured: `ragline sources add NAME --kind ...` adds one")
        return
    table = Table(
        "source",
        "kind",
        "collection",
        "schedule",
        "last success",
        "docs",
        "pending",
        "failed",
        "last run",
    )
    for row in rows:
        age = row["seconds_since_success"]
        table.add_row(
            row["name"] + ("" if row["enabled"] else " (disabled)"),
            row["kind"],
            row["collection"],
            row["schedule"] or "",
            _age(age) if age is not None else "never",
            str(row["documents"]),
            str(row["pending"]),
            str(row["failed_items"]),
            row["last_status"] or "",
        )
    out.print(table)


def _age(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds / size:.1f} {unit} ago"
    return f"{seconds:.0f} s ago"


@sources_app.command("show")
def sources_show(
    name: Annotated[str, typer.Argument(help="Name or id.")], as_json: JsonOption = False
) -> None:
    """A source's configuration, schedule and saved position."""
    from ragline.db.engine import get_engine
    from ragline.db.tenancy import tenant_scope
    from ragline.sources.store import get_source

    settings = _settings()
    with _errors(), tenant_scope(get_engine(settings), settings.tenant) as conn:
        record = get_source(conn, name)
    _print_json(record.as_dict()) if as_json else out.print_json(data=record.as_dict())


@sources_app.command("remove")
def sources_remove(
    name: Annotated[str, typer.Argument(help="Name or id.")],
    keep_documents: Annotated[bool, typer.Option(help="Keep what it indexed searchable.")] = False,
    as_json: JsonOption = False,
) -> None:
    """Remove a source and (unless --keep-documents) everything it indexed."""
    from ragline.db.engine import get_engine
    from ragline.db.tenancy import tenant_scope
    from ragline.sources.service import remove_source
    from ragline.sources.store import get_source

    settings = _settings()
    with _errors():
        engine = get_engine(settings)
        with tenant_scope(engine, settings.tenant) as conn:
            record = get_source(conn, name)
        removed = remove_source(engine, record, keep_documents=keep_documents)
    if as_json:
        _print_json({"removed": record.name, "documents_removed": removed})
        return
    out.print(f"removed source [bold]{record.name}[/] and {removed} of its documents")


@app.command()
def sync(
    name: Annotated[str, typer.Argument(help="A configured source (name or id).")],
    full: Annotated[
        bool, typer.Option("--full", help="List everything; finds deleted items.")
    ] = False,
    wait: Annotated[bool, typer.Option(help="With a broker: wait for the job to finish.")] = True,
    as_json: JsonOption = False,
) -> None:
    """Sync a configured source now. Without a broker the job runs in this process
    (with a progress bar); with one, a worker runs it."""
    import time

    from ragline.db.engine import get_engine
    from ragline.db.tenancy import tenant_scope
    from ragline.jobs.dispatch import dispatcher_for
    from ragline.jobs.store import get_job
    from ragline.jobs.tasks import JobExecutor
    from ragline.sources.service import enqueue_sync
    from ragline.sources.store import get_source

    settings = _settings()
    with _errors():
        engine = get_engine(settings)
        with tenant_scope(engine, settings.tenant) as conn:
            record = get_source(conn, name)
        job = enqueue_sync(
            engine,
            dispatcher_for(settings),
            record,
            full=full,
            trigger="manual",
            max_attempts=settings.job_max_attempts,
        )
        if not settings.broker_url:
            executor = JobExecutor(settings, engine)
            with err.status(f"Syncing {record.name}…"):
                while (delay := executor.execute_id(job.id, worker="cli")) is not None:
                    time.sleep(delay)
        elif wait:
            with err.status(f"Waiting for a worker to sync {record.name} (job {job.id})…"):
                while True:
                    with engine.connect() as conn:
                        job = get_job(conn, job.id) or job
                    if job.status in ("succeeded", "failed"):
                        break
                    time.sleep(1)
        with engine.connect() as conn:
            job = get_job(conn, job.id) or job
    if as_json:
        _print_json(job.as_dict())
    elif job.status in ("queued", "running", "retrying"):
        out.print(f"sync of {record.name} queued as job {job.id}")
    elif job.result:
        report = job.result
        out.print(
            f"[bold]{record.name}[/] {job.status}: added {report['added']}  updated "
            f"{report['updated']}  unchanged {report['unchanged']}  deleted "
            f"{report['deleted']}  failed {report['failed']}  —  {report['embedded']} "
            f"embedded in {report['embedding_calls']} calls, {report['seconds']:.1f}s",
            highlight=False,
        )
        for failure in report["failures"]:
            out.print(f"  [red]failed[/] {failure['doc_id']}: {failure['reason']}", highlight=False)
    else:
        err.print(f"[bold red]sync failed:[/] {job.error}", highlight=False)
    if job.status == "failed":
        raise typer.Exit(1)


@app.command()
def runs(
    run_id: Annotated[int | None, typer.Argument(help="Show one run in full.")] = None,
    source: Annotated[str | None, typer.Option(help="Runs of one source.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=500)] = 20,
    as_json: JsonOption = False,
) -> None:
    """Reports of sync runs: counts, failed items with reasons, duration."""
    from ragline.db.engine import get_engine
    from ragline.db.tenancy import tenant_scope
    from ragline.sources.runs import get_run, list_runs
    from ragline.sources.store import get_source

    settings = _settings()
    with _errors(), tenant_scope(get_engine(settings), settings.tenant) as conn:
        if run_id is not None:
            found = [get_run(conn, run_id)]
        else:
            source_id = get_source(conn, source).id if source else None
            found = list_runs(conn, source_id=source_id, limit=limit)
    if as_json:
        _print_json(found[0] if run_id is not None else found)
        return
    table = Table(
        "run",
        "started",
        "source",
        "trigger",
        "mode",
        "status",
        "+",
        "~",
        "=",
        "-",
        "!",
        "embedded",
        "calls",
        "s",
    )
    for run in found:
        table.add_row(
            str(run["id"]),
            run["started_at"][:19],
            _short(run["source_name"] or run["source"], 32),
            run["trigger"],
            run["mode"],
            run["status"],
            *(str(run[key]) for key in ("added", "updated", "unchanged", "deleted", "failed")),
            str(run["embedded"]),
            str(run["embedding_calls"]),
            f"{run['seconds']:.1f}" if run["seconds"] is not None else "",
        )
    out.print(table)
    if run_id is not None:
        for error in found[0]["errors"]:
            where = f"{error['doc_id']}: " if error.get("doc_id") else ""
            out.print(f"  [red]failed[/] {where}{error['reason']}", highlight=False)


@app.command()
def consume(
    name: Annotated[str, typer.Argument(help="A configured stream source (name or id).")],
    consumers: Annotated[int, typer.Option(min=1, max=64, help="Consumers in parallel.")] = 1,
    idle_timeout: Annotated[
        float | None, typer.Option(help="Stop after this many seconds without a message.")
    ] = None,
) -> None:
    """Consume a source's change-event stream or event queue until stopped (Ctrl-C)."""
    import signal
    import threading

    from ragline.db.engine import get_engine
    from ragline.db.tenancy import tenant_scope
    from ragline.sources.kinds import ConsumeOptions
    from ragline.sources.service import build_context
    from ragline.sources.store import get_source

    settings = _settings()
    stopping = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stopping.set())
    with _errors():
        engine = get_engine(settings)
        with tenant_scope(engine, settings.tenant) as conn:
            record = get_source(conn, name)
        kind, config, context = build_context(record, settings, engine)
        if kind.consume is None:
            raise ConfigurationError(
                f"a {record.kind} source has nothing to consume; `ragline sync {record.name}` "
                "syncs it"
            )
        if settings.env not in record.environments:
            raise ConfigurationError(
                f"source {record.name!r} runs only in {', '.join(record.environments)}; "
                f"this is {settings.env} (RAGLINE_ENV)"
            )
        err.print(f"consuming {record.name} with {consumers} consumer(s); Ctrl-C stops")
        kind.consume(
            config,
            context,
            ConsumeOptions(consumers=consumers, idle_timeout=idle_timeout, stop=stopping.is_set),
        )


@app.command()
def beat(
    loglevel: Annotated[str, typer.Option(help="Celery's own log level.")] = "warning",
) -> None:
    """Run Celery Beat: it queues the syncs of sources as their schedules come due
    (needs RAGLINE_BROKER_URL; run one, beside the workers)."""
    from ragline.jobs.celery_app import create_celery

    settings = _settings()
    with _errors():
        if not settings.broker_url:
            raise ConfigurationError(
                "set RAGLINE_BROKER_URL to run Celery Beat; without a broker, "
                "`ragline serve` schedules source syncs itself"
            )
        celery = create_celery(settings)
        celery.Beat(
            scheduler="ragline.jobs.beat:DatabaseScheduler",
            loglevel=loglevel.upper(),
            max_interval=max(1, round(settings.scheduler_interval)),
        ).run()


@keys_app.command("create")
def keys_create(
    tenant: Annotated[str, typer.Option(help="Tenant the key acts for.")],
    role: Annotated[str, typer.Option(help="admin, writer or reader.")] = "reader",
    name: Annotated[str, typer.Option(help="A label to recognise the key by.")] = "",
    as_json: JsonOption = False,
) -> None:
    """Create an API key; it is shown once, only its hash is stored."""
    from ragline.auth import ROLES, create_key
    from ragline.db.engine import get_engine

    settings = _settings()
    if role not in ROLES:
        raise typer.BadParameter(f"--role must be one of {', '.join(ROLES)}")
    with _errors():
        key = create_key(get_engine(settings), tenant=tenant, role=role, name=name)
    if as_json:
        _print_json({"id": key.id, "tenant": key.tenant, "role": key.role, "key": key.secret})
        return
    out.print(
        f"API key {key.id} for tenant {key.tenant!r} ({key.role}); keep it, it is not shown again:"
    )
    typer.echo(key.secret)


@keys_app.command("list")
def keys_list(
    tenant: Annotated[str | None, typer.Option(help="Only this tenant's keys.")] = None,
    as_json: JsonOption = False,
) -> None:
    """List API keys (never the keys themselves)."""
    from ragline.auth import list_keys
    from ragline.db.engine import get_engine

    settings = _settings()
    with _errors():
        keys = list_keys(get_engine(settings), tenant)
    rows: list[dict[str, Any]] = [
        {
            "id": k.id,
            "tenant": k.tenant,
            "role": k.role,
            "name": k.name,
            "prefix": k.prefix,
            "created_at": k.created_at.isoformat(),
            "last_used_at": k.last_used_at.isoformat() if k.last_used_at else None,
            "revoked": k.revoked_at is not None,
        }
        for k in keys
    ]
    if as_json:
        _print_json(rows)
        return
    table = Table("id", "tenant", "role", "name", "key", "created", "last used", "revoked")
    for row in rows:
        table.add_row(
            str(row["id"]),
            row["tenant"],
            row["role"],
            row["name"],
            f"{row['prefix']}…",
            row["created_at"][:19],
            (row["last_used_at"] or "")[:19],
            "yes" if row["revoked"] else "",
        )
    out.print(table)


@keys_app.command("revoke")
def keys_revoke(
    key_id: Annotated[int, typer.Argument(help="Id from `ragline keys list`.")],
) -> None:
    """Revoke an API key: requests with it get 401 from now on."""
    from ragline.auth import revoke_key
    from ragline.db.engine import get_engine

    settings = _settings()
    with _errors():
        revoke_key(get_engine(settings), key_id)
    out.print(f"API key {key_id} revoked")


def main(argv: list[str] | None = None) -> Any:
    return app(args=argv if argv is not None else sys.argv[1:])
