"""Sources as data: configured connectors with schedules and saved positions; sync
runs labelled with their source, job, trigger and mode.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-25
"""

from __future__ import annotations

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

APP_ROLE = "ragline_app"


def upgrade() -> None:
    # ``config`` names secrets by environment variable only; ``state`` is where an
    # incremental source got to (a watermark, a cursor), written after each run.
    op.execute(
        """
        CREATE TABLE sources (
            id           uuid PRIMARY KEY,
            tenant       text NOT NULL,
            name         text NOT NULL,
            kind         text NOT NULL,
            collection   text NOT NULL,
            config       jsonb NOT NULL DEFAULT '{}'::jsonb,
            profiles     jsonb NOT NULL DEFAULT '{}'::jsonb,
            schedule     text,
            full_schedule text,
            environments text[] NOT NULL,
            enabled      boolean NOT NULL DEFAULT true,
            state        jsonb NOT NULL DEFAULT '{}'::jsonb,
            next_run_at  timestamptz,
            next_full_at timestamptz,
            created_at   timestamptz NOT NULL DEFAULT now(),
            updated_at   timestamptz NOT NULL DEFAULT now(),
            UNIQUE (tenant, name)
        )
        """
    )
    op.execute("CREATE INDEX sources_due_idx ON sources (next_run_at) WHERE enabled")
    op.execute(
        """
        ALTER TABLE sync_runs
            ADD COLUMN source_id uuid REFERENCES sources (id) ON DELETE SET NULL,
            ADD COLUMN job_id uuid,
            ADD COLUMN trigger text NOT NULL DEFAULT 'manual',
            ADD COLUMN mode text NOT NULL DEFAULT 'full',
            ADD COLUMN embedding_calls integer NOT NULL DEFAULT 0
        """
    )
    op.execute(
        "CREATE INDEX sync_runs_source_idx ON sync_runs (source_id, started_at DESC) "
        "WHERE source_id IS NOT NULL"
    )
    op.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON sources TO {APP_ROLE}")
    op.execute("ALTER TABLE sources ENABLE ROW LEVEL SECURITY")
    op.execute(
        f"""
        CREATE POLICY tenant_isolation ON sources TO {APP_ROLE}
        USING (tenant = current_setting('ragline.tenant', true))
        WITH CHECK (tenant = current_setting('ragline.tenant', true))
        """
    )


def downgrade() -> None:
    op.execute("DROP INDEX IF EXISTS sync_runs_source_idx")
    op.execute(
        """
        ALTER TABLE sync_runs
            DROP COLUMN IF EXISTS source_id, DROP COLUMN IF EXISTS job_id,
            DROP COLUMN IF EXISTS trigger, DROP COLUMN IF EXISTS mode,
            DROP COLUMN IF EXISTS embedding_calls
        """
    )
    op.execute("DROP TABLE IF EXISTS sources")
