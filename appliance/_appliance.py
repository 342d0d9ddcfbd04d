"""An opened appliance and its audited operations: ingest, search, ask, originals, export.

Its parts are wired in ``_compose.py``; its receipts are written in ``_receipts.py``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Protocol

from embeddings import SentenceTransformerEncoder
from generation import Answer, Answerer
from ingest import Catalog, DocumentRecord, set_offline_environment
from retrieval import (
    USER_PREFIX,
    AccessScope,
    HybridSearcher,
    SearchFilter,
    SearchMode,
    SearchResult,
    VectorStore,
)
from security import (
    AuditError,
    AuditLog,
    ContentCipher,
    KekSource,
    Keyring,
    NotFoundError,
    SqliteDekStore,
    UnsealedKeys,
    fingerprint,
    forbid_network,
)

from ._compose import assemble, build_answerer, store_hosts
from ._datadir import BorrowedLock, current_user, lock_data_dir
from ._directory_settings import directory_hosts
from ._indexer import FileAcl, FileOutcome, Indexer, IngestReport, Progress
from ._keys import (
    audit_log,
    check_keys_and_log,
    rotate_kek,
    unseal_keys,
)
from ._oidc_settings import provider_hosts
from ._originals import export_original, stream_original
from ._receipts import record_answer, record_search
from ._settings import Settings
from .db import Database

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
        forbid_network(settings.security.allowed_hosts + store_hosts(settings)
                       + directory_hosts(settings.ldap) + provider_hosts(settings.oidc))
        user = user or current_user()
        held: _Closable = lock_data_dir(settings.data_dir) if lock is None \
            else BorrowedLock(lock)
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
        return assemble(cls, settings, keys, audit, user, lock)

    # -- who reads: the local operator by default ----------------------------------------
    @property
    def operator_acl(self) -> tuple[str, ...]:
        """What the local operator ingests is readable by him alone unless he says more."""
        return (f"{USER_PREFIX}local:{self.user}",)

    @property
    def operator_scope(self) -> AccessScope:
        return AccessScope.of(f"local:{self.user}")

    # -- audited operations --------------------------------------------------------------
    def ingest(self, roots: list[Path], *, acl: tuple[str, ...] | None = None,
               sync: bool = False, readmit_erased: bool = False,
               progress: Progress | None = None, user: str | None = None,
               acl_for: FileAcl | None = None) -> IngestReport:
        """Ingest, recorded in the audit log (refused if the record cannot be written).
        Every document is readable by ``acl`` (default: the local operator only) and by
        what ``acl_for`` adds for its file.

        File and folder names are often sensitive and outlive an erasure in an append-only
        log: they are sealed with the audit key; the clear part keeps ids and counts.
        Runs under the indexer's guard (released while a file is parsed)."""
        with self.indexer.guard:
            return self._ingest(roots, acl or self.operator_acl, sync, readmit_erased, progress,
                                user or self.user, acl_for)

    def _ingest(self, roots: list[Path], acl: tuple[str, ...], sync: bool,
                readmit_erased: bool, progress: Progress | None, user: str,
                acl_for: FileAcl | None) -> IngestReport:
        self.audit.append("ingest.begin", user, {
            "roots": len(roots), "sync": sync, "readmit_erased": readmit_erased,
            "acl": sorted(acl)}, secret={"roots": [str(r) for r in roots]})
        base = progress or Progress()

        def on_file(outcome: FileOutcome) -> None:
            if outcome.status != "unchanged":
                doc = self.catalog.document(outcome.path)
                self.audit.append(f"ingest.{outcome.status}", user, {
                    "doc_id": doc.doc_id if doc else None,
                    "content_sha256": doc.content_hash if doc else None,
                    "version": doc.version if doc else None, "chunks": outcome.chunks,
                    "acl": sorted(doc.acl) if doc else None, "failed": bool(outcome.error)},
                    secret={"path": outcome.path, "error": outcome.error or None})
            base.on_file(outcome)

        report = self.indexer.ingest(roots, acl=acl, sync=sync, readmit_erased=readmit_erased,
                                     progress=Progress(on_total=base.on_total, on_file=on_file),
                                     acl_for=acl_for)
        self.audit.append("ingest.end", user, {
            "files": len(report.outcomes), "chunks": report.chunks,
            "failed": report.count("failed")})
        return report

    def search(self, query: str, *, scope: AccessScope | None = None, k: int | None = None,
               flt: SearchFilter | None = None, mode: SearchMode = "hybrid",
               user: str | None = None,
               receipt_id: str | None = None) -> tuple[SearchResult, dict[str, Any]]:
        """Search what ``scope`` may read (default: the local operator), audited with the
        scope, with a signed receipt. No audit record, no results.

        ``user`` names the caller in the log (default: who opened the appliance);
        ``receipt_id`` is written into the receipt (the service's answer id)."""
        user = user or self.user
        scope = scope or self.operator_scope
        result = self.searcher.search(query, scope=scope, k=k or self.settings.search.k,
                                      flt=flt, mode=mode)
        return result, record_search(self, query, result, mode, user, receipt_id, scope)

    def answerer(self) -> Answerer:
        """The answering pipeline over the model service (built on first use)."""
        if self._answerer is None:
            self._answerer = build_answerer(self.settings)
        return self._answerer

    def ask(self, question: str, *, on_token: Callable[[str], None] = lambda t: None,
            scope: AccessScope | None = None, flt: SearchFilter | None = None,
            user: str | None = None,
            receipt_id: str | None = None) -> tuple[Answer, dict[str, Any]]:
        """Retrieve, answer with citations (or refuse, or degrade), audit, sign a receipt.

        The guard is shared to retrieve and to record (with searches, not with changes),
        and not held while the model writes (seconds to minutes)."""
        user = user or self.user
        scope = scope or self.operator_scope
        with self.indexer.guard.shared():
            answerer = self.answerer()
            # Recorded before anything is retrieved: no record, no answer.
            self.audit.append("ask.begin", user,
                              {"question_hmac": self.audit.question_hash(question),
                               "scope": sorted(scope.entries)})
            result = self.searcher.search(question, scope=scope,
                                          k=max(answerer.max_sources, 10), flt=flt)
        answer = answerer.answer(question, result, on_token)
        with self.indexer.guard.shared():
            return answer, record_answer(self, question, answer, user, receipt_id)

    def set_access(self, doc_id: str, acl: tuple[str, ...], *, user: str | None = None
                   ) -> DocumentRecord:
        """Change who may read a document: the catalog, then every point of its content
        re-stamped at once (a deduplicated twin keeps its own entries). Audited first."""
        with self.indexer.guard:
            doc = self.catalog.document_by_id(doc_id)
            if doc is None:
                raise NotFoundError(f"No document {doc_id!r}.")
            self.audit.append("document.access", user or self.user, {
                "doc_id": doc_id, "before": list(doc.acl), "after": sorted(set(acl))})
            changed = self.catalog.set_acl(doc_id, acl)
            assert changed is not None
            self.indexer.ledger.restamp(doc.content_hash)
            self.store.flush()
            return changed

    def original(self, content_hash: str, *, user: str | None = None
                 ) -> Iterator[bytes]:
        """The original file of a content, decrypted segment by segment. Audited."""
        return stream_original(self.cipher, self.audit, self.indexer.blob_path(content_hash),
                               content_hash, user or self.user)

    def export(self, content_hash: str, output: Path) -> int:
        """Write the original file of a content, decrypted. Audited. Returns its size."""
        return export_original(self.cipher, self.audit, self.indexer.blob_path(content_hash),
                               content_hash, self.user, output)

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
