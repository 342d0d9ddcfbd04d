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
    """One file a chunk's content comes from (identical files share their chunks)."""

    doc_id: str
    path: str
    version: int


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
