"""What an erasure must make disappear, as the byte patterns the files would hold it in.

Collected before anything is destroyed, from the store and the catalog themselves:

* dense vector: float32 little-endian as Qdrant keeps it on disk (the stored, normalised
  vector, read back from the store), and the CBOR form its WAL writes (``0xfa`` + float32
  big-endian per element);
* sparse vector: the values as float32 little-endian (its on-disk form; the term ids are
  stored compressed) when long and varied enough to be a meaningful pattern, and the term
  ids in the WAL's CBOR form;
* sealed payload: the base64 text the payload storage and WAL hold;
* wrapped data key: raw (SQLite blob) and base64;
* original: three 64-byte slices of the encrypted blob.
"""

from __future__ import annotations

import base64
import struct
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from retrieval import AccessScope, StoredPoint, VectorStore

from ._scan import Target

_WINDOW = 64  # bytes: a match this long is no coincidence for vector or cipher bytes
_MIN_SPARSE = 8  # fewer values than this (or all equal) is not a meaningful pattern
_SLICE = 64


def _cbor_uint(n: int) -> bytes:
    if n < 24:
        return bytes([n])
    if n < 1 << 8:
        return b"\x18" + bytes([n])
    if n < 1 << 16:
        return b"\x19" + struct.pack(">H", n)
    if n < 1 << 32:
        return b"\x1a" + struct.pack(">I", n)
    return b"\x1b" + struct.pack(">Q", n)


def dense_forms(vector: np.ndarray) -> tuple[bytes, ...]:
    little = vector.astype("<f4").tobytes()
    cbor = b"".join(b"\xfa" + struct.pack(">f", float(x)) for x in vector[:16])
    return little[:_WINDOW], little[-_WINDOW:], cbor


def sparse_forms(indices: Sequence[int], values: Sequence[float]) -> tuple[bytes, ...]:
    forms: list[bytes] = []
    if len(values) >= _MIN_SPARSE and len(set(values)) > 1:
        forms.append(np.asarray(values, dtype="<f4").tobytes())
    if len(indices) >= 4:
        forms.append(b"".join(_cbor_uint(int(i)) for i in indices[:_MIN_SPARSE]))
    return tuple(forms)


def sealed_forms(sealed: str) -> tuple[bytes, ...]:
    text = sealed.encode("ascii")
    raw = base64.b64decode(sealed)
    return text[:48], text[-48:], raw[:32]


def point_targets(points: Sequence[StoredPoint], shared: set[str]) -> list[Target]:
    """Targets for erased points; vectors another live point holds too are left out
    (identical chunk text elsewhere: those bytes rightly stay)."""
    targets: list[Target] = []
    for p in points:
        if p.chunk_id not in shared:
            targets.append(Target("dense_vectors", p.chunk_id, dense_forms(p.dense)))
            if forms := sparse_forms(p.sparse.indices, p.sparse.values):
                targets.append(Target("sparse_vectors", p.chunk_id, forms))
        targets.append(Target("sealed_payloads", p.chunk_id, sealed_forms(p.sealed)))
    return targets


def key_target(wrapped: bytes | None) -> list[Target]:
    if not wrapped:
        return []
    return [Target("data_keys", "wrapped data key", (wrapped, base64.b64encode(wrapped)))]


def blob_target(blob: Path) -> list[Target]:
    if not blob.exists():
        return []
    size = blob.stat().st_size
    with blob.open("rb") as handle:
        slices = []
        for offset in sorted({0, max(0, size // 2 - _SLICE // 2), max(0, size - _SLICE)}):
            handle.seek(offset)
            slices.append(handle.read(_SLICE))
    return [Target("original", "encrypted original", tuple(s for s in slices if s))]


def shared_with_live(store: VectorStore, points: Sequence[StoredPoint]) -> set[str]:
    """Erased points whose dense vector a live point holds byte for byte (same text)."""
    shared: set[str] = set()
    for p in points:
        for hit in store.search_dense(p.dense, 3, AccessScope.maintenance()):
            if hit.score < 1 - 1e-5:
                break
            twins = store.stored(hit.content_hash)
            if any(t.dense.tobytes() == p.dense.tobytes() for t in twins):
                shared.add(p.chunk_id)
                break
    return shared
