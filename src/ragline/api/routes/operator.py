"""The operator's routes: each tenant's policy and the audit log (an operator key);
and, for a tenant's admin, its own tenant's policy, so that it knows what it may
configure. The rules are ``ragline.auth``'s, which the command line uses too::

    PUT /v1/operator/tenants/acme/policy  {"allowance": {"env": ["CRM_DB_URL"]}}
    GET /v1/operator/audit?tenant=acme&action=source.&limit=50
    GET /v1/policy                        (a tenant's admin: its own policy)
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query
from pydantic import BaseModel

from ragline.api.deps import AdminDep, OperatorDep, ServicesDep
from ragline.errors import ConfigurationError
from ragline.operator import audit_events, change_policy, tenant_policies, tenant_policy
from ragline.sources.registry import KIND_NAMES
from ragline.tenants import TenantPolicy

router = APIRouter(tags=["operator"])

TenantPath = Annotated[
    str, Path(min_length=1, max_length=200, pattern=r"^[^\x00-\x1f]+$", description="A tenant.")
]


class TenantPolicies(BaseModel):
    tenants: dict[str, TenantPolicy]


class AuditEventOut(BaseModel):
    id: int
    at: dt.datetime
    tenant: str | None
    actor: str
    action: str
    target: str
    details: dict[str, Any]


class AuditLog(BaseModel):
    events: list[AuditEventOut]


@router.get("/v1/operator/tenants", response_model=TenantPolicies)
def tenants(principal: OperatorDep, services: ServicesDep) -> TenantPolicies:
    """Every tenant whose policy the operator set, with that policy (operator)."""
    return TenantPolicies(tenants=tenant_policies(services.engine, principal))


@router.get("/v1/operator/tenants/{tenant}/policy", response_model=TenantPolicy)
def get_policy(tenant: TenantPath, principal: OperatorDep, services: ServicesDep) -> TenantPolicy:
    """A tenant's policy; the defaults when none was set (operator)."""
    return tenant_policy(services.engine, principal, tenant)


@router.put("/v1/operator/tenants/{tenant}/policy", response_model=TenantPolicy)
def put_policy(
    tenant: TenantPath, policy: TenantPolicy, principal: OperatorDep, services: ServicesDep
) -> TenantPolicy:
    """Set a tenant's policy whole (operator); the change is written to the audit log
    with the policy before and after."""
    unknown = set(policy.allowance.kinds) - set(KIND_NAMES)
    if unknown:
        raise ConfigurationError(
            f"unknown kinds of source: {', '.join(sorted(unknown))}; "
            f"choose among {', '.join(KIND_NAMES)}"
        )
    return change_policy(services.engine, principal, tenant, lambda _: policy)


@router.get("/v1/operator/audit", response_model=AuditLog)
def audit(
    principal: OperatorDep,
    services: ServicesDep,
    tenant: Annotated[str | None, Query(max_length=200)] = None,
    action: Annotated[
        str | None, Query(max_length=100, description="A name, or a prefix ending in '.'.")
    ] = None,
    since: dt.datetime | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> AuditLog:
    """Administrative actions, newest first (operator)."""
    found = audit_events(
        services.engine, principal, tenant=tenant, action=action, since=since, limit=limit
    )
    return AuditLog(events=[AuditEventOut(**dataclasses.asdict(event)) for event in found])


@router.get("/v1/policy", response_model=TenantPolicy)
def own_policy(principal: AdminDep, services: ServicesDep) -> TenantPolicy:
    """The caller's tenant's policy: what its sources may reach (admin)."""
    return tenant_policy(services.engine, principal)
