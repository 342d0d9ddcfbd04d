"""In-place upgrade of a data directory from the first catalog (``catalog.sqlite3``).

Before the metadata database existed, one SQLite file held the catalog and the wrapped data
keys. At open, its documents, contents, failures, tombstones and facts move into the
metadata database (one transaction, paths and messages sealed on the way), then the file
keeps only its ``data_keys`` table, is rewritten (``VACUUM``: the dropped tables leave no
page behind) and becomes the data-key store (``data-keys.sqlite3``). Each step is safe to
interrupt: a marker in ``catalog_meta`` says the rows moved, and the rename comes last.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from pathlib import Path

from ._catalog import SqlCatalog

LEGACY_NAME = "catalog.sqlite3"
MARKER = "imported_from_catalog_sqlite3"
_MOVED = ("documents", "failures", "tombstones", "meta", "contents")


def upgrade_legacy_catalog(data: Path, catalog: SqlCatalog, deks: Path) -> int:
    """Move ``data/catalog.sqlite3`` into ``catalog`` and ``deks``. Returns how many
    documents moved (0 when there was nothing to do)."""
    legacy = data / LEGACY_NAME
    if not legacy.exists():
        return 0
    con = sqlite3.connect(legacy, isolation_level=None)
    try:
        con.execute("PRAGMA secure_delete=ON")
        tables = {row[0] for row in con.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table'")}
        moved = 0
        if "documents" in tables and catalog.get_meta(MARKER) is None:
            moved = catalog.load_rows(
                contents=con.execute("SELECT content_hash, status, format, pages, chunks, "
                                     "model_id, indexed_at FROM contents").fetchall(),
                # Before access control: readable by nobody until an admin grants them.
                documents=[(*row, ()) for row in con.execute(
                    "SELECT doc_id, path, content_hash, version, size, mtime_ns, format, "
                    "updated_at FROM documents")],
                failures=con.execute("SELECT path, size, mtime_ns, error, message, seen_at "
                                     "FROM failures").fetchall(),
                tombstones=con.execute("SELECT content_hash, erased_at, erased_by, "
                                       "certificate_id FROM tombstones").fetchall(),
                meta=[*con.execute("SELECT key, value FROM meta").fetchall(), (MARKER, "1")])
        con.execute("BEGIN IMMEDIATE")
        for table in _MOVED:
            con.execute(f"DROP TABLE IF EXISTS {table}")
        con.execute("COMMIT")
        con.execute("VACUUM")
        con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        con.close()
    if deks.exists():  # cannot happen unless edited by hand: keep both, refuse to guess
        return moved
    os.replace(legacy, deks)
    for suffix in ("-wal", "-shm"):
        with contextlib.suppress(FileNotFoundError):
            os.replace(f"{legacy}{suffix}", f"{deks}{suffix}")
    fd = os.open(data, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    return moved
