"""One contract, two back-ends: Qdrant Edge (embedded) and qdrant-client (local mode)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from ingest import Chunk
from retrieval import (
    Analyzer,
    ClientStore,
    EdgeStore,
    IndexedChunk,
    SearchFilter,
    Source,
    VectorStore,
)
from security import StoreError

from conftest import make_cipher

pytestmark = pytest.mark.integration
DIM = 8
ANALYZER = Analyzer()


CIPHER = make_cipher()
for _hash in ("h1", "h2"):
    CIPHER.new_content_key(_hash)


def _store(kind: str, path: Path) -> VectorStore:
    if kind == "edge":
        return EdgeStore(path / "edge", CIPHER)
    return ClientStore(collection="test", cipher=CIPHER, path=path / "client")


@pytest.fixture(params=["edge", "client"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[VectorStore]:
    store = _store(request.param, tmp_path)
    store.open(DIM)
    yield store
    store.close()


def _item(content: str, index: int, text: str, axis: int, lang: str = "en",
          path: str = "/docs/a.txt") -> IndexedChunk:
    dense = np.zeros(DIM, dtype=np.float32)
    dense[axis] = 1.0
    chunk = Chunk(content_hash=content, index=index, text=text, page=index + 1,
                  section="S", lang=lang, kind="text", format="txt")
    return IndexedChunk(chunk=chunk, dense=dense, sparse=ANALYZER.document_vector(text, lang),
                        sources=(Source("doc-" + content, path, 1),), model_id="m@1")


def _fill(store: VectorStore) -> None:
    store.upsert([
        _item("h1", 0, "The cafeteria access code is ZORBLAX", 0),
        _item("h1", 1, "Parking rules for visitors", 1),
        _item("h2", 0, "Le coffre se trouve au sous-sol du bâtiment", 2, lang="fr",
              path="/docs/b.txt"),
    ])
    store.flush()


def test_upsert_count_and_idempotence(store: VectorStore) -> None:
    _fill(store)
    assert store.count() == 3
    _fill(store)  # same deterministic ids: a replay overwrites, never duplicates
    assert store.count() == 3


def test_dense_and_sparse_search_return_passages(store: VectorStore) -> None:
    _fill(store)
    query = np.zeros(DIM, dtype=np.float32)
    query[1] = 1.0
    hits = store.search_dense(query, 2)
    assert hits[0].text == ""  # legs return no text: only what is shown gets decrypted
    hits = store.reveal(hits)
    assert hits[0].text == "Parking rules for visitors" and hits[0].section == "S"
    assert hits[0].page == 2 and hits[0].path == "/docs/a.txt" and hits[0].doc_id == "doc-h1"
    sparse = store.reveal(store.search_sparse(ANALYZER.query_vector("cafeteria code", "en"), 3))
    assert sparse[0].text.endswith("ZORBLAX")
    assert store.search_sparse(ANALYZER.query_vector("the of", "en"), 3) == []


def test_filters(store: VectorStore) -> None:
    _fill(store)
    query = np.ones(DIM, dtype=np.float32) / np.sqrt(DIM)
    french = store.search_dense(query, 10, SearchFilter(langs=("fr",)))
    assert [p.lang for p in french] == ["fr"]
    by_doc = store.search_dense(query, 10, SearchFilter(doc_ids=("doc-h1",)))
    assert {p.content_hash for p in by_doc} == {"h1"}
    assert store.count(SearchFilter(formats=("pdf",))) == 0


def test_delete_content_and_set_sources(store: VectorStore) -> None:
    _fill(store)
    store.set_sources("h1", (Source("doc-x", "/x.txt", 3), Source("doc-y", "/y.txt", 1)))
    query = np.zeros(DIM, dtype=np.float32)
    query[0] = 1.0
    hit = store.reveal(store.search_dense(query, 1))[0]
    assert [s.path for s in hit.sources] == ["/x.txt", "/y.txt"] and hit.version == 3
    assert hit.text.endswith("ZORBLAX")
    assert store.count(SearchFilter(doc_ids=("doc-y",))) == 2
    store.delete_content("h1")
    store.flush()
    assert store.count() == 1


@pytest.mark.parametrize("kind", ["edge", "client"])
def test_reopen_keeps_data_and_refuses_another_dimension(kind: str, tmp_path: Path) -> None:
    store = _store(kind, tmp_path)
    store.open(DIM)
    _fill(store)
    store.close()
    again = _store(kind, tmp_path)
    again.open(DIM)
    assert again.count() == 3
    again.close()
    with pytest.raises(StoreError, match="16-d"):
        _store(kind, tmp_path).open(16)


def test_edge_store_is_single_owner(tmp_path: Path) -> None:
    first = EdgeStore(tmp_path / "edge", CIPHER)
    first.open(DIM)
    with pytest.raises(StoreError, match="in use by another process"):
        EdgeStore(tmp_path / "edge", CIPHER).open(DIM)
    first.close()
