"""The audit log: who did what administrative thing, when, to what. Appended to in the
same transaction as the action itself, read by the operator only; never changed. The
one module that holds the SQL of ``audit_log``::

    with tenant_scope(engine, "acme") as conn:
        create_something(conn, ...)
        record(conn, tenant="acme", actor=principal.actor, action="source.add",
               target="crm", details={"kind": "sql"})
    with engine.connect() as conn:
        events(conn, tenant="acme", limit=50)       # newest first
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa


@dataclass(frozen=True, slots=True)
class AuditEvent:
    id: int
    at: dt.datetime
    tenant: str | None
    actor: str
    action: str
    target: str
    details: dict[str, Any]


def record(
    conn: sa.Connection,
    *,
    tenant: str | None,
    actor: str,
    action: str,
    target: str = "",
    details: Mapping[str, Any] | None = None,
) -> None:
    """Append one event. ``action`` is a dotted name: ``key.create``, ``source.remove``,
    ``policy.set``, ``document.delete``..."""
    conn.execute(
        sa.text(
            "INSERT INTO audit_log (tenant, actor, action, target, details) "
            "VALUES (:tenant, :actor, :action, :target, CAST(:details AS jsonb))"
        ),
        {
            "tenant": tenant,
            "actor": actor,
            "action": action,
            "target": target,
            "details": json.dumps(dict(details or {}), default=str),
        },
    )


def events(
    conn: sa.Connection,
    *,
    tenant: str | None = None,
    action: str | None = None,
    since: dt.datetime | None = None,
    limit: int = 100,
) -> list[AuditEvent]:
    """Events, newest first; ``action`` matches a name or a prefix ending in '.'
    (``source.`` for every source action)."""
    rows = conn.execute(
        sa.text(
            """
            SELECT id, at, tenant, actor, action, target, details FROM audit_log
            WHERE (CAST(:tenant AS text) IS NULL OR tenant = :tenant)
              AND (CAST(:action AS text) IS NULL OR action = :action
                   OR (right(:action, 1) = '.' AND starts_with(action, :action)))
              AND (CAST(:since AS timestamptz) IS NULL OR at >= :since)
            ORDER BY id DESC LIMIT :limit
            """
        ),
        {"tenant": tenant, "action": action, "since": since, "limit": limit},
    ).mappings()
    return [AuditEvent(**row) for row in rows]
