"""idempotency keys for the requests that store many jobs: job_batches, a batch submit made
with an Idempotency-Key, and the key and request hash of a sweep, so that a retry of either
answers with what the first one stored

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UTC_TIMESTAMP = sa.DateTime(timezone=True)
JSON_DOCUMENT = sa.JSON().with_variant(JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "job_batches",
        sa.Column("tenant", sa.String(64), nullable=False),
        sa.Column("idempotency_key", sa.String(255), nullable=False),
        sa.Column("request_hash", sa.String(64), nullable=False),
        sa.Column("job_ids", JSON_DOCUMENT, nullable=False),
        sa.Column("created_at", UTC_TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("tenant", "idempotency_key", name="pk_job_batches"),
        sa.ForeignKeyConstraint(["tenant"], ["tenants.name"], name="fk_job_batches_tenant_tenants"),
    )
    with op.batch_alter_table("sweeps") as sweeps:
        sweeps.add_column(sa.Column("idempotency_key", sa.String(255), nullable=True))
        sweeps.add_column(sa.Column("request_hash", sa.String(64), nullable=True))
        sweeps.create_unique_constraint("uq_sweeps_tenant_idempotency_key", ["tenant", "idempotency_key"])


def downgrade() -> None:
    with op.batch_alter_table("sweeps") as sweeps:
        sweeps.drop_constraint("uq_sweeps_tenant_idempotency_key", type_="unique")
        sweeps.drop_column("request_hash")
        sweeps.drop_column("idempotency_key")
    op.drop_table("job_batches")
