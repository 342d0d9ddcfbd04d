"""Parse files in a child process with a time limit and a memory cap.

A corrupt or hostile file can make a parser loop, balloon or crash. Each worker is a
separate process (spawned, so it inherits no threads or open stores) with ``RLIMIT_AS``
set; the parent waits at most ``timeout_s`` for an answer, then kills and restarts the
worker. The parent never imports unstructured.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import resource
import shutil
import tempfile
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import security
from security import IngestError, ParseFailedError

from ._types import ParsedDocument

_STARTUP_TIMEOUT_S = 180.0


@dataclass(frozen=True)
class WorkerLimits:
    timeout_s: float = 180.0
    memory_mb: int = 4096
    languages: tuple[str, ...] = ("fra", "eng")


def _private_tmp() -> str:
    """Temporary files of parsers (LibreOffice conversions, OCR images) go to RAM when possible:
    plaintext of a document must not land on disk. Removed when the worker stops."""
    shm = Path("/dev/shm")  # noqa: S108 - a private mkdtemp inside, mode 0700
    base = shm if shm.is_dir() and os.access(shm, os.W_OK) else None
    return tempfile.mkdtemp(prefix="greffier-parse-", dir=base)


def _serve(conn: Connection, limits: WorkerLimits, allowed_hosts: tuple[str, ...],
           tmp: str) -> None:
    os.environ["TMPDIR"] = tmp
    tempfile.tempdir = tmp
    cap = limits.memory_mb * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
    security.forbid_network(allowed_hosts)
    from ._offline import prepare_unstructured
    from ._parse import UnstructuredParser

    prepare_unstructured()
    parser = UnstructuredParser(list(limits.languages))
    conn.send(("ready", None, security.blocked_attempts()))
    while True:
        try:
            request = conn.recv()
        except EOFError:
            return
        path, fmt = request
        before = len(security.blocked_attempts())
        reply: tuple[str, Any]
        try:
            reply = ("ok", parser.parse(Path(path), fmt))
        except IngestError as exc:
            reply = ("err", (type(exc).__name__, exc.message, exc.hint))
        except MemoryError:
            reply = ("err", ("ParseFailedError",
                             f"The parser exceeded its {limits.memory_mb} MB memory budget.",
                             "Raise ingest.parse_memory_mb if the document is genuine."))
        except Exception as exc:  # never let one file kill the worker silently
            reply = ("err", ("ParseFailedError", f"Unexpected parser error: {exc!r}"[:400],
                             "Report this file to the Greffier maintainers."))
        # Connection attempts blocked while parsing travel back to the parent, which keeps
        # the full record (tests assert it stays empty).
        conn.send((*reply, security.blocked_attempts()[before:]))
        if isinstance(reply[1], tuple) and "memory budget" in reply[1][1]:
            return


def _rebuild(payload: tuple[str, str, str | None]) -> IngestError:
    name, message, hint = payload
    cls = getattr(security, name, ParseFailedError)
    if not (isinstance(cls, type) and issubclass(cls, IngestError)):
        cls = ParseFailedError
    error: IngestError = cls(message, hint=hint)
    return error


class ParseWorker:
    """One parser process, restarted after a timeout or a crash."""

    def __init__(self, limits: WorkerLimits, allowed_hosts: tuple[str, ...] = ()) -> None:
        self._limits = limits
        self._allowed = allowed_hosts
        self._proc: Any = None
        self._conn: Connection | None = None
        self.blocked_attempts: list[str] = []
        self._tmp: str | None = None

    def _ensure(self) -> Connection:
        if self._proc is not None and self._proc.is_alive() and self._conn is not None:
            return self._conn
        self.close()
        ctx = mp.get_context("spawn")
        parent, child = ctx.Pipe()
        self._tmp = _private_tmp()
        proc = ctx.Process(target=_serve, args=(child, self._limits, self._allowed, self._tmp),
                           daemon=True, name="greffier-parse")
        proc.start()
        child.close()
        self._proc, self._conn = proc, parent
        # Start-up (imports, spaCy pipeline) is not charged to the first file's time limit.
        ready = parent.recv() if parent.poll(_STARTUP_TIMEOUT_S) else ("timeout", None, [])
        self.blocked_attempts.extend(ready[2])
        if ready[0] != "ready":
            self.close()
            raise ParseFailedError(
                "The parser process did not start.",
                hint="Run `greffier status` to check the installation.",
            )
        return parent

    def parse(self, path: Path, fmt: str) -> ParsedDocument:
        conn = self._ensure()
        conn.send((str(path), fmt))
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
        self._proc, self._conn = None, None
        if self._tmp is not None:  # conversions and OCR images of the parsed documents
            shutil.rmtree(self._tmp, ignore_errors=True)
            self._tmp = None
