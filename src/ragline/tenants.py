"""Each tenant's policy, set by the operator: what its sources may reach, and whether
passages and questions are redacted before a remote model sees them. The one module
that holds the SQL of ``tenant_policies``::

    with engine.begin() as conn:
        policy = get_policy(conn, "acme")          # the defaults when none was set
        set_policy(conn, "acme", policy.model_copy(update={"redact_pii": True}),
                   actor="cli:alice")
"""

from __future__ import annotations

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict, Field

from ragline.reach import Allowance


class TenantPolicy(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    allowance: Allowance = Field(default_factory=Allowance)
    redact_pii: bool | None = Field(
        default=None,
        description="Redact personal data before a remote model sees it (None: "
        "RAGLINE_PII_REDACTION decides).",
    )


def get_policy(conn: sa.Connection, tenant: str) -> TenantPolicy:
    """``tenant``'s policy; the defaults when the operator never set one."""
    row = conn.execute(
        sa.text("SELECT allowance, redact_pii FROM tenant_policies WHERE tenant = :tenant"),
        {"tenant": tenant},
    ).first()
    if row is None:
        return TenantPolicy()
    return TenantPolicy(
        allowance=Allowance.model_validate(row.allowance), redact_pii=row.redact_pii
    )


def set_policy(conn: sa.Connection, tenant: str, policy: TenantPolicy, *, actor: str) -> None:
    conn.execute(
        sa.text(
            """
            INSERT INTO tenant_policies (tenant, allowance, redact_pii, updated_by)
            VALUES (:tenant, CAST(:allowance AS jsonb), :redact_pii, :actor)
            ON CONFLICT (tenant) DO UPDATE SET allowance = excluded.allowance,
                redact_pii = excluded.redact_pii, updated_at = now(),
                updated_by = excluded.updated_by
            """
        ),
        {
            "tenant": tenant,
            "allowance": policy.allowance.model_dump_json(),
            "redact_pii": policy.redact_pii,
            "actor": actor,
        },
    )


def list_policies(conn: sa.Connection) -> dict[str, TenantPolicy]:
    """Every tenant's policy that the operator set, by tenant."""
    rows = conn.execute(
        sa.text("SELECT tenant, allowance, redact_pii FROM tenant_policies ORDER BY tenant")
    )
    return {
        row.tenant: TenantPolicy(
            allowance=Allowance.model_validate(row.allowance), redact_pii=row.redact_pii
        )
        for row in rows
    }
