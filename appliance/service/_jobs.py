"""Background jobs (ingests): one worker thread each, progress and per-file errors kept
in memory for the life of the process."""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

JobState = Literal["queued", "running", "done", "failed", "cancelled"]


@dataclass
class FileResult:
    name: str
    status: str
    doc_id: str | None = None
    chunks: int = 0
    error: str | None = None
    message: str | None = None


@dataclass
class Job:
    id: str
    kind: str
    owner: str  # user id of who started it
    state: JobState = "queued"
    total: int | None = None
    done: int = 0
    files: list[FileResult] = field(default_factory=list)
    error: str | None = None
    created_at: float = field(default_factory=time.time)
    finished_at: float | None = None
    cancelled: threading.Event = field(default_factory=threading.Event, repr=False)


class Jobs:
    """Jobs by id. At most ``keep`` finished jobs are remembered."""

    def __init__(self, keep: int = 500) -> None:
        self._jobs: dict[str, Job] = {}
        self._lock = threading.Lock()
        self._keep = keep

    def start(self, kind: str, owner: str, work: Callable[[Job], None]) -> Job:
        job = Job(id=secrets.token_hex(12), kind=kind, owner=owner)
        with self._lock:
            self._jobs[job.id] = job
            self._forget_old()

        def run() -> None:
            job.state = "running"
            try:
                work(job)
                job.state = "cancelled" if job.cancelled.is_set() else "done"
            except Exception as exc:  # reported on the job, never crashes the server
                job.state = "failed"
                job.error = getattr(exc, "message", None) or type(exc).__name__
            finally:
                job.finished_at = time.time()

        threading.Thread(target=run, name=f"job-{job.id[:6]}", daemon=True).start()
        return job

    def get(self, job_id: str) -> Job | None:
        with self._lock:
            return self._jobs.get(job_id)

    def cancel_all(self) -> None:
        with self._lock:
            for job in self._jobs.values():
                job.cancelled.set()

    def _forget_old(self) -> None:
        finished = [j for j in self._jobs.values() if j.finished_at is not None]
        for job in sorted(finished, key=lambda j: j.created_at)[:-self._keep or None]:
            if len(self._jobs) <= self._keep:
                break
            del self._jobs[job.id]
