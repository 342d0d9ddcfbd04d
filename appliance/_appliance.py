"""The composition root: builds Greffier's parts from settings, explicitly, in one place."""

from __future__ import annotations

import fcntl
import os
from dataclasses import dataclass
from types import TracebackType
from typing import IO

from embeddings import SentenceTransformerEncoder, default_model_dir
from ingest import (
    Catalog,
    Limits,
    ParseWorker,
    SectionChunker,
    WorkerLimits,
    set_offline_environment,
)
from retrieval import (
    Analyzer,
    ClientStore,
    CrossEncoderReranker,
    EdgeStore,
    FusionPolicy,
    HybridSearcher,
    VectorStore,
)
from security import ConfigError, StoreError, forbid_network

from ._indexer import Indexer
from ._settings import Settings


@dataclass
class Appliance:
    """An opened appliance: catalog, store, encoder, searcher, indexer."""

    settings: Settings
    catalog: Catalog
    store: VectorStore
    encoder: SentenceTransformerEncoder
    searcher: HybridSearcher
    indexer: Indexer
    _lock: IO[str]

    @classmethod
    def open(cls, settings: Settings) -> Appliance:
        """Open the data directory (exclusively), the store and the catalog; recover."""
        set_offline_environment()
        forbid_network(settings.security.allowed_hosts + _store_hosts(settings))
        data = settings.data_dir
        try:
            data.mkdir(parents=True, exist_ok=True, mode=0o700)
            lock = (data / "greffier.lock").open("a")
        except OSError as exc:
            raise ConfigError(f"Cannot use the data directory {data}: {exc}",
                              hint="Set data_dir (GREFFIER_DATA_DIR) to a writable folder.",
                              ) from exc
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            lock.close()
            raise StoreError(f"Another Greffier process is using {data}.",
                             hint="Wait for it to finish (an ingest holds the data directory).") \
                from exc
        emb = settings.embeddings
        encoder = SentenceTransformerEncoder(
            emb.model_dir or default_model_dir(), name=emb.model_name,
            query_prefix=emb.query_prefix, passage_prefix=emb.passage_prefix,
            batch_size=emb.batch_size, threads=os.cpu_count())
        store = _make_store(settings)
        catalog = Catalog(data / "catalog.sqlite3")
        try:
            store.open(encoder.identity.dim)
        except Exception:
            catalog.close()
            lock.close()
            raise
        ing = settings.ingest
        limits = Limits(max_file_mb=ing.max_file_mb, max_text_mb=ing.max_text_mb,
                        max_unpacked_mb=ing.max_unpacked_mb,
                        max_document_chars=ing.max_document_chars)
        worker = ParseWorker(
            WorkerLimits(timeout_s=ing.parse_timeout_s, memory_mb=ing.parse_memory_mb,
                         languages=tuple(ing.ocr_languages)),
            allowed_hosts=tuple(settings.security.allowed_hosts))
        analyzer = Analyzer()
        indexer = Indexer(catalog=catalog, store=store, encoder=encoder, analyzer=analyzer,
                          chunker=SectionChunker(max_chars=ing.chunk_max_chars),
                          worker=worker, limits=limits)
        policy = FusionPolicy(method=settings.search.fusion,
                              dense_weight=settings.search.dense_weight,
                              foreign_dense_weight=settings.search.foreign_dense_weight,
                              rrf_k=settings.search.rrf_k,
                              model_languages=tuple(emb.model_languages))
        search = settings.search
        reranker = CrossEncoderReranker(
            search.reranker_dir, top_n=search.rerank_top, budget_ms=search.rerank_budget_ms,
        ) if search.reranker_dir else None
        searcher = HybridSearcher(store, encoder, analyzer, policy=policy,
                                  candidates=search.candidates, reranker=reranker)
        appliance = cls(settings, catalog, store, encoder, searcher, indexer, lock)
        indexer.recover()
        return appliance

    def close(self) -> None:
        self.indexer.worker.close()
        self.store.close()
        self.catalog.close()
        self._lock.close()

    def __enter__(self) -> Appliance:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


def _make_store(settings: Settings) -> VectorStore:
    st = settings.store
    if st.backend == "embedded":
        return EdgeStore(settings.data_dir / "qdrant", hnsw_ef=st.hnsw_ef)
    return ClientStore(collection=st.collection, url=st.url,
                       api_key=st.api_key.get_secret_value() if st.api_key else None,
                       hnsw_ef=st.hnsw_ef)


def _store_hosts(settings: Settings) -> list[str]:
    if settings.store.backend != "server" or not settings.store.url:
        return []
    from urllib.parse import urlparse

    host = urlparse(settings.store.url).hostname
    return [host] if host else []


