"""Hybrid search: the query goes to the dense and the sparse index, results are fused."""

from __future__ import annotations

import time

from embeddings import Encoder
from ingest import detect_language
from security import ConfigError

from ._analyzer import Analyzer
from ._fusion import FusionPolicy
from ._rerank import Reranker
from ._store import VectorStore
from ._types import AccessScope, SearchFilter, SearchMode, SearchResult


class HybridSearcher:
    """Searches one store with one encoder and one analyzer."""

    def __init__(self, store: VectorStore, encoder: Encoder, analyzer: Analyzer, *,
                 policy: FusionPolicy | None = None, candidates: int = 50,
                 reranker: Reranker | None = None) -> None:
        self.store = store
        self.reranker = reranker
        self.encoder = encoder
        self.analyzer = analyzer
        self.policy = policy or FusionPolicy()
        self.candidates = candidates

    def search(self, query: str, *, scope: AccessScope, k: int = 10,
               flt: SearchFilter | None = None, mode: SearchMode = "hybrid") -> SearchResult:
        """The ``k`` best passages ``scope`` may read (filtered inside the store, before
        ranking: a reader never crowds out his results with passages he cannot see)."""
        if mode == "hybrid+rerank" and self.reranker is None:
            raise ConfigError("No reranker is configured.",
                              hint="Set search.reranker_dir to a CrossEncoder folder.")
        timings: dict[str, float] = {}
        lang = detect_language(query, min_hits=1)
        pool = max(k, self.candidates)
        dense = sparse = []
        fused = mode in ("hybrid", "hybrid+rerank")
        if mode in ("hybrid", "dense", "hybrid+rerank"):
            start = time.perf_counter()
            vector = self.encoder.encode_query(query)
            timings["embed_ms"] = (time.perf_counter() - start) * 1000
            start = time.perf_counter()
            dense = self.store.search_dense(vector, pool if fused else k, scope, flt)
            timings["dense_ms"] = (time.perf_counter() - start) * 1000
        if mode in ("hybrid", "bm25", "hybrid+rerank"):
            start = time.perf_counter()
            sparse = self.store.search_sparse(self.analyzer.query_vector(query, lang),
                                              pool if fused else k, scope, flt)
            timings["sparse_ms"] = (time.perf_counter() - start) * 1000
        if mode == "dense":
            passages = dense[:k]
        elif mode == "bm25":
            passages = sparse[:k]
        else:
            passages = self.policy.fuse(dense, sparse, lang,
                                        pool if mode == "hybrid+rerank" else k)
        # Only the passages returned are fetched and decrypted, not every candidate.
        start = time.perf_counter()
        passages = self.store.reveal(passages, scope)
        timings["reveal_ms"] = (time.perf_counter() - start) * 1000
        if mode == "hybrid+rerank" and self.reranker is not None:
            start = time.perf_counter()
            passages = self.reranker.rerank(query, passages)[:k]
            timings["rerank_ms"] = (time.perf_counter() - start) * 1000
        timings["total_ms"] = sum(timings.values())
        return SearchResult(query=query, mode=mode, passages=passages, query_lang=lang,
                            timings_ms=timings,
                            best_dense=dense[0].score if dense else None,
                            best_sparse=sparse[0].score if sparse else None)
