"""Documents: list, metadata, download of the original, upload (a background ingest job),
and crypto-erasure with its signed certificate."""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import shutil
import stat
from collections.abc import Iterator
from pathlib import Path, PurePath
from typing import IO

from ingest import DocumentRecord, Limits, format_of, precheck
from security import ConfigError, ConflictError, ForbiddenError, NotFoundError

from .._erase import erase
from .._indexer import FileOutcome, Progress
from ._access import readable, upload_acl
from ._jobs import FileResult, Job
from ._models import DocumentOut, DocumentPage, ErasureOut, FileResultOut, JobOut
from ._principal import Principal
from ._runtime import Runtime

_SAFE = re.compile(r"[^A-Za-z0-9._ -]+")


def list_documents(rt: Runtime, who: Principal, *, offset: int = 0, limit: int = 50,
                   fmt: str | None = None, name: str | None = None) -> DocumentPage:
    who.require("documents.read")
    with rt.using() as app:
        scope = who.scope
        docs = [d for d in app.catalog.documents() if scope.allows(d.acl)
                and (fmt is None or d.format == fmt)
                and (name is None or name.lower() in PurePath(d.path).name.lower())]
    page = docs[offset:offset + limit]
    following = offset + limit
    return DocumentPage(items=[document_out(d) for d in page], total=len(docs), offset=offset,
                        limit=limit, next_offset=following if following < len(docs) else None)


def get_document(rt: Runtime, who: Principal, doc_id: str) -> DocumentOut:
    who.require("documents.read")
    with rt.using() as app:
        return document_out(readable(who, app.catalog.document_by_id(doc_id), doc_id))


def download(rt: Runtime, who: Principal, doc_id: str) -> tuple[DocumentOut, Iterator[bytes]]:
    """The original, decrypted as it streams (audited before the first byte)."""
    who.require("documents.read")
    with rt.using() as app:
        doc = readable(who, app.catalog.document_by_id(doc_id), doc_id)
        segments = app.original(doc.content_hash, user=who.audit_name)
    return document_out(doc), segments


def erase_document(rt: Runtime, who: Principal, doc_id: str) -> ErasureOut:
    """Crypto-erasure of the document's content; returns the signed certificate. An
    editor erases only documents he may read, and only if he may read every document
    that shares the content (erasure destroys the content for all of them)."""
    who.require("documents.write")
    with rt.using() as app:
        doc = readable(who, app.catalog.document_by_id(doc_id), doc_id)
        if any(not who.scope.allows(d.acl) for d in app.catalog.documents_of(doc.content_hash)):
            raise ForbiddenError("Another document you may not read holds the same content; "
                                 "erasing it would erase that one too.",
                                 hint="Ask an admin to grant you that document, or to erase.")
        return ErasureOut(certificate=erase(app, doc_id, erased_by=who.audit_name))


class Staged:
    """An upload on its way in: written to memory-backed storage as it arrives, checked like
    any ingested file, then ingested by a background job."""

    def __init__(self, rt: Runtime, who: Principal, filename: str,
                 groups: tuple[str, ...] = ()) -> None:
        who.require("documents.write")
        self.acl = upload_acl(rt, who, groups)  # refused before a byte is staged
        self.rt, self.who = rt, who
        self.app = rt.appliance()
        self.name = safe_name(filename)
        self.fmt = format_of(Path(self.name))  # UnsupportedFormatError → 415
        # One stable place per uploader and name: uploading the same name again makes a
        # new version of the same document.
        folder = staging_dir(rt) / who.user_id
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.path = folder / self.name
        try:
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        except FileExistsError as exc:
            raise ConflictError(f"An upload of {self.name!r} is already in progress.",
                                hint="Wait for its job to finish, then upload again.") from exc
        self._out: IO[bytes] | None = os.fdopen(fd, "wb")

    def write(self, data: bytes) -> None:
        assert self._out is not None
        self._out.write(data)

    def abort(self) -> None:
        if self._out is not None:
            self._out.close()
            self._out = None
        self.path.unlink(missing_ok=True)

    def finish(self) -> Job:
        assert self._out is not None
        self._out.close()
        self._out = None
        ing = self.app.settings.ingest
        limits = Limits(max_file_mb=ing.max_file_mb, max_text_mb=ing.max_text_mb,
                        max_unpacked_mb=ing.max_unpacked_mb,
                        max_document_chars=ing.max_document_chars)
        try:
            precheck(self.path, self.fmt, limits)  # impostors, bombs, encrypted → 415/422
        except BaseException:
            self.abort()
            raise
        return self.rt.jobs.start("upload", self.who.user_id, self._ingest)

    def _ingest(self, job: Job) -> None:
        job.total = 1

        def on_file(outcome: FileOutcome) -> None:
            doc = self.app.catalog.document(outcome.path)
            job.files.append(FileResult(self.name, outcome.status, doc.doc_id if doc else None,
                                        outcome.chunks, outcome.error, outcome.message))
            job.done += 1
            self.rt.count("greffier_ingest_files_total", status=outcome.status)
            self.rt.count("greffier_ingest_chunks_total", outcome.chunks)

        try:
            with self.rt.using() as app:
                app.ingest([self.path], acl=self.acl, progress=Progress(on_file=on_file),
                           user=self.who.audit_name)
        finally:
            self.path.unlink(missing_ok=True)


def upload(rt: Runtime, who: Principal, filename: str, body: IO[bytes],
           groups: tuple[str, ...] = ()) -> Job:
    """Upload from a file object (the CLI, tests)."""
    staged = Staged(rt, who, filename, groups)
    try:
        shutil.copyfileobj(body, staged, 1 << 20)
    except BaseException:
        staged.abort()
        raise
    return staged.finish()


def get_job(rt: Runtime, who: Principal, job_id: str) -> JobOut:
    job = rt.jobs.get(job_id)
    if job is None or (job.owner != who.user_id and not who.can("sources")):
        raise NotFoundError(f"No job {job_id!r}.")
    return job_out(job)


def job_out(job: Job) -> JobOut:
    return JobOut(id=job.id, kind=job.kind, state=job.state, total=job.total, done=job.done,
                  files=[FileResultOut(**f.__dict__) for f in job.files], error=job.error,
                  created_at=job.created_at, finished_at=job.finished_at)


def staging_dir(rt: Runtime) -> Path:
    """Where uploads wait for the parser: memory-backed, private to the service's user.
    As root, under /run/greffier (a tmpfs only root can create in, so nobody squats the
    name); otherwise under /dev/shm, checked to be ours."""
    tag = hashlib.sha256(str(rt.settings.data_dir).encode()).hexdigest()[:16]
    given = os.environ.get("GREFFIER_STAGING_DIR")
    if given:
        base = Path(given)
    elif os.geteuid() == 0 and Path("/run").is_dir():
        base = Path("/run/greffier")
        base.mkdir(mode=0o700, exist_ok=True)
    else:
        base = Path("/dev/shm")  # noqa: S108 - a tmpfs; the folder is checked below
    folder = base / f"staging-{tag}"
    folder.mkdir(mode=0o700, exist_ok=True)
    info = folder.lstat()
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.geteuid() or info.st_mode & 0o077:
        raise ConfigError("The upload staging folder is not private to the service.",
                          hint="Set GREFFIER_STAGING_DIR to a private tmpfs folder.")
    return folder


def clear_staging(rt: Runtime) -> None:
    """At shutdown: uploads not yet ingested are dropped (their jobs end with the process)."""
    with contextlib.suppress(ConfigError, OSError):
        shutil.rmtree(staging_dir(rt))


def safe_name(filename: str) -> str:
    """A file name from a client, reduced to a harmless base name (never a path)."""
    base = PurePath(filename.replace("\\", "/")).name
    cleaned = _SAFE.sub("_", base).strip(" .")[:120]
    return cleaned or "upload"


def document_out(doc: DocumentRecord) -> DocumentOut:
    return DocumentOut(doc_id=doc.doc_id, name=PurePath(doc.path).name, format=doc.format,
                       size=doc.size, version=doc.version, content_sha256=doc.content_hash,
                       modified_at=doc.mtime_ns / 1e9)
