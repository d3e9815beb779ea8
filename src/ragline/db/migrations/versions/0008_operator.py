"""The operator's side: each tenant's policy (what its sources may reach, whether
passages are redacted before a remote model sees them) and the audit log of
administrative actions.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01
"""

from __future__ import annotations

from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

APP_ROLE = "ragline_app"


def upgrade() -> None:
    # Keys may now belong to the operator, above a tenant's admin.
    op.execute(
        "ALTER TABLE api_keys DROP CONSTRAINT api_keys_role_check, ADD CONSTRAINT "
        "api_keys_role_check CHECK (role IN ('operator', 'admin', 'writer', 'reader'))"
    )
    op.execute(
        """
        CREATE TABLE tenant_policies (
            tenant     text PRIMARY KEY,
            allowance  jsonb NOT NULL DEFAULT '{}'::jsonb,
            redact_pii boolean,
            updated_at timestamptz NOT NULL DEFAULT now(),
            updated_by text NOT NULL DEFAULT ''
        )
        """
    )
    # A tenant reads its own policy; only the operator (the owner's connection) writes.
    op.execute(f"GRANT SELECT ON tenant_policies TO {APP_ROLE}")
    op.execute("ALTER TABLE tenant_policies ENABLE ROW LEVEL SECURITY")
    op.execute(
        f"""
        CREATE POLICY tenant_isolation ON tenant_policies FOR SELECT TO {APP_ROLE}
        USING (tenant = current_setting('ragline.tenant', true))
        """
    )
    op.execute(
        """
        CREATE TABLE audit_log (
            id      bigserial PRIMARY KEY,
            at      timestamptz NOT NULL DEFAULT now(),
            tenant  text,
            actor   text NOT NULL,
            action  text NOT NULL,
            target  text NOT NULL DEFAULT '',
            details jsonb NOT NULL DEFAULT '{}'::jsonb
        )
        """
    )
    op.execute("CREATE INDEX audit_log_tenant_idx ON audit_log (tenant, at DESC)")
    # Appended to inside a tenant's scope, read by the operator only, never changed.
    op.execute(f"GRANT INSERT ON audit_log TO {APP_ROLE}")
    op.execute(f"GRANT USAGE ON SEQUENCE audit_log_id_seq TO {APP_ROLE}")
    op.execute("ALTER TABLE audit_log ENABLE ROW LEVEL SECURITY")
    op.execute(
        f"""
        CREATE POLICY tenant_append ON audit_log FOR INSERT TO {APP_ROLE}
        WITH CHECK (tenant = current_setting('ragline.tenant', true))
        """
    )


def downgrade() -> None:
    op.execute("DROP TABLE IF EXISTS audit_log")
    op.execute("DROP TABLE IF EXISTS tenant_policies")
    op.execute("DELETE FROM api_keys WHERE role = 'operator'")
    op.execute(
        "ALTER TABLE api_keys DROP CONSTRAINT api_keys_role_check, ADD CONSTRAINT "
        "api_keys_role_check CHECK (role IN ('admin', 'writer', 'reader'))"
    )
