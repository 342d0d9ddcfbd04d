"""The one place where chunk payloads are written and read.

Every back-end stores exactly this dict. Chunk text and section title are sealed with the
content's data key (``sealed``, see security/FORMAT.md); the rest is what filters need.
"""

from __future__ import annotations

import base64
from dataclasses import replace
from typing import Any, Protocol

from ._types import AccessScope, IndexedChunk, Passage, Source

DENSE = "dense"
SPARSE = "bm25"
# Payload fields with a keyword index (filters, facets, access control).
INDEXED_FIELDS = ("content_hash", "doc_ids", "lang", "format", "acl")


class PayloadCipher(Protocol):
    """Seals a chunk's text and section for storage, and opens them again."""

    def seal_chunk(self, content_hash: str, index: int, text: str, section: str) -> bytes: ...

    def open_chunk(self, content_hash: str, index: int, blob: bytes) -> tuple[str, str]: ...


def to_payload(item: IndexedChunk, cipher: PayloadCipher) -> dict[str, Any]:
    chunk = item.chunk
    sealed = cipher.seal_chunk(chunk.content_hash, chunk.index, chunk.text, chunk.section)
    return {
        "sealed": base64.b64encode(sealed).decode("ascii"),
        "content_hash": chunk.content_hash,
        "chunk_index": chunk.index,
        "page": chunk.page,
        "lang": chunk.lang,
        "kind": chunk.kind,
        "format": chunk.format,
        "model_id": item.model_id,
        **sources_payload(item.sources),
    }


def sources_payload(sources: tuple[Source, ...]) -> dict[str, Any]:
    """The documents a content's chunks come from; ``acl`` (indexed, filtered on) is the
    union of their access entries, each source keeps its own."""
    return {
        "doc_ids": [s.doc_id for s in sources],
        "acl": sorted({entry for s in sources for entry in s.acl}),
        "sources": [{"doc_id": s.doc_id, "path": s.path, "version": s.version,
                     "acl": list(s.acl)} for s in sources],
    }


# Fields a search leg needs; ``sealed`` is fetched (and opened) only for the final passages.
CANDIDATE_FIELDS = ["content_hash", "chunk_index", "page", "lang", "kind", "format",
                    "model_id", "sources", "acl"]


def to_passage(point_id: object, score: float, payload: dict[str, Any],
               cipher: PayloadCipher, scope: AccessScope) -> Passage:
    """A passage; its text and section are empty unless the payload carries ``sealed``.
    Its sources are only those ``scope`` may read (none: the caller drops the passage)."""
    content_hash = str(payload["content_hash"])
    index = int(payload["chunk_index"])
    text = section = ""
    if "sealed" in payload:
        text, section = cipher.open_chunk(content_hash, index,
                                          base64.b64decode(str(payload["sealed"])))
    return Passage(
        chunk_id=str(point_id),
        text=text,
        score=float(score),
        content_hash=content_hash,
        chunk_index=index,
        page=payload.get("page"),
        section=section,
        lang=str(payload.get("lang") or "und"),
        format=str(payload.get("format") or ""),
        kind=str(payload.get("kind") or "text"),
        sources=scope.readable(tuple(
            Source(str(s["doc_id"]), str(s["path"]), int(s["version"]),
                   tuple(str(e) for e in s.get("acl") or ()))
            for s in payload.get("sources") or ()
        )),
        model_id=str(payload.get("model_id") or ""),
    )


def reveal(passage: Passage, sealed: str, cipher: PayloadCipher) -> Passage:
    """The passage with its text and section opened from the stored ``sealed`` field."""
    text, section = cipher.open_chunk(passage.content_hash, passage.chunk_index,
                                      base64.b64decode(sealed))
    return replace(passage, text=text, section=section)
