"""Where accounts and groups come from: ``origin`` is ``local`` (created in Greffier),
``ldap`` (synced from the directory) or ``oidc`` (created at a first single sign-on);
``external_id`` is the directory entry's DN or the provider's ``iss`` and ``sub``, unique
per origin. Existing rows are local.

An account that is not local has no password (``password_hash`` is ``!``, which no
password verifies): it signs in through its origin.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-22
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    for table in ("users", "groups"):
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column("origin", sa.String(8), nullable=False,
                                       server_default="local"))
            batch.add_column(sa.Column("external_id", sa.String(512), nullable=True))
            batch.create_check_constraint("origin", "origin IN ('local', 'ldap', 'oidc')")
            batch.create_unique_constraint(f"uq_{table}_origin_external_id",
                                           ["origin", "external_id"])


def downgrade() -> None:
    for table in ("users", "groups"):
        with op.batch_alter_table(table) as batch:
            batch.drop_constraint(f"uq_{table}_origin_external_id", type_="unique")
            batch.drop_constraint(f"ck_{table}_origin", type_="check")
            batch.drop_column("external_id")
            batch.drop_column("origin")
