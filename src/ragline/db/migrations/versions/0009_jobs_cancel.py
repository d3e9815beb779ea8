"""Jobs can be cancelled: a ``cancelled`` state, and the request to stop a running job.

``cancel_requested_at`` / ``cancel_reason`` record a request to stop a job that is
running; whoever runs it sees the request at its next poll (about a second) and stops
the job at its next checkpoint, which then ends ``cancelled`` with the reason.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-01
"""

from __future__ import annotations

from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        "ALTER TABLE jobs ADD COLUMN cancel_requested_at timestamptz, ADD COLUMN cancel_reason text"
    )
    op.execute("ALTER TABLE jobs DROP CONSTRAINT IF EXISTS jobs_status_check")
    op.execute(
        "ALTER TABLE jobs ADD CONSTRAINT jobs_status_check CHECK (status IN "
        "('queued', 'running', 'succeeded', 'failed', 'retrying', 'cancelled'))"
    )


def downgrade() -> None:
    op.execute(
        "UPDATE jobs SET status = 'failed', error = coalesce(error, cancel_reason) "
        "WHERE status = 'cancelled'"
    )
    op.execute("ALTER TABLE jobs DROP CONSTRAINT IF EXISTS jobs_status_check")
    op.execute(
        "ALTER TABLE jobs ADD CONSTRAINT jobs_status_check CHECK (status IN "
        "('queued', 'running', 'succeeded', 'failed', 'retrying'))"
    )
    op.execute("ALTER TABLE jobs DROP COLUMN cancel_reason, DROP COLUMN cancel_requested_at")
