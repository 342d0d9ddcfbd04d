"""The catalog's tables: which files were ingested, as which content, in which state.

* ``contents``: one row per distinct file content (sha256 of the bytes). ``status`` is
  ``indexing`` from before the first point is written until the store is flushed, then
  ``indexed``; a content left ``indexing`` by a crash is purged and redone.
* ``documents``: one row per source path: document id, current content, version (bumped
  when the content changes), the file's size and mtime (to skip unchanged files).
* ``ingest_failures``: files that could not be ingested, so an unchanged bad file is
  reported again without being parsed again.
* ``tombstones``: erased contents (they are not ingested again unless asked to).
* ``catalog_meta``: small facts (last ingest, last sync).

Paths are never stored in clear: ``path_sealed`` is sealed under the metadata key and
``path_mac`` (HMAC-SHA256 under a key derived from it) finds a row by path. Failure messages
(they quote file contents and names) are sealed too. The wrapped data keys are not here:
see ``security/_dekstore.py``.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    Double,
    ForeignKey,
    Integer,
    LargeBinary,
    String,
)
from sqlalchemy.orm import Mapped, mapped_column

from ._tables import HASH, Base


class ContentRow(Base):
    __tablename__ = "contents"
    __table_args__ = (CheckConstraint("status IN ('indexing', 'indexed')", name="status"),)

    content_hash: Mapped[str] = mapped_column(HASH, primary_key=True)
    status: Mapped[str] = mapped_column(String(16))
    format: Mapped[str] = mapped_column(String(32))
    pages: Mapped[int] = mapped_column(Integer, default=0)
    chunks: Mapped[int] = mapped_column(Integer, default=0)
    model_id: Mapped[str] = mapped_column(String(255))
    indexed_at: Mapped[float | None] = mapped_column(Double)


class DocumentRow(Base):
    __tablename__ = "documents"

    doc_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    path_mac: Mapped[str] = mapped_column(HASH, unique=True)
    path_sealed: Mapped[bytes] = mapped_column(LargeBinary)
    content_hash: Mapped[str] = mapped_column(ForeignKey("contents.content_hash"), index=True)
    version: Mapped[int] = mapped_column(Integer)
    size: Mapped[int] = mapped_column(BigInteger)
    mtime_ns: Mapped[int] = mapped_column(BigInteger)
    format: Mapped[str] = mapped_column(String(32))
    updated_at: Mapped[float] = mapped_column(Double)
    # Access entries, sorted, JSON ("u:<user id>", "g:<group id>"); [] = nobody.
    acl: Mapped[list[str]] = mapped_column(JSON, default=list)


class FailureRow(Base):
    __tablename__ = "ingest_failures"

    path_mac: Mapped[str] = mapped_column(HASH, primary_key=True)
    path_sealed: Mapped[bytes] = mapped_column(LargeBinary)
    size: Mapped[int] = mapped_column(BigInteger)
    mtime_ns: Mapped[int] = mapped_column(BigInteger)
    error: Mapped[str] = mapped_column(String(128))
    message_sealed: Mapped[bytes] = mapped_column(LargeBinary)
    seen_at: Mapped[float] = mapped_column(Double)


class TombstoneRow(Base):
    __tablename__ = "tombstones"

    content_hash: Mapped[str] = mapped_column(HASH, primary_key=True)
    erased_at: Mapped[float] = mapped_column(Double)
    erased_by: Mapped[str] = mapped_column(String(96))
    certificate_id: Mapped[str] = mapped_column(String(36))


class CatalogMetaRow(Base):
    __tablename__ = "catalog_meta"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(String(255))
