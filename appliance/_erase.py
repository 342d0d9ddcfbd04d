"""Crypto-erasure of a document, physical purge, and a certificate of what was measured.

Order matters:

1. the byte patterns of everything about to be destroyed are collected (``_evidence``) and
   the data directory is scanned once for them: this shows the scan can see them;
2. the data key is destroyed (from then on the ciphertexts are noise, even with the KEK),
   the documents forgotten and a tombstone left, in one catalog transaction; SQLite's WAL
   is checkpointed and truncated;
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
from pathlib import Path
from typing import Any

from retrieval import SearchFilter
from security import GreffierError, sign

from ._appliance import Appliance
from ._evidence import blob_target, key_target, point_targets, shared_with_live
from ._scan import scan_tree, summary

CERTIFICATE_VERSION = 2


class NotFoundError(GreffierError):
    """No document matches."""


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


def erase(app: Appliance, ref: str, *, erased_by: str) -> dict[str, Any]:
    content_hash = find_content(app, ref)
    docs = app.catalog.documents_of(content_hash)
    only_this = SearchFilter(content_hashes=(content_hash,))
    data_dir = app.settings.data_dir
    # 0. the evidence, before anything is destroyed
    stored = app.store.stored(content_hash)
    blob = app.indexer.blob_path(content_hash)
    targets = (key_target(app.catalog.wrapped_dek(content_hash, app.keys.kek_id))
               + blob_target(blob) + point_targets(stored, set()))
    before = scan_tree(data_dir, targets)
    certificate_id = str(uuid.uuid4())
    # Recorded before anything is destroyed: no record, no erasure.
    app.audit.append("erase.begin", erased_by, {"content_sha256": content_hash,
                                                "certificate_id": certificate_id,
                                                "documents": [d.doc_id for d in docs]})
    # 1. the key: one transaction destroys the wrapped DEK, forgets the documents and
    #    leaves the tombstone.
    app.catalog.erase_content(content_hash, erased_by, certificate_id)
    app.catalog.purge_journal()  # the wrapped key must not survive in SQLite's WAL either
    app.cipher.forget(content_hash)
    # 2. the ciphertexts and vectors: delete the points, rewrite the store without them.
    app.store.delete_content(content_hash)
    app.store.flush()
    app.store.purge()
    had_blob = blob.exists()
    blob.unlink(missing_ok=True)
    # 3. measure: the same patterns, every file, again. Vectors a live point also holds
    #    (the same chunk text in another document) rightly stay and are not looked for.
    shared = shared_with_live(app.store, stored)
    targets = [t for t in targets if not (t.kind.endswith("_vectors") and t.label in shared)]
    after = scan_tree(data_dir, targets)
    remaining = app.store.count(only_this)
    scan = {**summary(targets, before, after), "shared_vectors_not_looked_for": len(shared),
            "store_files_scanned": app.store.name == "embedded"}
    complete = remaining == 0 and not after.found and bool(scan["store_files_scanned"])
    body = {
        "format": "greffier-erasure-certificate", "version": CERTIFICATE_VERSION,
        "certificate_id": certificate_id,
        "content_sha256": content_hash,
        # No path: file names are often sensitive; the doc id identifies a known path.
        "documents": [{"doc_id": d.doc_id, "version": d.version} for d in docs],
        "destroyed": {"data_keys": 1, "points_deleted": len(stored),
                      "points_remaining": remaining, "store_rebuilt": True,
                      "original_blob_deleted": had_blob},
        "scan": scan,
        "complete": complete,
        "erased_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "erased_by": erased_by,
        "appliance_public_key": base64.b64encode(app.keys.public_key).decode(),
    }
    certificate = sign(body, app.keys.signing_key)
    app.audit.append("erase.end", erased_by, {"content_sha256": content_hash,
                                              "certificate_id": certificate_id,
                                              "points_deleted": len(stored),
                                              "complete": complete,
                                              "found": len(after.found)})
    folder = data_dir / "certificates"
    folder.mkdir(exist_ok=True, mode=0o700)
    (folder / f"{certificate_id}.json").write_text(json.dumps(certificate, indent=2))
    return certificate
