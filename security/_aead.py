"""The one AEAD construction (see FORMAT.md): ``0x01 || nonce(12) || AES-256-GCM``."""

from __future__ import annotations

import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

VERSION = b"\x01"
NONCE_BYTES = 12  # GCM's native nonce size; random per message (see FORMAT.md)
KEY_BYTES = 32


class AuthenticationError(Exception):
    """Ciphertext, associated data or key do not match (tampering, wrong key, moved data)."""


def seal(key: bytes, plaintext: bytes, aad: bytes) -> bytes:
    nonce = os.urandom(NONCE_BYTES)
    return VERSION + nonce + AESGCM(key).encrypt(nonce, plaintext, aad)


def open_(key: bytes, blob: bytes, aad: bytes) -> bytes:
    if len(blob) < 1 + NONCE_BYTES + 16 or blob[:1] != VERSION:
        raise AuthenticationError("not a version-1 Greffier ciphertext")
    nonce, body = blob[1:1 + NONCE_BYTES], blob[1 + NONCE_BYTES:]
    try:
        return AESGCM(key).decrypt(nonce, body, aad)
    except InvalidTag as exc:
        raise AuthenticationError("authentication failed") from exc


def new_key() -> bytes:
    return os.urandom(KEY_BYTES)
