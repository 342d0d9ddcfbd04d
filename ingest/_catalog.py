"""The catalog: which files were ingested, as which content, and in which state.

SQLite in WAL mode with ``synchronous=FULL``. Two tables carry the model:

* ``contents`` — one row per distinct file content (sha256 of the bytes). Its chunks live
  in the vector store under that hash, so identical files are stored once. ``status`` is
  ``indexing`` from before the first point is written until the store is flushed, then
  ``indexed``: a content left ``indexing`` by a crash is purged and redone on the next run.
* ``documents`` — one row per source path: its document id, current content, version
  (bumped when the content changes), and the file's size and mtime (to skip unchanged files
  without hashing them).

``failures`` remembers files that could not be ingested, so an unchanged bad file is
reported again without being parsed again.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from ._types import document_id

_SCHEMA = """
CREATE TABLE IF NOT EXISTS contents (
    content_hash TEXT PRIMARY KEY,
    status TEXT NOT NULL CHECK (status IN ('indexing', 'indexed')),
    format TEXT NOT NULL,
    pages INTEGER NOT NULL DEFAULT 0,
    chunks INTEGER NOT NULL DEFAULT 0,
    model_id TEXT NOT NULL,
    indexed_at REAL
);
CREATE TABLE IF NOT EXISTS documents (
    doc_id TEXT PRIMARY KEY,
    path TEXT NOT NULL UNIQUE,
    content_hash TEXT NOT NULL REFERENCES contents(content_hash),
    version INTEGER NOT NULL,
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    format TEXT NOT NULL,
    updated_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS documents_content ON documents(content_hash);
CREATE TABLE IF NOT EXISTS failures (
    path TEXT PRIMARY KEY,
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    error TEXT NOT NULL,
    message TEXT NOT NULL,
    seen_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS data_keys (
    content_hash TEXT NOT NULL,
    kek_id INTEGER NOT NULL,
    wrapped BLOB NOT NULL,
    PRIMARY KEY (content_hash, kek_id)
);
CREATE TABLE IF NOT EXISTS tombstones (
    content_hash TEXT PRIMARY KEY,
    erased_at REAL NOT NULL,
    erased_by TEXT NOT NULL,
    certificate_id TEXT NOT NULL
);
"""


@dataclass(frozen=True)
class DocumentRecord:
    doc_id: str
    path: str
    content_hash: str
    version: int
    size: int
    mtime_ns: int
    format: str


@dataclass(frozen=True)
class FailureRecord:
    path: str
    size: int
    mtime_ns: int
    error: str
    message: str


class Catalog:
    """Transactional record of what is indexed. One writer at a time (the ingest lock)."""

    def __init__(self, path: Path) -> None:
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute("PRAGMA foreign_keys=ON")
        # Deleted rows (a destroyed data key) are overwritten, not left in free pages.
        self._db.execute("PRAGMA secure_delete=ON")
        self._db.executescript(_SCHEMA)

    def close(self) -> None:
        self._db.close()

    # -- documents ---------------------------------------------------------------------
    def document_by_id(self, doc_id: str) -> DocumentRecord | None:
        row = self._db.execute(
            "SELECT doc_id, path, content_hash, version, size, mtime_ns, format "
            "FROM documents WHERE doc_id = ?", (doc_id,)).fetchone()
        return DocumentRecord(*row) if row else None

    def document(self, path: str) -> DocumentRecord | None:
        row = self._db.execute(
            "SELECT doc_id, path, content_hash, version, size, mtime_ns, format "
            "FROM documents WHERE path = ?", (path,)).fetchone()
        return DocumentRecord(*row) if row else None

    def documents(self) -> Iterator[DocumentRecord]:
        for row in self._db.execute(
            "SELECT doc_id, path, content_hash, version, size, mtime_ns, format "
            "FROM documents ORDER BY path"
        ):
            yield DocumentRecord(*row)

    def documents_of(self, content_hash: str) -> list[DocumentRecord]:
        rows = self._db.execute(
            "SELECT doc_id, path, content_hash, version, size, mtime_ns, format "
            "FROM documents WHERE content_hash = ? ORDER BY path", (content_hash,)).fetchall()
        return [DocumentRecord(*row) for row in rows]

    def link(self, path: str, content_hash: str, size: int, mtime_ns: int, fmt: str) -> str | None:
        """Point ``path`` at ``content_hash``; returns the content it pointed to before, if any."""
        previous = self.document(path)
        now = time.time()
        with self._tx():
            if previous is None:
                self._db.execute(
                    "INSERT INTO documents VALUES (?, ?, ?, 1, ?, ?, ?, ?)",
                    (document_id(path), path, content_hash, size, mtime_ns, fmt, now))
            else:
                bump = 1 if previous.content_hash != content_hash else 0
                self._db.execute(
                    "UPDATE documents SET content_hash = ?, version = version + ?, size = ?, "
                    "mtime_ns = ?, format = ?, updated_at = ? WHERE path = ?",
                    (content_hash, bump, size, mtime_ns, fmt, now, path))
            self._db.execute("DELETE FROM failures WHERE path = ?", (path,))
        if previous is not None and previous.content_hash != content_hash:
            return previous.content_hash
        return None

    def unlink(self, path: str) -> str | None:
        """Forget ``path``; returns the content it pointed to."""
        previous = self.document(path)
        with self._tx():
            self._db.execute("DELETE FROM documents WHERE path = ?", (path,))
            self._db.execute("DELETE FROM failures WHERE path = ?", (path,))
        return previous.content_hash if previous else None

    # -- contents ----------------------------------------------------------------------
    def content_status(self, content_hash: str) -> tuple[str, str] | None:
        """``(status, model_id)`` of a content, or None if unknown."""
        row = self._db.execute(
            "SELECT status, model_id FROM contents WHERE content_hash = ?", (content_hash,)
        ).fetchone()
        return (row[0], row[1]) if row else None

    def begin_content(self, content_hash: str, fmt: str, model_id: str) -> None:
        with self._tx():
            self._db.execute(
                "INSERT INTO contents (content_hash, status, format, model_id) "
                "VALUES (?, 'indexing', ?, ?) ON CONFLICT(content_hash) DO UPDATE SET "
                "status = 'indexing', model_id = excluded.model_id",
                (content_hash, fmt, model_id))

    def finish_content(self, content_hash: str, pages: int, chunks: int) -> None:
        with self._tx():
            self._db.execute(
                "UPDATE contents SET status = 'indexed', pages = ?, chunks = ?, indexed_at = ? "
                "WHERE content_hash = ?", (pages, chunks, time.time(), content_hash))

    def unfinished_contents(self) -> list[str]:
        rows = self._db.execute("SELECT content_hash FROM contents WHERE status = 'indexing'")
        return [row[0] for row in rows]

    def is_referenced(self, content_hash: str) -> bool:
        row = self._db.execute(
            "SELECT 1 FROM documents WHERE content_hash = ? LIMIT 1", (content_hash,)).fetchone()
        return row is not None

    def drop_content(self, content_hash: str) -> None:
        """Forget a content no document uses; its DEK is destroyed with it."""
        with self._tx():
            self._db.execute("DELETE FROM contents WHERE content_hash = ?", (content_hash,))
            self._db.execute("DELETE FROM data_keys WHERE content_hash = ?", (content_hash,))

    def stale_contents(self, model_id: str) -> list[str]:
        rows = self._db.execute(
            "SELECT content_hash FROM contents WHERE model_id != ?", (model_id,))
        return [row[0] for row in rows]

    # -- data keys (wrapped DEKs) and erasure ----------------------------------------------
    def wrapped_dek(self, content_hash: str, kek_id: int) -> bytes | None:
        row = self._db.execute(
            "SELECT wrapped FROM data_keys WHERE content_hash = ? AND kek_id = ?",
            (content_hash, kek_id)).fetchone()
        return bytes(row[0]) if row else None

    def put_wrapped_dek(self, content_hash: str, kek_id: int, blob: bytes) -> None:
        """A new DEK for a content replaces all its wrapped keys (every KEK generation)."""
        with self._tx():
            self._db.execute("DELETE FROM data_keys WHERE content_hash = ?", (content_hash,))
            self._db.execute("INSERT INTO data_keys VALUES (?, ?, ?)",
                             (content_hash, kek_id, blob))

    def wrapped_deks(self, kek_id: int) -> list[tuple[str, bytes]]:
        return [(h, bytes(b)) for h, b in self._db.execute(
            "SELECT content_hash, wrapped FROM data_keys WHERE kek_id = ?", (kek_id,))]

    def add_wrapped_deks(self, kek_id: int, rows: list[tuple[str, bytes]]) -> None:
        """Key rotation, step 1: every DEK wrapped under the next KEK too (one transaction)."""
        with self._tx():
            self._db.executemany("INSERT OR REPLACE INTO data_keys VALUES (?, ?, ?)",
                                 [(h, kek_id, blob) for h, blob in rows])

    def drop_other_wrapped_deks(self, kek_id: int) -> None:
        """Key rotation, last step: forget wraps under any KEK but the current one."""
        with self._tx():
            self._db.execute("DELETE FROM data_keys WHERE kek_id != ?", (kek_id,))

    def tombstone(self, content_hash: str) -> tuple[float, str, str] | None:
        row = self._db.execute(
            "SELECT erased_at, erased_by, certificate_id FROM tombstones WHERE content_hash = ?",
            (content_hash,)).fetchone()
        return (row[0], row[1], row[2]) if row else None

    def erase_content(self, content_hash: str, erased_by: str, certificate_id: str) -> None:
        """Destroy the content's DEK, forget its documents, leave a tombstone. One step."""
        with self._tx():
            self._db.execute("DELETE FROM data_keys WHERE content_hash = ?", (content_hash,))
            # an earlier failed parse of the same path must not keep its name either
            self._db.execute("DELETE FROM failures WHERE path IN (SELECT path FROM documents "
                             "WHERE content_hash = ?)", (content_hash,))
            self._db.execute("DELETE FROM documents WHERE content_hash = ?", (content_hash,))
            self._db.execute("DELETE FROM contents WHERE content_hash = ?", (content_hash,))
            self._db.execute("INSERT OR REPLACE INTO tombstones VALUES (?, ?, ?, ?)",
                             (content_hash, time.time(), erased_by, certificate_id))

    def purge_journal(self) -> None:
        """Checkpoint and truncate the write-ahead log: no old page survives in it."""
        self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    def lift_tombstone(self, content_hash: str) -> None:
        with self._tx():
            self._db.execute("DELETE FROM tombstones WHERE content_hash = ?", (content_hash,))

    # -- failures ----------------------------------------------------------------------
    def failure(self, path: str) -> FailureRecord | None:
        row = self._db.execute(
            "SELECT path, size, mtime_ns, error, message FROM failures WHERE path = ?",
            (path,)).fetchone()
        return FailureRecord(*row) if row else None

    def record_failure(self, path: str, size: int, mtime_ns: int, error: str, message: str) -> None:
        with self._tx():
            self._db.execute(
                "INSERT OR REPLACE INTO failures VALUES (?, ?, ?, ?, ?, ?)",
                (path, size, mtime_ns, error, message, time.time()))

    # -- statistics and metadata -------------------------------------------------------
    def stats(self) -> dict[str, object]:
        docs = self._db.execute("SELECT COUNT(*) FROM documents").fetchone()[0]
        contents, chunks, pages = self._db.execute(
            "SELECT COUNT(*), COALESCE(SUM(chunks), 0), COALESCE(SUM(pages), 0) "
            "FROM contents WHERE status = 'indexed'").fetchone()
        formats = dict(self._db.execute(
            "SELECT format, COUNT(*) FROM documents GROUP BY format ORDER BY format").fetchall())
        failures = self._db.execute("SELECT COUNT(*) FROM failures").fetchone()[0]
        return {"documents": docs, "distinct_contents": contents, "chunks": chunks,
                "pages": pages, "formats": formats, "failures": failures}

    def get_meta(self, key: str) -> str | None:
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    def set_meta(self, key: str, value: str) -> None:
        with self._tx():
            self._db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, value))

    # -- helpers -----------------------------------------------------------------------
    def _tx(self) -> _Transaction:
        return _Transaction(self._db)


class _Transaction:
    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def __enter__(self) -> None:
        self._db.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        self._db.execute("COMMIT" if exc_type is None else "ROLLBACK")
