"""API keys: created for a tenant and a role, stored hashed, checked on every request.

    key = create_key(engine, tenant="acme", role="writer", name="ci")   # shown once
    principal = authenticate(engine, key.secret)    # Principal(tenant="acme", ...)
    principal.require("writer")                     # raises Forbidden for readers

A key is ``rl_`` followed by 43 url-safe characters (256 random bits), so a plain
SHA-256 of it is a safe stored form; a password hash would only slow down requests.
The tenant of a request is the tenant of its key: nothing in a request can change it.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from dataclasses import dataclass
from typing import Literal

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from ragline.errors import AuthError, Forbidden, NotFound

Role = Literal["operator", "admin", "writer", "reader"]
# Each can do what those before can. An admin configures its tenant within what the
# operator allows; the operator runs the service and decides that allowance.
ROLES: tuple[Role, ...] = ("reader", "writer", "admin", "operator")
KEY_PREFIX = "rl_"


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: the tenant and role of their key."""

    tenant: str
    role: Role
    key_id: int | None

    @classmethod
    def operator(cls, tenant: str) -> Principal:
        """Whoever runs the command line on the service's machine: the operator, acting
        in ``tenant`` (RAGLINE_TENANT), with no key."""
        return cls(tenant=tenant, role="operator", key_id=None)

    @property
    def actor(self) -> str:
        """Who this is in the audit log: ``key:<id>``, or ``cli`` / ``anonymous``
        for the command line and a service that requires no key."""
        if self.key_id is not None:
            return f"key:{self.key_id}"
        return "cli" if self.role == "operator" else "anonymous"

    def can(self, role: Role) -> bool:
        return ROLES.index(self.role) >= ROLES.index(role)

    def require(self, role: Role) -> None:
        if not self.can(role):
            raise Forbidden(f"this API key has the {self.role} role; this needs {role} or above")


@dataclass(frozen=True, slots=True)
class NewKey:
    id: int
    tenant: str
    role: Role
    name: str
    secret: str


@dataclass(frozen=True, slots=True)
class KeyInfo:
    id: int
    tenant: str
    role: Role
    name: str
    prefix: str
    created_at: dt.datetime
    last_used_at: dt.datetime | None
    revoked_at: dt.datetime | None


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def create_key(engine: Engine, *, tenant: str, role: Role, name: str = "") -> NewKey:
    if role not in ROLES:
        raise ValueError(f"role must be one of {', '.join(ROLES)}")
    if not tenant.strip():
        raise ValueError("the tenant cannot be empty")
    secret = KEY_PREFIX + secrets.token_urlsafe(32)
    with engine.begin() as conn:
        key_id: int = conn.execute(
            sa.text(
                "INSERT INTO api_keys (tenant, role, name, prefix, key_hash) "
                "VALUES (:tenant, :role, :name, :prefix, :hash) RETURNING id"
            ),
            {
                "tenant": tenant,
                "role": role,
                "name": name,
                "prefix": secret[:10],
                "hash": _hash(secret),
            },
        ).scalar_one()
    return NewKey(key_id, tenant, role, name, secret)


def list_keys(engine: Engine, tenant: str | None = None) -> list[KeyInfo]:
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text(
                "SELECT id, tenant, role, name, prefix, created_at, last_used_at, revoked_at "
                "FROM api_keys WHERE :tenant IS NULL OR tenant = :tenant ORDER BY id"
            ),
            {"tenant": tenant},
        ).mappings()
        return [KeyInfo(**row) for row in rows]


def revoke_key(engine: Engine, key_id: int) -> None:
    with engine.begin() as conn:
        found = conn.execute(
            sa.text(
                "UPDATE api_keys SET revoked_at = coalesce(revoked_at, now()) "
                "WHERE id = :id RETURNING id"
            ),
            {"id": key_id},
        ).scalar()
    if found is None:
        raise NotFound(f"no API key with id {key_id}")


def authenticate(engine: Engine, secret: str | None) -> Principal:
    """The principal of an API key; AuthError for a missing, unknown or revoked key."""
    if not secret:
        raise AuthError("missing API key: send it as 'Authorization: Bearer <key>'")
    with engine.begin() as conn:
        row = conn.execute(
            sa.text(
                "SELECT id, tenant, role, last_used_at < now() - interval '1 minute' AS stale "
                "FROM api_keys WHERE key_hash = :hash AND revoked_at IS NULL"
            ),
            {"hash": _hash(secret)},
        ).first()
        if row is not None and row.stale is not False:  # stamped at most once a minute
            conn.execute(
                sa.text("UPDATE api_keys SET last_used_at = now() WHERE id = :id"), {"id": row.id}
            )
    if row is None:
        raise AuthError("invalid or revoked API key")
    return Principal(tenant=row.tenant, role=row.role, key_id=row.id)
