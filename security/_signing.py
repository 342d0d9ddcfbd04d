"""Signed JSON documents (erasure certificates; later tree heads and answer receipts).

The signature is Ed25519 over the canonical JSON of the document without its
``signature`` field (keys sorted, no spaces, UTF-8).
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Sequence
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey


def fingerprint(public_key: bytes) -> str:
    """How people compare a signing key: ``SHA256:`` and the hex SHA-256 of its raw bytes."""
    return "SHA256:" + hashlib.sha256(public_key).hexdigest()


def canonical(document: dict[str, Any]) -> bytes:
    body = {k: v for k, v in document.items() if k != "signature"}
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def sign(document: dict[str, Any], key: Ed25519PrivateKey) -> dict[str, Any]:
    signed = dict(document)
    signed["signature"] = base64.b64encode(key.sign(canonical(document))).decode()
    return signed


def verify(document: dict[str, Any], public_key: bytes) -> bool:
    """True if ``document`` carries a valid signature by ``public_key`` (raw 32 bytes)."""
    try:
        signature = base64.b64decode(str(document["signature"]))
        Ed25519PublicKey.from_public_bytes(public_key).verify(signature, canonical(document))
    except (KeyError, TypeError, ValueError, RecursionError, InvalidSignature):
        return False
    return True


class TrustedKeys:
    """The signing keys a verifier trusts, each with the largest tree size it may sign.

    After a rotation the previous key is trusted only for heads (and receipts) up to the
    tree size at which it was retired: whoever kept the old key cannot sign anything newer.
    Documents that carry no tree size (certificates) are accepted from the current key only.
    """

    def __init__(self, keys: Sequence[tuple[bytes, int | None]]) -> None:
        if not keys:
            raise ValueError("no trusted key")
        self.keys = tuple(keys)

    @classmethod
    def of(cls, keys: bytes | Sequence[bytes] | TrustedKeys) -> TrustedKeys:
        """A single key, or plain keys (all unbounded: a verifier given keys by hand)."""
        if isinstance(keys, TrustedKeys):
            return keys
        if isinstance(keys, bytes):
            return cls([(keys, None)])
        return cls([(key, None) for key in keys])

    @property
    def current(self) -> bytes:
        return self.keys[-1][0]

    @property
    def public_keys(self) -> list[bytes]:
        return [key for key, _ in self.keys]

    def signer(self, document: dict[str, Any], tree_size: int | None = None) -> bytes | None:
        """The trusted key that signed ``document`` within its window, or None."""
        for key, until in self.keys:
            in_window = until is None or (tree_size is not None and tree_size <= until)
            if in_window and verify(document, key):
                return key
        return None
