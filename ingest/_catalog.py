"""The catalog seam: the ledger of which files were ingested, as which content, in which
state. The ingest pipeline speaks to it through :class:`Catalog`; the appliance provides it
on its metadata database (``appliance/db/_catalog.py``).

A content (sha256 of a file's bytes) is ``indexing`` from before its first point is
written until the store is flushed, then ``indexed``: a content left ``indexing`` by a crash
is purged and redone on the next run. A document is one source path pointing at a content,
with a version bumped when the content changes.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class DocumentRecord:
    doc_id: str
    path: str
    content_hash: str
    version: int
    size: int
    mtime_ns: int
    format: str
    acl: tuple[str, ...] = ()  # who may read it: "u:<user id>", "g:<group id>"


@dataclass(frozen=True)
class FailureRecord:
    path: str
    size: int
    mtime_ns: int
    error: str
    message: str


@dataclass(frozen=True)
class Tombstone:
    erased_at: float
    erased_by: str
    certificate_id: str


class Catalog(Protocol):
    """Transactional record of what is indexed. One writer at a time (the ingest lock);
    every method is one transaction."""

    # documents
    def document_by_id(self, doc_id: str) -> DocumentRecord | None: ...

    def document(self, path: str) -> DocumentRecord | None: ...

    def documents(self) -> Iterator[DocumentRecord]:
        """Every document, by path."""
        ...

    def documents_of(self, content_hash: str) -> list[DocumentRecord]: ...

    def link(self, path: str, content_hash: str, size: int, mtime_ns: int, fmt: str,
             acl: tuple[str, ...]) -> str | None:
        """Point ``path`` at ``content_hash``, readable by ``acl``; returns the content it
        pointed to before."""
        ...

    def set_acl(self, doc_id: str, acl: tuple[str, ...]) -> DocumentRecord | None:
        """Change who may read a document; returns it as it is now (None: unknown)."""
        ...

    def unlink(self, path: str) -> str | None:
        """Forget ``path``; returns the content it pointed to."""
        ...

    # contents
    def content_status(self, content_hash: str) -> tuple[str, str] | None:
        """``(status, model_id)`` of a content, or None if unknown."""
        ...

    def content_hashes(self) -> set[str]: ...

    def begin_content(self, content_hash: str, fmt: str, model_id: str) -> None: ...

    def finish_content(self, content_hash: str, pages: int, chunks: int) -> None: ...

    def unfinished_contents(self) -> list[str]: ...

    def is_referenced(self, content_hash: str) -> bool: ...

    def drop_content(self, content_hash: str) -> None:
        """Forget a content no document uses (its data key is the caller's to destroy)."""
        ...

    def stale_contents(self, model_id: str) -> list[str]: ...

    # erasure
    def tombstone(self, content_hash: str) -> Tombstone | None: ...

    def erase_content(self, content_hash: str, erased_by: str, certificate_id: str) -> None:
        """Forget the content and its documents and leave a tombstone, in one transaction."""
        ...

    def lift_tombstone(self, content_hash: str) -> None: ...

    def purge_journal(self) -> None:
        """Make deleted rows unrecoverable from the database's own journal, where it can."""
        ...

    # failures
    def failure(self, path: str) -> FailureRecord | None: ...

    def record_failure(self, path: str, size: int, mtime_ns: int, error: str,
                       message: str) -> None: ...

    # statistics and small facts
    def stats(self) -> dict[str, object]: ...

    def get_meta(self, key: str) -> str | None: ...

    def set_meta(self, key: str, value: str) -> None: ...

    def close(self) -> None: ...
