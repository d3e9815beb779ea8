"""Building a configured source's connector from its record, within what the operator
allows its tenant to reach, and the checks of a configuration against that allowance
that are cheap enough to make when a source is added::

    check_kind("sql", allowance, "acme")          # OutsideAllowance unless allowed
    check_variables({"url_env": "CRM_DB_URL"}, allowance, "acme", settings)
    kind, config, context = build_context(record, settings, engine)
    kind, config, source = build_source(record, settings, engine)

The connectors check the rest (hosts, addresses, databases, folders) when they run.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from sqlalchemy.engine import Engine

from ragline.config import Settings
from ragline.errors import OutsideAllowance
from ragline.ingest.connectors.base import Source
from ragline.ingest.connectors.kinds import Kind, Profiles, SourceContext
from ragline.reach import Allowance, own_variables
from ragline.sources.registry import get_kind
from ragline.sources.store import SourceRecord
from ragline.tenants import get_policy

# Made by the operator only (it reads the service's own disk), so never refused for
# its kind: the allowance's folders bound it when it runs.
OPERATOR_KINDS = ("files",)


def check_kind(kind: str, allowance: Allowance, tenant: str) -> None:
    """OutsideAllowance unless the operator allows ``tenant`` sources of ``kind``."""
    if kind in OPERATOR_KINDS or kind in allowance.kinds:
        return
    raise OutsideAllowance(
        f"the operator has not allowed {kind} sources for tenant {tenant!r} (allowed: "
        f"{', '.join(allowance.kinds) or 'none'}); the operator can, with "
        f"`ragline tenant allow {tenant} --kind {kind}`"
    )


def check_variables(
    config: Mapping[str, Any], allowance: Allowance, tenant: str, settings: Settings
) -> None:
    """OutsideAllowance for an environment variable a configuration names (a ``*_env``
    field) that the operator has not allowed ``tenant``, or that is ragline's own."""
    own = own_variables(settings)
    for where, name in _variables(config):
        if name in allowance.env and name not in own and not name.upper().startswith("RAGLINE_"):
            continue
        raise OutsideAllowance(
            f"{where} names an environment variable ({name}) that the operator has not "
            f"allowed tenant {tenant!r} to use (allowed: {', '.join(allowance.env) or 'none'}); "
            f"ask the operator for a variable that holds this source's secret only "
            f"(`ragline tenant allow {tenant} --env VARIABLE`)"
        )


def _variables(config: Mapping[str, Any], path: str = "") -> Iterator[tuple[str, str]]:
    """(where, variable name) of each ``*_env`` field of a configuration."""
    for key, value in config.items():
        where = f"{path}{key}"
        if isinstance(value, Mapping):
            yield from _variables(value, f"{where}.")
        elif key.endswith("_env") and isinstance(value, str) and value:
            yield where, value


def build_context(
    record: SourceRecord, settings: Settings, engine: Engine
) -> tuple[Kind[Any], Any, SourceContext]:
    """The kind, validated configuration and build context of ``record``;
    OutsideAllowance when the operator no longer allows its kind."""
    kind = get_kind(record.kind)
    config = kind.validate(record.config)
    with engine.connect() as conn:
        allowance = get_policy(conn, record.tenant).allowance
    check_kind(record.kind, allowance, record.tenant)
    context = SourceContext(
        name=record.ledger_name,
        source_id=record.id,
        tenant=record.tenant,
        collection=record.collection,
        settings=settings,
        engine=engine,
        profiles=Profiles.parse(record.profiles),
        allowance=allowance,
    )
    return kind, config, context


def build_source(
    record: SourceRecord, settings: Settings, engine: Engine
) -> tuple[Kind[Any], Any, Source]:
    """The kind, validated configuration and connector of ``record``."""
    kind, config, context = build_context(record, settings, engine)
    return kind, config, kind.build(config, context)
