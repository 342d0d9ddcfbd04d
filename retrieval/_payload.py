"""The one place where chunk payloads are written and read.

Every back-end stores exactly this dict. The security layer will encrypt ``text`` here.
"""

from __future__ import annotations

from typing import Any

from ._types import IndexedChunk, Passage, Source

DENSE = "dense"
SPARSE = "bm25"
# Payload fields with a keyword index (filters, facets, access control).
INDEXED_FIELDS = ("content_hash", "doc_ids", "lang", "format", "acl_groups")


def to_payload(item: IndexedChunk) -> dict[str, Any]:
    chunk = item.chunk
    return {
        "text": chunk.text,
        "content_hash": chunk.content_hash,
        "chunk_index": chunk.index,
        "page": chunk.page,
        "section": chunk.section,
        "lang": chunk.lang,
        "kind": chunk.kind,
        "format": chunk.format,
        "model_id": item.model_id,
        "acl_groups": [],
        **sources_payload(item.sources),
    }


def sources_payload(sources: tuple[Source, ...]) -> dict[str, Any]:
    return {
        "doc_ids": [s.doc_id for s in sources],
        "sources": [{"doc_id": s.doc_id, "path": s.path, "version": s.version} for s in sources],
    }


def to_passage(point_id: object, score: float, payload: dict[str, Any]) -> Passage:
    return Passage(
        chunk_id=str(point_id),
        text=str(payload["text"]),
        score=float(score),
        content_hash=str(payload["content_hash"]),
        chunk_index=int(payload["chunk_index"]),
        page=payload.get("page"),
        section=str(payload.get("section") or ""),
        lang=str(payload.get("lang") or "und"),
        format=str(payload.get("format") or ""),
        kind=str(payload.get("kind") or "text"),
        sources=tuple(
            Source(str(s["doc_id"]), str(s["path"]), int(s["version"]))
            for s in payload.get("sources") or ()
        ),
        model_id=str(payload.get("model_id") or ""),
    )
