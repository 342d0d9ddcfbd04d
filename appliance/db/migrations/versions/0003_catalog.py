"""The catalog (documents, contents, failures, tombstones) joins the metadata database.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "contents",
        sa.Column("content_hash", sa.String(64), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("format", sa.String(32), nullable=False),
        sa.Column("pages", sa.Integer(), nullable=False),
        sa.Column("chunks", sa.Integer(), nullable=False),
        sa.Column("model_id", sa.String(255), nullable=False),
        sa.Column("indexed_at", sa.Double(), nullable=True),
        sa.CheckConstraint("status IN ('indexing', 'indexed')", name=op.f("ck_contents_status")),
        sa.PrimaryKeyConstraint("content_hash", name=op.f("pk_contents")),
    )
    op.create_table(
        "documents",
        sa.Column("doc_id", sa.String(36), nullable=False),
        sa.Column("path_mac", sa.String(64), nullable=False),
        sa.Column("path_sealed", sa.LargeBinary(), nullable=False),
        sa.Column("content_hash", sa.String(64), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("mtime_ns", sa.BigInteger(), nullable=False),
        sa.Column("format", sa.String(32), nullable=False),
        sa.Column("updated_at", sa.Double(), nullable=False),
        sa.ForeignKeyConstraint(["content_hash"], ["contents.content_hash"],
                                name=op.f("fk_documents_content_hash_contents")),
        sa.PrimaryKeyConstraint("doc_id", name=op.f("pk_documents")),
        sa.UniqueConstraint("path_mac", name=op.f("uq_documents_path_mac")),
    )
    op.create_index(op.f("ix_documents_content_hash"), "documents", ["content_hash"])
    op.create_table(
        "ingest_failures",
        sa.Column("path_mac", sa.String(64), nullable=False),
        sa.Column("path_sealed", sa.LargeBinary(), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("mtime_ns", sa.BigInteger(), nullable=False),
        sa.Column("error", sa.String(128), nullable=False),
        sa.Column("message_sealed", sa.LargeBinary(), nullable=False),
        sa.Column("seen_at", sa.Double(), nullable=False),
        sa.PrimaryKeyConstraint("path_mac", name=op.f("pk_ingest_failures")),
    )
    op.create_table(
        "tombstones",
        sa.Column("content_hash", sa.String(64), nullable=False),
        sa.Column("erased_at", sa.Double(), nullable=False),
        sa.Column("erased_by", sa.String(96), nullable=False),
        sa.Column("certificate_id", sa.String(36), nullable=False),
        sa.PrimaryKeyConstraint("content_hash", name=op.f("pk_tombstones")),
    )
    op.create_table(
        "catalog_meta",
        sa.Column("key", sa.String(64), nullable=False),
        sa.Column("value", sa.String(255), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_catalog_meta")),
    )


def downgrade() -> None:
    for table in ("catalog_meta", "tombstones", "ingest_failures", "documents", "contents"):
        op.drop_table(table)
