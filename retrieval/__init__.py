"""Retrieval: Qdrant stores (embedded Edge or server), BM25 analysis, hybrid search, fusion."""

from ._analyzer import Analyzer
from ._datasets import EvalSet, load_eval_set
from ._edge import EdgeStore
from ._fusion import FusionPolicy, convex, dbsf, rrf
from ._metrics import mrr_at_k, ndcg_at_k, recall_at_k
from ._qclient import ClientStore
from ._rerank import CrossEncoderReranker, Reranker
from ._search import HybridSearcher
from ._store import StoredPoint, VectorStore
from ._types import (
    GROUP_PREFIX,
    USER_PREFIX,
    AccessScope,
    IndexedChunk,
    Passage,
    SearchFilter,
    SearchMode,
    SearchResult,
    Source,
    SparseVector,
)

__all__ = [
    "GROUP_PREFIX",
    "USER_PREFIX",
    "AccessScope",
    "Analyzer",
    "ClientStore",
    "CrossEncoderReranker",
    "EdgeStore",
    "EvalSet",
    "FusionPolicy",
    "HybridSearcher",
    "IndexedChunk",
    "Passage",
    "Reranker",
    "SearchFilter",
    "SearchMode",
    "SearchResult",
    "Source",
    "SparseVector",
    "StoredPoint",
    "VectorStore",
    "convex",
    "dbsf",
    "load_eval_set",
    "mrr_at_k",
    "ndcg_at_k",
    "recall_at_k",
    "rrf",
]
