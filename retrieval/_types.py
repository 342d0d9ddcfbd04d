"""Retrieval's types: what goes into the store and what comes out of a search."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import numpy.typing as npt

from ingest import Chunk

SearchMode = Literal["hybrid", "dense", "bm25", "hybrid+rerank"]


@dataclass(frozen=True, slots=True)
class SparseVector:
    """Term ids and weights (BM25 term-frequency part; the store applies IDF)."""

    indices: tuple[int, ...]
    values: tuple[float, ...]

    def __len__(self) -> int:
        return len(self.indices)


@dataclass(frozen=True, slots=True)
class Source:
    """One file a chunk's content comes from (identical files share their chunks), with
    the access entries of that document: who may read it through this file."""

    doc_id: str
    path: str
    version: int
    acl: tuple[str, ...] = ()


USER_PREFIX = "u:"
GROUP_PREFIX = "g:"


@dataclass(frozen=True)
class AccessScope:
    """Who is reading, as the access entries that grant him a document: ``u:<user id>``
    and ``g:<group id>``. A passage is visible when one of its document's entries is in
    the scope (additive). Built on the server from the authenticated caller, never from a
    request; an empty scope sees nothing. Every read of the store takes one."""

    entries: frozenset[str]
    # The store's own upkeep (erasure evidence, re-indexing) reads every point; only
    # ``maintenance()`` sets this, and a test keeps it out of every reader's path.
    unrestricted: bool = False

    def __post_init__(self) -> None:
        for entry in self.entries:
            if not entry.startswith((USER_PREFIX, GROUP_PREFIX)) or len(entry) < 3:
                raise ValueError(f"not an access entry: {entry!r}")

    @classmethod
    def of(cls, user_id: str, groups: frozenset[str] | set[str] = frozenset()) -> AccessScope:
        return cls(frozenset({USER_PREFIX + user_id} | {GROUP_PREFIX + g for g in groups}))

    @classmethod
    def maintenance(cls) -> AccessScope:
        """Every point, for the store's upkeep: never built for a reader."""
        return cls(frozenset(), unrestricted=True)

    def allows(self, acl: tuple[str, ...] | list[str] | frozenset[str]) -> bool:
        return self.unrestricted or not self.entries.isdisjoint(acl)

    def readable(self, sources: tuple[Source, ...]) -> tuple[Source, ...]:
        """The sources this scope may read (a deduplicated content keeps only those)."""
        return tuple(s for s in sources if self.allows(s.acl))

    @property
    def empty(self) -> bool:
        return not self.entries and not self.unrestricted


@dataclass(frozen=True, slots=True)
class IndexedChunk:
    """A chunk with its vectors, ready for the store."""

    chunk: Chunk
    dense: npt.NDArray[np.float32]
    sparse: SparseVector
    sources: tuple[Source, ...]
    model_id: str


@dataclass(frozen=True, slots=True)
class Passage:
    """A search hit: the passage, where it comes from, and its score."""

    chunk_id: str
    text: str
    score: float
    content_hash: str
    chunk_index: int
    page: int | None
    section: str
    lang: str
    format: str
    kind: str
    sources: tuple[Source, ...]
    model_id: str

    @property
    def doc_id(self) -> str:
        return self.sources[0].doc_id if self.sources else ""

    @property
    def path(self) -> str:
        return self.sources[0].path if self.sources else ""

    @property
    def version(self) -> int:
        return self.sources[0].version if self.sources else 0


@dataclass(frozen=True)
class SearchFilter:
    """Restricts a search. Empty fields do not restrict."""

    doc_ids: tuple[str, ...] = ()
    langs: tuple[str, ...] = ()
    formats: tuple[str, ...] = ()
    content_hashes: tuple[str, ...] = ()

    def is_empty(self) -> bool:
        return not (self.doc_ids or self.langs or self.formats or self.content_hashes)


@dataclass(frozen=True)
class SearchResult:
    query: str
    mode: SearchMode
    passages: list[Passage]
    query_lang: str
    timings_ms: dict[str, float] = field(default_factory=dict)
    best_dense: float | None = None  # raw cosine of the best dense hit (relevance checks)
    best_sparse: float | None = None  # raw BM25 score of the best sparse hit
