"""Least privilege: the service's role is bound by row-level security, not exempt.

``ragline_app`` (which the service's login role is a member of) gets DML on the tables
the service uses and nothing else: no TRUNCATE, no DDL, no change to the schema
history or the index's metadata, and only SELECT and INSERT on ``audit_log``. The
keys and the rate buckets are read before a tenant is known: only the system scope
sees them. Every
table with a tenant policy also accepts the system scope (``ragline.scope = 'all'``),
the deliberate cross-tenant scope of ``ragline.db.tenancy``; the operator's tables
(``tenant_policies``, ``audit_log``) are written or read across tenants only there.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

APP_ROLE = "ragline_app"
SYSTEM = "current_setting('ragline.scope', true) = 'all'"
READ_ONLY = ("alembic_version", "index_meta")
SYSTEM_ONLY = ("api_keys", "rate_buckets")  # looked up before any tenant is known


def upgrade() -> None:
    op.execute(f"REVOKE ALL ON ALL TABLES IN SCHEMA public FROM {APP_ROLE}")
    op.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {APP_ROLE}")
    for table in READ_ONLY:
        op.execute(f"REVOKE INSERT, UPDATE, DELETE ON {table} FROM {APP_ROLE}")
    op.execute(f"REVOKE UPDATE, DELETE ON audit_log FROM {APP_ROLE}")
    op.execute(f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {APP_ROLE}")
    op.execute(f"REVOKE CREATE ON SCHEMA public FROM {APP_ROLE}")

    tenant_tables = (
        op.get_bind()
        .execute(
            sa.text(
                "SELECT tablename FROM pg_policies WHERE schemaname = 'public' "
                "AND policyname = 'tenant_isolation' AND cmd = 'ALL' ORDER BY tablename"
            )
        )
        .scalars()
        .all()
    )
    for table in tenant_tables:
        op.execute(
            f"CREATE POLICY system_scope ON {table} TO {APP_ROLE} USING ({SYSTEM}) "
            f"WITH CHECK ({SYSTEM})"
        )
    for table in SYSTEM_ONLY:
        op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
        op.execute(
            f"CREATE POLICY system_scope ON {table} TO {APP_ROLE} USING ({SYSTEM}) "
            f"WITH CHECK ({SYSTEM})"
        )
    # The operator sets policies in the system scope; a tenant only reads its own.
    op.execute(
        f"CREATE POLICY system_scope ON tenant_policies TO {APP_ROLE} USING ({SYSTEM}) "
        f"WITH CHECK ({SYSTEM})"
    )
    # Appended to in a tenant's scope or the system's; read in the system scope only.
    op.execute(f"CREATE POLICY system_read ON audit_log FOR SELECT TO {APP_ROLE} USING ({SYSTEM})")
    op.execute(
        f"CREATE POLICY system_append ON audit_log FOR INSERT TO {APP_ROLE} WITH CHECK ({SYSTEM})"
    )


def downgrade() -> None:
    op.execute("DROP POLICY IF EXISTS system_append ON audit_log")
    op.execute("DROP POLICY IF EXISTS system_read ON audit_log")
    for (table,) in op.get_bind().execute(
        sa.text("SELECT tablename FROM pg_policies WHERE policyname = 'system_scope'")
    ):
        op.execute(f"DROP POLICY system_scope ON {table}")
    for table in SYSTEM_ONLY:
        op.execute(f"ALTER TABLE {table} DISABLE ROW LEVEL SECURITY")
    op.execute(f"REVOKE SELECT ON audit_log FROM {APP_ROLE}")
    op.execute(f"REVOKE INSERT, UPDATE, DELETE ON tenant_policies FROM {APP_ROLE}")
