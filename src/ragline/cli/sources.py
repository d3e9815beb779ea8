"""Commands of configured sources: ``ragline sources add|list|show|remove``, ``sync``,
``runs``, ``consume`` and ``beat``.

ragline sources add news --kind sql --config @news.json --schedule '*/15 * * * *'
ragline sync news --full
ragline runs --source news --json
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from ragline.cli.base import (
    JsonOption,
    app,
    err,
    friendly_errors,
    load_settings,
    operator,
    out,
    print_freshness,
    print_json,
    shorten,
    sources_app,
)
from ragline.config import Settings
from ragline.errors import ConfigurationError

if TYPE_CHECKING:
    from ragline.sources.service import SourceService


def source_service(settings: Settings) -> SourceService:
    """The sources as the command line reaches them (commands import lazily, so that
    `ragline --help` stays quick)."""
    from ragline.db.engine import get_engine
    from ragline.jobs.dispatch import dispatcher_for
    from ragline.sources.service import SourceService

    return SourceService(get_engine(settings), settings, dispatcher_for(settings))


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
    from ragline.sources.store import ENVIRONMENTS, SourceSpec

    settings = load_settings()
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
    with friendly_errors():
        record = source_service(settings).add(operator(settings), spec)
    if as_json:
        print_json(record.as_dict())
        return
    out.print(f"added source [bold]{record.name}[/] ({record.kind}) id {record.id}")


@sources_app.command("list")
def sources_list(as_json: JsonOption = False) -> None:
    """The configured sources with their schedules and freshness."""
    from ragline.db.engine import get_engine
    from ragline.sources.freshness import source_freshness

    settings = load_settings()
    with friendly_errors():
        rows = source_freshness(get_engine(settings), tenant=settings.tenant)
    if as_json:
        print_json(rows)
        return
    print_freshness(rows)


@sources_app.command("show")
def sources_show(
    name: Annotated[str, typer.Argument(help="Name or id.")], as_json: JsonOption = False
) -> None:
    """A source's configuration, schedule and saved position."""
    settings = load_settings()
    with friendly_errors():
        record = source_service(settings).get(operator(settings), name)
    print_json(record.as_dict()) if as_json else out.print_json(data=record.as_dict())


@sources_app.command("remove")
def sources_remove(
    name: Annotated[str, typer.Argument(help="Name or id.")],
    keep_documents: Annotated[bool, typer.Option(help="Keep what it indexed searchable.")] = False,
    as_json: JsonOption = False,
) -> None:
    """Remove a source and (unless --keep-documents) everything it indexed."""
    settings = load_settings()
    with friendly_errors():
        removed = source_service(settings).remove(
            operator(settings), name, keep_documents=keep_documents
        )
    if as_json:
        print_json({"removed": name, "documents_removed": removed})
        return
    out.print(f"removed source [bold]{name}[/] and {removed} of its documents")


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
    from ragline.handlers import JOB_KINDS
    from ragline.jobs.executor import JobExecutor
    from ragline.jobs.store import get_job

    settings = load_settings()
    with friendly_errors():
        engine = get_engine(settings)
        service = source_service(settings)
        record = service.get(operator(settings), name)
        job = service.sync(operator(settings), name, full=full)
        if not settings.broker_url:
            executor = JobExecutor(settings, engine, kinds=JOB_KINDS)
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
        print_json(job.as_dict())
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
    settings = load_settings()
    with friendly_errors():
        service, caller = source_service(settings), operator(settings)
        if run_id is not None:
            found = [service.run(caller, run_id)]
        else:
            found = service.runs(caller, source=source, limit=limit)
    if as_json:
        print_json(found[0] if run_id is not None else found)
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
            shorten(run["source_name"] or run["source"], 32),
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

    from ragline.sources.registry import ConsumeOptions

    settings = load_settings()
    stopping = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stopping.set())
    with friendly_errors():
        service = source_service(settings)
        err.print(f"consuming {name} with {consumers} consumer(s); Ctrl-C stops")
        service.consume(
            operator(settings),
            name,
            ConsumeOptions(consumers=consumers, idle_timeout=idle_timeout, stop=stopping.is_set),
        )


@app.command()
def beat(
    loglevel: Annotated[str, typer.Option(help="Celery's own log level.")] = "warning",
) -> None:
    """Run Celery Beat: it queues the syncs of sources as their schedules come due
    (needs RAGLINE_BROKER_URL; run one, beside the workers)."""
    from ragline.jobs.celery_app import create_celery

    settings = load_settings()
    with friendly_errors():
        if not settings.broker_url:
            raise ConfigurationError(
                "set RAGLINE_BROKER_URL to run Celery Beat; without a broker, "
                "`ragline serve` schedules source syncs itself"
            )
        celery = create_celery(settings)
        celery.Beat(
            scheduler="ragline.sources.beat:DatabaseScheduler",
            loglevel=loglevel.upper(),
            max_interval=max(1, round(settings.scheduler_interval)),
        ).run()
