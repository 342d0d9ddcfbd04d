"""The audit log: append-only, hash-chained, an RFC 6962 Merkle tree with signed heads.

Layout under ``<data_dir>/audit/``:

* ``log.jsonl`` — one entry per line: ``{"index", "time", "event", "user", "details",
  "sealed", "prev"}``. ``details`` holds only what an auditor may read in clear (ids,
  hashes, counts, model); ``sealed`` holds question and answer text encrypted under the
  audit key (AES-256-GCM, aad ``greffier/v1/audit/<index>``). ``prev`` is the leaf hash of
  the previous entry, so the first broken link names the entry that was changed.
* ``heads.jsonl`` — signed tree heads ``{"tree_size", "root", "time", "signature"}``
  (Ed25519 over the canonical JSON), written every ``head_every`` entries and on close.

Leaf hash = SHA-256(0x00 || canonical JSON of the entry); node hash = SHA-256(0x01 || l || r).
Fail closed: :meth:`AuditLog.append` either writes and fsyncs the entry or raises
:class:`AuditError`, and callers record *before* they act.
"""

from __future__ import annotations

import base64
import json
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from . import _aead, _merkle
from ._errors import GreffierError
from ._signing import sign, verify


class AuditError(GreffierError):
    """The audit record could not be written: the action is refused (fail closed)."""


def entry_bytes(entry: dict[str, Any]) -> bytes:
    return json.dumps(entry, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def audit_aad(index: int) -> bytes:
    return f"greffier/v1/audit/{index}".encode()


@dataclass(frozen=True)
class VerifyReport:
    ok: bool
    entries: int
    heads: int
    problem: str = ""
    bad_index: int | None = None


class AuditLog:
    """One appliance's audit log. Single writer (the process holding the data directory)."""

    def __init__(self, folder: Path, audit_key: bytes | None,
                 signing_key: Ed25519PrivateKey | None, *, head_every: int = 64) -> None:
        """Without keys (a sealed appliance recording a failed unseal), entries carry no
        sealed part and no tree head is signed; the next unsealed writer signs them."""
        self.folder = folder
        self.log_path = folder / "log.jsonl"
        self.heads_path = folder / "heads.jsonl"
        self._audit_key = audit_key
        self._signing_key = signing_key
        self._head_every = head_every
        self._lock = threading.Lock()
        self._leaves: list[bytes] = []
        self._signed_size = 0
        try:
            folder.mkdir(parents=True, exist_ok=True, mode=0o700)
            if self.log_path.exists():
                for line in self.log_path.read_text().splitlines():
                    self._leaves.append(_merkle.leaf_hash(entry_bytes(json.loads(line))))
            if self.heads_path.exists():
                lines = self.heads_path.read_text().splitlines()
                self._signed_size = json.loads(lines[-1])["tree_size"] if lines else 0
        except (OSError, ValueError) as exc:
            raise AuditError(f"Cannot read the audit log in {folder}: {exc}",
                             hint="Run `greffier audit verify`; restore the log from backup."
                             ) from exc

    @property
    def size(self) -> int:
        return len(self._leaves)

    def append(self, event: str, user: str, details: dict[str, Any],
               secret: dict[str, Any] | None = None) -> int:
        """Write one entry durably and return its index; raise AuditError if impossible."""
        with self._lock:
            index = len(self._leaves)
            entry: dict[str, Any] = {
                "index": index, "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "event": event, "user": user, "details": details,
                "prev": self._leaves[-1].hex() if self._leaves else "",
            }
            if secret is not None and self._audit_key is not None:
                sealed = _aead.seal(self._audit_key, json.dumps(secret).encode(),
                                    audit_aad(index))
                entry["sealed"] = base64.b64encode(sealed).decode()
            line = entry_bytes(entry) + b"\n"
            try:
                with self.log_path.open("ab") as handle:
                    handle.write(line)
                    handle.flush()
                    os.fsync(handle.fileno())
            except OSError as exc:
                raise AuditError(
                    f"The audit log cannot be written ({exc.strerror or exc}); the action was "
                    "refused.", hint=f"Make {self.folder} writable (and check free space).",
                ) from exc
            self._leaves.append(_merkle.leaf_hash(entry_bytes(entry)))
            if (self._signing_key is not None
                    and len(self._leaves) - self._signed_size >= self._head_every):
                self._write_head()
            return index

    def _write_head(self) -> None:
        if self._signing_key is None:
            return
        head = sign({"tree_size": len(self._leaves),
                     "root": _merkle.root(self._leaves).hex(),
                     "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())},
                    self._signing_key)
        try:
            with self.heads_path.open("ab") as handle:
                handle.write(entry_bytes(head) + b"\n")
                handle.flush()
                os.fsync(handle.fileno())
        except OSError as exc:
            raise AuditError(f"Cannot write a signed tree head: {exc}",
                             hint=f"Make {self.folder} writable.") from exc
        self._signed_size = len(self._leaves)

    def sign_head(self) -> dict[str, Any]:
        """Sign the current tree head now (on close, and for receipts)."""
        with self._lock:
            if len(self._leaves) != self._signed_size:
                self._write_head()
            return self.latest_head()

    def latest_head(self) -> dict[str, Any]:
        lines = self.heads_path.read_text().splitlines() if self.heads_path.exists() else []
        return json.loads(lines[-1]) if lines else {}

    def fresh_head(self) -> dict[str, Any]:
        """A signed head of the tree as it is now (carried by receipts; not persisted)."""
        if self._signing_key is None:
            raise AuditError("A sealed appliance cannot sign tree heads.",
                             hint="Unseal it first.")
        with self._lock:
            return sign({"tree_size": len(self._leaves),
                         "root": _merkle.root(self._leaves).hex(),
                         "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())},
                        self._signing_key)

    def inclusion(self, index: int, size: int) -> list[str]:
        return [h.hex() for h in _merkle.inclusion_proof(index, self._leaves[:size])]

    def leaf(self, index: int) -> bytes:
        return self._leaves[index]

    def open_secret(self, entry: dict[str, Any]) -> dict[str, Any]:
        if self._audit_key is None:
            raise AuditError("The audit key is sealed.", hint="Unseal the appliance first.")
        blob = base64.b64decode(entry["sealed"])
        data: dict[str, Any] = json.loads(
            _aead.open_(self._audit_key, blob, audit_aad(int(entry["index"]))))
        return data


def verify_log(log_lines: list[str], head_lines: list[str], public_key: bytes) -> VerifyReport:
    """Check a whole log: indices, hash chain, every signed head. Names the first bad entry."""
    leaves: list[bytes] = []
    for position, line in enumerate(log_lines):
        try:
            entry = json.loads(line)
        except ValueError:
            return VerifyReport(False, len(leaves), 0, f"entry {position} is not valid JSON",
                                position)
        if entry.get("index") != position:
            return VerifyReport(False, len(leaves), 0,
                                f"entry {position} carries index {entry.get('index')}: an entry "
                                "was deleted, inserted or moved here", position)
        expected_prev = leaves[-1].hex() if leaves else ""
        if entry.get("prev") != expected_prev:
            return VerifyReport(False, len(leaves), 0,
                                f"entry {position - 1} was altered (entry {position} no longer "
                                "links to it)", position - 1)
        leaves.append(_merkle.leaf_hash(entry_bytes(entry)))
    for number, line in enumerate(head_lines):
        head = json.loads(line)
        size = int(head["tree_size"])
        if not verify(head, public_key):
            return VerifyReport(False, len(leaves), number,
                                f"signed tree head {number} has a bad signature")
        if size > len(leaves):
            return VerifyReport(False, len(leaves), number,
                                f"the log was truncated: a signed head covers {size} entries, "
                                f"{len(leaves)} remain", len(leaves))
        if _merkle.root(leaves[:size]).hex() != head["root"]:
            # With the hash chain intact, a root mismatch can only come from the last entry
            # the head covers.
            bad = size - 1
            return VerifyReport(False, len(leaves), number,
                                f"entry {bad} was altered (tree head {number} no longer matches)",
                                bad)
    return VerifyReport(True, len(leaves), len(head_lines))

