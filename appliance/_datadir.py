"""The data directory: one process at a time, and private."""

from __future__ import annotations

import fcntl
import getpass
import os
import stat
from pathlib import Path
from typing import IO

from security import ConfigError, StoreError


def _tighten(data: Path) -> None:
    """Remove group and other permissions from the data directory and everything in it
    (a directory restored from a backup, or made by hand with looser modes). Links are
    neither followed nor changed."""
    for folder, dirs, files in os.walk(data):
        for name in [folder, *(os.path.join(folder, n) for n in (*dirs, *files))]:
            st = os.lstat(name)
            if not stat.S_ISLNK(st.st_mode) and st.st_mode & 0o077:
                os.chmod(name, stat.S_IMODE(st.st_mode) & 0o700)


def lock_data_dir(data: Path) -> IO[str]:
    """Take the data directory for this process, and keep it private: whatever this process
    creates from now on is 0600/0700 (umask), and what exists is tightened to that."""
    os.umask(0o077)
    try:
        data.mkdir(parents=True, exist_ok=True, mode=0o700)
        lock = (data / "greffier.lock").open("a")
        _tighten(data)
    except OSError as exc:
        raise ConfigError(f"Cannot use the data directory {data}: {exc}",
                          hint="Set data_dir (GREFFIER_DATA_DIR) to a writable folder.") from exc
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError as exc:
        lock.close()
        raise StoreError(
            f"Another Greffier process is using {data}.",
            hint="Wait for it to finish (an ingest holds the data directory).") from exc
    return lock


class BorrowedLock:
    """The data-directory lock of a long-running service, lent to one opened appliance:
    closing the appliance leaves the service holding it."""

    def __init__(self, lock: IO[str]) -> None:
        self._lock = lock

    def close(self) -> None:
        pass


def current_user() -> str:
    """Who runs this command: the sudo caller if any, else the login name (undecodable
    bytes and control characters replaced: the name goes into the audit log)."""
    name = os.environ.get("SUDO_USER") or getpass.getuser()
    text = name.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    return "".join(c if c.isprintable() else "\ufffd" for c in text)[:128]
