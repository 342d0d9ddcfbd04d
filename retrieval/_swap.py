"""Replace a store directory by a rebuilt one so that a crash leaves one of them usable.

The rebuilt copy is made in ``<dir>.new``, made durable, then marked complete. The swap is
two renames (``<dir>`` → ``<dir>.old``, ``<dir>.new`` → ``<dir>``) and the removal of the old
copy. :func:`finish_swap`, called before the store is opened, completes a swap that a crash
interrupted once the new copy is complete, and otherwise throws the partial copy away:

====================================  ===========================================
on disk after the crash               finish_swap
====================================  ===========================================
``.new`` without its marker           delete ``.new`` (the old store is intact)
``dir`` + complete ``.new``           roll forward: both renames, delete ``.old``
``.old`` + complete ``.new``          roll forward: rename ``.new``, delete ``.old``
``dir`` + ``.old``                    delete ``.old`` (the swap was done)
``.old`` alone                        roll back: rename ``.old`` to ``dir``
====================================  ===========================================
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

COMPLETE = ".greffier-rebuild-complete"


def sibling(path: Path, suffix: str) -> Path:
    return path.with_name(path.name + suffix)


def _step(name: str) -> None:
    """A named point between two steps of the swap (tests simulate a crash here)."""


def fsync_tree(root: Path) -> None:
    """Flush every file and directory under ``root`` to stable storage."""
    for folder, _dirs, files in os.walk(root):
        for name in files:
            fd = os.open(os.path.join(folder, name), os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        _fsync_dir(Path(folder))


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def mark_complete(new: Path) -> None:
    """Make the rebuilt copy durable, then mark it complete (the marker comes last)."""
    fsync_tree(new)
    _step("before-marker")
    (new / COMPLETE).write_bytes(b"")
    _fsync_dir(new)


def _remove(path: Path) -> None:
    shutil.rmtree(path)
    _fsync_dir(path.parent)


def swap_in(path: Path, new: Path) -> None:
    """Put the complete copy ``new`` in place of ``path``; the old files are deleted."""
    old = sibling(path, ".old")
    if old.exists():
        _remove(old)
    _step("before-first-rename")
    path.rename(old)
    _fsync_dir(path.parent)
    _step("between-renames")
    new.rename(path)
    _fsync_dir(path.parent)
    _step("before-delete")
    _remove(old)
    (path / COMPLETE).unlink()
    _fsync_dir(path)


def finish_swap(path: Path) -> str | None:
    """Finish or roll back a swap a crash interrupted; returns what was done, if anything."""
    new, old = sibling(path, ".new"), sibling(path, ".old")
    if new.exists() and not (new / COMPLETE).exists():
        _remove(new)
        done = "discarded an incomplete rebuild"
    elif new.exists():
        if path.exists() and old.exists():
            _remove(path)  # the new copy is complete; .old is removed below
        elif path.exists():
            path.rename(old)
            _fsync_dir(path.parent)
        new.rename(path)
        _fsync_dir(path.parent)
        done = "finished an interrupted rebuild"
    else:
        done = ""
    if old.exists():
        if path.exists():
            _remove(old)
            done = done or "removed the previous store left by a rebuild"
        else:
            old.rename(path)
            _fsync_dir(path.parent)
            done = "rolled back an interrupted rebuild"
    if (path / COMPLETE).exists():
        (path / COMPLETE).unlink()
    return done or None
