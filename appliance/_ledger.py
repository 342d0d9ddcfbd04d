"""The catalog and the store kept in step: which paths point at which content, which
contents and data keys can go, and what a crash left half-done."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from ingest import Catalog, document_id
from retrieval import Source, VectorStore
from security import ContentCipher

from ._outcomes import FileOutcome


class Ledger:
    """Bookkeeping of an indexer (called under its guard)."""

    def __init__(self, catalog: Catalog, store: VectorStore, cipher: ContentCipher,
                 blobs: Path) -> None:
        self.catalog = catalog
        self.store = store
        self.cipher = cipher
        self.blobs = blobs

    def restamp(self, content_hash: str) -> None:
        """Write a content's sources and access entries, as the catalog has them, onto
        every one of its points (after a document's access changed or a source left)."""
        docs = self.catalog.documents_of(content_hash)
        self.store.set_sources(content_hash,
                               tuple(Source(d.doc_id, d.path, d.version, d.acl) for d in docs))

    def blob_path(self, content_hash: str) -> Path:
        """Where the encrypted original of a content lives."""
        return self.blobs / content_hash[:2] / f"{content_hash}.blob"

    def recover(self) -> int:
        """Purge contents a previous run left half-indexed. Returns how many."""
        unfinished = self.catalog.unfinished_contents()
        for content_hash in unfinished:
            self.store.delete_content(content_hash)
            self.blob_path(content_hash).unlink(missing_ok=True)
            if not self.catalog.is_referenced(content_hash):
                self.catalog.drop_content(content_hash)
                self.cipher.destroy(content_hash)
        if unfinished:
            self.store.flush()
        return len(unfinished)

    def sources_after_link(self, key: str, content_hash: str,
                           acl: tuple[str, ...]) -> tuple[Source, ...]:
        """The sources of a content once ``key`` points at it, readable by ``acl``."""
        others = [d for d in self.catalog.documents_of(content_hash) if d.path != key]
        current = self.catalog.document(key)
        version = 1 if current is None else current.version + (
            current.content_hash != content_hash)
        sources = [Source(d.doc_id, d.path, d.version, d.acl) for d in others]
        sources.append(Source(document_id(key), key, version, acl))
        return tuple(sorted(sources, key=lambda s: s.path))

    def link(self, key: str, content_hash: str, size: int, mtime_ns: int, fmt: str,
             acl: tuple[str, ...]) -> None:
        """Point a path at a content, in the catalog and in the points' sources."""
        sources = self.sources_after_link(key, content_hash, acl)
        previous = self.catalog.link(key, content_hash, size, mtime_ns, fmt, acl)
        self.store.set_sources(content_hash, sources)
        if previous is not None:
            self.release(previous)

    def release(self, content_hash: str) -> None:
        """A content lost a document: drop it if no document uses it any more."""
        if self.catalog.is_referenced(content_hash):
            self.restamp(content_hash)
        else:
            self.store.delete_content(content_hash)
            self.catalog.drop_content(content_hash)
            self.cipher.destroy(content_hash)  # the old version's DEK
            self.blob_path(content_hash).unlink(missing_ok=True)

    def remove_missing(self, roots: Sequence[Path], seen: set[str]) -> list[FileOutcome]:
        """A sync: forget the documents under ``roots`` whose file is gone."""
        prefixes = [str(r.resolve()) for r in roots]
        gone = [
            d for d in self.catalog.documents()
            if d.path not in seen and any(
                d.path == p or d.path.startswith(p.rstrip("/") + "/") for p in prefixes)
        ]
        outcomes = []
        for doc in gone:
            previous = self.catalog.unlink(doc.path)
            if previous is not None:
                self.release(previous)
            outcomes.append(FileOutcome(doc.path, "removed"))
        if gone:
            self.store.flush()
        return outcomes
