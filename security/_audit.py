"""The audit log: append-only, hash-chained, an RFC 6962 Merkle tree with signed heads.

Layout under ``<data_dir>/audit/`` (FORMAT.md has the byte-level specification):

* ``log.jsonl`` — one entry per line: ``{"index", "time", "event", "user", "details",
  "sealed", "prev"}``. ``details`` holds only what an auditor may read in clear (ids,
  keyed hashes, counts, model); ``sealed`` holds question and answer text encrypted under
  the audit key (AES-256-GCM, aad ``greffier/v1/audit/<index>``). ``prev`` is the leaf hash
  of the previous entry, so the first broken link names the entry that was changed.
* ``heads.jsonl`` — signed tree heads ``{"tree_size", "root", "time", "key", "signature"}``
  (Ed25519 over the canonical JSON), written every ``head_every`` entries, for every
  receipt, at unseal and on close. Each one is also sent to the external sinks.
* ``anchor`` — the latest head, wrapped under the KEK (see ``_witness.py``).

Opening the log for writing checks all of it: the chain, every head's signature and root,
and that the log extends the anchor. A log that was truncated, rewritten or rolled back is
refused (:class:`AnchorError`), so the appliance never signs over a forged history.

Leaf hash = SHA-256(0x00 || canonical JSON of the entry); node hash = SHA-256(0x01 || l || r).
Fail closed: :meth:`AuditLog.append` either writes and fsyncs the entry or raises
:class:`AuditError`, and callers record *before* they act.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from . import _aead, _merkle
from ._errors import GreffierError
from ._signing import TrustedKeys, fingerprint, sign
from ._verify import (
    check_witnesses,
    entry_bytes,
    read_lines,
    scan_log,
    unexpected_tail,
)
from ._witness import Anchor, AnchorError, HeadSink, append_durably

__all__ = ["AuditError", "AuditLog", "entry_bytes"]

_RESTORE = "Restore audit/ from backup and check it with `greffier audit verify`."


class AuditError(GreffierError):
    """The audit record could not be written: the action is refused (fail closed)."""


def audit_aad(index: int) -> bytes:
    return f"greffier/v1/audit/{index}".encode()


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


class _Prefix(Sequence[bytes]):
    """A view of the first ``size`` leaves, sliced without copying (the Merkle recursion
    slices at every level: copies would make a proof O(n) again)."""

    def __init__(self, leaves: list[bytes], size: int, start: int = 0) -> None:
        self._leaves, self._start, self._size = leaves, start, size

    def __len__(self) -> int:
        return self._size

    def __getitem__(self, item: Any) -> Any:
        if isinstance(item, slice):
            begin, end, _ = item.indices(self._size)
            return _Prefix(self._leaves, max(0, end - begin), self._start + begin)
        if not -self._size <= item < self._size:
            raise IndexError(item)
        return self._leaves[self._start + (item % self._size)]


def question_key(audit_key: bytes) -> bytes:
    return HKDF(hashes.SHA256(), 32, None, b"greffier/v1/audit/question-mac").derive(audit_key)


def entry_mac(audit_key: bytes, entry: dict[str, Any]) -> str:
    """HMAC-SHA-256 of an entry (without its ``mac``) under a key derived from the audit
    key: entries written by the unsealed appliance but not yet under a signed head (a
    crash) can be told from entries added by someone without the keys."""
    key = HKDF(hashes.SHA256(), 32, None, b"greffier/v1/audit/entry-mac").derive(audit_key)
    body = entry_bytes({k: v for k, v in entry.items() if k != "mac"})
    return hmac.new(key, body, hashlib.sha256).hexdigest()


class AuditLog:
    """One appliance's audit log. Single writer (the process holding the data directory)."""

    def __init__(self, folder: Path, audit_keys: Sequence[tuple[int, bytes]] | None,
                 signing_key: Ed25519PrivateKey | None, *, head_every: int = 64,
                 anchor: Anchor | None = None, sinks: Sequence[HeadSink] = (),
                 trusted_keys: TrustedKeys | Sequence[bytes] = ()) -> None:
        """``audit_keys``: ``(first entry index, key)`` per audit-key generation, current
        last. Without keys (a sealed appliance recording a failed unseal), entries carry no
        sealed part, no head is signed and nothing is checked; the next unsealed writer
        checks and signs them. With keys, the whole log is checked against its heads (signed
        by ``trusted_keys``, default the signing key) and against the ``anchor``."""
        self.folder = folder
        self.log_path = folder / "log.jsonl"
        self.heads_path = folder / "heads.jsonl"
        self._audit_keys = sorted(audit_keys or [])
        self._signing_key = signing_key
        self._head_every = head_every
        self._anchor = anchor
        self._sinks = list(sinks)
        self._lock = threading.Lock()
        self._leaves: list[bytes] = []
        self._frontier = _merkle.Frontier()
        self._signed_size = 0
        self._last_head: dict[str, Any] | None = None
        self._subtrees: dict[tuple[int, int], bytes] = {}  # complete subtrees, never change
        try:
            folder.mkdir(parents=True, exist_ok=True, mode=0o700)
            log_lines = read_lines(self.log_path)
            head_lines = read_lines(self.heads_path)
        except (OSError, UnicodeDecodeError) as exc:
            raise AuditError(f"Cannot read the audit log in {folder}: {exc}",
                             hint=_RESTORE) from exc
        if signing_key is None:
            self._load_unchecked(log_lines)
        else:
            self._load_checked(log_lines, head_lines,
                               TrustedKeys.of(trusted_keys or self.public_key))

    def _load_unchecked(self, log_lines: list[str]) -> None:
        for line in log_lines:
            self._push(_merkle.leaf_hash(line.encode()))

    def _load_checked(self, log_lines: list[str], head_lines: list[str],
                      trusted: TrustedKeys) -> None:
        anchor = self._anchor.load() if self._anchor is not None else None
        witnessed = [d for sink in self._sinks for d in sink.read()]
        extra = [int(anchor["tree_size"])] if anchor else []
        extra += [d["tree_size"] for d in witnessed
                  if d.get("kind") == "head" and isinstance(d.get("tree_size"), int)]
        report = scan_log(log_lines, head_lines, trusted, extra_sizes=extra)
        if not report.ok:
            raise AnchorError(f"The audit log was tampered with: {report.problem}.",
                              hint=_RESTORE)
        if anchor is not None:
            size = anchor.get("tree_size")
            if not isinstance(size, int) or trusted.signer(anchor, size) is None:
                raise AnchorError("The audit anchor carries no valid signature.", hint=_RESTORE)
            if size > report.entries:
                raise AnchorError(
                    f"The audit log was rolled back: it was signed at {size} entries and "
                    f"{report.entries} remain.", hint=_RESTORE)
            if report.roots[size].hex() != anchor["root"]:
                raise AnchorError(
                    f"The audit log was rewritten: its first {size} entries no longer match "
                    "the anchored head.", hint=_RESTORE)
            if report.signed_size < size:
                raise AnchorError(
                    f"Signed tree heads were removed: the anchor covers {size} entries, the "
                    f"heads file {report.signed_size}.", hint=_RESTORE)
        elif self._anchor is not None and self._anchor.required and report.entries:
            raise AnchorError("The audit anchor is missing while the log has entries: the "
                              "log may have been rolled back.", hint=_RESTORE)
        problem = unexpected_tail(report, self._mac_ok)
        if problem:
            raise AnchorError(f"The audit log was tampered with: {problem}.", hint=_RESTORE)
        agree, why = check_witnesses(report, witnessed, trusted)
        if not agree:
            raise AnchorError(f"The audit log disagrees with the copies sent to the audit "
                              f"head sinks: {why}.", hint=_RESTORE)
        for leaf in report.leaves:
            self._push(leaf)
        self._signed_size = report.signed_size

    def _mac_ok(self, entry: dict[str, Any]) -> bool:
        index = entry.get("index")
        keys = [key for start, key in self._audit_keys
                if isinstance(index, int) and start <= index]
        return bool(keys) and hmac.compare_digest(str(entry.get("mac")),
                                                  entry_mac(keys[-1], entry))

    def _push(self, leaf: bytes) -> None:
        self._leaves.append(leaf)
        self._frontier.append(leaf)

    @property
    def size(self) -> int:
        return len(self._leaves)

    @property
    def public_key(self) -> bytes:
        if self._signing_key is None:
            raise AuditError("A sealed appliance has no signing key.", hint="Unseal it first.")
        return self._signing_key.public_key().public_bytes_raw()

    def question_hash(self, text: str) -> str:
        """A keyed hash of a question (HMAC-SHA-256): equal questions match, but a guess
        cannot be checked without the audit key."""
        if not self._audit_keys:
            raise AuditError("The audit key is sealed.", hint="Unseal the appliance first.")
        key = question_key(self._audit_keys[-1][1])
        return hmac.new(key, text.encode("utf-8"), hashlib.sha256).hexdigest()

    def append(self, event: str, user: str, details: dict[str, Any],
               secret: dict[str, Any] | None = None) -> int:
        """Write one entry durably and return its index; raise AuditError if impossible."""
        with self._lock:
            index = len(self._leaves)
            entry: dict[str, Any] = {
                "index": index, "time": _now(), "event": event, "user": user,
                "details": details, "prev": self._leaves[-1].hex() if self._leaves else "",
            }
            if secret is not None and self._audit_keys:
                sealed = _aead.seal(self._audit_keys[-1][1], json.dumps(secret).encode(),
                                    audit_aad(index))
                entry["sealed"] = base64.b64encode(sealed).decode()
            if self._audit_keys:
                entry["mac"] = entry_mac(self._audit_keys[-1][1], entry)
            self._append_line(self.log_path, entry_bytes(entry) + b"\n", "the audit log")
            self._push(_merkle.leaf_hash(entry_bytes(entry)))
            if self._signing_key is None:
                self._emit("entry", entry)
            elif len(self._leaves) - self._signed_size >= self._head_every:
                self._write_head()
            return index

    def _append_line(self, path: Path, line: bytes, what: str) -> None:
        try:
            append_durably(path, line)
        except OSError as exc:
            raise AuditError(
                f"{what.capitalize()} cannot be written ({exc.strerror or exc}); the action "
                "was refused.", hint=f"Make {self.folder} writable (and check free space).",
            ) from exc

    def _emit(self, kind: str, document: dict[str, Any]) -> None:
        for sink in self._sinks:
            try:
                sink.emit(kind, document)
            except OSError as exc:
                raise AuditError(f"The audit head sink cannot be written: {exc}",
                                 hint="Fix or remove audit.head_sinks.") from exc

    def _head(self) -> dict[str, Any]:
        assert self._signing_key is not None
        return sign({"tree_size": len(self._leaves), "root": self._frontier.root().hex(),
                     "time": _now(), "key": fingerprint(self.public_key)}, self._signing_key)

    def _write_head(self) -> dict[str, Any]:
        head = self._head()
        self._append_line(self.heads_path, entry_bytes(head) + b"\n", "a signed tree head")
        if self._anchor is not None:
            try:
                self._anchor.save(head)
            except OSError as exc:
                raise AuditError(f"Cannot write the audit anchor: {exc}",
                                 hint=f"Make {self.folder} writable.") from exc
        self._emit("head", head)
        self._signed_size = len(self._leaves)
        self._last_head = head
        return head

    def sign_head(self) -> dict[str, Any]:
        """A signed head of the tree as it is now, written to the heads file, the anchor and
        the sinks (on unseal, on close, and for every receipt)."""
        if self._signing_key is None:
            raise AuditError("A sealed appliance cannot sign tree heads.",
                             hint="Unseal it first.")
        with self._lock:
            if len(self._leaves) != self._signed_size or self._last_head is None:
                return self._write_head()
            return self._last_head

    def inclusion(self, index: int, size: int) -> list[str]:
        leaves = _Prefix(self._leaves, size)
        return [h.hex() for h in _merkle.inclusion_proof(index, leaves, cache=self._subtrees)]

    def leaf(self, index: int) -> bytes:
        return self._leaves[index]

    def open_secret(self, entry: dict[str, Any]) -> dict[str, Any]:
        index = int(entry["index"])
        keys = [key for start, key in self._audit_keys if start <= index]
        if not keys:
            raise AuditError("The audit key is sealed.", hint="Unseal the appliance first.")
        blob = base64.b64decode(entry["sealed"])
        data: dict[str, Any] = json.loads(_aead.open_(keys[-1], blob, audit_aad(index)))
        return data
