"""Sources: server-side folders an admin registers, synced on demand or on a schedule.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "sources",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("path_sealed", sa.LargeBinary(), nullable=False),
        sa.Column("every_minutes", sa.Integer(), nullable=True),
        sa.Column("created_by", sa.String(96), nullable=False),
        sa.Column("created_at", sa.Double(), nullable=False),
        sa.Column("last_sync_at", sa.Double(), nullable=True),
        sa.Column("last_job_id", sa.String(32), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sources")),
        sa.UniqueConstraint("name", name=op.f("uq_sources_name")),
    )


def downgrade() -> None:
    op.drop_table("sources")
