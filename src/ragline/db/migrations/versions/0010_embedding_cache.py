"""The embedding cache per tenant: a tenant finds only the vectors of texts it
embedded itself, so how much a run embeds says nothing about other tenants.

Entries of the shared cache are kept for each tenant that holds their text.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-01
"""

from __future__ import annotations

from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

APP_ROLE = "ragline_app"


def upgrade() -> None:
    op.execute("ALTER TABLE embedding_cache RENAME TO embedding_cache_shared")
    op.execute(
        "ALTER TABLE embedding_cache_shared RENAME CONSTRAINT embedding_cache_pkey "
        "TO embedding_cache_shared_pkey"
    )
    op.execute(
        """
        CREATE TABLE embedding_cache (
            tenant     text NOT NULL,
            model      text NOT NULL,
            sha256     text NOT NULL,
            embedding  vector NOT NULL,
            created_at timestamptz NOT NULL DEFAULT now(),
            PRIMARY KEY (tenant, model, sha256)
        )
        """
    )
    op.execute(
        """
        INSERT INTO embedding_cache (tenant, model, sha256, embedding, created_at)
        SELECT DISTINCT ON (c.tenant, e.model, e.sha256)
               c.tenant, e.model, e.sha256, e.embedding, e.created_at
        FROM embedding_cache_shared e JOIN chunks c ON c.sha256 = e.sha256
        """
    )
    op.execute("DROP TABLE embedding_cache_shared")
    op.execute(f"GRANT SELECT, INSERT ON embedding_cache TO {APP_ROLE}")
    op.execute("ALTER TABLE embedding_cache ENABLE ROW LEVEL SECURITY")
    op.execute(
        f"""
        CREATE POLICY tenant_isolation ON embedding_cache TO {APP_ROLE}
        USING (tenant = current_setting('ragline.tenant', true))
        WITH CHECK (tenant = current_setting('ragline.tenant', true))
        """
    )


def downgrade() -> None:
    op.execute("ALTER TABLE embedding_cache RENAME TO embedding_cache_tenants")
    op.execute(
        "ALTER TABLE embedding_cache_tenants RENAME CONSTRAINT embedding_cache_pkey "
        "TO embedding_cache_tenants_pkey"
    )
    op.execute(
        """
        CREATE TABLE embedding_cache (
            model      text NOT NULL,
            sha256     text NOT NULL,
            embedding  vector NOT NULL,
            created_at timestamptz NOT NULL DEFAULT now(),
            PRIMARY KEY (model, sha256)
        )
        """
    )
    op.execute(
        """
        INSERT INTO embedding_cache (model, sha256, embedding, created_at)
        SELECT DISTINCT ON (model, sha256) model, sha256, embedding, created_at
        FROM embedding_cache_tenants ORDER BY model, sha256, created_at
        """
    )
    op.execute("DROP TABLE embedding_cache_tenants")
    op.execute(f"GRANT SELECT, INSERT ON embedding_cache TO {APP_ROLE}")
