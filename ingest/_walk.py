"""Find the files to ingest under the paths a user gives, and refuse what is not a document.

A folder given to ``ingest`` is a boundary: a symbolic link whose target lies outside it
is refused (otherwise a link would index, under the target's name, a file the user never
pointed at, and ``--sync`` would never remove it). Named pipes, sockets and devices are
refused too, without being opened (opening a FIFO blocks). Each refusal is reported with
a one-line reason through the ``refuse`` callback; the walk goes on.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

from security import IngestError

_SKIP_PREFIXES = ("~$", ".~lock.")  # Office and LibreOffice lock files
_KINDS = {
    stat.S_IFIFO: "a named pipe (FIFO)",
    stat.S_IFSOCK: "a socket",
    stat.S_IFCHR: "a character device",
    stat.S_IFBLK: "a block device",
}

Refuse = Callable[[Path, IngestError], None]


def _ignore(path: Path, error: IngestError) -> None:
    """Default ``refuse``: the caller did not ask to hear about refusals."""


def walk(paths: Iterable[Path], refuse: Refuse = _ignore) -> Iterator[Path]:
    """Yield regular files under ``paths`` (files or folders), sorted, resolved, each once.

    Hidden files and folders and lock files are skipped. Links are followed only when their
    target stays inside the folder being walked (a link to a folder is never followed: the
    folder is walked where it is); anything else that is not a regular file is passed to
    ``refuse`` with the reason.
    """
    seen: set[Path] = set()
    for given in paths:
        root = given.resolve()  # the user named it: its own links are followed
        candidates = _walk_dir(root, refuse) if root.is_dir() else _check(root, None, refuse)
        for path in candidates:
            if path not in seen:
                seen.add(path)
                yield path


def _walk_dir(root: Path, refuse: Refuse) -> Iterator[Path]:
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        here = Path(dirpath)
        for name in [d for d in dirnames if not d.startswith(".")]:
            if (here / name).is_symlink():  # never walked; refused if it leaves the root
                yield from _check(here / name, root, refuse, folder=True)
        dirnames[:] = sorted(d for d in dirnames if not d.startswith(".")
                             and not (here / d).is_symlink())
        for name in sorted(filenames):
            if name.startswith(".") or name.startswith(_SKIP_PREFIXES):
                continue
            yield from _check(here / name, root, refuse)


def _check(path: Path, root: Path | None, refuse: Refuse, *,
           folder: bool = False) -> Iterator[Path]:
    """Yield ``path`` (resolved) if it is a regular file within ``root``; else refuse it."""
    try:
        info = os.lstat(path)
        if stat.S_ISLNK(info.st_mode):
            target = path.resolve(strict=True)
            if root is not None and not target.is_relative_to(root):
                refuse(path, IngestError(
                    f"Symbolic link to {target}, outside {root}: refused.",
                    hint="Ingest the target's folder itself, or copy the file in."))
                return
            if folder:
                return  # inside the root: its files are reached by their own path
            info = os.stat(target)
            path = target
    except FileNotFoundError:
        if path.is_symlink():
            refuse(path, IngestError("Broken symbolic link (its target does not exist).",
                                     hint="Remove the link or restore its target."))
        else:
            refuse(path, IngestError("No such file or folder.", hint="Check the path."))
        return
    except (OSError, RuntimeError) as exc:  # RuntimeError: a link loop (Python < 3.13)
        refuse(path, IngestError(f"Cannot read this entry: {exc}.",
                                 hint="Check its permissions, or remove it."))
        return
    if stat.S_ISREG(info.st_mode):
        yield path.resolve()
        return
    kind = _KINDS.get(stat.S_IFMT(info.st_mode))
    if kind is not None:
        refuse(path, IngestError(
            f"This is {kind}, not a document: not opened.",
            hint="Only regular files are ingested; remove it from the folder."))
