"""Where signed tree heads are kept besides the log: the anchor and the external sinks.

* The **anchor** (``audit/anchor``) is the latest signed tree head, wrapped under the KEK
  (``greffier/v1/audit-anchor``). Whoever lacks the KEK cannot forge it, so an appliance
  refuses to open a log that is not a consistent extension of its anchor: dropping entries
  together with the heads that cover them, or rewriting the log, is caught at the next
  unseal. Rolling back the *whole* data directory (log, heads and anchor together) is not
  visible from inside: that is what the sinks are for.
* A **sink** receives a copy of every signed head (and of every entry written while sealed)
  as it is made: a file on another mount, or syslog/journald. An auditor holding any
  earlier head proves the log only grew with ``greffier audit verify --since FILE``.
"""

from __future__ import annotations

import json
import os
import syslog
from pathlib import Path
from typing import Any, Protocol

from . import _aead
from ._errors import GreffierError

ANCHOR_LABEL = b"greffier/v1/audit-anchor"


class Wrapper(Protocol):
    def wrap(self, key: bytes, label: bytes) -> bytes: ...

    def unwrap(self, blob: bytes, label: bytes) -> bytes: ...


def canonical_line(document: dict[str, Any]) -> bytes:
    return json.dumps(document, sort_keys=True, separators=(",", ":"),
                      ensure_ascii=False).encode()


def _write_synced(path: Path, flags: int, data: bytes) -> None:
    """Open ``path`` (created 0600), write all of ``data`` (a write may be short), fsync."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | flags, 0o600)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        os.fsync(fd)
    finally:
        os.close(fd)


def append_durably(path: Path, data: bytes) -> None:
    """Append ``data`` to ``path`` and fsync it before returning."""
    _write_synced(path, os.O_APPEND, data)


def write_atomically(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that a crash leaves the old or the new file, never half."""
    tmp = path.with_name(path.name + ".tmp")
    _write_synced(tmp, os.O_TRUNC, data)
    os.replace(tmp, path)
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


class Anchor:
    """The latest signed head, authenticated under the KEK."""

    def __init__(self, path: Path, wrapper: Wrapper, *, required: bool = True) -> None:
        """``required``: a log with entries but no anchor is refused (it was removed to hide
        a rollback). Only a data directory from before anchors (a version-1 keyring being
        upgraded) gets its first anchor from the log as it stands (trust on first use)."""
        self.path = path
        self.required = required
        self._wrapper = wrapper

    def exists(self) -> bool:
        return self.path.is_file()

    def load(self) -> dict[str, Any] | None:
        if not self.path.is_file():
            return None
        try:
            head: dict[str, Any] = json.loads(
                self._wrapper.unwrap(self.path.read_bytes(), ANCHOR_LABEL))
        except (_aead.AuthenticationError, ValueError) as exc:
            raise AnchorError(
                f"The audit anchor {self.path} fails authentication: it was altered or "
                "comes from another appliance.",
                hint="Restore the data directory from backup, then run `greffier audit "
                "verify --since FILE` with a head from your external sink.") from exc
        return head

    def save(self, head: dict[str, Any]) -> None:
        write_atomically(self.path, self._wrapper.wrap(canonical_line(head), ANCHOR_LABEL))


class AnchorError(GreffierError):
    """The audit log is not a consistent extension of its anchor (rolled back, rewritten)."""


class HeadSink(Protocol):
    """Receives one JSON line per signed head or unsigned entry, as it is written."""

    def emit(self, kind: str, document: dict[str, Any]) -> None: ...

    def read(self) -> list[dict[str, Any]]:
        """What was sent, when this machine can read it back (else nothing)."""


class FileSink:
    """Appends to a file, ideally on another mount or a write-once medium. Read back at
    every unseal: the log must agree with every line of it."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def read(self) -> list[dict[str, Any]]:
        if not self.path.exists():
            return []
        return witnessed_in(self.path)

    def emit(self, kind: str, document: dict[str, Any]) -> None:
        append_durably(self.path, canonical_line({"kind": kind, **document}) + b"\n")


class SyslogSink:
    """Sends to the local syslog (journald on systemd), facility AUTHPRIV."""

    def read(self) -> list[dict[str, Any]]:
        return []  # journald is read by the auditor, with `greffier audit verify --since`

    def emit(self, kind: str, document: dict[str, Any]) -> None:
        syslog.openlog("greffier-audit", 0, syslog.LOG_AUTHPRIV)
        syslog.syslog(syslog.LOG_NOTICE, canonical_line({"kind": kind, **document}).decode())


def make_sinks(targets: list[str]) -> list[HeadSink]:
    """``"syslog"`` or ``"file:/path"`` (an absolute path) → sinks."""
    sinks: list[HeadSink] = []
    for target in targets:
        if target == "syslog":
            sinks.append(SyslogSink())
        elif target.startswith("file:") and Path(target[5:]).is_absolute():
            sinks.append(FileSink(Path(target[5:])))
        else:
            raise GreffierError(f"Unknown audit head sink {target!r}.",
                                hint='Use "syslog" or "file:/absolute/path" in '
                                "audit.head_sinks.")
    return sinks


def last_head(path: Path) -> dict[str, Any]:
    """The last signed head in a file: a head as JSON, a heads.jsonl, or a sink's file."""
    heads = [d for d in witnessed_in(path) if d.get("kind") == "head"]
    if not heads:
        raise GreffierError(f"{path} holds no signed tree head.",
                            hint="Give a heads.jsonl, a sink file or one head as JSON.")
    return {k: v for k, v in heads[-1].items() if k != "kind"}


def witnessed_in(path: Path) -> list[dict[str, Any]]:
    """Every head and entry kept in a file outside the log, each marked with its ``kind``:
    one head as JSON, a heads.jsonl, or a sink's file (whose lines carry their kind)."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise GreffierError(f"Cannot read {path}: {exc}.",
                            hint="Give a file holding signed tree heads.") from exc
    lines = [line for line in text.split("\n") if line.strip()]
    try:
        documents = [json.loads(line) for line in lines] if len(lines) > 1 else [
            json.loads(text)]
    except (ValueError, RecursionError) as exc:
        raise GreffierError(f"{path} is not JSON lines.",
                            hint="Give a heads.jsonl, a sink file or one head as JSON.") from exc
    out = []
    for document in documents:
        if not isinstance(document, dict):
            raise GreffierError(f"{path} holds something that is not a head or an entry.",
                                hint="Give a heads.jsonl, a sink file or one head as JSON.")
        kind = document.get("kind", "head")
        if kind not in ("head", "entry") or (kind == "head" and not isinstance(
                document.get("tree_size"), int)):
            raise GreffierError(f"{path} holds a line that is neither a signed head nor an "
                                "audit entry.", hint="Give the sink's file as it was written.")
        out.append({**document, "kind": kind})
    return out
