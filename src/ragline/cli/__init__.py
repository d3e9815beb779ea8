"""The ``ragline`` command line.

ragline ingest docs/ --collection handbook
ragline search "how do I calibrate the oxygen sensor" --k 5
ragline status --json

The commands of configured sources are in ``sources``; those that run the service
(serve, worker, db, keys) in ``service``; the operator's (tenant, audit) in
``tenants``; what commands share is in ``base``.
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
    err,
    eval_app,
    friendly_errors,
    load_settings,
    out,
    print_freshness,
    print_json,
    shorten,
)
from ragline.config import SearchMode, Settings
from ragline.domain import Outcome, SyncReport


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
    from ragline.ingest.connectors.files import FileSource
    from ragline.ingest.pipeline import Pipeline

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
        out.print(
            f"[yellow]{answer['removed_citations']} citation(s) removed: no such source, or "
            "it does not support the sentence[/]"
        )
    if answer["dropped_sentences"]:
        out.print(
            f"[yellow]{answer['dropped_sentences']} sentence(s) of the model dropped: no "
            "source supports them[/]"
        )
    elif answer["unsupported"]:
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
        f"embedding model {info['embedding_model']} ({info['embedding_dim']}-d, "
        f"{info['embedder']} embedder)",
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


def main(argv: list[str] | None = None) -> Any:
    return app(args=argv if argv is not None else sys.argv[1:])


# Registered after the commands above, so that `ragline --help` lists those first.
from ragline.cli import service, sources, tenants  # noqa: E402

__all__ = ["app", "main", "service", "sources", "tenants"]
