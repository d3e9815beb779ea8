"""Commands that run and administer the service: ``serve``, ``worker``, ``db upgrade``
and ``keys``.

ragline keys create --tenant acme --role admin --name ops
ragline keys list --tenant acme --json
"""

from __future__ import annotations

import signal
from typing import Annotated, Any

import typer
from rich.table import Table

from ragline.cli.base import (
    JsonOption,
    app,
    db_app,
    friendly_errors,
    keys_app,
    load_settings,
    operator,
    out,
    print_json,
)
from ragline.errors import ConfigurationError


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

    # uvicorn shuts down gracefully on SIGTERM, then raises the signal again to exit
    # with its status; exiting through SystemExit instead lets the exit handlers run,
    # which stop the embedded PostgreSQL this process started.
    signal.signal(signal.SIGTERM, _exit_on_signal)
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


def _exit_on_signal(signum: int, _frame: object) -> None:
    raise SystemExit(128 + signum)


@app.command()
def worker(
    queues: Annotated[
        str, typer.Option(help="Comma-separated queues to consume.")
    ] = "ingest,sync,default",
    concurrency: Annotated[int, typer.Option(min=1, help="Processes running jobs.")] = 1,
    loglevel: Annotated[str, typer.Option(help="Celery's own log level.")] = "warning",
) -> None:
    """Run a Celery worker for background jobs (needs RAGLINE_BROKER_URL)."""
    from ragline.handlers import JOB_KINDS
    from ragline.jobs.celery_app import create_celery

    settings = load_settings()
    with friendly_errors():
        if not settings.broker_url:
            raise ConfigurationError(
                "set RAGLINE_BROKER_URL (redis://... or amqp://...) to run a worker; "
                "without a broker, `ragline serve` runs jobs itself"
            )
        celery = create_celery(settings, kinds=JOB_KINDS)
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
    role: Annotated[
        str,
        typer.Option(
            help="reader, writer, admin (configures the tenant's sources within its policy) "
            "or operator (sets every tenant's policy, reads the audit log)."
        ),
    ] = "reader",
    name: Annotated[str, typer.Option(help="A label to recognise the key by.")] = "",
    as_json: JsonOption = False,
) -> None:
    """Create an API key; it is shown once, only its hash is stored. Operator keys are
    created here only, never through the API."""
    from ragline.auth import ROLES, create_key
    from ragline.db.engine import get_engine

    settings = load_settings()
    if role not in ROLES:
        raise typer.BadParameter(f"--role must be one of {', '.join(ROLES)}")
    with friendly_errors():
        key = create_key(
            get_engine(settings), tenant=tenant, role=role, name=name, by=operator(settings)
        )
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
        revoke_key(get_engine(settings), key_id, by=operator(settings))
    out.print(f"API key {key_id} revoked")
