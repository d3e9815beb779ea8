"""What the commands share: the Typer apps, the consoles, settings, error reporting
and JSON output."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from ragline.config import Settings, get_settings
from ragline.errors import (
    AuthError,
    ConfigurationError,
    Conflict,
    Forbidden,
    IngestError,
    InvalidRequest,
    NotFound,
    RaglineError,
    Unavailable,
)
from ragline.logs import configure_logging

if TYPE_CHECKING:
    from ragline.auth import Principal

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
tenant_app = typer.Typer(
    help="Each tenant's policy, which the operator sets: what its sources may reach.",
    no_args_is_help=True,
)
app.add_typer(tenant_app, name="tenant")

out = Console()
err = Console(stderr=True)

JsonOption = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")]


def load_settings() -> Settings:
    settings = get_settings()
    configure_logging(settings)
    return settings


def operator(settings: Settings) -> Principal:
    """Whoever runs the command line on the service's machine is the operator, acting
    in RAGLINE_TENANT; the audit log names them ``cli:<OS user>``. (Imported here, not
    at the top, so that `ragline --help` stays quick.)"""
    from ragline.auth import Principal

    return Principal.operator(settings.tenant)


# Exit statuses by kind of error, most specific first (the codes of sysexits.h), so
# that scripts can tell "fix the command" from "try again later".
EXIT_CODES: tuple[tuple[type[RaglineError], int], ...] = (
    (AuthError, 77),  # EX_NOPERM
    (Forbidden, 77),
    (NotFound, 66),  # EX_NOINPUT
    (Conflict, 75),  # EX_TEMPFAIL: the state may change
    (ConfigurationError, 78),  # EX_CONFIG
    (InvalidRequest, 64),  # EX_USAGE
    (IngestError, 65),  # EX_DATAERR
    (Unavailable, 69),  # EX_UNAVAILABLE
)


def exit_code(error: RaglineError) -> int:
    for kind, code in EXIT_CODES:
        if isinstance(error, kind):
            return code
    return 1


@contextmanager
def friendly_errors() -> Iterator[None]:
    """Turn ragline's errors into a one-line message and their exit status."""
    try:
        yield
    except RaglineError as e:
        err.print(f"[bold red]error:[/] {e}", highlight=False)
        raise typer.Exit(exit_code(e)) from e


def print_json(value: Any) -> None:
    """JSON on stdout, unwrapped and uncoloured, for scripts."""
    typer.echo(json.dumps(value, indent=2, ensure_ascii=False))


def print_freshness(rows: list[dict[str, Any]]) -> None:
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
        seconds = row["seconds_since_success"]
        table.add_row(
            row["name"] + ("" if row["enabled"] else " (disabled)"),
            row["kind"],
            row["collection"],
            row["schedule"] or "",
            age(seconds) if seconds is not None else "never",
            str(row["documents"]),
            str(row["pending"]),
            str(row["failed_items"]),
            row["last_status"] or "",
        )
    out.print(table)


def age(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds / size:.1f} {unit} ago"
    return f"{seconds:.0f} s ago"


def shorten(text: str, width: int = 48) -> str:
    return text if len(text) <= width else "…" + text[-(width - 1) :]
