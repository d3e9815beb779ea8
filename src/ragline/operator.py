"""What only the operator decides: each tenant's policy, and reading the audit log.

    operator = Principal.operator("acme")           # the command line on the host
    change_policy(engine, operator, "acme", lambda p: p.model_copy(update={"redact_pii": True}))
    tenant_policy(engine, admin_principal)          # an admin reads its own tenant's
    audit_events(engine, operator, tenant="acme", action="key.")

Policies set are written to the audit log in the transaction that sets them.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import re
from collections.abc import Callable

from sqlalchemy.engine import Engine

from ragline import audit
from ragline.audit import AuditEvent
from ragline.auth import Principal
from ragline.db.locks import xact_lock
from ragline.db.tenancy import tenant_scope
from ragline.errors import ConfigurationError
from ragline.tenants import TenantPolicy, get_policy, list_policies, set_policy

_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


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
