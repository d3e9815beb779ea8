"""Documents with their ledger, chunks with vectors and full text, embedding cache, sync runs.

Revision ID: 0001
Revises:
Create Date: 2026-11-25
"""

from __future__ import annotations

from alembic import context, op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    attributes = context.config.attributes
    model = str(attributes["embedding_model"])
    dim = int(attributes["embedding_dim"])

    op.execute("CREATE EXTENSION IF NOT EXISTS vector")
    op.execute(
        """
        CREATE TABLE index_meta (
            key   text PRIMARY KEY,
            value text NOT NULL
        )
        """
    )
    op.get_bind().exec_driver_sql(
        "INSERT INTO index_meta (key, value) VALUES ('embedding_model', %s), ('embedding_dim', %s)",
        (model, str(dim)),
    )

    # One row per document a source has ever shown us: its identity, what we indexed
    # from it (the ledger) and its state. Failed and deleted documents keep their row.
    op.execute(
        """
        CREATE TABLE documents (
            id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            tenant           text NOT NULL,
            collection       text NOT NULL,
            doc_id           text NOT NULL,
            source           text NOT NULL,
            doc_type         text,
            title            text,
            uri              text,
            doc_date         date,
            metadata         jsonb NOT NULL DEFAULT '{}'::jsonb,
            sha256           text,
            etag             text,
            source_modified  timestamptz,
            size_bytes       bigint,
            embedding_model  text,
            pipeline_version text,
            chunk_count      integer NOT NULL DEFAULT 0,
            status           text NOT NULL
                             CHECK (status IN ('active', 'deleted', 'failed')),
            last_error       text,
            warnings         jsonb NOT NULL DEFAULT '[]'::jsonb,
            first_seen_at    timestamptz NOT NULL DEFAULT now(),
            last_synced_at   timestamptz NOT NULL DEFAULT now(),
            UNIQUE (tenant, collection, doc_id)
        )
        """
    )
    op.execute(
        "CREATE INDEX documents_source_idx ON documents (tenant, collection, source, status)"
    )
    op.execute(
        "CREATE INDEX documents_metadata_idx ON documents USING gin (metadata jsonb_path_ops)"
    )

    # Filter columns are copied from the document so that every search filter is a
    # plain column test next to the vector and full-text indexes.
    op.execute(
        f"""
        CREATE TABLE chunks (
            id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            document_id  bigint NOT NULL REFERENCES documents (id) ON DELETE CASCADE,
            tenant       text NOT NULL,
            collection   text NOT NULL,
            source       text NOT NULL,
            doc_type     text,
            doc_date     date,
            ordinal      integer NOT NULL,
            section      text NOT NULL DEFAULT '',
            page         integer,
            text         text NOT NULL,
            token_count  integer NOT NULL,
            sha256       text NOT NULL,
            embedding    vector({dim}) NOT NULL,
            tsv          tsvector GENERATED ALWAYS AS
                         (to_tsvector('english'::regconfig, section || ' ' || text)) STORED,
            UNIQUE (document_id, ordinal)
        )
        """
    )
    op.execute(
        "CREATE INDEX chunks_embedding_idx ON chunks "
        "USING hnsw (embedding vector_cosine_ops) WITH (m = 16, ef_construction = 64)"
    )
    op.execute("CREATE INDEX chunks_tsv_idx ON chunks USING gin (tsv)")
    op.execute(
        "CREATE INDEX chunks_filter_idx ON chunks (tenant, collection, source, doc_type, doc_date)"
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
        CREATE TABLE sync_runs (
            id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            tenant       text NOT NULL,
            collection   text NOT NULL,
            source       text NOT NULL,
            status       text NOT NULL
                         CHECK (status IN ('running', 'succeeded', 'failed')),
            started_at   timestamptz NOT NULL DEFAULT now(),
            finished_at  timestamptz,
            added        integer NOT NULL DEFAULT 0,
            updated      integer NOT NULL DEFAULT 0,
            unchanged    integer NOT NULL DEFAULT 0,
            deleted      integer NOT NULL DEFAULT 0,
            failed       integer NOT NULL DEFAULT 0,
            chunks       integer NOT NULL DEFAULT 0,
            embedded     integer NOT NULL DEFAULT 0,
            seconds      double precision,
            errors       jsonb NOT NULL DEFAULT '[]'::jsonb,
            warnings     jsonb NOT NULL DEFAULT '[]'::jsonb
        )
        """
    )
    op.execute("CREATE INDEX sync_runs_recent_idx ON sync_runs (tenant, started_at DESC)")


def downgrade() -> None:
    for table in ("sync_runs", "embedding_cache", "chunks", "documents", "index_meta"):
        op.execute(f"DROP TABLE IF EXISTS {table}")
