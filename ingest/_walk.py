"""Find the files to ingest under the paths a user gives."""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from pathlib import Path

_SKIP_PREFIXES = ("~$", ".~lock.")  # Office and LibreOffice lock files


def walk(paths: Iterable[Path]) -> Iterator[Path]:
    """Yield regular files under ``paths`` (files or folders), sorted, resolved, each once.

    Hidden files and folders, lock files and symbolic links to folders are skipped, so a
    link cannot make the walk loop or escape into the rest of the disk.
    """
    seen: set[Path] = set()
    for root in paths:
        root = root.resolve()
        if root.is_file():
            candidates: Iterable[Path] = [root]
        else:
            candidates = _walk_dir(root)
        for path in candidates:
            if path not in seen:
                seen.add(path)
                yield path


def _walk_dir(root: Path) -> Iterator[Path]:
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in sorted(filenames):
            if name.startswith(".") or name.startswith(_SKIP_PREFIXES):
                continue
            path = Path(dirpath) / name
            if path.is_file():
                yield path.resolve()
