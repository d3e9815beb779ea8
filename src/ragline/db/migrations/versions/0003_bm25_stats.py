"""BM25 scope statistics kept per (tenant, collection); chunk lengths on postings.

``bm25_stats`` holds the number of chunks and the sums of their lexical lengths for
each (tenant, collection), updated in the same transaction as the chunks, so a
search reads N and the average length from a handful of rows instead of counting
its scope. Postings carry their chunk's lengths, so scoring needs no join.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25
"""

from __future__ import annotations

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE bm25_stats (
            tenant       text NOT NULL,
            collection   text NOT NULL,
            chunks       bigint NOT NULL DEFAULT 0,
            len_text     bigint NOT NULL DEFAULT 0,
            len_context  bigint NOT NULL DEFAULT 0,
            PRIMARY KEY (tenant, collection)
        )
        """
    )
    op.execute(
        """
        INSERT INTO bm25_stats (tenant, collection, chunks, len_text, len_context)
        SELECT tenant, collection, count(*), sum(len_text), sum(len_context)
        FROM chunks GROUP BY tenant, collection
        """
    )
    op.execute("ALTER TABLE postings ADD COLUMN len_text integer NOT NULL DEFAULT 0")
    op.execute("ALTER TABLE postings ADD COLUMN len_context integer NOT NULL DEFAULT 0")
    op.execute(
        """
        UPDATE postings p SET len_text = c.len_text, len_context = c.len_context
        FROM chunks c WHERE c.id = p.chunk_id
        """
    )
    op.execute("DROP INDEX IF EXISTS chunks_scope_idx")


def downgrade() -> None:
    op.execute(
        "CREATE INDEX chunks_scope_idx ON chunks (tenant, collection) "
        "INCLUDE (len_context, len_text)"
    )
    op.execute("ALTER TABLE postings DROP COLUMN len_context")
    op.execute("ALTER TABLE postings DROP COLUMN len_text")
    op.execute("DROP TABLE bm25_stats")
