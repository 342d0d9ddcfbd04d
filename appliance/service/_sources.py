"""Sources: server-side folders an admin registers; synced on demand or every N minutes
(each sync is an ingest job with ``--sync`` semantics: gone files leave the index)."""

from __future__ import annotations

import contextlib
import grp
import os
import re
import threading
import time
import uuid
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from retrieval import GROUP_PREFIX
from security import ConflictError, InvalidRequestError, NotFoundError

from .._indexer import FileAcl, FileOutcome, Progress
from ..db import Group, SourceRow
from ._access import AccessIn, access_acl
from ._jobs import FileResult, Job
from ._principal import Principal
from ._runtime import Runtime

_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")


class SourceIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(pattern=_NAME.pattern, description="Lower-case letters, digits, . _ -")
    path: str = Field(min_length=1, max_length=4096, description="Absolute folder path.")
    every_minutes: int | None = Field(None, ge=5, le=7 * 24 * 60,
                                      description="Sync schedule; none: on demand only.")
    groups: list[str] = Field(default_factory=list, max_length=100,
                              description="Groups that may read its documents; none: nobody.")
    owning_group: bool = Field(False, description="Also let each file's owning POSIX group "
                               "read it, when a Greffier group bears that group's name.")


class SourceOut(BaseModel):
    id: str
    name: str
    path: str
    every_minutes: int | None
    groups: list[str]
    owning_group: bool
    created_by: str
    created_at: float
    last_sync_at: float | None
    last_job_id: str | None


def add_source(rt: Runtime, who: Principal, req: SourceIn) -> SourceOut:
    who.require("sources")
    path = Path(req.path)
    if not path.is_absolute() or ".." in path.parts:
        raise InvalidRequestError("A source is an absolute folder path, without '..'.")
    if not path.is_dir():
        raise InvalidRequestError(f"{path} is not a folder on this appliance.",
                                  hint="Mount the share on the appliance first.")
    ident = rt.identity
    acl = list(access_acl(rt, AccessIn(groups=req.groups)))  # before the transaction
    with ident.db.session() as s:
        if s.scalars(select(SourceRow).where(SourceRow.name == req.name)).first():
            raise ConflictError(f"A source named {req.name!r} exists.")
        row_id = uuid.uuid4().hex
        row = SourceRow(id=row_id, name=req.name, every_minutes=req.every_minutes,
                        path_sealed=ident.seal(str(path), "sources", row_id, "path"),
                        created_by=who.audit_name, created_at=time.time(),
                        acl=acl, owning_group=req.owning_group)
        s.add(row)
        ident.audit("source.add", who.audit_name,
                    {"source_id": row_id, "name": req.name, "every_minutes": req.every_minutes,
                     "acl": row.acl, "owning_group": req.owning_group}, {"path": str(path)})
        return _out(rt, row, s)


def list_sources(rt: Runtime, who: Principal) -> list[SourceOut]:
    who.require("sources")
    with rt.identity.db.session() as s:
        return [_out(rt, r, s)
                for r in s.scalars(select(SourceRow).order_by(SourceRow.name))]


def remove_source(rt: Runtime, who: Principal, source_id: str) -> None:
    """Unregister a source (its documents stay; erase them explicitly)."""
    who.require("sources")
    with rt.identity.db.session() as s:
        row = s.get(SourceRow, source_id)
        if row is None:
            raise NotFoundError(f"No source {source_id!r}.")
        s.delete(row)
        rt.identity.audit("source.remove", who.audit_name, {"source_id": source_id}, None)


def sync_source(rt: Runtime, who: Principal, source_id: str) -> Job:
    who.require("sources")
    with rt.identity.db.session() as s:
        row = s.get(SourceRow, source_id)
        if row is None:
            raise NotFoundError(f"No source {source_id!r}.")
        if row.last_job_id:
            running = rt.jobs.get(row.last_job_id)
            if running is not None and running.state in ("queued", "running"):
                raise ConflictError(f"Source {row.name!r} is already syncing.",
                                    hint=f"Follow GET /v1/jobs/{running.id}.")
        path = Path(rt.identity.unseal(row.path_sealed, "sources", row.id, "path"))
        acl = tuple(row.acl or ())
        acl_for = _owning_group_acl(s) if row.owning_group else None

        def work(job: Job) -> None:
            def on_file(outcome: FileOutcome) -> None:
                app = rt.appliance()
                doc = app.catalog.document(outcome.path)
                job.files.append(FileResult(os.path.basename(outcome.path), outcome.status,
                                            doc.doc_id if doc else None, outcome.chunks,
                                            outcome.error, outcome.message))
                job.done += 1
                rt.count("greffier_ingest_files_total", status=outcome.status)

            def on_total(total: int) -> None:
                job.total = total

            with rt.using() as app:
                app.ingest([path], acl=acl, sync=True, user=who.audit_name, acl_for=acl_for,
                           progress=Progress(on_total=on_total, on_file=on_file))

        job = rt.jobs.start("source-sync", who.user_id, work)
        row.last_job_id, row.last_sync_at = job.id, time.time()
        return job


def due_sources(rt: Runtime, now: float) -> list[str]:
    """Ids of scheduled sources whose next sync is due."""
    with rt.identity.db.session() as s:
        return [r.id for r in s.scalars(select(SourceRow).where(
            SourceRow.every_minutes.is_not(None)))
            if r.every_minutes and (r.last_sync_at or 0) + r.every_minutes * 60 <= now]


def run_schedule(rt: Runtime, scheduler: Principal, stop: threading.Event,
                 period_s: float = 30.0) -> None:
    """Start the due syncs every ``period_s`` until ``stop`` (a thread of the service)."""
    while not stop.wait(period_s):
        if rt.sealed:
            continue
        for source_id in due_sources(rt, time.time()):
            with contextlib.suppress(ConflictError):  # still syncing from last time
                sync_source(rt, scheduler, source_id)


def _out(rt: Runtime, row: SourceRow, s: Session) -> SourceOut:
    return SourceOut(id=row.id, name=row.name,
                     path=rt.identity.unseal(row.path_sealed, "sources", row.id, "path"),
                     every_minutes=row.every_minutes, groups=_group_names(s, row.acl or []),
                     owning_group=row.owning_group, created_by=row.created_by,
                     created_at=row.created_at, last_sync_at=row.last_sync_at,
                     last_job_id=row.last_job_id)


def _group_names(s: Session, acl: list[str]) -> list[str]:
    ids = [e[len(GROUP_PREFIX):] for e in acl if e.startswith(GROUP_PREFIX)]
    names = dict(s.execute(select(Group.id, Group.name).where(Group.id.in_(ids))).all())
    return sorted(names.get(i, i) for i in ids)


def _owning_group_acl(s: Session) -> FileAcl:
    """Each file's owning POSIX group as the Greffier group of the same name (names read at
    the start of the sync). A gid without a name, or a name no Greffier group bears, adds
    nobody."""
    ids: dict[str, str] = {name: gid for name, gid in s.execute(select(Group.name, Group.id))}
    entries: dict[int, tuple[str, ...]] = {}

    def acl_for(stat: os.stat_result) -> tuple[str, ...]:
        gid = stat.st_gid
        if gid not in entries:
            try:
                name: str | None = grp.getgrgid(gid).gr_name
            except KeyError:
                name = None
            group_id = (ids.get(name) or ids.get(name.lower())) if name else None
            entries[gid] = (f"{GROUP_PREFIX}{group_id}",) if group_id else ()
        return entries[gid]

    return acl_for
