"""Signed JSON documents (erasure certificates; later tree heads and answer receipts).

The signature is Ed25519 over the canonical JSON of the document without its
``signature`` field (keys sorted, no spaces, UTF-8).
"""

from __future__ import annotations

import base64
import hashlib
import json
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
    except (KeyError, ValueError, InvalidSignature):
        return False
    return True
