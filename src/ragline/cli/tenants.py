"""The operator's commands: each tenant's policy (``ragline tenant``) and the audit
log (``ragline audit``).

ragline tenant allow acme --host wiki.internal --env WIKI_TOKEN --kind sql
ragline tenant disallow acme --env WIKI_TOKEN
ragline tenant show acme --json
ragline audit --tenant acme --action source. --limit 20
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

import typer
from rich.table import Table

from ragline.cli.base import (
    JsonOption,
    app,
    friendly_errors,
    load_settings,
    operator,
    out,
    print_json,
    tenant_app,
)
from ragline.tenants import TenantPolicy

Tenant = Annotated[str, typer.Argument(help="The tenant (as in `ragline keys create --tenant`).")]
Items = list[str] | None
Host = Annotated[
    Items, typer.Option("--host", help="Host, '*.domain' or 'host:port' (even if private).")
]
UrlPrefix = Annotated[Items, typer.Option("--url-prefix", help="URL prefix, whatever its address.")]
Network = Annotated[Items, typer.Option("--network", help="Private address block, '10.2.0.0/16'.")]
Database = Annotated[Items, typer.Option("--database", help="Database URL, without password.")]
Bucket = Annotated[Items, typer.Option("--bucket", help="S3 bucket ('*': any).")]
Folder = Annotated[Items, typer.Option("--folder", help="Directory files sources may read.")]
Env = Annotated[Items, typer.Option("--env", help="Environment variable a source may name.")]
KindOption = Annotated[Items, typer.Option("--kind", help="Kind of source the admin may add.")]

# The list fields of an allowance, in the order the options are given.
LISTS = ("hosts", "url_prefixes", "networks", "databases", "buckets", "folders", "env", "kinds")


def _lists(*values: Items) -> dict[str, list[str]]:
    return {field: list(value or []) for field, value in zip(LISTS, values, strict=True)}


def _change(
    tenant: str,
    lists: dict[str, list[str]],
    *,
    adding: bool,
    flags: dict[str, bool | None],
    redact_pii: bool | None,
    as_json: bool,
) -> None:
    from ragline.db.engine import get_engine
    from ragline.operator import change_policy
    from ragline.sources.registry import KIND_NAMES

    unknown = set(lists["kinds"]) - set(KIND_NAMES)
    if unknown:
        raise typer.BadParameter(f"--kind must be among {', '.join(KIND_NAMES)}")

    def change(policy: TenantPolicy) -> TenantPolicy:
        allowance = policy.allowance
        update: dict[str, Any] = {}
        for field, values in lists.items():
            current: tuple[str, ...] = getattr(allowance, field)
            if adding:
                update[field] = current + tuple(v for v in values if v not in current)
            else:
                update[field] = tuple(v for v in current if v not in values)
        update.update({field: value for field, value in flags.items() if value is not None})
        changed = policy.model_copy(update={"allowance": allowance.model_copy(update=update)})
        if redact_pii is not None:
            changed = changed.model_copy(update={"redact_pii": redact_pii})
        # Revalidated whole, so that a bad value is refused here and not when read.
        return TenantPolicy.model_validate(changed.model_dump())

    settings = load_settings()
    with friendly_errors():
        policy = change_policy(get_engine(settings), operator(settings), tenant, change)
    _print_policy(tenant, policy, as_json=as_json)


def _print_policy(tenant: str, policy: TenantPolicy, *, as_json: bool) -> None:
    if as_json:
        print_json({"tenant": tenant, **policy.model_dump(mode="json")})
        return
    table = Table("setting", "value", title=f"policy of tenant {tenant!r}")
    for field, value in policy.allowance.model_dump().items():
        shown = ", ".join(value) if isinstance(value, tuple | list) else str(value).lower()
        table.add_row(field, shown or "(none)")
    pii = {None: "as RAGLINE_PII_REDACTION says", True: "true", False: "false"}
    table.add_row("redact_pii", pii[policy.redact_pii])
    out.print(table)


@tenant_app.command("show")
def tenant_show(tenant: Tenant, as_json: JsonOption = False) -> None:
    """A tenant's policy: what its sources may reach (the defaults when none was set)."""
    from ragline.db.engine import get_engine
    from ragline.operator import tenant_policy

    settings = load_settings()
    with friendly_errors():
        policy = tenant_policy(get_engine(settings), operator(settings), tenant)
    _print_policy(tenant, policy, as_json=as_json)


@tenant_app.command("list")
def tenant_list(as_json: JsonOption = False) -> None:
    """The tenants whose policy was set (the others have the defaults)."""
    from ragline.db.engine import get_engine
    from ragline.operator import tenant_policies

    settings = load_settings()
    with friendly_errors():
        policies = tenant_policies(get_engine(settings), operator(settings))
    if as_json:
        print_json({name: policy.model_dump(mode="json") for name, policy in policies.items()})
        return
    if not policies:
        out.print("no policy set: every tenant has the defaults (`ragline tenant show T`)")
    for name in policies:
        out.print(name, highlight=False)


@tenant_app.command("allow")
def tenant_allow(
    tenant: Tenant,
    host: Host = None,
    url_prefix: UrlPrefix = None,
    network: Network = None,
    database: Database = None,
    bucket: Bucket = None,
    folder: Folder = None,
    env: Env = None,
    kind: KindOption = None,
    ambient_credentials: Annotated[
        bool | None,
        typer.Option(
            "--ambient-credentials/--no-ambient-credentials",
            help="Whether S3 sources may use the service's own AWS credentials.",
        ),
    ] = None,
    public_hosts: Annotated[
        bool | None,
        typer.Option(
            "--public-hosts/--no-public-hosts",
            help="Whether sources may reach any public host (not only those listed).",
        ),
    ] = None,
    redact_pii: Annotated[
        bool | None,
        typer.Option(
            "--redact-pii/--no-redact-pii",
            help="Redact personal data before a remote model sees it.",
        ),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Let a tenant's sources reach more: each option adds to its policy (repeatable)."""
    _change(
        tenant,
        _lists(host, url_prefix, network, database, bucket, folder, env, kind),
        adding=True,
        flags={"ambient_credentials": ambient_credentials, "public_hosts": public_hosts},
        redact_pii=redact_pii,
        as_json=as_json,
    )


@tenant_app.command("disallow")
def tenant_disallow(
    tenant: Tenant,
    host: Host = None,
    url_prefix: UrlPrefix = None,
    network: Network = None,
    database: Database = None,
    bucket: Bucket = None,
    folder: Folder = None,
    env: Env = None,
    kind: KindOption = None,
    ambient_credentials: Annotated[
        bool,
        typer.Option("--ambient-credentials", help="Refuse the service's own AWS credentials."),
    ] = False,
    public_hosts: Annotated[
        bool, typer.Option("--public-hosts", help="Refuse public hosts not listed.")
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Let a tenant's sources reach less: each option removes from its policy."""
    _change(
        tenant,
        _lists(host, url_prefix, network, database, bucket, folder, env, kind),
        adding=False,
        flags={
            "ambient_credentials": False if ambient_credentials else None,
            "public_hosts": False if public_hosts else None,
        },
        redact_pii=None,
        as_json=as_json,
    )


@app.command()
def audit(
    tenant: Annotated[str | None, typer.Option(help="Only this tenant's events.")] = None,
    action: Annotated[
        str | None,
        typer.Option(help="An action ('key.create') or a prefix ending in '.' ('source.')."),
    ] = None,
    since: Annotated[
        dt.datetime | None, typer.Option(help="Only events at or after this time.")
    ] = None,
    limit: Annotated[int, typer.Option(min=1, max=10_000)] = 50,
    as_json: JsonOption = False,
) -> None:
    """The audit log of administrative actions (keys, sources, policies), newest first."""
    import dataclasses

    from ragline.db.engine import get_engine
    from ragline.operator import audit_events

    settings = load_settings()
    when = since.replace(tzinfo=since.tzinfo or dt.UTC) if since else None
    with friendly_errors():
        events = audit_events(
            get_engine(settings),
            operator(settings),
            tenant=tenant,
            action=action,
            since=when,
            limit=limit,
        )
    rows = [{**dataclasses.asdict(e), "at": e.at.isoformat()} for e in events]
    if as_json:
        print_json(rows)
        return
    if not rows:
        out.print("no events")
        return
    table = Table("at", "tenant", "actor", "action", "target", "details")
    for row in rows:
        details = ", ".join(f"{k}={v}" for k, v in row["details"].items())
        table.add_row(
            row["at"][:19],
            row["tenant"] or "",
            row["actor"],
            row["action"],
            row["target"],
            details if len(details) <= 80 else details[:79] + "…",
        )
    out.print(table)
