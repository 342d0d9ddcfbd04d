"""The catalog on the metadata database (SQLite and a real PostgreSQL), the data-key store,
and the in-place upgrade of a data directory from the first catalog (``catalog.sqlite3``)."""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from sqlalchemy import select

from appliance import Appliance
from appliance._compose import DEKS_NAME
from appliance.db import AeadSealer, Database, DocumentRow, SqlCatalog, lookup_key
from appliance.db._legacy import MARKER, upgrade_legacy_catalog
from security import SqliteDekStore

from conftest import KEKS, make_settings, open_appliance

SECRET_PATH = "/srv/rh/licenciement-dupont.docx"
ACL = ("g:rh",)

# The first catalog's schema, as main wrote it before the metadata database existed.
LEGACY_SCHEMA = """
CREATE TABLE contents (content_hash TEXT PRIMARY KEY, status TEXT NOT NULL, format TEXT NOT
    NULL, pages INTEGER NOT NULL DEFAULT 0, chunks INTEGER NOT NULL DEFAULT 0, model_id TEXT
    NOT NULL, indexed_at REAL);
CREATE TABLE documents (doc_id TEXT PRIMARY KEY, path TEXT NOT NULL UNIQUE, content_hash TEXT
    NOT NULL REFERENCES contents(content_hash), version INTEGER NOT NULL, size INTEGER NOT
    NULL, mtime_ns INTEGER NOT NULL, format TEXT NOT NULL, updated_at REAL NOT NULL);
CREATE TABLE failures (path TEXT PRIMARY KEY, size INTEGER NOT NULL, mtime_ns INTEGER NOT
    NULL, error TEXT NOT NULL, message TEXT NOT NULL, seen_at REAL NOT NULL);
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE data_keys (content_hash TEXT NOT NULL, kek_id INTEGER NOT NULL, wrapped BLOB NOT
    NULL, PRIMARY KEY (content_hash, kek_id));
CREATE TABLE tombstones (content_hash TEXT PRIMARY KEY, erased_at REAL NOT NULL, erased_by
    TEXT NOT NULL, certificate_id TEXT NOT NULL);
"""


@pytest.fixture
def catalog(db_url: str) -> Iterator[SqlCatalog]:
    db = Database(db_url)
    db.migrate()
    key = os.urandom(32)
    yield SqlCatalog(db, AeadSealer(key), lookup_key(key))
    db.close()


def test_versions_dedupe_and_recovery(catalog: SqlCatalog) -> None:
    catalog.begin_content("h1", "txt", "m")
    assert catalog.unfinished_contents() == ["h1"]
    catalog.finish_content("h1", 1, 3)
    assert catalog.content_status("h1") == ("indexed", "m")
    assert catalog.link("/a.txt", "h1", 10, 1, "txt", ACL) is None
    assert catalog.link("/b.txt", "h1", 10, 1, "txt", ACL) is None
    assert [d.path for d in catalog.documents_of("h1")] == ["/a.txt", "/b.txt"]
    catalog.begin_content("h2", "txt", "m")
    catalog.finish_content("h2", 1, 2)
    assert catalog.link("/a.txt", "h2", 11, 2**62, "txt", ACL) == "h1"  # ns mtimes need 64 bits
    doc = catalog.document("/a.txt")
    assert doc is not None and doc.version == 2 and doc.mtime_ns == 2**62
    assert catalog.document_by_id(doc.doc_id) == doc
    assert catalog.link("/a.txt", "h2", 11, 3, "txt", ACL) is None  # touched: same version
    assert catalog.document("/a.txt").version == 2  # type: ignore[union-attr]
    assert catalog.unlink("/b.txt") == "h1"
    assert not catalog.is_referenced("h1")
    catalog.drop_content("h1")
    assert catalog.content_hashes() == {"h2"}
    stats = catalog.stats()
    assert stats["documents"] == 1 and stats["chunks"] == 2
    assert stats["formats"] == {"txt": 1}
    assert catalog.stale_contents("m") == [] and catalog.stale_contents("other") == ["h2"]


def test_failures_erasure_and_facts(catalog: SqlCatalog) -> None:
    catalog.record_failure("/bad.pdf", 5, 6, "ParseFailedError", "broken xref in bad.pdf")
    failure = catalog.failure("/bad.pdf")
    assert failure is not None and failure.message == "broken xref in bad.pdf"
    catalog.begin_content("h", "pdf", "m")
    catalog.finish_content("h", 2, 4)
    catalog.link("/bad.pdf", "h", 7, 8, "pdf", ACL)
    assert catalog.failure("/bad.pdf") is None  # a success forgets the failure
    catalog.erase_content("h", "alice", "cert-1")
    assert catalog.documents_of("h") == [] and catalog.content_status("h") is None
    tomb = catalog.tombstone("h")
    assert tomb is not None and (tomb.erased_by, tomb.certificate_id) == ("alice", "cert-1")
    catalog.lift_tombstone("h")
    assert catalog.tombstone("h") is None
    catalog.set_meta("last_ingest", "1")
    catalog.set_meta("last_ingest", "2")
    assert catalog.get_meta("last_ingest") == "2" and catalog.get_meta("nope") is None
    catalog.purge_journal()


def test_paths_and_messages_are_never_stored_in_clear(catalog: SqlCatalog,
                                                       db_url: str) -> None:
    catalog.begin_content("h", "docx", "m")
    catalog.link(SECRET_PATH, "h", 1, 1, "docx", ACL)
    catalog.record_failure("/srv/rh/avertissement-martin.pdf", 1, 1, "E",
                           "cannot parse avertissement-martin.pdf")
    with catalog._db.session() as s:  # what a database administrator reads
        row = s.scalar(select(DocumentRow))
        assert row is not None and b"dupont" not in row.path_sealed
        assert len(row.path_mac) == 64
    if db_url.startswith("sqlite"):
        catalog.purge_journal()
        raw = Path(db_url.removeprefix("sqlite:///")).read_bytes()
        assert b"dupont" not in raw and b"martin" not in raw
    # A row moved to another id fails to open instead of naming another file.
    with catalog._db.session() as s:
        s.add(DocumentRow(doc_id="forged", path_mac="0" * 64, path_sealed=row.path_sealed,
                          content_hash="h", version=1, size=1, mtime_ns=1, format="docx",
                          updated_at=1.0))
    with pytest.raises(Exception, match="cannot be opened"):
        catalog.document_by_id("forged")


def test_dek_store_destroys_and_sweeps(tmp_path: Path) -> None:
    deks = SqliteDekStore(tmp_path / "k.sqlite3")
    assert (tmp_path / "k.sqlite3").stat().st_mode & 0o077 == 0
    deks.put_wrapped_dek("a", 1, b"A" * 60)
    deks.put_wrapped_dek("b", 1, b"B" * 60)
    deks.add_wrapped_deks(2, [("a", b"C" * 60)])
    assert deks.wrapped_dek("a", 2) == b"C" * 60
    deks.drop_other_wrapped_deks(2)
    assert deks.wrapped_dek("a", 1) is None and deks.wrapped_deks(2) == [("a", b"C" * 60)]
    assert deks.retain({"a"}) == 0 and deks.retain(set()) == 1
    assert not deks.destroy("a") and deks.wrapped_deks(2) == []
    deks.put_wrapped_dek("c", 1, b"D" * 60)
    assert deks.destroy("c")
    deks.purge_journal()
    deks.close()
    assert b"D" * 60 not in (tmp_path / "k.sqlite3").read_bytes()


def _legacy_file(path: Path, rows: dict[str, list[tuple[object, ...]]]) -> None:
    con = sqlite3.connect(path)
    con.executescript(LEGACY_SCHEMA)
    for table, values in rows.items():
        for row in values:
            con.execute(f"INSERT INTO {table} VALUES ({', '.join('?' * len(row))})", row)
    con.commit()
    con.close()


def test_a_legacy_catalog_file_moves_and_an_interruption_resumes(catalog: SqlCatalog,
                                                                  tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    _legacy_file(data / "catalog.sqlite3", {
        "contents": [("h", "indexed", "txt", 1, 3, "m", 1.0)],
        "documents": [("d1", SECRET_PATH, "h", 2, 10, 2**61, "txt", 1.0)],
        "failures": [("/x.pdf", 1, 2, "ParseFailedError", "bad x.pdf", 1.0)],
        "meta": [("last_ingest", "5")],
        "data_keys": [("h", 1, b"W" * 60)],
        "tombstones": [("gone", 1.0, "bob", "cert-9")]})
    deks_path = data / DEKS_NAME
    assert upgrade_legacy_catalog(data, catalog, deks_path) == 1
    doc = catalog.document(SECRET_PATH)
    assert doc is not None and (doc.doc_id, doc.version, doc.mtime_ns) == ("d1", 2, 2**61)
    assert catalog.failure("/x.pdf").message == "bad x.pdf"  # type: ignore[union-attr]
    assert catalog.tombstone("gone").certificate_id == "cert-9"  # type: ignore[union-attr]
    assert catalog.get_meta("last_ingest") == "5" and catalog.get_meta(MARKER) == "1"
    assert not (data / "catalog.sqlite3").exists()
    assert b"licenciement" not in deks_path.read_bytes()  # the dropped tables left no page
    deks = SqliteDekStore(deks_path)
    assert deks.wrapped_dek("h", 1) == b"W" * 60
    deks.close()
    assert upgrade_legacy_catalog(data, catalog, deks_path) == 0  # nothing left to do
    # Interrupted after the rows moved but before the file was cut down: resumes, no copy.
    deks_path.unlink()
    _legacy_file(data / "catalog.sqlite3", {
        "contents": [("h", "indexed", "txt", 1, 3, "m", 1.0)],
        "documents": [("d1", SECRET_PATH, "h", 2, 10, 1, "txt", 1.0)],
        "data_keys": [("h", 1, b"W" * 60)]})
    assert upgrade_legacy_catalog(data, catalog, deks_path) == 0
    assert catalog.stats()["documents"] == 1 and deks_path.exists()


@pytest.mark.integration
def test_an_old_data_directory_opens_in_place(tmp_path: Path) -> None:
    """A data directory written before the metadata database (its catalog rebuilt here in
    the old layout from a real ingest) opens: same documents, searchable, originals
    readable, and erasable."""
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.md").write_text("# Congés\n\nLes congés payés durent vingt-cinq jours ouvrés.")
    (docs / "b.txt").write_text("The parking badge is renewed every January at the desk.")
    settings = make_settings(tmp_path / "data")
    Appliance.init(settings, KEKS)
    with open_appliance(settings) as app:
        app.ingest([docs])
        before = {d.path: d for d in app.catalog.documents()}
        status = {h: app.catalog.content_status(h) for h in app.catalog.content_hashes()}
        keys = app.deks.wrapped_deks(app.keys.kek_id)
        kek_id = app.keys.kek_id
    data = settings.data_dir
    (data / DEKS_NAME).unlink()
    for name in ("greffier.db", "greffier.db-wal", "greffier.db-shm"):
        (data / name).unlink(missing_ok=True)
    _legacy_file(data / "catalog.sqlite3", {
        "contents": [(h, st, "txt", 1, 1, model, 1.0)
                     for h, (st, model) in status.items()],  # type: ignore[misc]
        "documents": [(d.doc_id, d.path, d.content_hash, d.version, d.size, d.mtime_ns,
                       d.format, 1.0) for d in before.values()],  # no access entries then
        "data_keys": [(h, kek_id, blob) for h, blob in keys]})
    with open_appliance(settings) as app:
        after = {d.path: d for d in app.catalog.documents()}
        # Documents from before access control are readable by nobody until granted.
        assert {p: replace(d, acl=()) for p, d in before.items()} == after
        for doc in after.values():
            app.set_access(doc.doc_id, app.operator_acl)
        result, _ = app.search("parking badge renewed", k=2)
        assert result.passages and "January" in result.passages[0].text
        doc = before[str((docs / "a.md").resolve())]
        assert b"vingt-cinq" in b"".join(app.original(doc.content_hash))
    assert not (data / "catalog.sqlite3").exists() and (data / DEKS_NAME).exists()
