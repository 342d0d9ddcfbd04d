"""Crypto-erasure of a document, physical purge, and a certificate of what was measured.

Order matters:

1. the byte patterns of everything about to be destroyed are collected (``_evidence``) and
   the data directory is scanned once for them: this shows the scan can see them;
2. the data key is destroyed (from then on the ciphertexts are noise, even with the KEK),
   the documents forgotten and a tombstone left (one catalog transaction first, then the
   key: an interruption between them leaves a key the next open destroys), and the
   key store's write-ahead log (and the metadata database's, on SQLite) checkpointed and
   truncated;
3. the points are deleted and the store rewritten from its live points only (``purge``:
   old segments and old WAL go), the encrypted original is deleted;
4. every file of the data directory is scanned again for every pattern, and the signed
   certificate reports the counts. It claims a complete erasure only if nothing was found
   and the store's files were among those scanned.
"""

from __future__ import annotations

import base64
import json
import time
import uuid
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from retrieval import SearchFilter
from security import NotFoundError, sign

from ._appliance import Appliance
from ._evidence import blob_target, key_target, point_targets, shared_with_live
from ._scan import ScanResult, Target, scan_tree, summary

CERTIFICATE_VERSION = 2


def find_content(app: Appliance, ref: str) -> str:
    """A document reference (document id, path, or content sha256) → its content hash."""
    doc = app.catalog.document_by_id(ref) or app.catalog.document(str(Path(ref).resolve()))
    if doc is not None:
        return doc.content_hash
    if app.catalog.content_status(ref) is not None:
        return ref
    raise NotFoundError(f"No document {ref!r} in the catalog.",
                        hint="Give a document id, a path as ingested, or a content sha256 "
                        "(see `greffier search --json`).")


@dataclass
class _Plan:
    """One content to erase, with the evidence read before anything is destroyed."""

    content_hash: str
    docs: list[Any]
    stored: list[Any]
    blob: Path
    had_key: bool
    targets: list[Target]
    certificate_id: str = field(default_factory=lambda: str(uuid.uuid4()))


def erase(app: Appliance, ref: str, *, erased_by: str) -> dict[str, Any]:
    return erase_many(app, [ref], erased_by=erased_by)[0]


def erase_many(app: Appliance, refs: list[str], *, erased_by: str) -> list[dict[str, Any]]:
    """Erase several documents with one store rebuild and one scan (the rebuild dominates:
    minutes at 100k chunks), one certificate each. Every reference is resolved first, so a
    typo erases nothing."""
    hashes = list(dict.fromkeys(find_content(app, ref) for ref in refs))
    data_dir = app.settings.data_dir
    # 0. the evidence, before anything is destroyed
    plans = []
    for content_hash in hashes:
        stored = app.store.stored(content_hash)
        blob = app.indexer.blob_path(content_hash)
        wrapped = app.deks.wrapped_dek(content_hash, app.keys.kek_id)
        plans.append(_Plan(content_hash, app.catalog.documents_of(content_hash), stored, blob,
                           wrapped is not None,
                           key_target(wrapped) + blob_target(blob) + point_targets(stored, set())))
    before = scan_tree(data_dir, [t for plan in plans for t in plan.targets])
    for plan in plans:
        # Recorded before anything is destroyed: no record, no erasure.
        app.audit.append("erase.begin", erased_by, {
            "content_sha256": plan.content_hash, "certificate_id": plan.certificate_id,
            "documents": [d.doc_id for d in plan.docs]})
        # 1. the documents forgotten and the tombstone left, then the wrapped DEK destroyed.
        app.catalog.erase_content(plan.content_hash, erased_by, plan.certificate_id)
        app.cipher.destroy(plan.content_hash)
        app.store.delete_content(plan.content_hash)
    app.deks.purge_journal()  # the wrapped keys must not survive in SQLite's WAL either
    app.catalog.purge_journal()
    # 2. the ciphertexts and vectors: rewrite the store without the deleted points.
    app.store.flush()
    app.store.purge()
    blobs_deleted = {}
    for plan in plans:
        blobs_deleted[plan.content_hash] = plan.blob.exists()
        plan.blob.unlink(missing_ok=True)
    # 3. measure: the same patterns, every file, again. Vectors a live point also holds
    #    (the same chunk text in another document) rightly stay and are not looked for.
    shared: dict[str, set[str]] = {}
    for plan in plans:
        shared[plan.content_hash] = shared_with_live(app.store, plan.stored)
        plan.targets = [t for t in plan.targets if not (
            t.kind.endswith("_vectors") and t.label in shared[plan.content_hash])]
    after = scan_tree(data_dir, [t for plan in plans for t in plan.targets])
    return [_certify(app, plan, before, after, erased_by, blobs_deleted[plan.content_hash],
                     len(shared[plan.content_hash])) for plan in plans]


def _certify(app: Appliance, plan: _Plan, before: ScanResult, after: ScanResult,
             erased_by: str, had_blob: bool, shared: int) -> dict[str, Any]:
    remaining = app.store.count(SearchFilter(content_hashes=(plan.content_hash,)))
    mine = set(plan.targets)
    after_mine = replace(after, found={t: p for t, p in after.found.items() if t in mine})
    scan = {**summary(plan.targets, before, after_mine), "shared_vectors_not_looked_for": shared,
            "store_files_scanned": app.store.name == "embedded"}
    complete = remaining == 0 and not after_mine.found and bool(scan["store_files_scanned"])
    body = {
        "format": "greffier-erasure-certificate", "version": CERTIFICATE_VERSION,
        "certificate_id": plan.certificate_id,
        "content_sha256": plan.content_hash,
        # No path: file names are often sensitive; the doc id identifies a known path.
        "documents": [{"doc_id": d.doc_id, "version": d.version} for d in plan.docs],
        "destroyed": {"data_keys": int(plan.had_key), "points_deleted": len(plan.stored),
                      "points_remaining": remaining, "store_rebuilt": True,
                      "original_blob_deleted": had_blob},
        "scan": scan,
        "complete": complete,
        "erased_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "erased_by": erased_by,
        "appliance_public_key": base64.b64encode(app.keys.public_key).decode(),
    }
    certificate = sign(body, app.keys.signing_key)
    app.audit.append("erase.end", erased_by, {"content_sha256": plan.content_hash,
                                              "certificate_id": plan.certificate_id,
                                              "points_deleted": len(plan.stored),
                                              "complete": complete,
                                              "found": len(after_mine.found)})
    folder = app.settings.data_dir / "certificates"
    folder.mkdir(exist_ok=True, mode=0o700)
    (folder / f"{plan.certificate_id}.json").write_text(json.dumps(certificate, indent=2))
    return certificate
