"""Parse files in a confined child process with a time limit and a memory cap.

A corrupt or hostile file can make a parser loop, balloon, crash, or try to reach out.
Each worker is a separate process (spawned, so it inherits no threads or open stores) that
confines itself before importing any parser (:mod:`._sandbox`: its own network namespace,
an unprivileged user, a seccomp filter; inherited by LibreOffice, pandoc and tesseract)
and sets ``RLIMIT_AS``. The parent waits at most ``timeout_s`` for an answer, then kills
and restarts the worker. The parent never imports unstructured and never opens a PDF with
a library: the PDF structure check runs in the worker too.

The worker cannot open the user's files (it is not root): the parent opens each file and
hands the worker the open descriptor over the pipe (a Unix socket pair). The worker copies
it into its private scratch directory (in RAM when possible, 0700, owned by the worker's
user, named after the worker's pid), parses the copy and deletes it. Scratch directories
left by a killed worker are removed when the next worker starts.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import resource
import shutil
import stat
import sysconfig
import tempfile
from dataclasses import dataclass
from multiprocessing.connection import Connection
from multiprocessing.reduction import recv_handle, send_handle
from pathlib import Path
from typing import Any

import security
from security import ConfigError, IngestError, ParseFailedError

from ._formats import FORMATS, check_pdf_structure
from ._sandbox import Isolation, confine, user_ids
from ._types import ParsedDocument

_STARTUP_TIMEOUT_S = 180.0
SCRATCH_PREFIX = "greffier-parse-"


@dataclass(frozen=True)
class WorkerLimits:
    timeout_s: float = 180.0
    memory_mb: int = 4096
    languages: tuple[str, ...] = ("fra", "eng")
    sandbox_user: str = "nobody"  # the worker's user when Greffier runs as root


def scratch_base() -> Path:
    """Where scratch directories go: RAM when possible, since plaintext must not hit disk."""
    shm = Path("/dev/shm")  # noqa: S108 - a private mkdtemp inside, mode 0700
    if shm.is_dir() and os.access(shm, os.W_OK):
        return shm
    return Path(tempfile.gettempdir())


def _pid_alive(pid: int) -> bool:
    """Is ``pid`` a running process? (A zombie is dead: it only waits to be reaped.)"""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except FileNotFoundError:
        return False
    except OSError:
        return True  # cannot tell: keep its directory
    return not state or state[0] != "Z"


def sweep_stale_scratch(base: Path) -> list[Path]:
    """Remove scratch directories whose worker (the pid in their name) is dead."""
    removed = []
    for entry in base.glob(SCRATCH_PREFIX + "*"):
        pid = entry.name[len(SCRATCH_PREFIX):].split("-", 1)[0]
        if pid.isdigit() and not _pid_alive(int(pid)) and entry.is_dir() \
                and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)
            removed.append(entry)
    return removed


def _make_scratch(pid: int, owner: tuple[int, int] | None) -> str:
    scratch = tempfile.mkdtemp(prefix=f"{SCRATCH_PREFIX}{pid}-", dir=scratch_base())
    if owner is not None:
        os.chown(scratch, *owner)
    return scratch


def _enter(scratch: str, limits: WorkerLimits, allowed_hosts: tuple[str, ...]) -> Isolation:
    """Everything the worker does before it imports a parser."""
    from ._offline import set_offline_environment

    set_offline_environment()
    for var in ("HOME", "TMPDIR", "TMP", "TEMP"):
        os.environ[var] = scratch  # LibreOffice's profile, conversions, OCR images
    tempfile.tempdir = scratch
    isolation = confine(limits.sandbox_user)
    cap = limits.memory_mb * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
    security.forbid_network(allowed_hosts)
    return isolation


def _serve(conn: Connection, limits: WorkerLimits, allowed_hosts: tuple[str, ...]) -> None:
    scratch = conn.recv()
    python = [sysconfig.get_path(name) for name in ("stdlib", "purelib", "platlib")]
    isolation = _enter(scratch, limits, allowed_hosts)
    # Once unprivileged, can this process still read Python and its packages?
    unreadable = next((p for p in python if not os.access(p, os.R_OK | os.X_OK)), None)
    if unreadable is not None:
        conn.send(("unreadable", unreadable, []))
        return
    from ._offline import prepare_unstructured
    from ._parse import UnstructuredParser

    prepare_unstructured()
    parser = UnstructuredParser(list(limits.languages))
    conn.send(("ready", isolation, security.blocked_attempts()))
    count = 0
    while True:
        try:
            fmt, suffix = conn.recv()
            fd = recv_handle(conn)
        except EOFError:
            return
        count += 1
        copy = Path(scratch) / f"input-{count}{suffix}"
        before = len(security.blocked_attempts())
        reply = _parse_one(parser, fd, copy, fmt, limits)
        # Connection attempts blocked while parsing travel back to the parent, which keeps
        # the full record (tests assert it stays empty).
        conn.send((*reply, security.blocked_attempts()[before:]))
        if isinstance(reply[1], tuple) and "memory budget" in reply[1][1]:
            return


def _parse_one(parser: Any, fd: int, copy: Path, fmt: str,
               limits: WorkerLimits) -> tuple[str, Any]:
    try:
        with os.fdopen(fd, "rb") as source, open(copy, "xb") as target:
            shutil.copyfileobj(source, target, 1024 * 1024)
        if fmt == "pdf":
            check_pdf_structure(copy)
        return ("ok", parser.parse(copy, fmt))
    except IngestError as exc:
        return ("err", (type(exc).__name__, exc.message, exc.hint))
    except MemoryError:
        return ("err", ("ParseFailedError",
                        f"The parser exceeded its {limits.memory_mb} MB memory budget.",
                        "Raise ingest.parse_memory_mb if the document is genuine."))
    except Exception as exc:  # never let one file kill the worker silently
        return ("err", ("ParseFailedError", f"Unexpected parser error: {exc!r}"[:400],
                        "Report this file to the Greffier maintainers."))
    finally:
        copy.unlink(missing_ok=True)


def _rebuild(payload: tuple[str, str, str | None]) -> IngestError:
    name, message, hint = payload
    cls = getattr(security, name, ParseFailedError)
    if not (isinstance(cls, type) and issubclass(cls, IngestError)):
        cls = ParseFailedError
    error: IngestError = cls(message, hint=hint)
    return error


def open_document(path: Path) -> int:
    """Open a regular file for the worker, never following a link nor blocking on a FIFO."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise IngestError(f"{path.name} is not a regular file.",
                          hint="Only documents are ingested; remove it from the folder.")
    return fd


class ParseWorker:
    """One confined parser process, restarted after a timeout or a crash."""

    def __init__(self, limits: WorkerLimits, allowed_hosts: tuple[str, ...] = ()) -> None:
        self._limits = limits
        self._allowed = allowed_hosts
        self._proc: Any = None
        self._conn: Connection | None = None
        self.blocked_attempts: list[str] = []
        self._tmp: str | None = None
        self._isolation: Isolation | None = None

    @property
    def isolation(self) -> Isolation | None:
        """How the worker is confined, as it measured itself; None before the first start."""
        return self._isolation

    @property
    def pid(self) -> int | None:
        return int(self._proc.pid) if self._proc is not None else None

    @property
    def scratch(self) -> Path | None:
        return Path(self._tmp) if self._tmp is not None else None

    def _owner(self) -> tuple[int, int] | None:
        if os.geteuid() != 0:
            return None
        try:
            return user_ids(self._limits.sandbox_user)
        except KeyError:
            raise ConfigError(
                f"The parser's user {self._limits.sandbox_user!r} does not exist.",
                hint="Create it (useradd --system) or set ingest.sandbox_user.",
            ) from None

    def start(self) -> Isolation:
        """Start the worker if it is not running; returns how it is confined."""
        self._ensure()
        assert self._isolation is not None
        return self._isolation

    def _ensure(self) -> Connection:
        if self._proc is not None and self._proc.is_alive() and self._conn is not None:
            return self._conn
        self.close()
        owner = self._owner()
        sweep_stale_scratch(scratch_base())
        ctx = mp.get_context("spawn")
        parent, child = ctx.Pipe()
        proc = ctx.Process(target=_serve, args=(child, self._limits, self._allowed),
                           daemon=True, name="greffier-parse")
        proc.start()
        child.close()
        self._proc, self._conn = proc, parent
        assert proc.pid is not None  # started
        self._tmp = _make_scratch(proc.pid, owner)
        parent.send(self._tmp)
        # Start-up (imports, spaCy pipeline) is not charged to the first file's time limit.
        try:
            ready = parent.recv() if parent.poll(_STARTUP_TIMEOUT_S) else ("timeout", None, [])
        except (EOFError, OSError):
            ready = ("crashed", None, [])
        self.blocked_attempts.extend(ready[2])
        if ready[0] == "unreadable":
            self.close()
            raise ConfigError(
                f"The parser's user {self._limits.sandbox_user!r} cannot read {ready[1]}.",
                hint="Install Greffier where that user can read it (o+rx on every parent "
                "folder), or set ingest.sandbox_user.")
        if ready[0] != "ready":
            self.close()
            raise ParseFailedError(
                "The parser process did not start.",
                hint="Run `greffier status` to check the installation.",
            )
        self._isolation = ready[1]
        return parent

    def parse(self, path: Path, fmt: str) -> ParsedDocument:
        fd = open_document(path)
        try:
            conn = self._ensure()
            conn.send((fmt, _suffix(path, fmt)))
            send_handle(conn, fd, self._proc.pid)
        except OSError as exc:  # the worker died between two files
            self.close()
            raise ParseFailedError("The parser process stopped unexpectedly.",
                                   hint="Ingest again; the file will be retried.") from exc
        finally:
            os.close(fd)
        if not conn.poll(self._limits.timeout_s):
            self.close()
            raise ParseFailedError(
                f"Parsing took longer than {self._limits.timeout_s:.0f} s and was stopped.",
                hint="Raise ingest.parse_timeout_s if the document is genuine and very large.",
            )
        try:
            status, payload, blocked = conn.recv()
        except (EOFError, OSError) as exc:
            code = self._proc.exitcode if self._proc is not None else None
            self.close()
            raise ParseFailedError(
                f"The parser crashed (exit code {code}).",
                hint="The file is probably damaged; re-export it.",
            ) from exc
        self.blocked_attempts.extend(blocked)
        if status == "ok":
            assert isinstance(payload, ParsedDocument)
            return payload
        raise _rebuild(payload)

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
        if self._proc is not None:
            if self._proc.is_alive():
                self._proc.kill()
            self._proc.join(timeout=5)
        self._proc, self._conn = None, None  # isolation stays: the last worker's
        if self._tmp is not None:  # conversions and OCR images of the parsed documents
            shutil.rmtree(self._tmp, ignore_errors=True)
            self._tmp = None


def _suffix(path: Path, fmt: str) -> str:
    """The copy's extension: the file's own when Greffier knows it, else the format's."""
    suffix = path.suffix.lower()
    if FORMATS.get(suffix) == fmt:
        return suffix
    return next(ext for ext, name in FORMATS.items() if name == fmt)
