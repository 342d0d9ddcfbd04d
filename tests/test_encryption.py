"""Encryption at rest and crypto-erasure, on the real appliance."""

from __future__ import annotations

import base64
import json
import os
import subprocess
from pathlib import Path

import pytest

from appliance import Appliance
from appliance._appliance import rotate_kek
from appliance._erase import erase
from retrieval import SearchFilter
from security import KekSource, Keyring, SealedError, verify

from conftest import KEKS, make_settings, open_appliance

pytestmark = pytest.mark.integration

CANARIES = ["CANARY-QX7-TOPAZE", "CANARI-ZW3-OPALINE", "CANARY-LM9-ONYX"]


def _write_canaries(folder: Path) -> dict[str, str]:
    folder.mkdir(parents=True, exist_ok=True)
    files = {
        "vault.txt": f"The vault combination is {CANARIES[0]}. Only the director knows it.",
        "coffre.md": f"# Coffre-fort\n\nLa combinaison du coffre est {CANARIES[1]}, connue "
                     "de la seule direction.",
        "minutes.html": f"<h1>Board minutes</h1><p>The acquisition code name is {CANARIES[2]}."
                        "</p>",
        "other.txt": "The cafeteria opens at noon and closes at two in the afternoon.",
    }
    for name, text in files.items():
        (folder / name).write_text(text, encoding="utf-8")
    return files


def _scan(root: Path, needles: list[bytes]) -> list[tuple[str, bytes]]:
    """Every file under root (segments, WALs, databases, temp files), raw bytes."""
    found = []
    for path in root.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            found += [(str(path), n) for n in needles if n in data]
    return found


def _needles(text: str) -> list[bytes]:
    return [text.encode(), text.encode("utf-16-le"), text.lower().encode()]


def test_no_canary_in_clear_anywhere_on_disk(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    _write_canaries(docs)
    settings = make_settings(tmp_path / "data")
    with open_appliance(settings) as app:
        report = app.ingest([docs])
        assert report.count("indexed") == 4
        for canary in CANARIES:
            passages = app.searcher.search(canary,
                                           scope=app.operator_scope, k=3, mode="bm25").passages
            assert canary in passages[0].text  # searchable (BM25 on keyed term ids) ...
        worker_tmp = app.indexer.worker._tmp
        # The original is kept, encrypted, and comes back byte for byte.
        original = docs / "vault.txt"
        doc = app.catalog.document(str(original.resolve()))
        assert doc is not None
        assert app.export(doc.content_hash, tmp_path / "out.txt") == original.stat().st_size
        assert (tmp_path / "out.txt").read_bytes() == original.read_bytes()
        assert len(list((settings.data_dir / "blobs").rglob("*.blob"))) == 4
    # ... yet nowhere in clear: Qdrant segments and WAL, SQLite and its WAL, keyring, blobs.
    needles = [n for c in CANARIES for n in _needles(c)]
    assert _scan(settings.data_dir, needles) == []
    # Not the words either (sections, stems): the index does not spell out the vocabulary.
    assert _scan(settings.data_dir, [b"combination", b"combinaison", b"acquisition"]) == []
    # The parser's RAM scratch folder is gone with the worker.
    assert worker_tmp is not None and not Path(worker_tmp).exists()


def test_erasure_is_final_and_certified(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    _write_canaries(docs)
    settings = make_settings(tmp_path / "data")
    with open_appliance(settings) as app:
        app.ingest([docs])
        doc = app.catalog.document(str((docs / "vault.txt").resolve()))
        assert doc is not None
        wrapped = app.deks.wrapped_dek(doc.content_hash, app.keys.kek_id)
        assert wrapped is not None
        certificate = erase(app, str(docs / "vault.txt"), erased_by="alice")
        # The data key is gone from the key store ...
        assert app.deks.wrapped_dek(doc.content_hash, app.keys.kek_id) is None
        assert app.store.count(SearchFilter(content_hashes=(doc.content_hash,))) == 0
        # ... and search never returns the passage again, in any mode.
        for mode in ("bm25", "dense", "hybrid"):
            hits = app.searcher.search(f"vault combination {CANARIES[0]}",
                                       scope=app.operator_scope, k=10,
                                       mode=mode).passages  # type: ignore[arg-type]
            assert all(CANARIES[0] not in p.text for p in hits)
        # A re-sync of the folder does not bring it back ...
        report = app.ingest([docs], sync=True)
        skipped = [o for o in report.outcomes if o.status == "skipped"]
        assert [Path(o.path).name for o in skipped] == ["vault.txt"]
        assert certificate["certificate_id"] in skipped[0].message
        assert all(CANARIES[0] not in p.text
                   for p in app.searcher.search(CANARIES[0], scope=app.operator_scope,
                                                k=10, mode="bm25").passages)
    # ... and the wrapped key survives nowhere on disk (SQLite free pages, WAL): even with
    # the KEK, nothing can decrypt what was erased.
    assert _scan(settings.data_dir, [wrapped, base64.b64encode(wrapped)]) == []
    public = Keyring(settings.data_dir).public_key()
    assert verify(certificate, public)
    assert certificate["erased_by"] == "alice"
    assert certificate["destroyed"]["points_remaining"] == 0
    assert certificate["destroyed"]["points_deleted"] >= 1
    assert certificate["destroyed"]["original_blob_deleted"] is True
    assert not list((settings.data_dir / "blobs").rglob(f"{doc.content_hash}.blob"))
    saved = settings.data_dir / "certificates" / f"{certificate['certificate_id']}.json"
    assert verify(json.loads(saved.read_text()), public)
    assert not verify({**certificate, "content_sha256": "0" * 64}, public)
    # Asked explicitly, the content can come back (with a new data key).
    with Appliance.open(settings, KEKS) as app:
        back = app.ingest([docs], readmit_erased=True)
        assert [Path(o.path).name for o in back.outcomes if o.status == "indexed"] == [
            "vault.txt"]
        assert CANARIES[0] in app.searcher.search(CANARIES[0], scope=app.operator_scope,
                                                  k=1, mode="bm25").passages[0].text


def test_rotation_keeps_everything_readable_and_the_old_passphrase_stops(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    _write_canaries(docs)
    settings = make_settings(tmp_path / "data")
    with open_appliance(settings) as app:
        app.ingest([docs])
        assert rotate_kek(app, KekSource("passphrase", "a brand new passphrase")) == 4
        assert CANARIES[1] in app.searcher.search(CANARIES[1],
                                                  scope=app.operator_scope, k=1).passages[0].text
    with pytest.raises(SealedError, match="Wrong passphrase"):
        Appliance.open(settings, KEKS)
    with Appliance.open(settings, KekSource("passphrase", "a brand new passphrase")) as app:
        for canary in CANARIES:
            assert canary in app.searcher.search(canary, scope=app.operator_scope,
                                                 k=1, mode="bm25").passages[0].text
        assert len(app.deks.wrapped_deks(app.keys.kek_id)) == 4
        assert app.deks.wrapped_deks(app.keys.kek_id - 1) == []


def test_sealed_appliance_refuses_content_operations(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "data")
    with pytest.raises(SealedError, match="greffier init"):
        Appliance.open(settings, KEKS)
    Appliance.init(settings, KEKS)
    Appliance.open(settings, KEKS).close()  # creates the audit log
    with pytest.raises(SealedError, match="Wrong passphrase"):
        Appliance.open(settings, KekSource("passphrase", "guess"), user="mallory")
    with Appliance.open(settings, KEKS) as app:  # the failed attempt is on record
        lines = (settings.data_dir / "audit" / "log.jsonl").read_text().splitlines()
        failed = [json.loads(line) for line in lines if '"unseal.failed"' in line]
        assert len(failed) == 1 and failed[0]["user"] == "mallory"
        assert "Wrong passphrase" in failed[0]["details"]["reason"]
        app.audit.sign_head()
    from security import verify_log

    heads = (settings.data_dir / "audit" / "heads.jsonl").read_text().splitlines()
    lines = (settings.data_dir / "audit" / "log.jsonl").read_text().splitlines()
    assert verify_log(lines, heads, Keyring(settings.data_dir).public_key()).ok


SOFTHSM = Path("/usr/lib/softhsm/libsofthsm2.so")


@pytest.mark.skipif(not SOFTHSM.exists(), reason="softhsm2 is not installed")
def test_pkcs11_kek_in_softhsm(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    tokens = tmp_path / "tokens"
    tokens.mkdir()
    conf = tmp_path / "softhsm2.conf"
    conf.write_text(f"directories.tokendir = {tokens}\nobjectstore.backend = file\n")
    monkeypatch.setenv("SOFTHSM2_CONF", str(conf))
    subprocess.run(["softhsm2-util", "--init-token", "--free", "--label", "greffier",
                    "--pin", "1234", "--so-pin", "5678"], check=True, capture_output=True,
                   env={**os.environ, "SOFTHSM2_CONF": str(conf)})
    source = KekSource("pkcs11", "1234", str(SOFTHSM), "greffier", "greffier-kek")
    settings = make_settings(tmp_path / "data", security={
        "kek": "pkcs11", "pkcs11_module": str(SOFTHSM)})
    Appliance.init(settings, source)
    keyring = json.loads(Keyring(settings.data_dir).path.read_text())
    assert keyring["kek"]["kind"] == "pkcs11" and "salt" not in keyring["kek"]
    docs = tmp_path / "docs"
    _write_canaries(docs)
    with Appliance.open(settings, source) as app:
        app.ingest([docs])
        assert CANARIES[2] in app.searcher.search(CANARIES[2], scope=app.operator_scope,
                                                  k=1, mode="bm25").passages[0].text
        # The KEK is a non-extractable token object: its value cannot be read out.
        import pkcs11

        key = app.keys.wrapper._key  # type: ignore[attr-defined]
        assert key[pkcs11.Attribute.EXTRACTABLE] is False
        assert key[pkcs11.Attribute.SENSITIVE] is True
        with pytest.raises(pkcs11.exceptions.PKCS11Error):
            key[pkcs11.Attribute.VALUE]
    with pytest.raises(SealedError):
        Appliance.open(settings, KekSource("pkcs11", "0000", str(SOFTHSM), "greffier",
                                           "greffier-kek"))
    assert _scan(settings.data_dir, [n for c in CANARIES for n in _needles(c)]) == []
