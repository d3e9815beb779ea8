"""API keys, the two kinds of administrator, and what only the operator may do.

    key = create_key(engine, tenant="acme", role="writer", name="ci")   # shown once
    principal = authenticate(engine, key.secret)    # Principal(tenant="acme", ...)
    principal.require("writer")                     # raises Forbidden for readers

    operator = Principal.operator("acme")           # the command line on the host
    change_policy(engine, operator, "acme", lambda p: p.model_copy(update={"redact_pii": True}))
    audit_events(engine, operator, tenant="acme", action="key.")

A key is ``rl_`` followed by 43 url-safe characters (256 random bits), so a plain
SHA-256 of it is a safe stored form; a password hash would only slow down requests.
The tenant of a request is the tenant of its key: nothing in a request can change it.

A tenant's ``admin`` configures that tenant's sources within its policy; the
``operator`` (the command line on the service's machine, or an operator key, which
only the command line can create) runs the service, sets each tenant's policy and
reads the audit log. Keys created and revoked, and policies set, are written to the
audit log in the transaction that does them.
"""

from __future__ import annotations

import datetime as dt
import getpass
import hashlib
import ipaddress
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from ragline import audit
from ragline.audit import AuditEvent
from ragline.db.locks import xact_lock
from ragline.db.tenancy import tenant_scope
from ragline.errors import AuthError, ConfigurationError, Forbidden, NotFound
from ragline.tenants import TenantPolicy, get_policy, list_policies, set_policy

Role = Literal["operator", "admin", "writer", "reader"]
# Each can do what those before can. An admin configures its tenant within what the
# operator allows; the operator runs the service and decides that allowance.
ROLES: tuple[Role, ...] = ("reader", "writer", "admin", "operator")
KEY_PREFIX = "rl_"
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


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


# -- each tenant's policy, and the audit log: the operator's ------------------------------


def tenant_policy(engine: Engine, principal: Principal, tenant: str | None = None) -> TenantPolicy:
    """``tenant``'s policy (the caller's own when not given). The operator reads any
    tenant's; an admin its own tenant's only, to know what it may configure."""
    tenant = tenant or principal.tenant
    if tenant != principal.tenant:
        principal.require("operator")
    principal.require("admin")
    if principal.can("operator"):
        with engine.connect() as conn:
            return get_policy(conn, tenant)
    with tenant_scope(engine, tenant) as conn:
        return get_policy(conn, tenant)


def tenant_policies(engine: Engine, principal: Principal) -> dict[str, TenantPolicy]:
    """Every tenant whose policy the operator set, with that policy (operator)."""
    principal.require("operator")
    with engine.connect() as conn:
        return list_policies(conn)


def change_policy(
    engine: Engine,
    principal: Principal,
    tenant: str,
    change: Callable[[TenantPolicy], TenantPolicy],
) -> TenantPolicy:
    """Set ``tenant``'s policy to ``change(current policy)`` (operator), in one
    transaction with its audit event (``policy.set``, the policy before and after)."""
    principal.require("operator")
    if not tenant.strip():
        raise ConfigurationError("a policy needs a tenant")
    with engine.begin() as conn:
        xact_lock(conn, f"policy:{tenant}")
        before = get_policy(conn, tenant)
        after = change(before)
        check_policy(after)
        set_policy(conn, tenant, after, actor=principal.actor)
        audit.record(
            conn,
            tenant=tenant,
            actor=principal.actor,
            action="policy.set",
            target=tenant,
            details={
                "before": before.model_dump(mode="json"),
                "after": after.model_dump(mode="json"),
            },
        )
    return after


def check_policy(policy: TenantPolicy) -> None:
    """ConfigurationError for a policy that cannot mean what its author meant: an
    environment variable name that is not one, or one of ragline's own; a network
    that is not an address block."""
    allowance = policy.allowance
    for name in allowance.env:
        if not _ENV_NAME.fullmatch(name):
            raise ConfigurationError(f"{name!r} is not an environment variable name")
        if name.upper().startswith("RAGLINE_"):
            raise ConfigurationError(
                f"{name} is one of ragline's own settings: a source may never read it; "
                "give the source a variable of its own"
            )
    for network in allowance.networks:
        try:
            ipaddress.ip_network(network, strict=False)
        except ValueError as e:
            raise ConfigurationError(
                f"{network!r} is not an address block; write it as '10.20.0.0/16'"
            ) from e


def audit_events(
    engine: Engine,
    principal: Principal,
    *,
    tenant: str | None = None,
    action: str | None = None,
    since: dt.datetime | None = None,
    limit: int = 100,
) -> list[AuditEvent]:
    """The audit log, newest first (operator)."""
    principal.require("operator")
    with engine.connect() as conn:
        return audit.events(conn, tenant=tenant, action=action, since=since, limit=limit)
