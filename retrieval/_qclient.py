"""Server back-end: a Qdrant server or cluster through ``qdrant-client``.

The same class runs on qdrant-client's local mode (``path=``), which speaks the same API
without a server; the contract tests use that.
"""

from __future__ import annotations

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
from ._types import AccessScope, IndexedChunk, Passage, SearchFilter, Source, SparseVector

_BATCH = 256
_PURGE = ".purge"  # suffix of the scratch collection a purge copies the live points into


class ClientStore:
    """One Qdrant collection reached through qdrant-client."""

    name = "server"

    def __init__(self, *, collection: str, cipher: PayloadCipher, url: str | None = None,
                 api_key: str | None = None, path: Path | None = None, timeout_s: int = 30,
                 hnsw_ef: int = 128) -> None:
        self.cipher = cipher
        if (url is None) == (path is None):
            raise StoreError("Give either a server URL or a local path.",
                             hint="Set store.url for a server; tests use a local path.")
        self.collection = collection
        self.hnsw_ef = hnsw_ef
        self._args: dict[str, Any] = (
            {"url": url, "api_key": api_key, "timeout": timeout_s} if url else {"path": str(path)}
        )
        self._client: Any = None
        self._dim = 0

    @property
    def client(self) -> Any:
        if self._client is None:
            raise StoreError("The store is not open.", hint="Call open() first.")
        return self._client

    def open(self, dim: int) -> None:
        from qdrant_client import QdrantClient

        try:
            self._client = QdrantClient(**self._args)
            self._dim = dim
            self._finish_purge()
            if not self._client.collection_exists(self.collection):
                self._create(self.collection, dim)
            else:
                info = self._client.get_collection(self.collection)
                stored = info.config.params.vectors[DENSE].size
                if stored != dim:
                    raise StoreError(
                        f"Collection {self.collection!r} holds {stored}-d vectors, the embedder "
                        f"makes {dim}-d ones.",
                        hint="Use another store.collection and run `greffier ingest PATH...`.",
                    )
        except StoreError:
            raise
        except Exception as exc:
            raise StoreError(f"Cannot open the Qdrant collection {self.collection!r}: {exc}",
                             hint="Check store.url, store.api_key and that Qdrant is up.") from exc

    def _create(self, name: str, dim: int) -> None:
        from qdrant_client import models

        self.client.create_collection(
            name,
            vectors_config={DENSE: models.VectorParams(
                size=dim, distance=models.Distance.COSINE, on_disk=True)},
            sparse_vectors_config={SPARSE: models.SparseVectorParams(
                modifier=models.Modifier.IDF)},
            on_disk_payload=True,
        )
        for field in INDEXED_FIELDS if "url" in self._args else ():
            # Local mode has no payload indexes (it filters by scanning).
            self.client.create_payload_index(name, field, models.PayloadSchemaType.KEYWORD)

    def _filter(self, flt: SearchFilter | None, scope: AccessScope | None = None) -> Any:
        from qdrant_client import models

        fields = filter_fields(flt, scope)
        if not fields:
            return None
        return models.Filter(must=[
            models.FieldCondition(key=k, match=models.MatchAny(any=v)) for k, v in fields])

    def upsert(self, items: Sequence[IndexedChunk]) -> None:
        from qdrant_client import models

        for start in range(0, len(items), _BATCH):
            points = [
                models.PointStruct(
                    id=item.chunk.chunk_id,
                    vector={DENSE: item.dense.tolist(),
                            SPARSE: models.SparseVector(indices=list(item.sparse.indices),
                                                        values=list(item.sparse.values))},
                    payload=to_payload(item, self.cipher),
                )
                for item in items[start:start + _BATCH]
            ]
            self.client.upsert(self.collection, points=points, wait=True)

    def delete_content(self, content_hash: str) -> None:
        from qdrant_client import models

        selector = models.FilterSelector(
            filter=self._filter(SearchFilter(content_hashes=(content_hash,))))
        self.client.delete(self.collection, points_selector=selector, wait=True)

    def set_sources(self, content_hash: str, sources: tuple[Source, ...]) -> None:
        self.client.set_payload(
            self.collection, payload=sources_payload(sources),
            points=self._filter(SearchFilter(content_hashes=(content_hash,))), wait=True)

    def _query(self, query: Any, using: str, limit: int, scope: AccessScope,
               flt: SearchFilter | None) -> list[Passage]:
        from qdrant_client import models

        if scope.empty:
            return []
        params = models.SearchParams(hnsw_ef=self.hnsw_ef) if "url" in self._args else None
        response = self.client.query_points(
            self.collection, query=query, using=using, limit=limit,
            query_filter=self._filter(flt, scope), with_payload=CANDIDATE_FIELDS,
            search_params=params)
        return visible([to_passage(p.id, p.score, p.payload or {}, self.cipher, scope)
                        for p in response.points])

    def search_dense(self, vector: npt.NDArray[np.float32], limit: int, scope: AccessScope,
                     flt: SearchFilter | None = None) -> list[Passage]:
        return self._query(vector.tolist(), DENSE, limit, scope, flt)

    def search_sparse(self, vector: SparseVector, limit: int, scope: AccessScope,
                      flt: SearchFilter | None = None) -> list[Passage]:
        from qdrant_client import models

        if not len(vector):
            return []
        query = models.SparseVector(indices=list(vector.indices), values=list(vector.values))
        return self._query(query, SPARSE, limit, scope, flt)

    def reveal(self, passages: Sequence[Passage], scope: AccessScope) -> list[Passage]:
        if not passages or scope.empty:
            return []
        records = self.client.retrieve(self.collection, [p.chunk_id for p in passages],
                                       with_payload=["sealed", "acl"], with_vectors=False)
        sealed = {str(r.id): (r.payload or {})["sealed"] for r in records
                  if scope.allows((r.payload or {}).get("acl") or ())}
        return [reveal(p, sealed[p.chunk_id], self.cipher) for p in passages
                if p.chunk_id in sealed]

    def count(self, flt: SearchFilter | None = None) -> int:
        return int(self.client.count(self.collection, count_filter=self._filter(flt),
                                     exact=True).count)

    def flush(self) -> None:
        """Writes are acknowledged with ``wait=True``: durable once upsert returns."""

    def optimize(self) -> None:
        """The server optimizes in the background."""

    def stored(self, content_hash: str) -> list[StoredPoint]:
        flt = self._filter(SearchFilter(content_hashes=(content_hash,)))
        points: list[StoredPoint] = []
        offset = None
        while True:
            records, offset = self.client.scroll(
                self.collection, scroll_filter=flt, limit=_BATCH, offset=offset,
                with_payload=["sealed"], with_vectors=True)
            for r in records:
                sparse = r.vector[SPARSE]
                points.append(StoredPoint(
                    chunk_id=str(r.id), dense=np.asarray(r.vector[DENSE], dtype=np.float32),
                    sparse=SparseVector(tuple(sparse.indices), tuple(sparse.values)),
                    sealed=str((r.payload or {})["sealed"])))
            if offset is None:
                return points

    def iter_passages(self) -> Iterator[list[Passage]]:
        offset = None
        while True:
            records, offset = self.client.scroll(self.collection, limit=_BATCH, offset=offset,
                                                 with_payload=True, with_vectors=False)
            if records:
                yield [to_passage(r.id, 0.0, r.payload or {}, self.cipher,
                                    AccessScope.maintenance()) for r in records]
            if offset is None:
                return

    def set_sparse(self, vectors: Sequence[tuple[str, SparseVector]]) -> None:
        from qdrant_client import models

        self.client.update_vectors(self.collection, points=[
            models.PointVectors(id=chunk_id, vector={SPARSE: models.SparseVector(
                indices=list(v.indices), values=list(v.values))})
            for chunk_id, v in vectors], wait=True)

    def purge(self) -> None:
        """Copy the live points to a scratch collection, drop and recreate the collection,
        copy them back, drop the scratch collection.

        Dropping a collection deletes its files on the server (and its SQLite file in local
        mode); what the server's file system keeps of deleted files is not in our reach.
        A crash at any step is finished by the next :meth:`open` (see ``_finish_purge``).
        """
        scratch = self.collection + _PURGE
        if self.client.collection_exists(scratch):
            self.client.delete_collection(scratch)
        self._create(scratch, self._dim)
        self._copy(self.collection, scratch)
        if self.client.count(scratch, exact=True).count != self.count():
            raise StoreError("The purge copy is incomplete; nothing was dropped.",
                             hint="Run the erasure again (the data key is already destroyed).")
        self.client.delete_collection(self.collection)
        self._create(self.collection, self._dim)
        self._copy(scratch, self.collection)
        self.client.delete_collection(scratch)

    def _copy(self, source: str, target: str) -> None:
        from qdrant_client import models

        offset = None
        while True:
            records, offset = self.client.scroll(source, limit=_BATCH, offset=offset,
                                                 with_payload=True, with_vectors=True)
            if records:
                self.client.upsert(target, wait=True, points=[
                    models.PointStruct(id=r.id, vector=r.vector, payload=r.payload)
                    for r in records])
            if offset is None:
                return

    def _finish_purge(self) -> None:
        """A purge interrupted by a crash: while copying out the scratch collection never
        holds more points than the collection, while copying back it always does."""
        scratch = self.collection + _PURGE
        if not self.client.collection_exists(scratch):
            return
        if not self.client.collection_exists(self.collection):
            self._create(self.collection, self._dim)
        if (self.client.count(scratch, exact=True).count
                > self.client.count(self.collection, exact=True).count):
            self._copy(scratch, self.collection)
        self.client.delete_collection(scratch)

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None
