"""The ingest pipeline: files → parse → chunk → embed → store, with the catalog as ledger.

Crash safety: a content is marked ``indexing`` in the catalog before its first point is
written and ``indexed`` only after the store is flushed. Point ids are deterministic, so a
replay overwrites. :meth:`Indexer.recover` (run before every ingest and search session)
deletes the points of any content a crash left half-written, so no half-indexed document
is ever served and the next run indexes it afresh.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent import futures
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from embeddings import Encoder
from ingest import (
    Catalog,
    Chunk,
    Chunker,
    Limits,
    ParsedDocument,
    ParseWorker,
    format_of,
    precheck,
    walk,
)
from retrieval import Analyzer, IndexedChunk, VectorStore
from security import ContentCipher, FileTooLargeError, IngestError, sha256_file

from ._guard import Guard
from ._ledger import Ledger
from ._outcomes import FileOutcome, IngestReport, Progress, Status

# Access entries a file adds to its ingest's, from its metadata (a source's owning group).
FileAcl = Callable[[os.stat_result], tuple[str, ...]]

__all__ = ["FileOutcome", "Indexer", "IngestReport", "Progress", "Status"]

_EMBED_BATCH = 64


@dataclass(frozen=True)
class _Parsed:
    candidate: _Candidate
    pages: int
    chunks: list[Chunk]
    status: Status


@dataclass
class _Candidate:
    path: Path
    size: int
    mtime_ns: int
    fmt: str
    content_hash: str
    acl: tuple[str, ...]
    parse: Future[ParsedDocument] | None = None


class Indexer:
    """Runs ingests against one catalog, store and encoder."""

    def __init__(self, *, catalog: Catalog, store: VectorStore, encoder: Encoder,
                 analyzer: Analyzer, chunker: Chunker, worker: ParseWorker,
                 limits: Limits, cipher: ContentCipher, blobs: Path) -> None:
        self.catalog = catalog
        self.cipher = cipher
        self.blobs = blobs
        self.store = store
        self.encoder = encoder
        self.analyzer = analyzer
        self.chunker = chunker
        self.worker = worker
        self.limits = limits
        # Held while the catalog, the store or the audit log change; a service shares its
        # runtime's lock here, so searches go on while a file is being parsed.
        self.guard = Guard()
        self.ledger = Ledger(catalog, store, cipher, blobs)

    # -- recovery ----------------------------------------------------------------------
    def recover(self) -> int:
        """Purge contents a previous run left half-indexed. Returns how many."""
        return self.ledger.recover()

    # -- ingest ------------------------------------------------------------------------
    def ingest(self, roots: Sequence[Path], *, acl: tuple[str, ...], sync: bool = False,
               progress: Progress | None = None, readmit_erased: bool = False,
               acl_for: FileAcl | None = None) -> IngestReport:
        """Ingest files, each document readable by ``acl`` and by what ``acl_for`` adds for
        its file (access entries; a file already indexed with other entries is
        re-stamped)."""
        with self.guard:
            return self._ingest(roots, sync, progress or Progress(), readmit_erased,
                                tuple(sorted(set(acl))), acl_for)

    def _ingest(self, roots: Sequence[Path], sync: bool, progress: Progress,
                readmit_erased: bool, acl: tuple[str, ...],
                acl_for: FileAcl | None = None) -> IngestReport:
        started = time.perf_counter()
        report = IngestReport(recovered=self.recover())
        refused: list[FileOutcome] = []
        files = list(walk(roots, refuse=lambda path, exc: refused.append(FileOutcome(
            str(path), "failed", error=type(exc).__name__, message=str(exc)))))
        progress.on_total(len(files) + len(refused))

        def record(outcome: FileOutcome) -> None:
            report.outcomes.append(outcome)
            progress.on_file(outcome)

        for outcome in refused:  # links out of the folder, FIFOs, devices: never opened
            record(outcome)

        candidates = self._screen(files, record, acl, readmit_erased, acl_for)
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="greffier-parse") as pool:
            scheduled: set[str] = set()
            # Parse ahead of embedding: the worker process parses file n+1 while this
            # process embeds file n.
            for candidate in candidates:
                if candidate.content_hash not in scheduled:
                    scheduled.add(candidate.content_hash)
                    candidate.parse = pool.submit(self.worker.parse, candidate.path,
                                                  candidate.fmt)
            batch: list[_Parsed] = []
            pending: set[str] = set()  # content hashes in the batch, not yet committed
            batch_chunks = 0
            aliases: dict[str, list[_Candidate]] = {}
            for candidate in candidates:
                if candidate.content_hash in pending:  # identical to a file not yet committed
                    aliases.setdefault(candidate.content_hash, []).append(candidate)
                    continue
                self._await_parse(candidate)
                prepared = self._prepare(candidate)
                if isinstance(prepared, FileOutcome):
                    record(prepared)
                    continue
                batch.append(prepared)
                pending.add(candidate.content_hash)
                batch_chunks += len(prepared.chunks)
                if batch_chunks >= _EMBED_BATCH:
                    for outcome in self._commit(batch, aliases):
                        record(outcome)
                    batch, pending, batch_chunks = [], set(), 0
            if batch:
                for outcome in self._commit(batch, aliases):
                    record(outcome)
            for leftover in (a for group in aliases.values() for a in group):
                left = self._prepare(leftover)  # no parse was scheduled for it
                if isinstance(left, FileOutcome):
                    record(left)
        self.store.flush()
        if sync:
            for outcome in self.ledger.remove_missing(roots, {str(p) for p in files}):
                record(outcome)
        self.catalog.set_meta("last_ingest", str(time.time()))
        if sync:
            self.catalog.set_meta("last_sync", str(time.time()))
        self.store.optimize()
        report.seconds = time.perf_counter() - started
        return report

    def _screen(self, files: Iterable[Path], record: Callable[[FileOutcome], None],
                base_acl: tuple[str, ...], readmit_erased: bool,
                acl_for: FileAcl | None = None) -> list[_Candidate]:
        """Classify files cheaply; return those that need work, in order."""
        model_id = self.encoder.identity.id
        out: list[_Candidate] = []
        for path in files:
            key = str(path)
            try:
                stat = path.stat()
            except OSError as exc:
                record(FileOutcome(key, "failed", error="OSError", message=str(exc)))
                continue
            acl = tuple(sorted({*base_acl, *acl_for(stat)})) if acl_for else base_acl
            size, mtime = stat.st_size, stat.st_mtime_ns
            doc = self.catalog.document(key)
            if doc and (doc.size, doc.mtime_ns) == (size, mtime) and self._current(
                    doc.content_hash, model_id):
                if doc.acl != acl:  # same file, other readers: re-stamp its points
                    self.ledger.link(key, doc.content_hash, size, mtime, doc.format, acl)
                record(FileOutcome(key, "unchanged"))
                continue
            failure = self.catalog.failure(key)
            if failure and (failure.size, failure.mtime_ns) == (size, mtime):
                record(FileOutcome(key, "failed", error=failure.error,
                                   message=f"{failure.message} (unchanged since last attempt)"))
                continue
            try:
                fmt = format_of(path)
                precheck(path, fmt, self.limits)
                content_hash = sha256_file(path)
            except IngestError as exc:
                self._fail(key, size, mtime, exc, record)
                continue
            except OSError as exc:
                record(FileOutcome(key, "failed", error="OSError", message=str(exc)))
                continue
            erased = self.catalog.tombstone(content_hash)
            if erased is not None and not readmit_erased:
                record(FileOutcome(
                    key, "skipped", error="Erased",
                    message=f"This content was erased (certificate {erased.certificate_id}); "
                    "ingest with --readmit-erased to bring it back."))
                continue
            if erased is not None:
                self.catalog.lift_tombstone(content_hash)
            if doc and doc.content_hash == content_hash and self._current(content_hash, model_id):
                # Touched but not modified: remember the new mtime, nothing to re-index.
                self.ledger.link(key, content_hash, size, mtime, fmt, acl)
                record(FileOutcome(key, "unchanged"))
                continue
            out.append(_Candidate(path, size, mtime, fmt, content_hash, acl))
        return out

    def blob_path(self, content_hash: str) -> Path:
        return self.ledger.blob_path(content_hash)

    def _current(self, content_hash: str, model_id: str) -> bool:
        return self.catalog.content_status(content_hash) == ("indexed", model_id)

    def _fail(self, key: str, size: int, mtime: int, exc: IngestError,
              record: Callable[[FileOutcome], None]) -> None:
        self.catalog.record_failure(key, size, mtime, type(exc).__name__, str(exc))
        record(FileOutcome(key, "failed", error=type(exc).__name__, message=str(exc)))

    def _await_parse(self, c: _Candidate) -> None:
        """Wait for a file's parse without holding the guard (parsing can take minutes:
        OCR); the result, or its error, is read under the guard by :meth:`_prepare`."""
        if c.parse is None or c.parse.done():
            return
        depth = 0
        try:
            while True:  # the caller may hold the re-entrant guard more than once
                self.guard.release()
                depth += 1
        except RuntimeError:
            pass
        try:
            futures.wait([c.parse])
        finally:
            for _ in range(depth):
                self.guard.acquire()

    def _prepare(self, c: _Candidate) -> FileOutcome | _Parsed:
        """Deduplicate, or wait for the parse and chunk; failures become outcomes."""
        key = str(c.path)
        if self._current(c.content_hash, self.encoder.identity.id):
            if c.parse is not None:
                c.parse.cancel()
            self.ledger.link(key, c.content_hash, c.size, c.mtime_ns, c.fmt, c.acl)
            return FileOutcome(key, "deduplicated")
        if c.parse is None:  # an identical file earlier in this batch failed
            failure = self.catalog.failure(key)
            return FileOutcome(key, "failed", error="IngestError",
                               message=failure.message if failure else "identical file failed")
        try:
            parsed = c.parse.result()
            if parsed.chars > self.limits.max_document_chars:
                raise FileTooLargeError(
                    f"The document holds {parsed.chars:,} characters, above the "
                    f"{self.limits.max_document_chars:,} limit.",
                    hint="Split it, or raise ingest.max_document_chars.")
            chunks = self.chunker.chunk(parsed, c.content_hash)
        except IngestError as exc:
            self.catalog.record_failure(key, c.size, c.mtime_ns, type(exc).__name__, str(exc))
            return FileOutcome(key, "failed", error=type(exc).__name__, message=str(exc))
        status: Status = "updated" if self.catalog.document(key) else "indexed"
        return _Parsed(c, parsed.pages, chunks, status)

    def _commit(self, batch: list[_Parsed],
                aliases: dict[str, list[_Candidate]]) -> list[FileOutcome]:
        """Embed and store a batch of documents at once (small batches waste the encoder).

        Every content in the batch is marked ``indexing`` before its first point is written
        and ``indexed`` only after the store is flushed.
        """
        model_id = self.encoder.identity.id
        for item in batch:
            self.catalog.begin_content(item.candidate.content_hash, item.candidate.fmt, model_id)
            self.store.delete_content(item.candidate.content_hash)  # a re-embed may shrink
            self.cipher.new_content_key(item.candidate.content_hash)  # a fresh DEK per version
            # The original, encrypted, so the document stays exportable (reversible).
            self.cipher.encrypt_original(item.candidate.path,
                                         self.blob_path(item.candidate.content_hash),
                                         item.candidate.content_hash)
        sources = {item.candidate.content_hash: self.ledger.sources_after_link(
            str(item.candidate.path), item.candidate.content_hash, item.candidate.acl)
            for item in batch}
        chunks = [chunk for item in batch for chunk in item.chunks]
        for start in range(0, len(chunks), _EMBED_BATCH):
            part = chunks[start:start + _EMBED_BATCH]
            vectors = self.encoder.encode_passages([chunk.text for chunk in part])
            self.store.upsert([
                IndexedChunk(chunk=chunk, dense=vector,
                             sparse=self.analyzer.document_vector(chunk.text, chunk.lang),
                             sources=sources[chunk.content_hash], model_id=model_id)
                for chunk, vector in zip(part, vectors, strict=True)
            ])
        self.store.flush()
        outcomes = []
        for item in batch:
            c = item.candidate
            self.catalog.finish_content(c.content_hash, item.pages, len(item.chunks))
            self.ledger.link(str(c.path), c.content_hash, c.size, c.mtime_ns, c.fmt, c.acl)
            outcomes.append(FileOutcome(str(c.path), item.status, chunks=len(item.chunks),
                                        pages=item.pages))
            for alias in aliases.pop(c.content_hash, []):
                self.ledger.link(str(alias.path), alias.content_hash, alias.size,
                                 alias.mtime_ns, alias.fmt, alias.acl)
                outcomes.append(FileOutcome(str(alias.path), "deduplicated"))
        self.store.flush()
        return outcomes
