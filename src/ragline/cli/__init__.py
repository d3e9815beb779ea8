"""The ``ragline`` command line.

ragline ingest docs/ --collection handbook
ragline search "how do I calibrate the oxygen sensor" --k 5
ragline status --json

The commands of configured sources are in ``sources``; what commands share is in
``base``.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import ValidationError
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

from ragline.cli.base import (
    JsonOption,
    app,
    db_app,
    err,
    eval_app,
    friendly_errors,
    keys_app,
    load_settings,
    out,
    print_freshness,
    print_json,
    shorten,
)
from ragline.config import SearchMode, Settings
from ragline.domain import Outcome, SyncReport
from ragline.errors import ConfigurationError


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

    settings = load_settings()
    with friendly_errors():
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
        print_json(report.as_dict())
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

    settings = load_settings()
    with friendly_errors():
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
        print_json([{key: hit.as_dict()[key] for key in keys} for hit in hits])
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

    settings = load_settings()
    with friendly_errors():
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
        print_json(done)
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

    settings = load_settings()
    with friendly_errors():
        engine = get_engine(settings)
        info = index_status(engine, settings.tenant)
        info["sources"] = source_freshness(
            engine, tenant=settings.tenant, settings=settings, with_backlog=True
        )
    if as_json:
        print_json(info)
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
        print_freshness(info["sources"])
    if info["runs"]:
        table = Table(
            "run", "started", "source", "status", "+", "~", "=", "-", "!", "embedded", "s"
        )
        for run in info["runs"]:
            table.add_row(
                str(run["id"]),
                run["started_at"][:19],
                shorten(run["source"]),
                run["status"],
                *(str(run[key]) for key in ("added", "updated", "unchanged", "deleted", "failed")),
                str(run["embedded"]),
                f"{run['seconds']:.1f}" if run["seconds"] is not None else "",
            )
        out.print(table)


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

    settings = load_settings()
    modes: tuple[SearchMode, ...]
    if mode == "all":
        modes = ("lexical", "dense", "hybrid")
    elif mode in ("dense", "lexical", "hybrid"):
        modes = (mode,)  # type: ignore[assignment]
    else:
        raise typer.BadParameter("--mode must be dense, lexical, hybrid or all")
    with friendly_errors():
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
        print_json(result.as_dict())
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

    settings = load_settings()
    with friendly_errors():
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

    settings = load_settings()
    with friendly_errors():
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

    settings = load_settings()
    with friendly_errors():
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

    settings = load_settings()
    if role not in ROLES:
        raise typer.BadParameter(f"--role must be one of {', '.join(ROLES)}")
    with friendly_errors():
        key = create_key(get_engine(settings), tenant=tenant, role=role, name=name)
    if as_json:
        print_json({"id": key.id, "tenant": key.tenant, "role": key.role, "key": key.secret})
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

    settings = load_settings()
    with friendly_errors():
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
        print_json(rows)
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

    settings = load_settings()
    with friendly_errors():
        revoke_key(get_engine(settings), key_id)
    out.print(f"API key {key_id} revoked")


def main(argv: list[str] | None = None) -> Any:
    return app(args=argv if argv is not None else sys.argv[1:])


# Registered after the commands above, so that `ragline --help` lists those first.
from ragline.cli import sources  # noqa: E402

__all__ = ["app", "main", "sources"]
