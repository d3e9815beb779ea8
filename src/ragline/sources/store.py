"""Configured sources in PostgreSQL: the record of each, and its saved position.

    with tenant_scope(engine, "acme") as conn:
        record = create_source(conn, tenant="acme", spec=SourceSpec(...))
        records = list_sources(conn)

A source's name is unique in its tenant. Records hold no secret: their connection
settings name environment variables (see ``kinds.check_no_secrets``).
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from croniter import croniter

from ragline.config import Environment
from ragline.errors import ConfigurationError, Conflict, NotFound
from ragline.ingest.connectors.kinds import Profiles
from ragline.sources.registry import get_kind

ENVIRONMENTS: tuple[Environment, ...] = ("development", "staging", "production")

COLUMNS = (
    "id, tenant, name, kind, collection, config, profiles, schedule, full_schedule, "
    "environments, enabled, state, next_run_at, next_full_at, created_at, updated_at"
)


@dataclass(frozen=True, slots=True)
class SourceSpec:
    """What a user says about a source; validated by ``validate`` before it is stored."""

    name: str
    kind: str
    collection: str
    config: dict[str, Any]
    profiles: dict[str, Any] = field(default_factory=dict)
    schedule: str | None = None
    full_schedule: str | None = None
    environments: tuple[str, ...] = ENVIRONMENTS
    enabled: bool = True

    def validate(self) -> None:
        if (
            not self.name
            or len(self.name) > 100
            or not self.name.replace("-", "").replace("_", "").replace(".", "").isalnum()
        ):
            raise ConfigurationError(
                f"source name {self.name!r}: use 1-100 letters, digits, '-', '_' or '.'"
            )
        if not self.collection:
            raise ConfigurationError("a source needs a collection")
        kind = get_kind(self.kind)
        kind.validate(self.config)
        Profiles.parse(self.profiles)
        for label, expression in (
            ("schedule", self.schedule),
            ("full_schedule", self.full_schedule),
        ):
            if expression is not None:
                if not kind.listable:
                    raise ConfigurationError(
                        f"a {self.kind} source is consumed, not scheduled; drop its {label}"
                    )
                if not croniter.is_valid(expression):
                    raise ConfigurationError(
                        f"{label} {expression!r} is not a cron expression "
                        "(five fields, or six with seconds last: '*/30 * * * * *')"
                    )
        unknown = set(self.environments) - set(ENVIRONMENTS)
        if unknown or not self.environments:
            raise ConfigurationError(
                f"environments must be some of {', '.join(ENVIRONMENTS)}; got "
                f"{', '.join(self.environments) or 'none'}"
            )


@dataclass(frozen=True, slots=True)
class SourceRecord:
    id: uuid.UUID
    tenant: str
    name: str
    kind: str
    collection: str
    config: dict[str, Any]
    profiles: dict[str, Any]
    schedule: str | None
    full_schedule: str | None
    environments: list[str]
    enabled: bool
    state: dict[str, Any]
    next_run_at: dt.datetime | None
    next_full_at: dt.datetime | None
    created_at: dt.datetime
    updated_at: dt.datetime

    def check_runs_in(self, env: str) -> None:
        """ConfigurationError unless the source runs in the environment ``env``."""
        if env not in self.environments:
            raise ConfigurationError(
                f"source {self.name!r} runs only in {', '.join(self.environments)}; "
                f"this deployment is {env} (RAGLINE_ENV)"
            )

    @property
    def ledger_name(self) -> str:
        """The name its documents carry in the ledger."""
        return f"{self.kind}:{self.name}"

    def as_dict(self) -> dict[str, Any]:
        def iso(value: dt.datetime | None) -> str | None:
            return value.isoformat() if value is not None else None

        return {
            "id": str(self.id),
            "name": self.name,
            "kind": self.kind,
            "collection": self.collection,
            "config": self.config,
            "profiles": self.profiles,
            "schedule": self.schedule,
            "full_schedule": self.full_schedule,
            "environments": list(self.environments),
            "enabled": self.enabled,
            "state": self.state,
            "next_run_at": iso(self.next_run_at),
            "next_full_at": iso(self.next_full_at),
            "created_at": iso(self.created_at),
            "updated_at": iso(self.updated_at),
        }


def record_of(row: Any) -> SourceRecord:
    return SourceRecord(**row)


def next_time(expression: str | None, after: dt.datetime) -> dt.datetime | None:
    """The first time ``expression`` fires strictly after ``after`` (UTC)."""
    if expression is None:
        return None
    fired: dt.datetime = croniter(expression, after.astimezone(dt.UTC)).get_next(dt.datetime)
    return fired


def create_source(conn: sa.Connection, *, tenant: str, spec: SourceSpec) -> SourceRecord:
    spec.validate()
    now = dt.datetime.now(dt.UTC)
    row = (
        conn.execute(
            sa.text(
                f"""
                INSERT INTO sources (id, tenant, name, kind, collection, config, profiles,
                                     schedule, full_schedule, environments, enabled,
                                     next_run_at, next_full_at)
                VALUES (:id, :tenant, :name, :kind, :collection, CAST(:config AS jsonb),
                        CAST(:profiles AS jsonb), :schedule, :full_schedule, :environments,
                        :enabled, :next_run_at, :next_full_at)
                ON CONFLICT (tenant, name) DO NOTHING
                RETURNING {COLUMNS}
                """
            ),
            {
                "id": uuid.uuid4(),
                "tenant": tenant,
                "name": spec.name,
                "kind": spec.kind,
                "collection": spec.collection,
                "config": json.dumps(spec.config),
                "profiles": json.dumps(spec.profiles),
                "schedule": spec.schedule,
                "full_schedule": spec.full_schedule,
                "environments": list(spec.environments),
                "enabled": spec.enabled,
                "next_run_at": next_time(spec.schedule, now),
                "next_full_at": next_time(spec.full_schedule, now),
            },
        )
        .mappings()
        .first()
    )
    if row is None:
        raise Conflict(f"a source named {spec.name!r} exists; remove it first or pick another name")
    return record_of(row)


def list_sources(conn: sa.Connection, *, tenant: str | None = None) -> list[SourceRecord]:
    """The sources in the connection's scope (of ``tenant`` only, when given)."""
    rows = conn.execute(
        sa.text(
            f"SELECT {COLUMNS} FROM sources "
            "WHERE CAST(:tenant AS text) IS NULL OR tenant = :tenant ORDER BY tenant, name"
        ),
        {"tenant": tenant},
    ).mappings()
    return [record_of(row) for row in rows]


def get_source(conn: sa.Connection, ref: str | uuid.UUID) -> SourceRecord:
    """A source by id or by name (in the connection's tenant scope, or any tenant's when
    the connection is not scoped: the job runner's)."""
    try:
        source_id = ref if isinstance(ref, uuid.UUID) else uuid.UUID(ref)
    except ValueError:
        source_id = None
    if source_id is not None:
        row = (
            conn.execute(
                sa.text(f"SELECT {COLUMNS} FROM sources WHERE id = :id"), {"id": source_id}
            )
            .mappings()
            .first()
        )
    else:
        row = (
            conn.execute(
                sa.text(f"SELECT {COLUMNS} FROM sources WHERE name = :name"), {"name": str(ref)}
            )
            .mappings()
            .first()
        )
    if row is None:
        raise NotFound(f"no source {ref!r}; `ragline sources list` shows the configured ones")
    return record_of(row)


def delete_source(conn: sa.Connection, source_id: uuid.UUID) -> None:
    conn.execute(sa.text("DELETE FROM sources WHERE id = :id"), {"id": source_id})


def save_state(conn: sa.Connection, source_id: uuid.UUID, state: dict[str, Any]) -> None:
    conn.execute(
        sa.text(
            "UPDATE sources SET state = CAST(:state AS jsonb), updated_at = now() WHERE id = :id"
        ),
        {"id": source_id, "state": json.dumps(state, default=str)},
    )


def due_sources(conn: sa.Connection, *, env: str, now: dt.datetime) -> list[SourceRecord]:
    """The enabled sources of ``env`` due at ``now``, locked for the caller's
    transaction; sources another scheduler holds are skipped."""
    rows = conn.execute(
        sa.text(
            f"""
            SELECT {COLUMNS} FROM sources
            WHERE enabled AND :env = ANY(environments)
              AND (next_run_at <= :now OR next_full_at <= :now)
            ORDER BY least(next_run_at, next_full_at)
            FOR UPDATE SKIP LOCKED
            """
        ),
        {"env": env, "now": now},
    ).mappings()
    return [record_of(row) for row in rows]


def set_next_times(
    conn: sa.Connection,
    source_id: uuid.UUID,
    *,
    next_run: dt.datetime | None,
    next_full: dt.datetime | None,
) -> None:
    conn.execute(
        sa.text("UPDATE sources SET next_run_at = :run, next_full_at = :full WHERE id = :id"),
        {"id": source_id, "run": next_run, "full": next_full},
    )
