"""Okapi BM25 inside PostgreSQL: per-chunk postings and lexical lengths.

The chunk's full text is now its context (title and section path, weight A) followed
by its passage; ``postings`` holds, for every (term, chunk), how often the term occurs
in the context and in the passage. Document frequencies, chunk counts and average
lengths are computed from these rows for the scope a search runs in, so they are
exact after every insert, update and delete.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25
"""

from __future__ import annotations

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("DROP INDEX IF EXISTS chunks_tsv_idx")
    op.execute("ALTER TABLE chunks DROP COLUMN tsv")
    op.execute("ALTER TABLE chunks ADD COLUMN context text NOT NULL DEFAULT ''")
    op.execute(
        """
        ALTER TABLE chunks ADD COLUMN tsv tsvector GENERATED ALWAYS AS (
            setweight(to_tsvector('english'::regconfig, context), 'A')
            || to_tsvector('english'::regconfig, text)
        ) STORED
        """
    )
    op.execute("ALTER TABLE chunks ADD COLUMN len_context integer NOT NULL DEFAULT 0")
    op.execute("ALTER TABLE chunks ADD COLUMN len_text integer NOT NULL DEFAULT 0")
    op.execute(
        "CREATE INDEX chunks_scope_idx ON chunks (tenant, collection) "
        "INCLUDE (len_context, len_text)"
    )
    op.execute(
        """
        CREATE TABLE postings (
            tenant      text NOT NULL,
            term        text NOT NULL,
            collection  text NOT NULL,
            chunk_id    bigint NOT NULL REFERENCES chunks (id) ON DELETE CASCADE,
            tf_context  integer NOT NULL,
            tf_text     integer NOT NULL,
            PRIMARY KEY (tenant, term, collection, chunk_id)
        )
        """
    )
    op.execute("CREATE INDEX postings_chunk_idx ON postings (chunk_id)")
    # Chunks written before this revision have no context; their postings come from
    # their passage alone until their document is next re-indexed.
    op.execute(
        """
        INSERT INTO postings (tenant, term, collection, chunk_id, tf_context, tf_text)
        SELECT c.tenant, t.lexeme, c.collection, c.id,
               count(*) FILTER (WHERE w = 'A'), count(*) FILTER (WHERE w <> 'A')
        FROM chunks c, unnest(c.tsv) AS t, unnest(t.weights) AS w
        GROUP BY c.tenant, t.lexeme, c.collection, c.id
        """
    )
    op.execute(
        """
        UPDATE chunks c SET len_context = s.len_context, len_text = s.len_text
        FROM (SELECT chunk_id, sum(tf_context) AS len_context, sum(tf_text) AS len_text
              FROM postings GROUP BY chunk_id) s
        WHERE s.chunk_id = c.id
        """
    )


def downgrade() -> None:
    op.execute("DROP TABLE postings")
    op.execute("DROP INDEX chunks_scope_idx")
    op.execute("ALTER TABLE chunks DROP COLUMN len_text")
    op.execute("ALTER TABLE chunks DROP COLUMN len_context")
    op.execute("ALTER TABLE chunks DROP COLUMN tsv")
    op.execute("ALTER TABLE chunks DROP COLUMN context")
    op.execute(
        "ALTER TABLE chunks ADD COLUMN tsv tsvector GENERATED ALWAYS AS "
        "(to_tsvector('english'::regconfig, section || ' ' || text)) STORED"
    )
    op.execute("CREATE INDEX chunks_tsv_idx ON chunks USING gin (tsv)")
