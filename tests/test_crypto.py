"""The cryptographic core: known answers, tampering, wrong keys, property tests."""

from __future__ import annotations

import os

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from hypothesis import given, settings
from hypothesis import strategies as st

from security import (
    Argon2Params,
    AuthenticationError,
    KekSource,
    Keyring,
    PassphraseKEK,
    SealedError,
    sign,
    verify,
)
from security._aead import open_, seal

from conftest import make_cipher

pytestmark = pytest.mark.unit
KEY = bytes(range(32))


def test_known_answer_layout() -> None:
    """The format is 0x01 || nonce || AES-256-GCM(key, nonce, plaintext, aad)."""
    blob = seal(KEY, b"greffier", b"label")
    assert blob[0] == 1 and len(blob) == 1 + 12 + 8 + 16
    nonce = blob[1:13]
    assert blob[13:] == AESGCM(KEY).encrypt(nonce, b"greffier", b"label")
    assert open_(KEY, blob, b"label") == b"greffier"


def test_known_answer_nist_gcm_vector() -> None:
    """NIST GCM test case 14 (AES-256, zero key, zero nonce, one zero block)."""
    blob = b"\x01" + bytes(12) + bytes.fromhex(
        "cea7403d4d606b6e074ec5d3baf39d18" "d0d1c8a799996bf0265b98b5d48ab919")
    assert open_(bytes(32), blob, b"") == bytes(16)


@settings(max_examples=60, deadline=None)
@given(plaintext=st.binary(max_size=300), position=st.integers(min_value=0),
       bit=st.integers(min_value=0, max_value=7))
def test_any_flipped_bit_fails_authentication(plaintext: bytes, position: int, bit: int) -> None:
    blob = bytearray(seal(KEY, plaintext, b"aad"))
    blob[position % len(blob)] ^= 1 << bit
    with pytest.raises(AuthenticationError):
        open_(KEY, bytes(blob), b"aad")


@settings(max_examples=40, deadline=None)
@given(texts=st.lists(st.text(max_size=80), min_size=2, max_size=5, unique=True))
def test_swapped_chunk_ciphertexts_fail(texts: list[str]) -> None:
    """Associated data binds a sealed chunk to its content and index: no moving it."""
    cipher = make_cipher()
    cipher.new_content_key("a" * 64)
    cipher.new_content_key("b" * 64)
    sealed = [cipher.seal_chunk("a" * 64, i, t, "s") for i, t in enumerate(texts)]
    assert [cipher.open_chunk("a" * 64, i, b)[0] for i, b in enumerate(sealed)] == texts
    with pytest.raises(AuthenticationError):
        cipher.open_chunk("a" * 64, 1, sealed[0])  # another position
    with pytest.raises(AuthenticationError):
        cipher.open_chunk("b" * 64, 0, sealed[0])  # another document


def test_wrong_passphrase_is_a_clear_error_never_garbage(tmp_path) -> None:  # type: ignore[no-untyped-def]
    keyring = Keyring(tmp_path)
    keys = keyring.create(KekSource("passphrase", "right one"))
    again = keyring.unseal(KekSource("passphrase", "right one"))
    assert again.index_key == keys.index_key and again.public_key == keys.public_key
    with pytest.raises(SealedError, match="Wrong passphrase"):
        keyring.unseal(KekSource("passphrase", "wrong one"))
    with pytest.raises(SealedError, match="empty passphrase"):
        keyring.unseal(KekSource("passphrase", ""))
    assert oct(keyring.path.stat().st_mode)[-3:] == "600"
    assert b"right one" not in keyring.path.read_bytes()


def test_damaged_keyring_is_detected(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import json

    keyring = Keyring(tmp_path)
    keyring.create(KekSource("passphrase", "pw"))
    data = json.loads(keyring.path.read_text())
    audit = data["audit_keys"][0]
    data["index_key"], audit["key"] = audit["key"], data["index_key"]  # two wrapped keys swapped
    keyring.path.write_text(json.dumps(data))
    with pytest.raises(SealedError, match="damaged"):
        keyring.unseal(KekSource("passphrase", "pw"))


def test_argon2id_parameters_are_recorded_and_the_kek_never_stored(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import base64
    import json

    keyring = Keyring(tmp_path)
    keyring.create(KekSource("passphrase", "pw"))
    kek = json.loads(keyring.path.read_text())["kek"]
    assert (kek["kdf"], kek["time_cost"], kek["memory_kib"], kek["lanes"]) == (
        "argon2id", 3, 65536, 4)
    derived = PassphraseKEK("pw", Argon2Params(base64.b64decode(kek["salt"])))._kek
    assert base64.b64encode(derived).decode() not in keyring.path.read_text()


def test_signed_documents_verify_and_detect_any_change() -> None:
    key = Ed25519PrivateKey.generate()
    public = key.public_key().public_bytes_raw()
    document = sign({"content_sha256": "ab" * 32, "erased_by": "alice"}, key)
    assert verify(document, public)
    assert not verify({**document, "erased_by": "mallory"}, public)
    assert not verify(document, Ed25519PrivateKey.generate().public_key().public_bytes_raw())
    assert not verify({k: v for k, v in document.items() if k != "signature"}, public)


def test_rotation_keeps_every_key_readable(tmp_path) -> None:  # type: ignore[no-untyped-def]
    keyring = Keyring(tmp_path)
    old = keyring.create(KekSource("passphrase", "old"))
    deks = {f"{i:064x}": os.urandom(32) for i in range(50)}
    wrapped = {h: old.wrap_dek(h, d) for h, d in deks.items()}
    rewrapped: dict[str, bytes] = {}

    def rewrap(o, n) -> None:  # type: ignore[no-untyped-def]
        rewrapped.update({h: n.wrap_dek(h, o.unwrap_dek(h, b)) for h, b in wrapped.items()})

    new = keyring.rotate(old, KekSource("passphrase", "new"), rewrap)
    assert new.kek_id == old.kek_id + 1
    reopened = keyring.unseal(KekSource("passphrase", "new"))
    assert all(reopened.unwrap_dek(h, rewrapped[h]) == deks[h] for h in deks)
    # Keyring v2: rotation also renews the index, audit and signing keys; earlier audit
    # keys stay (earlier entries remain readable), the index is marked for re-indexing.
    assert reopened.index_key != old.index_key
    assert reopened.audit_keys[0][1] == old.audit_key
    assert reopened.audit_key != old.audit_key and reopened.public_key != old.public_key
    with pytest.raises(SealedError):
        keyring.unseal(KekSource("passphrase", "old"))


def _stream_blob(tmp_path, data: bytes):  # type: ignore[no-untyped-def]
    from security._stream import encrypt_file

    source, target = tmp_path / "orig.bin", tmp_path / "orig.blob"
    source.write_bytes(data)
    encrypt_file(source, target, KEY, "c" * 64)
    return target


def _decrypt(path, content_hash: str = "c" * 64) -> bytes:  # type: ignore[no-untyped-def]
    import io

    from security._stream import decrypt_stream

    return b"".join(decrypt_stream(io.BytesIO(path.read_bytes()), KEY, content_hash))


@pytest.mark.parametrize("size", [0, 1, 65536, 65537, 200_000])
def test_stream_round_trip(tmp_path, size: int) -> None:  # type: ignore[no-untyped-def]
    data = os.urandom(size)
    assert _decrypt(_stream_blob(tmp_path, data)) == data


def test_stream_detects_truncation_reordering_and_moves(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import io

    from security._stream import SEGMENT, decrypt_stream

    data = os.urandom(3 * SEGMENT + 10)
    blob = _stream_blob(tmp_path, data)
    raw = blob.read_bytes()
    seg = SEGMENT + 16
    header, segments = raw[:1], [raw[1 + i * seg:1 + (i + 1) * seg] for i in range(4)]
    cases = {
        "truncated at a segment boundary": header + b"".join(segments[:3]),
        "truncated mid-segment": raw[:-5],
        "segments reordered": header + segments[1] + segments[0] + segments[2] + segments[3],
        "a byte flipped": raw[:100] + bytes([raw[100] ^ 1]) + raw[101:],
    }
    for name, tampered in cases.items():
        released = bytearray()
        with pytest.raises(AuthenticationError):
            for segment in decrypt_stream(io.BytesIO(tampered), KEY, "c" * 64):
                released += segment
        # Whatever was released before the failure is the untouched start of the original:
        # no altered, moved or reordered byte ever comes out.
        assert data.startswith(bytes(released)), name
        assert len(released) <= 3 * SEGMENT, name  # never the (missing or bad) last segment
    blob.write_bytes(raw)
    with pytest.raises(AuthenticationError):
        _decrypt(blob, "d" * 64)  # another document's blob
