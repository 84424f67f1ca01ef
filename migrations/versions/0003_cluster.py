"""the cluster: workers registry, sweeps, and a job's sweep

Revision ID: 0003
Revises: 0002
Create Date: 2025-11-26
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSONDocument = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
UTC_TIMESTAMP = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "workers",
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("host", sa.String(255), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("device_kind", sa.String(8), nullable=False),
        sa.Column("device_name", sa.String(255), nullable=False),
        sa.Column("memory_bytes", sa.BigInteger(), nullable=True),
        sa.Column("array_library", sa.String(16), nullable=False),
        sa.Column("concurrency", sa.Integer(), nullable=False),
        sa.Column("started_at", UTC_TIMESTAMP, nullable=False),
        sa.Column("heartbeat_at", UTC_TIMESTAMP, nullable=False),
        sa.Column("stopped_at", UTC_TIMESTAMP, nullable=True),
        sa.PrimaryKeyConstraint("name", name="pk_workers"),
        sa.CheckConstraint("device_kind IN ('cpu', 'gpu')", name="ck_workers_device_kind"),
    )
    op.create_table(
        "sweeps",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("name", sa.String(200), nullable=True),
        sa.Column("base_spec", JSONDocument, nullable=False),
        sa.Column("device", sa.String(8), nullable=False),
        sa.Column("space", JSONDocument, nullable=False),
        sa.Column("points", JSONDocument, nullable=False),
        sa.Column("metric", sa.String(64), nullable=False),
        sa.Column("goal", sa.String(8), nullable=False),
        sa.Column("created_at", UTC_TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_sweeps"),
        sa.CheckConstraint("goal IN ('min', 'max')", name="ck_sweeps_goal"),
    )
    op.create_index("ix_sweeps_created_at_id", "sweeps", ["created_at", "id"])
    # batch mode: SQLite cannot add a foreign key to an existing table, so Alembic copies it
    with op.batch_alter_table("jobs") as jobs:
        jobs.add_column(sa.Column("sweep_id", sa.String(36), nullable=True))
        jobs.add_column(sa.Column("sweep_index", sa.Integer(), nullable=True))
        jobs.create_foreign_key("fk_jobs_sweep_id_sweeps", "sweeps", ["sweep_id"], ["id"], ondelete="CASCADE")
        jobs.create_index("ix_jobs_sweep_id", ["sweep_id"])


def downgrade() -> None:
    with op.batch_alter_table("jobs") as jobs:
        jobs.drop_index("ix_jobs_sweep_id")
        jobs.drop_constraint("fk_jobs_sweep_id_sweeps", type_="foreignkey")
        jobs.drop_column("sweep_index")
        jobs.drop_column("sweep_id")
    op.drop_index("ix_sweeps_created_at_id", table_name="sweeps")
    op.drop_table("sweeps")
    op.drop_table("workers")
