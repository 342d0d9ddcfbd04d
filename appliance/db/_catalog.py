"""The catalog (``ingest.Catalog``) on the metadata database: SQLite or PostgreSQL.

Every method is one transaction (:meth:`Database.session`). Paths are sealed under the
metadata key and found by their keyed MAC (``_catalog_tables.py``), so listing documents
opens every path: fine at the hundred-thousand-document scale one appliance holds.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Iterator, Sequence
from typing import Any

from sqlalchemy import delete, func, select, update

from ingest import DocumentRecord, FailureRecord, Tombstone, document_id

from ._catalog_tables import CatalogMetaRow, ContentRow, DocumentRow, FailureRow, TombstoneRow
from ._database import Database
from ._sealer import Sealer, field_aad

Rows = Sequence[Sequence[Any]]
LOOKUP_LABEL = b"greffier/v1/meta/lookup-key"


def lookup_key(metadata_key: bytes) -> bytes:
    """The key of the path MACs, derived from the metadata key (``security/FORMAT.md``)."""
    return hmac.new(metadata_key, LOOKUP_LABEL, hashlib.sha256).digest()


class SqlCatalog:
    """:class:`ingest.Catalog` on a migrated :class:`Database`."""

    def __init__(self, db: Database, sealer: Sealer, mac_key: bytes) -> None:
        self._db = db
        self._sealer = sealer
        self._mac_key = mac_key

    def close(self) -> None:
        """The database belongs to the appliance, which closes it."""

    # -- sealing ---------------------------------------------------------------------------
    def _mac(self, path: str) -> str:
        return hmac.new(self._mac_key, path.encode(), hashlib.sha256).hexdigest()

    def _seal(self, table: str, row_id: str, column: str, text: str) -> bytes:
        return self._sealer.seal(text.encode(), field_aad(table, row_id, column))

    def _open(self, table: str, row_id: str, column: str, blob: bytes) -> str:
        return self._sealer.open(blob, field_aad(table, row_id, column)).decode()

    def _record(self, row: DocumentRow) -> DocumentRecord:
        path = self._open("documents", row.doc_id, "path", row.path_sealed)
        return DocumentRecord(row.doc_id, path, row.content_hash, row.version, row.size,
                              row.mtime_ns, row.format, tuple(row.acl or ()))

    # -- documents -------------------------------------------------------------------------
    def document_by_id(self, doc_id: str) -> DocumentRecord | None:
        with self._db.session() as s:
            row = s.get(DocumentRow, doc_id)
            return self._record(row) if row else None

    def document(self, path: str) -> DocumentRecord | None:
        with self._db.session() as s:
            row = s.scalar(select(DocumentRow).where(DocumentRow.path_mac == self._mac(path)))
            return self._record(row) if row else None

    def documents(self) -> Iterator[DocumentRecord]:
        with self._db.session() as s:
            records = [self._record(row) for row in s.scalars(select(DocumentRow))]
        yield from sorted(records, key=lambda d: d.path)

    def documents_of(self, content_hash: str) -> list[DocumentRecord]:
        with self._db.session() as s:
            rows = s.scalars(select(DocumentRow).where(DocumentRow.content_hash == content_hash))
            return sorted((self._record(row) for row in rows), key=lambda d: d.path)

    def link(self, path: str, content_hash: str, size: int, mtime_ns: int, fmt: str,
             acl: tuple[str, ...]) -> str | None:
        mac = self._mac(path)
        entries = sorted(set(acl))
        with self._db.session() as s:
            row = s.scalar(select(DocumentRow).where(DocumentRow.path_mac == mac))
            previous = row.content_hash if row else None
            if row is None:
                doc_id = document_id(path)
                s.add(DocumentRow(doc_id=doc_id, path_mac=mac,
                                  path_sealed=self._seal("documents", doc_id, "path", path),
                                  content_hash=content_hash, version=1, size=size,
                                  mtime_ns=mtime_ns, format=fmt, updated_at=time.time(),
                                  acl=entries))
            else:
                row.version += previous != content_hash
                row.content_hash, row.size, row.mtime_ns = content_hash, size, mtime_ns
                row.format, row.updated_at, row.acl = fmt, time.time(), entries
            s.execute(delete(FailureRow).where(FailureRow.path_mac == mac))
        return previous if previous not in (None, content_hash) else None

    def set_acl(self, doc_id: str, acl: tuple[str, ...]) -> DocumentRecord | None:
        with self._db.session() as s:
            row = s.get(DocumentRow, doc_id)
            if row is None:
                return None
            row.acl, row.updated_at = sorted(set(acl)), time.time()
            s.flush()
            return self._record(row)

    def unlink(self, path: str) -> str | None:
        mac = self._mac(path)
        with self._db.session() as s:
            previous = s.scalar(select(DocumentRow.content_hash)
                                .where(DocumentRow.path_mac == mac))
            s.execute(delete(DocumentRow).where(DocumentRow.path_mac == mac))
            s.execute(delete(FailureRow).where(FailureRow.path_mac == mac))
        return previous

    # -- contents --------------------------------------------------------------------------
    def content_status(self, content_hash: str) -> tuple[str, str] | None:
        with self._db.session() as s:
            row = s.get(ContentRow, content_hash)
            return (row.status, row.model_id) if row else None

    def content_hashes(self) -> set[str]:
        with self._db.session() as s:
            return set(s.scalars(select(ContentRow.content_hash)))

    def begin_content(self, content_hash: str, fmt: str, model_id: str) -> None:
        with self._db.session() as s:
            row = s.get(ContentRow, content_hash)
            if row is None:
                s.add(ContentRow(content_hash=content_hash, status="indexing", format=fmt,
                                 pages=0, chunks=0, model_id=model_id))
            else:
                row.status, row.model_id = "indexing", model_id

    def finish_content(self, content_hash: str, pages: int, chunks: int) -> None:
        with self._db.session() as s:
            s.execute(update(ContentRow).where(ContentRow.content_hash == content_hash).values(
                status="indexed", pages=pages, chunks=chunks, indexed_at=time.time()))

    def unfinished_contents(self) -> list[str]:
        with self._db.session() as s:
            return list(s.scalars(select(ContentRow.content_hash)
                                  .where(ContentRow.status == "indexing")))

    def is_referenced(self, content_hash: str) -> bool:
        with self._db.session() as s:
            return s.scalar(select(DocumentRow.doc_id)
                            .where(DocumentRow.content_hash == content_hash).limit(1)) is not None

    def drop_content(self, content_hash: str) -> None:
        with self._db.session() as s:
            s.execute(delete(ContentRow).where(ContentRow.content_hash == content_hash))

    def stale_contents(self, model_id: str) -> list[str]:
        with self._db.session() as s:
            return list(s.scalars(select(ContentRow.content_hash)
                                  .where(ContentRow.model_id != model_id)))

    # -- erasure ---------------------------------------------------------------------------
    def tombstone(self, content_hash: str) -> Tombstone | None:
        with self._db.session() as s:
            row = s.get(TombstoneRow, content_hash)
            return Tombstone(row.erased_at, row.erased_by, row.certificate_id) if row else None

    def erase_content(self, content_hash: str, erased_by: str, certificate_id: str) -> None:
        with self._db.session() as s:
            macs = select(DocumentRow.path_mac).where(DocumentRow.content_hash == content_hash)
            # an earlier failed parse of the same path must not keep its name either
            s.execute(delete(FailureRow).where(FailureRow.path_mac.in_(macs)))
            s.execute(delete(DocumentRow).where(DocumentRow.content_hash == content_hash))
            s.execute(delete(ContentRow).where(ContentRow.content_hash == content_hash))
            s.merge(TombstoneRow(content_hash=content_hash, erased_at=time.time(),
                                 erased_by=erased_by, certificate_id=certificate_id))

    def lift_tombstone(self, content_hash: str) -> None:
        with self._db.session() as s:
            s.execute(delete(TombstoneRow).where(TombstoneRow.content_hash == content_hash))

    def purge_journal(self) -> None:
        self._db.purge_journal()

    # -- failures --------------------------------------------------------------------------
    def failure(self, path: str) -> FailureRecord | None:
        mac = self._mac(path)
        with self._db.session() as s:
            row = s.get(FailureRow, mac)
            if row is None:
                return None
            message = self._open("ingest_failures", mac, "message", row.message_sealed)
            return FailureRecord(path, row.size, row.mtime_ns, row.error, message)

    def record_failure(self, path: str, size: int, mtime_ns: int, error: str,
                       message: str) -> None:
        mac = self._mac(path)
        with self._db.session() as s:
            s.merge(FailureRow(
                path_mac=mac, path_sealed=self._seal("ingest_failures", mac, "path", path),
                size=size, mtime_ns=mtime_ns, error=error[:128],
                message_sealed=self._seal("ingest_failures", mac, "message", message),
                seen_at=time.time()))

    # -- bulk load -------------------------------------------------------------------------
    def load_rows(self, *, contents: Rows, documents: Rows, failures: Rows, tombstones: Rows,
                  meta: Rows) -> int:
        """Insert whole tables in one transaction (the legacy upgrade, an import). Tuples in
        the columns' order, paths and messages in clear. Returns the documents loaded."""
        with self._db.session() as s:
            s.add_all(ContentRow(content_hash=h, status=st, format=f, pages=p, chunks=c,
                                 model_id=m, indexed_at=at)
                      for h, st, f, p, c, m, at in contents)
            s.flush()
            s.add_all(DocumentRow(doc_id=d, path_mac=self._mac(path),
                                  path_sealed=self._seal("documents", d, "path", path),
                                  content_hash=h, version=v, size=size, mtime_ns=mt, format=f,
                                  updated_at=at, acl=sorted(set(acl)))
                      for d, path, h, v, size, mt, f, at, acl in documents)
            for path, size, mt, error, message, at in failures:
                mac = self._mac(path)
                s.add(FailureRow(
                    path_mac=mac, path_sealed=self._seal("ingest_failures", mac, "path", path),
                    size=size, mtime_ns=mt, error=error[:128],
                    message_sealed=self._seal("ingest_failures", mac, "message", message),
                    seen_at=at))
            s.add_all(TombstoneRow(content_hash=h, erased_at=at, erased_by=by,
                                   certificate_id=cid) for h, at, by, cid in tombstones)
            s.add_all(CatalogMetaRow(key=k, value=v) for k, v in meta)
        return len(documents)

    # -- statistics and small facts --------------------------------------------------------
    def stats(self) -> dict[str, object]:
        with self._db.session() as s:
            docs = s.scalar(select(func.count()).select_from(DocumentRow))
            contents, chunks, pages = s.execute(
                select(func.count(), func.coalesce(func.sum(ContentRow.chunks), 0),
                       func.coalesce(func.sum(ContentRow.pages), 0))
                .where(ContentRow.status == "indexed")).one()
            formats = dict(s.execute(select(DocumentRow.format, func.count())
                                     .group_by(DocumentRow.format)
                                     .order_by(DocumentRow.format)).all())
            failures = s.scalar(select(func.count()).select_from(FailureRow))
        return {"documents": docs, "distinct_contents": contents, "chunks": int(chunks),
                "pages": int(pages), "formats": formats, "failures": failures}

    def get_meta(self, key: str) -> str | None:
        with self._db.session() as s:
            row = s.get(CatalogMetaRow, key)
            return row.value if row else None

    def set_meta(self, key: str, value: str) -> None:
        with self._db.session() as s:
            s.merge(CatalogMetaRow(key=key, value=value))
