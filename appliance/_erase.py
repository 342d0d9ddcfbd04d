"""Crypto-erasure of a document, with a signed certificate.

Order matters: the data key is destroyed first (from then on the ciphertexts are noise,
even with the KEK), then the points are deleted and the store's segments rewritten, then
the catalog records a tombstone by content hash so a later sync does not bring the content
back unless asked.
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
    points = app.store.count(only_this)
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
    # 2. the ciphertexts: delete the points, then rewrite the segments that held them.
    app.store.delete_content(content_hash)
    app.store.flush()
    app.store.optimize()
    blob = app.indexer.blob_path(content_hash)
    had_blob = blob.exists()
    blob.unlink(missing_ok=True)
    remaining = app.store.count(only_this)
    body = {
        "format": "greffier-erasure-certificate", "version": 1,
        "certificate_id": certificate_id,
        "content_sha256": content_hash,
        "documents": [{"doc_id": d.doc_id, "path": d.path, "version": d.version}
                      for d in docs],
        "destroyed": {"data_keys": 1, "points_deleted": points, "points_remaining": remaining,
                      "store_segments_rewritten": True, "original_blob_deleted": had_blob},
        "erased_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "erased_by": erased_by,
        "appliance_public_key": base64.b64encode(app.keys.public_key).decode(),
    }
    certificate = sign(body, app.keys.signing_key)
    app.audit.append("erase.end", erased_by, {"content_sha256": content_hash,
                                              "certificate_id": certificate_id,
                                              "points_deleted": points})
    folder = app.settings.data_dir / "certificates"
    folder.mkdir(exist_ok=True, mode=0o700)
    (folder / f"{certificate_id}.json").write_text(json.dumps(certificate, indent=2))
    return certificate

