"""The index records which embedder built it (local model or OpenAI-compatible server).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01
"""

from __future__ import annotations

from alembic import context, op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # An index built before embedders could be chosen was built by the local model.
    embedder = str(context.config.attributes.get("embedder", "local"))
    op.get_bind().exec_driver_sql(
        "INSERT INTO index_meta (key, value) SELECT 'embedder', %s "
        "WHERE NOT EXISTS (SELECT 1 FROM chunks) ON CONFLICT (key) DO NOTHING",
        (embedder,),
    )
    op.execute(
        "INSERT INTO index_meta (key, value) VALUES ('embedder', 'local') "
        "ON CONFLICT (key) DO NOTHING"
    )


def downgrade() -> None:
    op.execute("DELETE FROM index_meta WHERE key = 'embedder'")
