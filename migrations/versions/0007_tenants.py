"""every job, dataset, sweep, evaluation and stored model belongs to a tenant; those stored before, to `default`

An idempotency key and a dataset's content are unique per tenant: another tenant's use of
the same key or the same bytes must neither collide with nor reveal the first.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

DEFAULT_TENANT = "default"
OWNED = ("jobs", "datasets", "sweeps", "evaluations", "models")


def upgrade() -> None:
    for table in OWNED:
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column("tenant", sa.String(64), nullable=True))
        op.execute(sa.text(f"UPDATE {table} SET tenant = :tenant").bindparams(tenant=DEFAULT_TENANT))
        # then required, with no default: no code path may store a row without its tenant
        # (batch mode: SQLite adds a foreign key or NOT NULL only by copying the table)
        with op.batch_alter_table(table) as batch:
            batch.alter_column("tenant", existing_type=sa.String(64), nullable=False)
            batch.create_foreign_key(f"fk_{table}_tenant_tenants", "tenants", ["tenant"], ["name"])
    with op.batch_alter_table("jobs") as jobs:
        jobs.drop_constraint("uq_jobs_idempotency_key", type_="unique")
        jobs.create_unique_constraint("uq_jobs_tenant_idempotency_key", ["tenant", "idempotency_key"])
        jobs.create_index("ix_jobs_tenant_created_at_id", ["tenant", "created_at", "id"])
        jobs.create_index("ix_jobs_tenant_status_created_at_id", ["tenant", "status", "created_at", "id"])
    with op.batch_alter_table("datasets") as datasets:
        datasets.drop_constraint("uq_datasets_content_key", type_="unique")
        datasets.create_unique_constraint("uq_datasets_tenant_content_key", ["tenant", "content_key"])
        datasets.create_index("ix_datasets_tenant_created_at_id", ["tenant", "created_at", "id"])
    op.create_index("ix_sweeps_tenant_created_at_id", "sweeps", ["tenant", "created_at", "id"])
    op.create_index("ix_evaluations_tenant", "evaluations", ["tenant"])
    op.create_index("ix_models_tenant_created_at_id", "models", ["tenant", "created_at", "id"])


def downgrade() -> None:
    op.drop_index("ix_models_tenant_created_at_id", table_name="models")
    op.drop_index("ix_evaluations_tenant", table_name="evaluations")
    op.drop_index("ix_sweeps_tenant_created_at_id", table_name="sweeps")
    # the tenants' rows stay; uniqueness across all tenants again may fail where two share a key
    with op.batch_alter_table("datasets") as datasets:
        datasets.drop_index("ix_datasets_tenant_created_at_id")
        datasets.drop_constraint("uq_datasets_tenant_content_key", type_="unique")
        datasets.create_unique_constraint("uq_datasets_content_key", ["content_key"])
    with op.batch_alter_table("jobs") as jobs:
        jobs.drop_index("ix_jobs_tenant_status_created_at_id")
        jobs.drop_index("ix_jobs_tenant_created_at_id")
        jobs.drop_constraint("uq_jobs_tenant_idempotency_key", type_="unique")
        jobs.create_unique_constraint("uq_jobs_idempotency_key", ["idempotency_key"])
    for table in reversed(OWNED):
        with op.batch_alter_table(table) as batch:
            batch.drop_constraint(f"fk_{table}_tenant_tenants", type_="foreignkey")
            batch.drop_column("tenant")
