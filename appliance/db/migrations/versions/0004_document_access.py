"""Document-level access: who may read each document (``documents.acl``) and what each
folder source brings in (``sources.acl``).

Documents indexed before this migration get an empty list: readable by nobody until an
admin grants them (never by everybody).

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-22
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    for table in ("documents", "sources"):
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column("acl", sa.JSON(), nullable=False, server_default="[]"))


def downgrade() -> None:
    for table in ("documents", "sources"):
        with op.batch_alter_table(table) as batch:
            batch.drop_column("acl")
