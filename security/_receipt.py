"""Signed receipts: what was asked, by whom, from which passages, with which model.

A receipt is self-contained: its Ed25519 signature, the audit entry's leaf hash, the
inclusion proof and a signed tree head covering that entry. ``verify_receipt`` needs only
the appliance's public key.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

from . import _merkle
from ._audit import AuditLog
from ._signing import TrustedKeys, sign


def sha256_hex(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def issue_receipt(audit: AuditLog, entry_index: int, body: dict[str, Any],
                  signing_key: Any) -> dict[str, Any]:
    head = audit.sign_head()
    receipt = {
        "format": "greffier-receipt", "version": 1,
        **body,
        "audit": {"index": entry_index, "leaf_hash": audit.leaf(entry_index).hex(),
                  "inclusion_proof": audit.inclusion(entry_index, int(head["tree_size"])),
                  "tree_head": head},
    }
    return sign(receipt, signing_key)


def verify_receipt(receipt: dict[str, Any], public_keys: bytes | Sequence[bytes] | TrustedKeys
                   ) -> tuple[bool, str]:
    """Check a receipt offline against the appliance's key (or a key of its chain, within
    the tree sizes that key signed)."""
    keys = TrustedKeys.of(public_keys)
    if not isinstance(receipt, dict) or receipt.get("format") != "greffier-receipt":
        return False, "this is not a Greffier receipt"
    audit = receipt.get("audit")
    head = audit.get("tree_head") if isinstance(audit, dict) else None
    if not isinstance(audit, dict) or not isinstance(head, dict) or not isinstance(
            head.get("tree_size"), int):
        return False, "the receipt's audit section is malformed"
    size = head["tree_size"]
    if keys.signer(receipt, size) is None:
        return False, "the receipt's signature does not match"
    if keys.signer(head, size) is None:
        return False, "the tree head's signature does not match"
    try:
        ok = _merkle.verify_inclusion(
            bytes.fromhex(audit["leaf_hash"]), int(audit["index"]), size,
            [bytes.fromhex(h) for h in audit["inclusion_proof"]], bytes.fromhex(head["root"]))
    except (KeyError, TypeError, ValueError):
        return False, "the receipt's audit section is malformed"
    if not ok:
        return False, "the audit entry is not in the signed tree (bad inclusion proof)"
    return True, "valid"
