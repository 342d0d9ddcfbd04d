"""The store seam: one small protocol, two Qdrant back-ends (embedded Edge, client/server)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import numpy.typing as npt

from ._types import AccessScope, IndexedChunk, Passage, SearchFilter, Source, SparseVector


@dataclass(frozen=True)
class StoredPoint:
    """One point as the store holds it: what an erasure must make disappear from disk."""

    chunk_id: str
    dense: npt.NDArray[np.float32]  # as stored (Qdrant normalises cosine vectors)
    sparse: SparseVector
    sealed: str  # the payload field, base64 text as written


class VectorStore(Protocol):
    """Stores chunks with a dense and a sparse vector; searches either one.

    Point ids are the chunks' deterministic ids, so writing the same content twice
    overwrites it: an interrupted ingest can always be replayed.
    """

    name: str

    def open(self, dim: int) -> None:
        """Create the collection (or check the existing one has dimension ``dim``)."""

    def upsert(self, items: Sequence[IndexedChunk]) -> None: ...

    def delete_content(self, content_hash: str) -> None:
        """Delete every chunk of one content."""

    def set_sources(self, content_hash: str, sources: tuple[Source, ...]) -> None:
        """Replace the list of files a content's chunks come from."""

    # Every read of chunks for a reader takes his AccessScope: the store filters on the
    # indexed ``acl`` field and keeps, of each passage, only the sources he may read.
    def search_dense(self, vector: npt.NDArray[np.float32], limit: int, scope: AccessScope,
                     flt: SearchFilter | None = None) -> list[Passage]: ...

    def search_sparse(self, vector: SparseVector, limit: int, scope: AccessScope,
                      flt: SearchFilter | None = None) -> list[Passage]: ...

    def reveal(self, passages: Sequence[Passage], scope: AccessScope) -> list[Passage]:
        """Fetch and open the text of passages returned by a search leg (legs return
        passages without text: only the few that are finally shown get decrypted). A
        passage ``scope`` may not read (any more) is dropped."""

    def count(self, flt: SearchFilter | None = None) -> int: ...

    def flush(self) -> None:
        """Make every write so far durable."""

    def optimize(self) -> None:
        """Build indexes and reclaim deleted space (after bulk writes and deletes)."""

    def stored(self, content_hash: str) -> list[StoredPoint]:
        """The points of one content with their vectors and sealed payload, as stored."""

    def iter_passages(self) -> Iterator[list[Passage]]:
        """Every stored chunk, opened, in batches (re-indexing after an index-key rotation)."""

    def set_sparse(self, vectors: Sequence[tuple[str, SparseVector]]) -> None:
        """Replace the sparse vectors of existing chunks."""

    def purge(self) -> None:
        """Rewrite the store's files from its live points only, so that deleted points
        leave no byte behind (segments, WAL). Crash-safe: an interrupted purge leaves the
        old or the new store usable, and the next open finishes or rolls it back."""

    def close(self) -> None: ...


def filter_fields(flt: SearchFilter | None,
                  scope: AccessScope | None = None) -> list[tuple[str, list[str]]]:
    """A filter as ``(payload field, allowed values)`` pairs, all of which must match;
    with a ``scope``, the chunk's ``acl`` must hold one of its entries."""
    pairs = [] if flt is None else [
        ("doc_ids", list(flt.doc_ids)), ("lang", list(flt.langs)),
        ("format", list(flt.formats)), ("content_hash", list(flt.content_hashes))]
    fields = [(name, values) for name, values in pairs if values]
    if scope is not None and not scope.unrestricted:
        fields.append(("acl", sorted(scope.entries)))
    return fields


def visible(passages: list[Passage]) -> list[Passage]:
    """Passages left with at least one readable source (the ``acl`` filter already
    ensures it; this is the second check, on what each source says)."""
    return [p for p in passages if p.sources]
