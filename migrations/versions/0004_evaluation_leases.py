"""evaluations leased as jobs are: attempt, worker, lease, heartbeat, last enqueue

Revision ID: 0004
Revises: 0003
Create Date: 2025-11-27
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UTC_TIMESTAMP = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.add_column("evaluations", sa.Column("attempt", sa.Integer(), server_default="0", nullable=False))
    op.add_column("evaluations", sa.Column("worker", sa.String(255), nullable=True))
    op.add_column("evaluations", sa.Column("lease_expires_at", UTC_TIMESTAMP, nullable=True))
    op.add_column("evaluations", sa.Column("heartbeat_at", UTC_TIMESTAMP, nullable=True))
    # null for the evaluations stored before: the sweep reads null as sent long ago
    op.add_column("evaluations", sa.Column("enqueued_at", UTC_TIMESTAMP, nullable=True))
    op.create_index("ix_evaluations_status_enqueued_at", "evaluations", ["status", "enqueued_at"])


def downgrade() -> None:
    op.drop_index("ix_evaluations_status_enqueued_at", table_name="evaluations")
    # plain ALTER TABLE ... DROP COLUMN, which SQLite has since 3.35: no table copy, constraints kept
    for column in ("enqueued_at", "heartbeat_at", "lease_expires_at", "worker", "attempt"):
        op.drop_column("evaluations", column)
