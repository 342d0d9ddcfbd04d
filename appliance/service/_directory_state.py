"""What the service remembers of directory syncs: one at a time (a lock), and the last
result, read back from the audit log when this process has run none yet (so it survives
a restart and the CLI's in-process runs)."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from ._directory_models import SyncOut

EVENTS = ("directory.sync", "directory.sync.failure")
_BLOCK = 1 << 16


class DirectoryState:
    def __init__(self) -> None:
        self.lock = threading.Lock()  # held while a sync runs
        self._last: SyncOut | None = None
        self._loaded = False

    def last(self, log: Path) -> SyncOut | None:
        if not self._loaded:
            found = _last_entry(log, EVENTS)
            if found is not None and self._last is None:
                try:
                    self._last = SyncOut.model_validate(found.get("details") or {})
                except ValidationError:
                    self._last = None
            self._loaded = True
        return self._last

    def record(self, result: SyncOut) -> None:
        self._last, self._loaded = result, True


def _last_entry(path: Path, events: tuple[str, ...]) -> dict[str, Any] | None:
    """The last entry of the audit log whose event is one of ``events``, reading the file
    backwards a block at a time (the log only grows; a line being written is skipped)."""
    try:
        handle = path.open("rb")
    except FileNotFoundError:
        return None
    with handle:
        position = handle.seek(0, os.SEEK_END)
        tail = b""
        while position > 0:
            step = min(_BLOCK, position)
            position -= step
            handle.seek(position)
            lines = (handle.read(step) + tail).split(b"\n")
            tail = lines.pop(0) if position > 0 else b""
            for line in reversed(lines):
                entry = _parse(line)
                if entry is not None and entry.get("event") in events:
                    return entry
        return None


def _parse(line: bytes) -> dict[str, Any] | None:
    if b'"directory.sync' not in line:
        return None
    try:
        entry = json.loads(line)
    except ValueError:
        return None
    return entry if isinstance(entry, dict) else None
