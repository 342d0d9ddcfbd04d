"""The metadata database: migrations, SQLite's settings, transactions, threads, and the
sealed-column envelope. Runs on SQLite and on a real PostgreSQL (``db_url``)."""

from __future__ import annotations

import os
import stat
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import func, inspect, select, text
from sqlalchemy.exc import IntegrityError

from appliance.db import AeadSealer, Base, Database, DatabaseError, Group, SessionRow, field_aad

TABLES = {"users", "groups", "memberships", "api_tokens", "sessions", "answers",
          "conversations", "messages", "feedback", "sources", "contents", "documents",
          "ingest_failures", "tombstones", "catalog_meta"}
HEAD = "0006"  # the newest migration


@pytest.fixture
def db(db_url: str) -> Iterator[Database]:
    database = Database(db_url)
    database.migrate()
    yield database
    database.close()


def test_migrate_creates_the_schema_and_is_idempotent(db_url: str) -> None:
    first = Database(db_url)
    assert first.revision() is None
    first.migrate()
    assert first.revision() == HEAD
    assert set(inspect(first.engine).get_table_names()) >= TABLES
    with first.session() as s:
        s.add(Group(id="g1", name="legal", created_at=1.0))
    first.migrate()  # again, on a database with data
    first.close()
    second = Database(db_url)  # as at the next start
    second.migrate()
    with second.session() as s:
        assert s.scalars(select(Group.name)).all() == ["legal"]
    assert second.revision() == HEAD
    second.close()


def test_the_migration_matches_the_models(db: Database) -> None:
    with db.engine.connect() as connection:
        diff = compare_metadata(MigrationContext.configure(connection,
                                                           opts={"compare_type": True}),
                                Base.metadata)
    assert diff == []


def test_a_failed_transaction_leaves_nothing(db: Database) -> None:
    with pytest.raises(RuntimeError), db.session() as s:
        s.add(Group(id="g1", name="legal", created_at=1.0))
        s.flush()
        raise RuntimeError("crash in the middle")
    with db.session() as s:
        assert s.scalar(select(func.count()).select_from(Group)) == 0


def test_foreign_keys_are_enforced(db: Database) -> None:
    with pytest.raises(IntegrityError), db.session() as s:
        s.add(SessionRow(id="0" * 64, user_id="nobody", csrf_hash="0" * 64, mfa=False,
                         created_at=1.0, last_seen_at=1.0, expires_at=2.0))


def test_many_threads_write_at_once(db: Database) -> None:
    errors: list[BaseException] = []

    def work(worker: int) -> None:
        try:
            for number in range(15):
                with db.session() as s:
                    s.add(Group(id=uuid.uuid4().hex, name=f"g{worker}-{number}",
                                created_at=time.time()))
                with db.session() as s:  # read-modify-write under contention
                    s.scalar(select(func.count()).select_from(Group))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    with db.session() as s:
        assert s.scalar(select(func.count()).select_from(Group)) == 8 * 15


@pytest.mark.unit
def test_sqlite_file_settings(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "metadata.db"
    db = Database(f"sqlite:///{path}")
    db.migrate()
    with db.engine.connect() as connection:
        pragmas = {name: connection.exec_driver_sql(f"PRAGMA {name}").scalar()
                   for name in ("journal_mode", "synchronous", "foreign_keys", "secure_delete")}
    assert pragmas == {"journal_mode": "wal", "synchronous": 2, "foreign_keys": 1,
                       "secure_delete": 1}
    with db.session() as s:
        s.add(Group(id="g1", name="legal", created_at=1.0))
    for file in [path, *path.parent.glob("metadata.db-*")]:
        assert stat.S_IMODE(file.stat().st_mode) == 0o600, file
    db.close()


@pytest.mark.unit
@pytest.mark.parametrize("url", ["mysql://localhost/x", "sqlite://", "sqlite:///:memory:",
                                 "postgresql+psycopg2://localhost/x", "not a url"])
def test_unsupported_urls_are_refused(url: str) -> None:
    with pytest.raises(DatabaseError) as caught:
        Database(url)
    assert caught.value.hint


@pytest.mark.integration
def test_an_unreachable_server_gives_a_clear_error(tmp_path: Path) -> None:
    db = Database(f"postgresql+psycopg://postgres@/x?host={tmp_path}&port=1")
    with pytest.raises(DatabaseError) as caught:
        db.migrate()
    assert "migrate" in caught.value.message and caught.value.hint
    db.close()


# -- sealed columns --------------------------------------------------------------------
@pytest.mark.unit
def test_sealer_round_trip_and_tampering() -> None:
    sealer = AeadSealer(os.urandom(32))
    aad = field_aad("messages", "m1", "content")
    blob = sealer.seal("Quelle est la procédure ?".encode(), aad)
    assert blob[0] == 1 and len(blob) == 1 + 12 + len("Quelle est la procédure ?".encode()) + 16
    assert sealer.open(blob, aad) == "Quelle est la procédure ?".encode()
    assert sealer.seal(b"same", aad) != sealer.seal(b"same", aad)  # fresh nonce each time
    flipped = blob[:20] + bytes([blob[20] ^ 1]) + blob[21:]
    moved = field_aad("messages", "m2", "content")
    other = AeadSealer(os.urandom(32))
    for bad in (lambda: sealer.open(flipped, aad), lambda: sealer.open(blob, moved),
                lambda: other.open(blob, aad), lambda: sealer.open(b"\x02" + blob[1:], aad),
                lambda: sealer.open(blob[:10], aad)):
        with pytest.raises(DatabaseError) as caught:
            bad()
        assert "messages/m" in caught.value.message and caught.value.hint


def test_raw_sql_sees_only_what_was_written(db: Database) -> None:
    """The engine, not only the ORM, reads the committed rows (both back-ends)."""
    with db.session() as s:
        s.add(Group(id="g1", name="legal", created_at=1.0))
    with db.engine.connect() as connection:
        assert connection.execute(text("SELECT name FROM groups")).scalars().all() == ["legal"]
