"""The audit log: Merkle known answers, tamper evidence, fail-closed, receipts."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from appliance import Appliance
from security import AuditError, Keyring, verify_log, verify_receipt
from security._merkle import inclusion_proof, leaf_hash, root, verify_inclusion

from conftest import make_settings, open_appliance

CT_LEAVES = [b"", b"\x00", b"\x10", b"\x20\x21", b"\x30\x31", b"\x40\x41\x42\x43",
             bytes(range(0x50, 0x58)), bytes(range(0x60, 0x70))]


@pytest.mark.unit
def test_merkle_known_answers_from_certificate_transparency() -> None:
    leaves = [leaf_hash(d) for d in CT_LEAVES]
    assert leaves[0].hex() == "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"
    assert root(leaves).hex() == "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328"
    assert root([]).hex() == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    for size in range(1, 9):
        tree = root(leaves[:size])
        for index in range(size):
            proof = inclusion_proof(index, leaves[:size])
            assert verify_inclusion(leaves[index], index, size, proof, tree)
            assert not verify_inclusion(leaves[index], index, size, proof, leaf_hash(b"x"))


@pytest.fixture
def audited(tmp_path: Path) -> Iterator[tuple[Appliance, Path]]:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.txt").write_text("The server room door code is changed every quarter.")
    (docs / "b.md").write_text("# Astreinte\n\nLe numéro d'astreinte informatique est affiché.")
    app = open_appliance(make_settings(tmp_path / "data"))
    app.ingest([docs])
    yield app, docs
    app.close()


def _lines(app: Appliance) -> tuple[list[str], list[str]]:
    folder = app.settings.data_dir / "audit"
    heads = folder / "heads.jsonl"
    return ((folder / "log.jsonl").read_text().splitlines(),
            heads.read_text().splitlines() if heads.exists() else [])


@pytest.mark.integration
def test_operations_are_recorded_and_questions_are_sealed(audited: tuple[Appliance, Path]
                                                          ) -> None:
    app, _ = audited
    question = "Who changes the server room door code?"
    result, receipt = app.search(question, k=2)
    assert result.passages
    app.audit.sign_head()
    log, heads = _lines(app)
    events = [json.loads(line)["event"] for line in log]
    assert events[:3] == ["init", "unseal", "ingest.begin"]
    assert events.count("ingest.indexed") == 2 and "ingest.end" in events
    assert events[-1] == "search"
    search = json.loads(log[-1])
    assert search["details"]["passages"][0]["chunk_id"] == result.passages[0].chunk_id
    assert app.audit.open_secret(search) == {"question": question}
    raw = (app.settings.data_dir / "audit" / "log.jsonl").read_bytes()
    assert b"server room door" not in raw and b"Who changes" not in raw
    public = Keyring(app.settings.data_dir).public_key()
    report = verify_log(log, heads, public)
    assert report.ok and report.entries == len(log) and report.heads >= 1
    # The receipt verifies offline with the public key only, and detects any change.
    assert verify_receipt(receipt, public) == (True, "valid")
    assert receipt["passages"][0]["content_sha256"] == result.passages[0].content_hash
    assert not verify_receipt({**receipt, "user": "mallory"}, public)[0]
    forged = json.loads(json.dumps(receipt))
    forged["audit"]["leaf_hash"] = "00" * 32
    assert not verify_receipt(forged, public)[0]


def _tamper(lines: list[str], how: str) -> tuple[list[str], int]:
    out = list(lines)
    if how == "change":
        entry = json.loads(out[3])
        entry["user"] = "someone-else"
        out[3] = json.dumps(entry, sort_keys=True, separators=(",", ":"))
        return out, 3
    if how == "delete":
        del out[3]
        return out, 3
    if how == "reorder":
        out[3], out[4] = out[4], out[3]
        return out, 3
    if how == "truncate":
        return out[:-2], len(out) - 2
    raise AssertionError(how)


@pytest.mark.integration
@pytest.mark.parametrize("how", ["change", "delete", "reorder", "truncate"])
def test_tampering_is_detected_and_the_entry_named(audited: tuple[Appliance, Path],
                                                   how: str) -> None:
    app, _ = audited
    app.search("door code", k=1)
    app.audit.sign_head()
    log, heads = _lines(app)
    public = Keyring(app.settings.data_dir).public_key()
    assert verify_log(log, heads, public).ok
    bad, index = _tamper(log, how)
    report = verify_log(bad, heads, public)
    assert not report.ok
    assert report.bad_index == index, report.problem
    assert str(index) in report.problem


@contextmanager
def _read_only(folder: Path) -> Iterator[None]:
    """Root ignores permissions: make the folder and its files immutable instead."""
    targets = [folder, *folder.iterdir()]
    if os.geteuid() == 0 and shutil.which("chattr"):
        subprocess.run(["chattr", "+i", *map(str, targets)], check=True)
        try:
            yield
        finally:
            subprocess.run(["chattr", "-i", *map(str, targets)], check=True)
    else:
        for target in targets:
            target.chmod(0o500 if target.is_dir() else 0o400)
        try:
            yield
        finally:
            for target in targets:
                target.chmod(0o700 if target.is_dir() else 0o600)


@pytest.mark.integration
def test_fail_closed_when_the_audit_log_cannot_be_written(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "c.txt").write_text("Expense claims are filed within thirty days of travel.")
    app = open_appliance(make_settings(tmp_path / "data"))
    try:
        with _read_only(app.settings.data_dir / "audit"):
            with pytest.raises(AuditError, match="refused") as err:
                app.ingest([docs])
            assert "writable" in (err.value.hint or "")
            assert app.store.count() == 0  # nothing was indexed
            assert app.catalog.stats()["documents"] == 0
            with pytest.raises(AuditError):
                app.search("expense claims")
            with pytest.raises(AuditError):  # refused before retrieval or any model call
                app.ask("When are expense claims filed?")
        app.ingest([docs])  # writable again: it works
        assert app.store.count() == 1
    finally:
        app.close()
