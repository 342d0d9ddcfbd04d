"""The wrapped data keys (DEKs), in their own SQLite file inside the data directory.

They stay out of the metadata database on purpose: crypto-erasure is only as good as the
destruction of the wrapped DEK, and that destruction must be something the appliance can do
and measure. Here the file is SQLite with ``secure_delete`` (a deleted row is overwritten,
not left in a free page) and its write-ahead log is checkpointed and truncated after an
erasure (:meth:`SqliteDekStore.purge_journal`); the erasure certificate then scans this very
file. A PostgreSQL server keeps deleted tuples until a vacuum and older values in its WAL,
archives and replicas, none of which the appliance can overwrite or scan.

One row per content and KEK generation; during a KEK rotation a content has two.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterable
from pathlib import Path

_SCHEMA = """
CREATE TABLE IF NOT EXISTS data_keys (
    content_hash TEXT NOT NULL,
    kek_id INTEGER NOT NULL,
    wrapped BLOB NOT NULL,
    PRIMARY KEY (content_hash, kek_id)
);
"""


class SqliteDekStore:
    """The :class:`~security.DekStore` of an appliance. Thread-safe (one connection, locked)."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        if not path.exists():
            path.touch(mode=0o600)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        for pragma in ("journal_mode=WAL", "synchronous=FULL", "secure_delete=ON"):
            self._db.execute(f"PRAGMA {pragma}")
        self._db.executescript(_SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def wrapped_dek(self, content_hash: str, kek_id: int) -> bytes | None:
        with self._lock:
            row = self._db.execute(
                "SELECT wrapped FROM data_keys WHERE content_hash = ? AND kek_id = ?",
                (content_hash, kek_id)).fetchone()
        return bytes(row[0]) if row else None

    def put_wrapped_dek(self, content_hash: str, kek_id: int, blob: bytes) -> None:
        """A new DEK for a content replaces all its wrapped keys (every KEK generation)."""
        with self._lock, self._tx():
            self._db.execute("DELETE FROM data_keys WHERE content_hash = ?", (content_hash,))
            self._db.execute("INSERT INTO data_keys VALUES (?, ?, ?)",
                             (content_hash, kek_id, blob))

    def destroy(self, content_hash: str) -> bool:
        """Delete every wrapped DEK of a content (crypto-erasure). True if one existed."""
        with self._lock, self._tx():
            cursor = self._db.execute("DELETE FROM data_keys WHERE content_hash = ?",
                                      (content_hash,))
            return cursor.rowcount > 0

    def wrapped_deks(self, kek_id: int) -> list[tuple[str, bytes]]:
        with self._lock:
            return [(h, bytes(b)) for h, b in self._db.execute(
                "SELECT content_hash, wrapped FROM data_keys WHERE kek_id = ?", (kek_id,))]

    def add_wrapped_deks(self, kek_id: int, rows: list[tuple[str, bytes]]) -> None:
        """Key rotation, step 1: every DEK wrapped under the next KEK too (one transaction)."""
        with self._lock, self._tx():
            self._db.executemany("INSERT OR REPLACE INTO data_keys VALUES (?, ?, ?)",
                                 [(h, kek_id, blob) for h, blob in rows])

    def drop_other_wrapped_deks(self, kek_id: int) -> None:
        """Key rotation, last step: forget wraps under any KEK but the current one."""
        with self._lock, self._tx():
            self._db.execute("DELETE FROM data_keys WHERE kek_id != ?", (kek_id,))

    def retain(self, content_hashes: Iterable[str]) -> int:
        """Destroy the DEKs of every content not in ``content_hashes`` (the contents the
        catalog knows): what an erasure or a drop interrupted between its catalog step and
        its key step leaves behind. Returns how many contents lost their keys."""
        keep = set(content_hashes)
        with self._lock:
            stored = {row[0] for row in self._db.execute(
                "SELECT DISTINCT content_hash FROM data_keys")}
        orphans = sorted(stored - keep)
        with self._lock, self._tx():
            self._db.executemany("DELETE FROM data_keys WHERE content_hash = ?",
                                 [(h,) for h in orphans])
        if orphans:
            self.purge_journal()
        return len(orphans)

    def purge_journal(self) -> None:
        """Checkpoint and truncate the write-ahead log: no old page survives in it."""
        with self._lock:
            self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    def _tx(self) -> _Transaction:
        return _Transaction(self._db)


class _Transaction:
    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def __enter__(self) -> None:
        self._db.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        self._db.execute("COMMIT" if exc_type is None else "ROLLBACK")
