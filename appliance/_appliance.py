"""The composition root: builds Greffier's parts from settings, explicitly, in one place."""

from __future__ import annotations

import dataclasses
import getpass
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Protocol

from embeddings import SentenceTransformerEncoder, default_model_dir
from generation import Answer, Answerer, Relevance, Sampling, TokenGuard, VllmGenerator
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
    SearchFilter,
    SearchMode,
    SearchResult,
    VectorStore,
)
from security import (
    AuditError,
    AuditLog,
    AuthenticationError,
    ContentCipher,
    KekSource,
    Keyring,
    SqliteDekStore,
    StoreError,
    UnsealedKeys,
    fingerprint,
    forbid_network,
    issue_receipt,
    sha256_hex,
)

from ._datadir import lock_data_dir
from ._indexer import FileOutcome, Indexer, IngestReport, Progress
from ._keys import (
    anchor_path,
    audit_log,
    check_keys_and_log,
    reindex_pending,
    rotate_kek,
    settle_certificates,
    unseal_keys,
)
from ._metakey import drop_stale_metadata_keys, metadata_key
from ._settings import Settings
from .db import AeadSealer, Database, SqlCatalog, lookup_key
from .db._legacy import upgrade_legacy_catalog

DEKS_NAME = "data-keys.sqlite3"

__all__ = ["Appliance", "check_keys_and_log", "current_user", "rotate_kek"]


class _Closable(Protocol):
    def close(self) -> None: ...


@dataclass
class Appliance:
    """An opened appliance: metadata database and catalog, data keys, store, encoder,
    searcher, indexer."""

    settings: Settings
    db: Database
    catalog: Catalog
    deks: SqliteDekStore
    store: VectorStore
    encoder: SentenceTransformerEncoder
    searcher: HybridSearcher
    indexer: Indexer
    keys: UnsealedKeys
    cipher: ContentCipher
    audit: AuditLog
    user: str
    _lock: _Closable
    _answerer: Answerer | None = None

    @staticmethod
    def init(settings: Settings, source: KekSource, *, user: str = "") -> bytes:
        """``greffier init``: create the keyring (KEK, keys) and the audit log's first signed
        head, anchored under the KEK. Returns the signing public key."""
        lock = lock_data_dir(settings.data_dir)
        try:
            keys = Keyring(settings.data_dir).create(source)
            try:
                audit = audit_log(settings, keys)
                audit.append("init", user or current_user(), {
                    "kek": settings.security.kek, "signing_key": fingerprint(keys.public_key)})
                audit.sign_head()
            finally:
                keys.close()
            return keys.public_key
        finally:
            lock.close()

    @classmethod
    def open(cls, settings: Settings, source: KekSource, *, user: str = "",
             upgrade: bool = False, lock: IO[str] | None = None) -> Appliance:
        """Unseal, open the data directory (exclusively), the store and the catalog; recover.

        The keys stay in this object's memory only; :meth:`close` seals the appliance again.
        Wrong secrets are throttled; the audit log is checked against its anchor before
        anything is appended to it. A service that already holds the data directory passes
        its ``lock``, which then stays its own (closing the appliance does not release it).
        """
        set_offline_environment()
        forbid_network(settings.security.allowed_hosts + _store_hosts(settings))
        user = user or current_user()
        held: _Closable = lock_data_dir(settings.data_dir) if lock is None \
            else _BorrowedLock(lock)
        try:
            keys = unseal_keys(settings, source, user, upgrade=upgrade)
        except Exception:
            held.close()
            raise
        try:
            audit = audit_log(settings, keys)
            audit.append("unseal", user, {"kek": settings.security.kek,
                                          "head_sinks": settings.audit.head_sinks})
            audit.sign_head()  # covers any failed attempts recorded while sealed
            return cls._build(settings, keys, audit, user, held)
        except Exception:
            keys.close()
            held.close()
            raise

    @classmethod
    def _build(cls, settings: Settings, keys: UnsealedKeys, audit: AuditLog, user: str,
               lock: _Closable) -> Appliance:
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

    # -- audited operations --------------------------------------------------------------
    def ingest(self, roots: list[Path], *, sync: bool = False, readmit_erased: bool = False,
               progress: Progress | None = None, user: str | None = None) -> IngestReport:
        """Ingest, recorded in the audit log (refused if the record cannot be written).

        File and folder names are often sensitive and outlive an erasure in an append-only
        log: they are sealed with the audit key; the clear part keeps ids and counts.
        Runs under the indexer's guard (released while a file is parsed)."""
        with self.indexer.guard:
            return self._ingest(roots, sync, readmit_erased, progress, user or self.user)

    def _ingest(self, roots: list[Path], sync: bool, readmit_erased: bool,
                progress: Progress | None, user: str) -> IngestReport:
        self.audit.append("ingest.begin", user, {
            "roots": len(roots), "sync": sync, "readmit_erased": readmit_erased},
            secret={"roots": [str(r) for r in roots]})
        base = progress or Progress()

        def on_file(outcome: FileOutcome) -> None:
            if outcome.status != "unchanged":
                doc = self.catalog.document(outcome.path)
                self.audit.append(f"ingest.{outcome.status}", user, {
                    "doc_id": doc.doc_id if doc else None,
                    "content_sha256": doc.content_hash if doc else None,
                    "version": doc.version if doc else None, "chunks": outcome.chunks,
                    "failed": bool(outcome.error)},
                    secret={"path": outcome.path, "error": outcome.error or None})
            base.on_file(outcome)

        report = self.indexer.ingest(roots, sync=sync, readmit_erased=readmit_erased,
                                     progress=Progress(on_total=base.on_total, on_file=on_file))
        self.audit.append("ingest.end", user, {
            "files": len(report.outcomes), "chunks": report.chunks,
            "failed": report.count("failed")})
        return report

    def search(self, query: str, *, k: int | None = None, flt: SearchFilter | None = None,
               mode: SearchMode = "hybrid", user: str | None = None,
               receipt_id: str | None = None) -> tuple[SearchResult, dict[str, Any]]:
        """Search, audited, with a signed receipt. No audit record, no results.

        ``user`` names the caller in the log (default: who opened the appliance);
        ``receipt_id`` is written into the receipt (the service's answer id)."""
        user = user or self.user
        result = self.searcher.search(query, k=k or self.settings.search.k, flt=flt, mode=mode)
        ident = self.encoder.identity
        passages = [{"chunk_id": p.chunk_id, "content_sha256": p.content_hash,
                     "doc_id": p.doc_id, "version": p.version} for p in result.passages]
        index = self.audit.append(
            "search", user,
            {"mode": mode, "passages": passages, "embedder": ident.id,
             "question_hmac": self.audit.question_hash(query)},
            secret={"question": query})
        receipt = issue_receipt(self.audit, index, {
            **({"id": receipt_id} if receipt_id else {}),
            "kind": "search", "question_hmac": self.audit.question_hash(query),
            "user": user,
            "passages": passages,
            "model": {"embedder": ident.name, "embedder_sha256": ident.weights_sha256},
            "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "answer_sha256": None,
        }, self.keys.signing_key)
        return result, receipt

    def answerer(self) -> Answerer:
        """The answering pipeline over the model service (built on first use)."""
        if self._answerer is None:
            from tokenizers import Tokenizer

            from ._llm import ModelService, api_key

            llm = self.settings.llm
            service = ModelService(self.settings)
            tokenizer_file = service.model_dir() / "tokenizer.json"
            if tokenizer_file.exists():
                tokenizer = Tokenizer.from_file(str(tokenizer_file))

                def count(text: str) -> int:
                    return len(tokenizer.encode(text).ids)
            else:  # no local model folder: a conservative estimate (3 characters a token)

                def count(text: str) -> int:
                    return len(text) // 3 + 1
            generator = VllmGenerator(f"{service.url}/v1", api_key(self.settings),
                                      llm.model_name, timeout_s=llm.timeout_s)
            sums = service.model_dir() / "SHA256SUMS"
            self._answerer = Answerer(
                generator, count, context_tokens=llm.max_model_len,
                sampling=Sampling(llm.temperature, llm.top_p, llm.max_tokens),
                relevance=Relevance(llm.min_dense, llm.min_sparse), max_sources=llm.max_sources,
                model_sha256=sha256_hex(sums.read_text()) if sums.exists() else "",
                guard=TokenGuard.for_model(service.model_dir()))
        return self._answerer

    def ask(self, question: str, *, on_token: Callable[[str], None] = lambda t: None,
            flt: SearchFilter | None = None, user: str | None = None,
            receipt_id: str | None = None) -> tuple[Answer, dict[str, Any]]:
        """Retrieve, answer with citations (or refuse, or degrade), audit, sign a receipt.

        The guard is held to retrieve and to record, not while the model writes (seconds to
        minutes): other requests go on meanwhile."""
        user = user or self.user
        with self.indexer.guard:
            answerer = self.answerer()
            # Recorded before anything is retrieved: no record, no answer.
            self.audit.append("ask.begin", user,
                              {"question_hmac": self.audit.question_hash(question)})
            result = self.searcher.search(question, k=max(answerer.max_sources, 10), flt=flt)
        answer = answerer.answer(question, result, on_token)
        with self.indexer.guard:
            return answer, self._record_answer(question, answer, user, receipt_id)

    def _record_answer(self, question: str, answer: Answer, user: str,
                       receipt_id: str | None) -> dict[str, Any]:
        ident = self.encoder.identity
        passages = [{"chunk_id": p.chunk_id, "content_sha256": p.content_hash,
                     "doc_id": p.doc_id, "version": p.version} for p in answer.passages]
        body = {
            **({"id": receipt_id} if receipt_id else {}),
            "kind": "answer", "question_hmac": self.audit.question_hash(question),
            "user": user,
            "passages": passages,
            "model": {"name": answer.model, "weights_sha256": answer.model_sha256,
                      "embedder": ident.name, "embedder_sha256": ident.weights_sha256},
            "prompt_template": answer.template_version,
            "sampling": dataclasses.asdict(answer.sampling),
            "answer_hmac": self.audit.question_hash(answer.text), "refused": answer.refused,
            "degraded": answer.degraded,
            "citations": [c.number for c in answer.citations if c.valid],
            "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        index = self.audit.append(
            "ask", user, {k: v for k, v in body.items() if k not in ("kind", "user", "id")},
            secret={"question": question, "answer": answer.text})
        return issue_receipt(self.audit, index, body, self.keys.signing_key)

    def original(self, content_hash: str, *, user: str | None = None
                 ) -> Iterator[bytes]:
        """The original file of a content, decrypted segment by segment (each authenticated
        before it is handed out). Audited before the first byte."""
        user = user or self.user
        blob = self.indexer.blob_path(content_hash)
        if not blob.exists():
            raise StoreError(f"No stored original for content {content_hash[:12]}….",
                             hint="It was erased, or ingested before originals were kept.")
        self.audit.append("download", user, {"content_sha256": content_hash})
        return self.cipher.decrypt_original(blob, content_hash)

    def export(self, content_hash: str, output: Path) -> int:
        """Write the original file of a content, decrypted. Audited. Returns its size."""
        blob = self.indexer.blob_path(content_hash)
        if not blob.exists():
            raise StoreError(f"No stored original for content {content_hash[:12]}….",
                             hint="It was erased, or ingested before originals were kept.")
        self.audit.append("export", self.user, {"content_sha256": content_hash,
                                                "output": str(output)})
        size = 0
        tmp = output.with_name(output.name + ".partial")
        try:
            with tmp.open("wb") as handle:
                for segment in self.cipher.decrypt_original(blob, content_hash):
                    handle.write(segment)
                    size += len(segment)
        except AuthenticationError as exc:
            tmp.unlink(missing_ok=True)  # never leave a decrypted beginning behind
            self.audit.append("export.failed", self.user, {"content_sha256": content_hash,
                                                           "reason": "authentication"})
            raise StoreError(f"The stored original of {content_hash[:12]}… fails "
                             "authentication: it was altered or damaged; nothing was written.",
                             hint="Restore blobs/ from backup, then run `greffier audit verify`."
                             ) from exc
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        tmp.replace(output)
        return size

    def close(self) -> None:
        """Stop the parser, flush the store, and seal: the keys leave memory."""
        try:
            self.audit.append("seal", self.user, {})
            self.audit.sign_head()
        except AuditError:
            pass  # sealing must not fail: the keys leave memory whatever happens
        self.indexer.worker.close()
        self.store.close()
        self.catalog.close()
        self.deks.close()
        self.db.close()
        self.keys.close()
        self._lock.close()

    def __enter__(self) -> Appliance:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


class _BorrowedLock:
    """The data-directory lock of a long-running service, lent to one opened appliance:
    closing the appliance leaves the service holding it."""

    def __init__(self, lock: IO[str]) -> None:
        self._lock = lock

    def close(self) -> None:
        pass


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


def _store_hosts(settings: Settings) -> list[str]:
    if settings.store.backend != "server" or not settings.store.url:
        return []
    from urllib.parse import urlparse

    host = urlparse(settings.store.url).hostname
    return [host] if host else []




def current_user() -> str:
    """Who runs this command: the sudo caller if any, else the login name (undecodable
    bytes and control characters replaced: the name goes into the audit log)."""
    name = os.environ.get("SUDO_USER") or getpass.getuser()
    text = name.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    return "".join(c if c.isprintable() else "\ufffd" for c in text)[:128]
