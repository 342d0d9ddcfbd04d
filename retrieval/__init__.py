"""Retrieval: Qdrant stores (embedded Edge or server), BM25 analysis, hybrid search, fusion."""

from ._analyzer import Analyzer
from ._edge import EdgeStore
from ._fusion import FusionPolicy, rrf
from ._qclient import ClientStore
from ._search import HybridSearcher
from ._store import VectorStore
from ._types import (
    IndexedChunk,
    Passage,
    SearchFilter,
    SearchMode,
    SearchResult,
    Source,
    SparseVector,
)

__all__ = [
    "Analyzer",
    "ClientStore",
    "EdgeStore",
    "FusionPolicy",
    "HybridSearcher",
    "IndexedChunk",
    "Passage",
    "SearchFilter",
    "SearchMode",
    "SearchResult",
    "Source",
    "SparseVector",
    "VectorStore",
    "rrf",
]
