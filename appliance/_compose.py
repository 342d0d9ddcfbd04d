"""The composition root: builds an appliance's parts from settings, explicitly, in one place.

:func:`assemble` wires the metadata database and catalog, the data-key store, the vector
store, the encoder, the parser worker, the indexer and the searcher, then recovers what an
interrupted run left (a half-indexed content, a rotation, an erasure between its catalog and
key steps). :func:`build_answerer` wires the answering pipeline over the model service.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Protocol

from embeddings import SentenceTransformerEncoder, default_model_dir
from generation import Answerer, Relevance, Sampling, TokenGuard, VllmGenerator
from ingest import Limits, ParseWorker, SectionChunker, WorkerLimits
from retrieval import (
    Analyzer,
    ClientStore,
    CrossEncoderReranker,
    EdgeStore,
    FusionPolicy,
    HybridSearcher,
    VectorStore,
)
from security import AuditLog, ContentCipher, SqliteDekStore, UnsealedKeys, sha256_hex

from ._indexer import Indexer
from ._keys import anchor_path, reindex_pending, settle_certificates
from ._metakey import drop_stale_metadata_keys, metadata_key
from ._settings import Settings
from .db import AeadSealer, Database, SqlCatalog, lookup_key
from .db._legacy import upgrade_legacy_catalog

if TYPE_CHECKING:
    from ._appliance import Appliance

DEKS_NAME = "data-keys.sqlite3"


class _Closable(Protocol):
    def close(self) -> None: ...


def assemble(cls: type[Appliance], settings: Settings, keys: UnsealedKeys, audit: AuditLog,
             user: str, lock: _Closable) -> Appliance:
    """An opened appliance from unsealed keys and a checked audit log."""
    data = settings.data_dir
    emb = settings.embeddings
    encoder = SentenceTransformerEncoder(
        emb.model_dir or default_model_dir(), name=emb.model_name,
        query_prefix=emb.query_prefix, passage_prefix=emb.passage_prefix,
        batch_size=emb.batch_size, threads=os.cpu_count())
    db, catalog, deks = _open_catalog(settings, keys)
    cipher = ContentCipher(keys, deks)
    store = _make_store(settings, cipher)
    try:
        store.open(encoder.identity.dim)
    except Exception:
        deks.close()
        db.close()
        lock.close()
        raise
    ing = settings.ingest
    limits = Limits(max_file_mb=ing.max_file_mb, max_text_mb=ing.max_text_mb,
                    max_unpacked_mb=ing.max_unpacked_mb,
                    max_document_chars=ing.max_document_chars)
    worker = ParseWorker(
        WorkerLimits(timeout_s=ing.parse_timeout_s, memory_mb=ing.parse_memory_mb,
                     languages=tuple(ing.ocr_languages), sandbox_user=ing.sandbox_user),
        allowed_hosts=tuple(settings.security.allowed_hosts))
    analyzer = Analyzer(key=keys.index_key)
    indexer = Indexer(catalog=catalog, store=store, encoder=encoder, analyzer=analyzer,
                      chunker=SectionChunker(max_chars=ing.chunk_max_chars),
                      worker=worker, limits=limits, cipher=cipher, blobs=data / "blobs")
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
    appliance = cls(settings, db, catalog, deks, store, encoder, searcher, indexer, keys,
                    cipher, audit, user, lock)
    indexer.recover()
    # A rotation interrupted after its keyring swap leaves the old generation's wraps
    # and anchor behind (one interrupted before it, the new ones): finish the job.
    deks.drop_other_wrapped_deks(keys.kek_id)
    # An erasure or a drop interrupted between the catalog and the key: destroy the key.
    deks.retain(catalog.content_hashes())
    settle_certificates(data / "certificates", keys)
    drop_stale_metadata_keys(data, keys)  # an interrupted rotation's leftovers
    current = anchor_path(data / "audit", keys)
    for stale in (data / "audit").glob("anchor.*"):
        if stale != current and not stale.name.endswith(".tmp"):
            stale.unlink()
    reindex_pending(appliance)
    return appliance


def build_answerer(settings: Settings) -> Answerer:
    """Retrieval-grounded answers from the configured model service."""
    from tokenizers import Tokenizer

    from ._llm import ModelService, api_key

    llm = settings.llm
    service = ModelService(settings)
    tokenizer_file = service.model_dir() / "tokenizer.json"
    if tokenizer_file.exists():
        tokenizer = Tokenizer.from_file(str(tokenizer_file))

        def count(text: str) -> int:
            return len(tokenizer.encode(text).ids)
    else:  # no local model folder: a conservative estimate (3 characters a token)

        def count(text: str) -> int:
            return len(text) // 3 + 1
    generator = VllmGenerator(f"{service.url}/v1", api_key(settings), llm.model_name,
                              timeout_s=llm.timeout_s)
    sums = service.model_dir() / "SHA256SUMS"
    return Answerer(
        generator, count, context_tokens=llm.max_model_len,
        sampling=Sampling(llm.temperature, llm.top_p, llm.max_tokens),
        relevance=Relevance(llm.min_dense, llm.min_sparse), max_sources=llm.max_sources,
        model_sha256=sha256_hex(sums.read_text()) if sums.exists() else "",
        guard=TokenGuard.for_model(service.model_dir()))


def _open_catalog(settings: Settings, keys: UnsealedKeys
                  ) -> tuple[Database, SqlCatalog, SqliteDekStore]:
    """The metadata database (migrated), the catalog on it, the data-key store; a data
    directory from before the metadata database is upgraded in place first."""
    db = Database(settings.database_url())
    try:
        db.migrate()
        key = metadata_key(settings.data_dir, keys)
        catalog = SqlCatalog(db, AeadSealer(key), lookup_key(key))
        deks_path = settings.data_dir / DEKS_NAME
        upgrade_legacy_catalog(settings.data_dir, catalog, deks_path)
        return db, catalog, SqliteDekStore(deks_path)
    except Exception:
        db.close()
        raise


def _make_store(settings: Settings, cipher: ContentCipher) -> VectorStore:
    st = settings.store
    if st.backend == "embedded":
        return EdgeStore(settings.data_dir / "qdrant", cipher, hnsw_ef=st.hnsw_ef)
    return ClientStore(collection=st.collection, cipher=cipher, url=st.url,
                       api_key=st.api_key.get_secret_value() if st.api_key else None,
                       hnsw_ef=st.hnsw_ef)


def store_hosts(settings: Settings) -> list[str]:
    if settings.store.backend != "server" or not settings.store.url:
        return []
    from urllib.parse import urlparse

    host = urlparse(settings.store.url).hostname
    return [host] if host else []
