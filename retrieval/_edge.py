"""Embedded back-end: the Qdrant engine in-process (``qdrant-edge-py``), data on local disk."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from security import StoreError

from ._payload import (
    CANDIDATE_FIELDS,
    DENSE,
    INDEXED_FIELDS,
    SPARSE,
    PayloadCipher,
    reveal,
    sources_payload,
    to_passage,
    to_payload,
)
from ._store import StoredPoint, filter_fields, visible
from ._swap import finish_swap, mark_complete, sibling, swap_in
from ._types import AccessScope, IndexedChunk, Passage, SearchFilter, Source, SparseVector

_BATCH = 512


class EdgeStore:
    """A single Qdrant Edge shard under ``path``. One process owns it at a time."""

    name = "embedded"

    def __init__(self, path: Path, cipher: PayloadCipher, *, hnsw_ef: int = 128) -> None:
        self.path = path
        self.cipher = cipher
        self.hnsw_ef = hnsw_ef
        self._shard: Any = None
        self._dim = 0
        self._lock = threading.RLock()

    @property
    def _q(self) -> Any:
        import qdrant_edge

        return qdrant_edge

    def _config(self, dim: int) -> Any:
        q = self._q
        return q.EdgeConfig(
            vectors={DENSE: q.EdgeVectorParams(
                size=dim, distance=q.Distance.Cosine, on_disk=True,
                hnsw_config=q.HnswIndexConfig(m=16, ef_construct=100, full_scan_threshold=10000),
            )},
            sparse_vectors={SPARSE: q.EdgeSparseVectorParams(modifier=q.Modifier.Idf)},
            on_disk_payload=True,
        )

    def _create(self, path: Path, dim: int) -> Any:
        q = self._q
        shard = q.EdgeShard.create(str(path), self._config(dim))
        for field in INDEXED_FIELDS:
            shard.update(q.UpdateOperation.create_field_index(field, q.PayloadSchemaType.Keyword))
        return shard

    def open(self, dim: int) -> None:
        q = self._q
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._dim = dim
        try:
            finish_swap(self.path)  # a purge interrupted by a crash: finish or roll back
            if (self.path / "edge_config.json").exists():
                self._shard = q.EdgeShard.load(str(self.path))
                self._check_dim(dim)
                self._add_missing_indexes()
            else:
                self.path.mkdir(exist_ok=True)
                self._shard = self._create(self.path, dim)
        except StoreError:
            raise
        except Exception as exc:
            if "WouldBlock" in str(exc):
                raise StoreError(
                    f"The embedded store at {self.path} is in use by another process.",
                    hint="Wait for the running ingest to finish, or stop the other Greffier "
                    "process.",
                ) from exc
            raise StoreError(f"Cannot open the embedded store at {self.path}: {exc}",
                             hint="Check the data directory's permissions.") from exc

    def _add_missing_indexes(self) -> None:
        """A store made by an older version lacks the newer indexed fields (``acl``)."""
        q = self._q
        present = set(self._shard.info().payload_schema)
        for field in INDEXED_FIELDS:
            if field not in present:
                self._shard.update(q.UpdateOperation.create_field_index(
                    field, q.PayloadSchemaType.Keyword))

    def _check_dim(self, dim: int) -> None:
        import json

        config = json.loads((self.path / "edge_config.json").read_text())
        stored = int(config["vectors"][DENSE]["size"])
        if stored != dim:
            raise StoreError(
                f"The store holds {stored}-d vectors but the embedder makes {dim}-d ones.",
                hint=f"Set embeddings.model_dir back to the model the index was built with, "
                f"or move {self.path} aside and run `greffier ingest PATH...` to rebuild it.",
            )

    def _filter(self, flt: SearchFilter | None, scope: AccessScope | None = None) -> Any:
        q = self._q
        fields = filter_fields(flt, scope)
        if not fields:
            return None
        return q.Filter(must=[q.FieldCondition(key=k, match=q.MatchAny(v)) for k, v in fields])

    def _by_content(self, content_hash: str) -> Any:
        return self._filter(SearchFilter(content_hashes=(content_hash,)))

    @property
    def shard(self) -> Any:
        if self._shard is None:
            raise StoreError("The store is not open.", hint="Call open() first.")
        return self._shard

    def upsert(self, items: Sequence[IndexedChunk]) -> None:
        q = self._q
        for start in range(0, len(items), _BATCH):
            points = [
                q.Point(
                    id=item.chunk.chunk_id,
                    vector={DENSE: item.dense.tolist(),
                            SPARSE: q.SparseVector(list(item.sparse.indices),
                                                   list(item.sparse.values))},
                    payload=to_payload(item, self.cipher),
                )
                for item in items[start:start + _BATCH]
            ]
            with self._lock:
                self.shard.update(q.UpdateOperation.upsert_points(points))

    def delete_content(self, content_hash: str) -> None:
        with self._lock:
            self.shard.update(
                self._q.UpdateOperation.delete_points_by_filter(self._by_content(content_hash)))

    def set_sources(self, content_hash: str, sources: tuple[Source, ...]) -> None:
        with self._lock:
            self.shard.update(self._q.UpdateOperation.set_payload_by_filter(
                self._by_content(content_hash), sources_payload(sources)))

    def _query(self, query: Any, limit: int, scope: AccessScope,
               flt: SearchFilter | None) -> list[Passage]:
        q = self._q
        if scope.empty:
            return []
        request = q.QueryRequest(limit=limit, query=query, filter=self._filter(flt, scope),
                                 with_payload=CANDIDATE_FIELDS,
                                 params=q.SearchParams(hnsw_ef=self.hnsw_ef))
        points = self.shard.query(request)
        return visible([to_passage(p.id, p.score, p.payload, self.cipher, scope)
                        for p in points])

    def search_dense(self, vector: npt.NDArray[np.float32], limit: int, scope: AccessScope,
                     flt: SearchFilter | None = None) -> list[Passage]:
        return self._query(self._q.Query.Nearest(vector.tolist(), using=DENSE), limit, scope,
                           flt)

    def search_sparse(self, vector: SparseVector, limit: int, scope: AccessScope,
                      flt: SearchFilter | None = None) -> list[Passage]:
        if not len(vector):
            return []
        q = self._q
        sparse = q.SparseVector(list(vector.indices), list(vector.values))
        return self._query(q.Query.Nearest(sparse, using=SPARSE), limit, scope, flt)

    def reveal(self, passages: Sequence[Passage], scope: AccessScope) -> list[Passage]:
        if not passages or scope.empty:
            return []
        records = self.shard.retrieve([p.chunk_id for p in passages],
                                      with_payload=["sealed", "acl"], with_vector=False)
        sealed = {str(r.id): r.payload["sealed"] for r in records
                  if scope.allows(r.payload.get("acl") or ())}
        return [reveal(p, sealed[p.chunk_id], self.cipher) for p in passages
                if p.chunk_id in sealed]

    def count(self, flt: SearchFilter | None = None) -> int:
        return int(self.shard.count(self._q.CountRequest(exact=True, filter=self._filter(flt))))

    def flush(self) -> None:
        with self._lock:
            self.shard.flush()

    def optimize(self) -> None:
        with self._lock:
            self.shard.optimize()

    def stored(self, content_hash: str) -> list[StoredPoint]:
        q = self._q
        points: list[StoredPoint] = []
        offset = None
        while True:
            records, offset = self.shard.scroll(q.ScrollRequest(
                offset=offset, limit=_BATCH, filter=self._by_content(content_hash),
                with_payload=["sealed"], with_vector=True))
            points += [_stored(r.id, r.vector, r.payload) for r in records]
            if offset is None:
                return points

    def iter_passages(self) -> Iterator[list[Passage]]:
        q = self._q
        offset = None
        while True:
            records, offset = self.shard.scroll(q.ScrollRequest(
                offset=offset, limit=_BATCH, with_payload=True, with_vector=False))
            if records:
                yield [to_passage(r.id, 0.0, r.payload, self.cipher, AccessScope.maintenance())
                       for r in records]
            if offset is None:
                return

    def set_sparse(self, vectors: Sequence[tuple[str, SparseVector]]) -> None:
        q = self._q
        with self._lock:
            self.shard.update(q.UpdateOperation.update_vectors([
                q.PointVectors(chunk_id, {SPARSE: q.SparseVector(list(v.indices),
                                                                 list(v.values))})
                for chunk_id, v in vectors]))

    def purge(self) -> None:
        """Copy the live points into a fresh shard, then swap directories (see _swap).

        The old segments and the old WAL, which still hold deleted points' bytes, go with
        the old directory.
        """
        q = self._q
        with self._lock:
            self.shard.flush()
            new = sibling(self.path, ".new")
            if new.exists():
                finish_swap(self.path)
            fresh = self._create(new, self._dim)
            try:
                offset = None
                while True:
                    records, offset = self.shard.scroll(q.ScrollRequest(
                        offset=offset, limit=_BATCH, with_payload=True, with_vector=True))
                    if records:
                        fresh.update(q.UpdateOperation.upsert_points(
                            [q.Point(id=r.id, vector=r.vector, payload=r.payload)
                             for r in records]))
                    if offset is None:
                        break
                fresh.flush()
                fresh.optimize()
                fresh.flush()
            finally:
                fresh.close()
            mark_complete(new)
            self._shard.close()
            self._shard = None
            try:
                swap_in(self.path, new)
            finally:
                finish_swap(self.path)
                self._shard = q.EdgeShard.load(str(self.path))

    def close(self) -> None:
        with self._lock:
            if self._shard is not None:
                self._shard.flush()
                self._shard.close()
                self._shard = None


def _stored(point_id: object, vector: Any, payload: Any) -> StoredPoint:
    sparse = vector[SPARSE]
    return StoredPoint(
        chunk_id=str(point_id),
        dense=np.asarray(vector[DENSE], dtype=np.float32),
        sparse=SparseVector(tuple(int(i) for i in sparse.indices),
                            tuple(float(v) for v in sparse.values)),
        sealed=str(payload["sealed"]))
