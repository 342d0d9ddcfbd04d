"""Original files at rest: a chunked AEAD stream (STREAM construction, as in age).

    blob  = 0x01 || segment_0 || … || segment_n
    segment_i = AES-256-GCM(blob_key, nonce_i, plaintext_i (64 KiB; the last may be shorter),
                            aad = "greffier/v1/blob/<content sha256>")
    nonce_i = i as 11 bytes big-endian || 0x01 if last else 0x00
    blob_key = HKDF-SHA256(DEK, salt = none, info = "greffier/v1/blob-key/<content sha256>")

The blob key is derived, never the DEK itself: the DEK also seals chunks with random
nonces, and the counter nonces here must never meet them. Counter nonces are safe because
each blob key encrypts exactly one stream. A segment moved (counter), dropped at the end
(no "last" flag) or altered fails authentication.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from ._aead import AuthenticationError

SEGMENT = 64 * 1024
_TAG = 16
_VERSION = b"\x01"


def blob_key(dek: bytes, content_hash: str) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None,
                info=f"greffier/v1/blob-key/{content_hash}".encode()).derive(dek)


def _nonce(counter: int, last: bool) -> bytes:
    return counter.to_bytes(11, "big") + (b"\x01" if last else b"\x00")


def encrypt_file(source: Path, target: Path, dek: bytes, content_hash: str) -> None:
    """Encrypt ``source`` into ``target`` (written to a temporary name, then renamed)."""
    aead = AESGCM(blob_key(dek, content_hash))
    aad = f"greffier/v1/blob/{content_hash}".encode()
    target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = target.with_suffix(".partial")
    with source.open("rb") as src, tmp.open("wb") as out:
        out.write(_VERSION)
        counter = 0
        current = src.read(SEGMENT)
        while True:
            following = src.read(SEGMENT) if len(current) == SEGMENT else b""
            last = not following
            out.write(aead.encrypt(_nonce(counter, last), current, aad))
            if last:
                break
            current, counter = following, counter + 1
        out.flush()
        os.fsync(out.fileno())
    os.replace(tmp, target)


def decrypt_stream(source: BinaryIO, dek: bytes, content_hash: str) -> Iterator[bytes]:
    """Yield the plaintext segment by segment; raise AuthenticationError on any tampering."""
    aead = AESGCM(blob_key(dek, content_hash))
    aad = f"greffier/v1/blob/{content_hash}".encode()
    if source.read(1) != _VERSION:
        raise AuthenticationError("not a version-1 Greffier blob")
    counter = 0
    current = source.read(SEGMENT + _TAG)
    while True:
        following = source.read(SEGMENT + _TAG)
        last = not following
        try:
            yield aead.decrypt(_nonce(counter, last), current, aad)
        except InvalidTag as exc:
            raise AuthenticationError(
                f"blob segment {counter} failed authentication (altered, moved or truncated)"
            ) from exc
        if last:
            return
        current, counter = following, counter + 1
