"""security/FORMAT.md, checked: known answers, and files the appliance wrote, read back with
nothing but the specification (hashlib, AES-GCM, HKDF, Argon2id, Ed25519) — no Greffier code
on the reading side."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.argon2 import Argon2id
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from security import fingerprint, sign
from security._audit import question_key
from security._stream import encrypt_file

from conftest import PASSPHRASE, make_settings, open_appliance

SEED = bytes(range(32))


def _canonical(document: dict[str, object]) -> bytes:
    body = {k: v for k, v in document.items() if k != "signature"}
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def _unwrap(kek: bytes, blob: bytes, label: bytes) -> bytes:
    assert blob[:1] == b"\x01"
    return AESGCM(kek).decrypt(blob[1:13], blob[13:], label)


@pytest.mark.unit
def test_signed_json_and_fingerprint_known_answers() -> None:
    key = Ed25519PrivateKey.from_private_bytes(SEED)
    public = key.public_key().public_bytes_raw()
    assert public.hex() == "03a107bff3ce10be1d70dd18e74bc09967e4d6309ba50d5f1ddc8664125531b8"
    assert fingerprint(public) == ("SHA256:56475aa75463474c0285df5dbf2bcab73da651358839e9b7"
                                   "7481b2eab107708c")
    head = {"tree_size": 3, "root": "ab" * 32, "time": "2026-01-01T00:00:00Z",
            "key": fingerprint(public)}
    signed = sign(head, key)
    assert signed["signature"] == ("fBSNQ8tjjYbQZx+zbdWku4PXa6GP18mer7A2WZF1c+Ky1FJ0RhJ2xldCt"
                                   "NKUU8WpMN/mhdbpdhH0cGUEULadBw==")
    Ed25519PublicKey.from_public_bytes(public).verify(
        base64.b64decode(signed["signature"]), _canonical(head))


@pytest.mark.unit
def test_question_hmac_known_answer() -> None:
    key = HKDF(hashes.SHA256(), 32, None, b"greffier/v1/audit/question-mac").derive(SEED)
    assert question_key(SEED) == key
    mac = hmac.new(key, b"Quel est le code ?", hashlib.sha256).hexdigest()
    assert mac == "802981b1bf898c30c158e715918cfd54e75044a121f42db839a902d443da0203"


@pytest.mark.unit
def test_blob_stream_known_answer_and_spec_reader(tmp_path: Path) -> None:
    plain = bytes(range(256)) * 300  # 76,800 bytes: one full segment and a short last one
    content = "c0" * 32
    (tmp_path / "plain").write_bytes(plain)
    encrypt_file(tmp_path / "plain", tmp_path / "blob", bytes(32), content)
    blob = (tmp_path / "blob").read_bytes()
    assert hashlib.sha256(blob).hexdigest() == (
        "344fecaa342705096875a50ca96289b5643df81e48aea481eb0bb6f58c17c378")
    # Read it back from the specification alone.
    key = HKDF(hashes.SHA256(), 32, None, f"greffier/v1/blob-key/{content}".encode()
               ).derive(bytes(32))
    aead, aad = AESGCM(key), f"greffier/v1/blob/{content}".encode()
    assert blob[:1] == b"\x01"
    first = aead.decrypt((0).to_bytes(11, "big") + b"\x00", blob[1:1 + 65536 + 16], aad)
    last = aead.decrypt((1).to_bytes(11, "big") + b"\x01", blob[1 + 65536 + 16:], aad)
    assert first + last == plain


@pytest.mark.integration
def test_files_written_by_the_appliance_follow_the_specification(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "data")
    with open_appliance(settings) as app:
        app.search("Quel est le code de la salle serveur ?")
    data = settings.data_dir
    keyring = json.loads((data / "keys" / "keyring.json").read_text())
    assert keyring["format"] == "greffier-keyring" and keyring["version"] == 2
    kek_meta = keyring["kek"]
    kek = Argon2id(salt=base64.b64decode(kek_meta["salt"]), length=32,
                   iterations=kek_meta["time_cost"], lanes=kek_meta["lanes"],
                   memory_cost=kek_meta["memory_kib"]).derive(PASSPHRASE.encode())
    # The MAC covers every other field.
    body = {k: v for k, v in keyring.items() if k != "mac"}
    digest = hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode())
    assert _unwrap(kek, base64.b64decode(keyring["mac"]), b"greffier/v1/keyring-mac") == \
        digest.digest()
    seed = _unwrap(kek, base64.b64decode(keyring["signing_key"]), b"greffier/v1/signing-key")
    public = Ed25519PrivateKey.from_private_bytes(seed).public_key().public_bytes_raw()
    assert base64.b64decode(keyring["signing_public_key"]) == public
    audit_key = _unwrap(kek, base64.b64decode(keyring["audit_keys"][0]["key"]),
                        b"greffier/v1/audit-key/0")
    # The audit log: chained entries, RFC 6962 leaves, heads signed over canonical JSON.
    lines = (data / "audit" / "log.jsonl").read_text().splitlines()
    previous = ""
    for number, line in enumerate(lines):
        entry = json.loads(line)
        assert entry["index"] == number and entry["prev"] == previous
        assert line.encode() == _canonical(entry)
        previous = hashlib.sha256(b"\x00" + line.encode()).hexdigest()
    search = next(json.loads(line) for line in lines if json.loads(line)["event"] == "search")
    question = "Quel est le code de la salle serveur ?"
    assert search["details"]["question_hmac"] == hmac.new(
        HKDF(hashes.SHA256(), 32, None, b"greffier/v1/audit/question-mac").derive(audit_key),
        question.encode(), hashlib.sha256).hexdigest()
    sealed = base64.b64decode(search["sealed"])
    assert json.loads(_unwrap(audit_key, sealed, f"greffier/v1/audit/{search['index']}"
                              .encode())) == {"question": question}
    heads = [json.loads(h) for h in (data / "audit" / "heads.jsonl").read_text().splitlines()]
    for head in heads:
        assert head["key"] == "SHA256:" + hashlib.sha256(public).hexdigest()
        Ed25519PublicKey.from_public_bytes(public).verify(
            base64.b64decode(head["signature"]), _canonical(head))
    anchor = json.loads(_unwrap(kek, (data / "audit" / "anchor.1").read_bytes(),
                                b"greffier/v1/audit-anchor"))
    assert anchor == heads[-1]
