"""The service: API keys, uploads, durable jobs, rate-limit buckets, row-level security.

Tenant data (documents, chunks, postings, BM25 statistics, sync runs, uploads, jobs)
is guarded by row-level security for the role ``ragline_app``: a connection that has
switched to it (``ragline.db.tenancy.tenant_scope``) sees and writes the rows of the
tenant named in its ``ragline.tenant`` setting, and no others, whatever the query.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25
"""

from __future__ import annotations

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

APP_ROLE = "ragline_app"
TENANT_TABLES = ("documents", "chunks", "postings", "bm25_stats", "sync_runs", "uploads", "jobs")


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE api_keys (
            id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            tenant       text NOT NULL,
            role         text NOT NULL CHECK (role IN ('admin', 'writer', 'reader')),
            name         text NOT NULL DEFAULT '',
            prefix       text NOT NULL,
            key_hash     text NOT NULL UNIQUE,
            created_at   timestamptz NOT NULL DEFAULT now(),
            last_used_at timestamptz,
            revoked_at   timestamptz
        )
        """
    )
    op.execute(
        """
        CREATE TABLE uploads (
            id           uuid PRIMARY KEY,
            tenant       text NOT NULL,
            collection   text NOT NULL,
            filename     text NOT NULL,
            content_type text NOT NULL,
            size_bytes   bigint NOT NULL,
            sha256       text NOT NULL,
            storage_key  text NOT NULL,
            metadata     jsonb NOT NULL DEFAULT '{}'::jsonb,
            uploaded_by  bigint REFERENCES api_keys (id) ON DELETE SET NULL,
            status       text NOT NULL
                         CHECK (status IN ('queued', 'indexing', 'indexed', 'failed', 'deleted')),
            error        text,
            job_id       uuid,
            created_at   timestamptz NOT NULL DEFAULT now(),
            updated_at   timestamptz NOT NULL DEFAULT now()
        )
        """
    )
    op.execute("CREATE INDEX uploads_recent_idx ON uploads (tenant, created_at DESC)")
    op.execute(
        """
        CREATE TABLE jobs (
            id           uuid PRIMARY KEY,
            tenant       text NOT NULL,
            kind         text NOT NULL,
            queue        text NOT NULL,
            payload      jsonb NOT NULL DEFAULT '{}'::jsonb,
            status       text NOT NULL
                         CHECK (status IN ('queued', 'running', 'succeeded', 'failed',
                                           'retrying')),
            progress     real NOT NULL DEFAULT 0,
            attempts     integer NOT NULL DEFAULT 0,
            max_attempts integer NOT NULL,
            error        text,
            result       jsonb,
            worker       text,
            run_after    timestamptz NOT NULL DEFAULT now(),
            heartbeat_at timestamptz,
            created_at   timestamptz NOT NULL DEFAULT now(),
            started_at   timestamptz,
            finished_at  timestamptz,
            updated_at   timestamptz NOT NULL DEFAULT now()
        )
        """
    )
    op.execute(
        "CREATE INDEX jobs_due_idx ON jobs (run_after) "
        "WHERE status IN ('queued', 'retrying', 'running')"
    )
    op.execute("CREATE INDEX jobs_recent_idx ON jobs (tenant, created_at DESC)")
    op.execute(
        """
        CREATE TABLE rate_buckets (
            key        text PRIMARY KEY,
            tokens     double precision NOT NULL,
            updated_at timestamptz NOT NULL
        )
        """
    )

    op.execute(
        f"""
        DO $$
        BEGIN
            IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{APP_ROLE}') THEN
                CREATE ROLE {APP_ROLE} NOLOGIN;
            END IF;
            IF NOT (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) THEN
                EXECUTE format('GRANT {APP_ROLE} TO %I', current_user);
            END IF;
        END
        $$
        """
    )
    op.execute(f"GRANT USAGE ON SCHEMA public TO {APP_ROLE}")
    op.execute(f"GRANT SELECT ON index_meta TO {APP_ROLE}")
    op.execute(f"GRANT SELECT, INSERT ON embedding_cache TO {APP_ROLE}")
    for table in TENANT_TABLES:
        op.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON {table} TO {APP_ROLE}")
        op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
        op.execute(
            f"""
            CREATE POLICY tenant_isolation ON {table} TO {APP_ROLE}
            USING (tenant = current_setting('ragline.tenant', true))
            WITH CHECK (tenant = current_setting('ragline.tenant', true))
            """
        )
    op.execute(f"GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO {APP_ROLE}")
    # Dense search sizes its HNSW search by the filter's share of the whole index,
    # which spans every tenant: this count is all a tenant scope may learn of the rest.
    op.execute(
        """
        CREATE FUNCTION ragline_index_size() RETURNS bigint
        LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public
        AS $$ SELECT coalesce(sum(chunks), 0)::bigint FROM bm25_stats $$
        """
    )


def downgrade() -> None:
    op.execute("DROP FUNCTION IF EXISTS ragline_index_size()")
    for table in TENANT_TABLES:
        op.execute(f"DROP POLICY IF EXISTS tenant_isolation ON {table}")
        op.execute(f"ALTER TABLE {table} DISABLE ROW LEVEL SECURITY")
    op.execute(f"REVOKE ALL ON ALL TABLES IN SCHEMA public FROM {APP_ROLE}")
    op.execute(f"REVOKE ALL ON ALL SEQUENCES IN SCHEMA public FROM {APP_ROLE}")
    op.execute(f"REVOKE USAGE ON SCHEMA public FROM {APP_ROLE}")
    for table in ("rate_buckets", "jobs", "uploads", "api_keys"):
        op.execute(f"DROP TABLE IF EXISTS {table}")
