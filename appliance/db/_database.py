"""The metadata database: one engine, short transactions, migrations at open.

SQLite (the embedded default, ``sqlite:///<path>``) or PostgreSQL
(``postgresql+psycopg://…``). Every unit of work runs in :meth:`Database.session`: committed
when the block ends, rolled back when it raises, so nothing half-written stays. The engine's
pool and the session factory are thread-safe; each thread uses its own session.

SQLite runs in WAL mode with ``synchronous=FULL`` (a commit survives a power cut),
foreign keys enforced, ``secure_delete`` (deleted rows are overwritten, not left in free
pages), a busy timeout, and every transaction begun ``IMMEDIATE`` (it takes the write lock
at once, so two writers queue instead of failing on a lock upgrade). The file is created
with mode 0600; SQLite gives its ``-wal`` and ``-shm`` files the same mode.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event, make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from security import GreffierError

MIGRATIONS = Path(__file__).with_name("migrations")
_SQLITE_PRAGMAS = ("journal_mode=WAL", "synchronous=FULL", "foreign_keys=ON",
                   "secure_delete=ON", "busy_timeout=10000")


class DatabaseError(GreffierError):
    """The metadata database cannot be opened, migrated or read."""


class Database:
    """The metadata database at ``url``. Call :meth:`migrate` before first use."""

    def __init__(self, url: str) -> None:
        try:
            parsed = make_url(url)
        except ArgumentError as exc:
            raise DatabaseError(f"Not a database URL: {exc}",
                                hint="Use sqlite:///<path> or postgresql+psycopg://…") from exc
        self.backend = parsed.get_backend_name()
        if self.backend == "sqlite":
            if not parsed.database or parsed.database == ":memory:":
                raise DatabaseError("An in-memory SQLite database would lose every account.",
                                    hint="Use sqlite:///<path to a file>.")
            _create_private(Path(parsed.database))
            self.engine: Engine = create_engine(parsed, pool_pre_ping=True)
            event.listen(self.engine, "connect", _sqlite_connect)
            event.listen(self.engine, "begin", _sqlite_begin)
        elif self.backend == "postgresql":
            if parsed.get_driver_name() != "psycopg":
                raise DatabaseError(f"Unsupported PostgreSQL driver {parsed.drivername!r}.",
                                    hint="Write the URL as postgresql+psycopg://…")
            self.engine = create_engine(parsed, pool_pre_ping=True)
        else:
            raise DatabaseError(f"Unsupported database {self.backend!r}.",
                                hint="Use sqlite:///<path> or postgresql+psycopg://…")
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)

    @contextmanager
    def session(self) -> Iterator[Session]:
        """One transaction: committed at the end of the block, rolled back if it raises."""
        with self._sessions.begin() as session:
            yield session

    def migrate(self) -> None:
        """Bring the schema to the newest version (Alembic ``upgrade head``). Idempotent:
        a database already there is left as it is."""
        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS))
        try:
            with self.engine.begin() as connection:
                config.attributes["connection"] = connection
                command.upgrade(config, "head")
        except SQLAlchemyError as exc:
            raise DatabaseError(f"Cannot migrate the metadata database: {exc}",
                                hint="Check the database URL and that the server is up; "
                                "restore the database from its backup if it is damaged.") from exc

    def revision(self) -> str | None:
        """The schema version the database is at (None before the first migration)."""
        from alembic.runtime.migration import MigrationContext

        with self.engine.connect() as connection:
            return MigrationContext.configure(connection).get_current_revision()

    def purge_journal(self) -> None:
        """SQLite: checkpoint and truncate the write-ahead log, so deleted rows survive in no
        old page of it (``secure_delete`` already overwrites them in the file). PostgreSQL
        keeps its own WAL and dead tuples, which the appliance cannot overwrite: nothing is
        stored there that erasure must destroy (``security/_dekstore.py``)."""
        if self.backend != "sqlite":
            return
        raw = self.engine.raw_connection()
        try:
            raw.cursor().execute("PRAGMA wal_checkpoint(TRUNCATE)")
        finally:
            raw.close()

    def close(self) -> None:
        """Close every pooled connection."""
        self.engine.dispose()


def _create_private(path: Path) -> None:
    """Create the database file with mode 0600 (before SQLite creates it with the umask's)."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_CREAT | os.O_RDWR | os.O_CLOEXEC, 0o600)
    os.close(fd)
    if path.stat().st_mode & 0o077:
        os.chmod(path, 0o600)


def _sqlite_connect(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.isolation_level = None  # SQLAlchemy's "begin" hook issues BEGIN
    cursor = dbapi_connection.cursor()
    for pragma in _SQLITE_PRAGMAS:
        cursor.execute(f"PRAGMA {pragma}")
    cursor.close()


def _sqlite_begin(connection: Any) -> None:
    connection.exec_driver_sql("BEGIN IMMEDIATE")
