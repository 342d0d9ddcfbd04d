"""Byte scan of a directory tree: which of these byte patterns does any file still hold?

An erasure certificate only claims what this scan measured. Each :class:`Target` (one
erased point's dense vector, one sealed payload, the wrapped data key, …) has one or more
*forms*, the exact byte strings a store or journal would write it as; the target counts as
found if any form occurs anywhere in any regular file under the root (segments, WAL,
SQLite pages and journal, temporary files: every file, read as raw bytes). The holes of
sparse files (Qdrant preallocates its pages and WAL) are zeros by definition and skipped.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

_BLOCK = 16 << 20


@dataclass(frozen=True)
class Target:
    kind: str  # "dense_vectors", "sparse_vectors", "sealed_payloads", "data_keys", "original"
    label: str  # what it is (a chunk id, "blob") — never the secret itself
    forms: tuple[bytes, ...]


@dataclass
class ScanResult:
    files_scanned: int = 0
    bytes_scanned: int = 0
    found: dict[Target, set[str]] = field(default_factory=dict)  # target → relative paths

    def found_in(self) -> list[str]:
        return sorted({path for paths in self.found.values() for path in paths})


def _files(root: Path) -> Iterable[Path]:
    for folder, _dirs, files in os.walk(root):  # does not follow symlinked folders
        for name in files:
            path = Path(folder) / name
            if path.is_file() and not path.is_symlink():
                yield path


def _ranges(fd: int, size: int, margin: int) -> list[tuple[int, int]]:
    """The byte ranges of a file that hold data (holes of sparse files read as zeros and
    are skipped), widened by ``margin`` so that a pattern across an edge is still seen."""
    spans: list[tuple[int, int]] = []
    offset = 0
    try:
        while offset < size:
            start = os.lseek(fd, offset, os.SEEK_DATA)
            end = os.lseek(fd, start, os.SEEK_HOLE)
            spans.append((max(0, start - margin), min(size, end + margin)))
            offset = end
    except OSError:  # ENXIO: no data after offset (or no SEEK_DATA: read everything)
        if not spans and offset == 0:
            spans = [(0, size)]
    merged: list[tuple[int, int]] = []
    for start, end in spans:
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    return merged


def scan_tree(root: Path, targets: Sequence[Target]) -> ScanResult:
    """Read every regular file under ``root`` once, looking for every form of every target."""
    result = ScanResult()
    forms = [(t, f) for t in targets for f in t.forms if f]
    overlap = max((len(f) for _, f in forms), default=1) - 1
    for path in _files(root):
        result.files_scanned += 1
        try:
            fd = os.open(path, os.O_RDONLY)
        except OSError:  # vanished between listing and reading (a lock file, a temp file)
            continue
        try:
            for start, end in _ranges(fd, os.fstat(fd).st_size, overlap):
                tail = b""
                offset = start
                while offset < end:
                    block = os.pread(fd, min(_BLOCK, end - offset), offset)
                    if not block:
                        break
                    offset += len(block)
                    result.bytes_scanned += len(block)
                    window = tail + block
                    if window.count(0) != len(window):
                        for target, form in forms:
                            if form in window:
                                result.found.setdefault(target, set()).add(
                                    str(path.relative_to(root)))
                    tail = window[-overlap:] if overlap else b""
        finally:
            os.close(fd)
    return result


def summary(targets: Sequence[Target], before: ScanResult | None,
            after: ScanResult) -> dict[str, object]:
    """The scan as it goes in a certificate: per kind, how many targets were looked for,
    how many the scan saw before the erasure (proof that it can see them), and how many
    it still found after."""
    kinds: dict[str, dict[str, int]] = {}
    for target in targets:
        row = kinds.setdefault(target.kind, {"targets": 0, "seen_before": 0, "found_after": 0})
        row["targets"] += 1
        row["seen_before"] += int(before is not None and target in before.found)
        row["found_after"] += int(target in after.found)
    if before is None:
        for row in kinds.values():
            del row["seen_before"]
    return {
        "files_scanned": after.files_scanned,
        "bytes_scanned": after.bytes_scanned,
        "patterns": kinds,
        "found": len(after.found),
        "found_in": after.found_in(),
    }
