"""API keys and the roles of those who hold them.

    key = create_key(engine, tenant="acme", role="writer", name="ci")   # shown once
    principal = authenticate(engine, key.secret)    # Principal(tenant="acme", ...)
    principal.require("writer")                     # raises Forbidden for readers
    operator = Principal.operator("acme")           # the command line on the host

A key is ``rl_`` followed by 43 url-safe characters (256 random bits), so a plain
SHA-256 of it is a safe stored form; a password hash would only slow down requests.
The tenant of a request is the tenant of its key: nothing in a request can change it.

A tenant's ``admin`` configures that tenant's sources within its policy; the
``operator`` (the command line on the service's machine, or an operator key, which
only the command line can create) runs the service, sets each tenant's policy and
reads the audit log (``ragline.operator``). Keys created and revoked are written to
the audit log in the transaction that does them.
"""

from __future__ import annotations

import datetime as dt
import getpass
import hashlib
import secrets
from dataclasses import dataclass
from typing import Literal

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from ragline import audit
from ragline.errors import AuthError, Forbidden, NotFound

Role = Literal["operator", "admin", "writer", "reader"]
# Each can do what those before can. An admin configures its tenant within what the
# operator allows; the operator runs the service and decides that allowance.
ROLES: tuple[Role, ...] = ("reader", "writer", "admin", "operator")
KEY_PREFIX = "rl_"


def _os_user() -> str | None:
    try:
        return getpass.getuser()
    except (OSError, KeyError):  # no user name in this process's environment
        return None


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: the tenant and role of their key (or the command line's)."""

    tenant: str
    role: Role
    key_id: int | None
    user: str | None = None  # the OS user of the command line

    @classmethod
    def operator(cls, tenant: str, user: str | None = None) -> Principal:
        """Whoever runs the command line on the service's machine: the operator, acting
        in ``tenant`` (RAGLINE_TENANT), with no key; ``user`` defaults to the OS user."""
        return cls(tenant=tenant, role="operator", key_id=None, user=user or _os_user())

    @property
    def actor(self) -> str:
        """Who this is in the audit log: ``key:<id>``, ``cli:<os user>`` (or ``cli``)
        for the command line, ``anonymous`` for a service that requires no key."""
        if self.key_id is not None:
            return f"key:{self.key_id}"
        if self.role != "operator":
            return "anonymous"
        return f"cli:{self.user}" if self.user else "cli"

    def can(self, role: Role) -> bool:
        return ROLES.index(self.role) >= ROLES.index(role)

    def require(self, role: Role) -> None:
        if not self.can(role):
            if role == "operator":
                raise Forbidden(
                    f"this is the operator's to do, and this API key has the {self.role} "
                    "role; ask whoever runs the service (the command line on its host, "
                    "or an operator key)"
                )
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


def create_key(
    engine: Engine, *, tenant: str, role: Role, name: str = "", by: Principal | None = None
) -> NewKey:
    """A new key of ``role`` for ``tenant``, made by ``by`` (the command line's operator
    when not given). Nobody mints a key above their own role, an admin only for its
    own tenant, and an operator key only from the command line."""
    if role not in ROLES:
        raise ValueError(f"role must be one of {', '.join(ROLES)}")
    if not tenant.strip():
        raise ValueError("the tenant cannot be empty")
    by = by or Principal.operator(tenant)
    by.require("admin")
    if role == "operator" and (by.role != "operator" or by.key_id is not None):
        raise Forbidden(
            "operator keys are created only on the service's host: "
            "`ragline keys create --role operator --tenant T`"
        )
    if not by.can(role) or (not by.can("operator") and by.tenant != tenant):
        raise Forbidden(f"a {by.role} cannot create a {role} key for tenant {tenant!r}")
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
        audit.record(
            conn,
            tenant=tenant,
            actor=by.actor,
            action="key.create",
            target=str(key_id),
            details={"role": role, "name": name, "prefix": secret[:10]},
        )
    return NewKey(key_id, tenant, role, name, secret)


def list_keys(engine: Engine, tenant: str | None = None) -> list[KeyInfo]:
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text(
                "SELECT id, tenant, role, name, prefix, created_at, last_used_at, revoked_at "
                "FROM api_keys WHERE CAST(:tenant AS text) IS NULL OR tenant = :tenant "
                "ORDER BY id"
            ),
            {"tenant": tenant},
        ).mappings()
        return [KeyInfo(**row) for row in rows]


def revoke_key(engine: Engine, key_id: int, *, by: Principal | None = None) -> None:
    """Revoke a key (``by`` the command line's operator when not given; an admin may
    revoke only keys of its own tenant that are not the operator's)."""
    with engine.begin() as conn:
        row = conn.execute(
            sa.text(
                "UPDATE api_keys SET revoked_at = coalesce(revoked_at, now()) "
                "WHERE id = :id RETURNING tenant, role, name"
            ),
            {"id": key_id},
        ).first()
        if row is None:
            raise NotFound(f"no API key with id {key_id}; `ragline keys list` shows them")
        by = by or Principal.operator(row.tenant)
        by.require("admin")
        if not by.can("operator") and (by.tenant != row.tenant or row.role == "operator"):
            raise NotFound(f"no API key with id {key_id}")
        audit.record(
            conn,
            tenant=row.tenant,
            actor=by.actor,
            action="key.revoke",
            target=str(key_id),
            details={"role": row.role, "name": row.name},
        )


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
