"""stored models: tf.js artifacts uploaded, and jobs saved as models, to start jobs from

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON_DOCUMENT = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "models",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("name", sa.String(200), nullable=True),
        sa.Column("layers", JSON_DOCUMENT, nullable=False),
        sa.Column("compile", JSON_DOCUMENT, nullable=True),
        sa.Column("weights", sa.LargeBinary(), nullable=False),
        sa.Column("parameters", sa.BigInteger(), nullable=False),
        sa.Column("source_job_id", sa.String(36), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["source_job_id"], ["jobs.id"], name="fk_models_source_job_id_jobs", ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_models"),
    )
    op.create_index("ix_models_created_at_id", "models", ["created_at", "id"])


def downgrade() -> None:
    op.drop_index("ix_models_created_at_id", table_name="models")
    op.drop_table("models")
