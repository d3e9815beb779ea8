"""Answers as traces, conversations, feedback on answers, and the answer cache.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-25
"""

from __future__ import annotations

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

APP_ROLE = "ragline_app"
TABLES = ("conversations", "answers", "feedback", "answer_cache")


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE conversations (
            id         uuid PRIMARY KEY,
            tenant     text NOT NULL,
            -- What the turns before the recent ones were about, and how many it covers.
            summary    text NOT NULL DEFAULT '',
            summarised integer NOT NULL DEFAULT 0,
            created_at timestamptz NOT NULL DEFAULT now(),
            updated_at timestamptz NOT NULL DEFAULT now()
        )
        """
    )
    # One row per question asked: what was asked, what was searched for, what was
    # answered from which passages, by which model, at what cost in tokens.
    op.execute(
        """
        CREATE TABLE answers (
            trace_id          text PRIMARY KEY,
            tenant            text NOT NULL,
            conversation_id   uuid REFERENCES conversations (id) ON DELETE CASCADE,
            question          text NOT NULL,
            query             text NOT NULL,
            answer            text NOT NULL,
            mode              text NOT NULL,
            citations         jsonb NOT NULL DEFAULT '[]'::jsonb,
            removed_citations integer NOT NULL DEFAULT 0,
            unsupported       boolean NOT NULL DEFAULT false,
            provider          text,
            usage             jsonb,
            created_at        timestamptz NOT NULL DEFAULT now()
        )
        """
    )
    op.execute("CREATE INDEX answers_conversation_idx ON answers (conversation_id, created_at)")
    op.execute("CREATE INDEX answers_recent_idx ON answers (tenant, created_at DESC)")
    op.execute(
        """
        CREATE TABLE feedback (
            trace_id   text PRIMARY KEY REFERENCES answers (trace_id) ON DELETE CASCADE,
            tenant     text NOT NULL,
            rating     smallint NOT NULL CHECK (rating IN (-1, 0, 1)),
            reason     text,
            comment    text,
            created_at timestamptz NOT NULL DEFAULT now(),
            updated_at timestamptz NOT NULL DEFAULT now()
        )
        """
    )
    op.execute("CREATE INDEX feedback_rating_idx ON feedback (tenant, rating, created_at DESC)")
    # Generated answers by a hash of everything that made them: the question, the
    # filters, the prompt, the models and the ids of the passages retrieved (which
    # change whenever a document behind them is re-indexed).
    op.execute(
        """
        CREATE TABLE answer_cache (
            tenant     text NOT NULL,
            key        text NOT NULL,
            answer     jsonb NOT NULL,
            created_at timestamptz NOT NULL DEFAULT now(),
            PRIMARY KEY (tenant, key)
        )
        """
    )
    for table in TABLES:
        op.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON {table} TO {APP_ROLE}")
        op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
        op.execute(
            f"""
            CREATE POLICY tenant_isolation ON {table} TO {APP_ROLE}
            USING (tenant = current_setting('ragline.tenant', true))
            WITH CHECK (tenant = current_setting('ragline.tenant', true))
            """
        )


def downgrade() -> None:
    for table in reversed(TABLES):
        op.execute(f"DROP TABLE IF EXISTS {table}")
