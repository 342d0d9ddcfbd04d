"""One contract, two back-ends: Qdrant Edge (embedded) and qdrant-client (local mode)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ingest import Chunk
from retrieval import (
    AccessScope,
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


READER = AccessScope(frozenset({"g:all"}))


def _item(content: str, index: int, text: str, axis: int, lang: str = "en",
          path: str = "/docs/a.txt") -> IndexedChunk:
    dense = np.zeros(DIM, dtype=np.float32)
    dense[axis] = 1.0
    chunk = Chunk(content_hash=content, index=index, text=text, page=index + 1,
                  section="S", lang=lang, kind="text", format="txt")
    return IndexedChunk(chunk=chunk, dense=dense, sparse=ANALYZER.document_vector(text, lang),
                        sources=(Source("doc-" + content, path, 1, ("g:all",)),), model_id="m@1")


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
    hits = store.search_dense(query, 2, READER)
    assert hits[0].text == ""  # legs return no text: only what is shown gets decrypted
    hits = store.reveal(hits, READER)
    assert hits[0].text == "Parking rules for visitors" and hits[0].section == "S"
    assert hits[0].page == 2 and hits[0].path == "/docs/a.txt" and hits[0].doc_id == "doc-h1"
    sparse = store.reveal(store.search_sparse(
        ANALYZER.query_vector("cafeteria code", "en"), 3, READER), READER)
    assert sparse[0].text.endswith("ZORBLAX")
    assert store.search_sparse(ANALYZER.query_vector("the of", "en"), 3, READER) == []


def test_filters(store: VectorStore) -> None:
    _fill(store)
    query = np.ones(DIM, dtype=np.float32) / np.sqrt(DIM)
    french = store.search_dense(query, 10, READER, SearchFilter(langs=("fr",)))
    assert [p.lang for p in french] == ["fr"]
    by_doc = store.search_dense(query, 10, READER, SearchFilter(doc_ids=("doc-h1",)))
    assert {p.content_hash for p in by_doc} == {"h1"}
    assert store.count(SearchFilter(formats=("pdf",))) == 0


def test_delete_content_and_set_sources(store: VectorStore) -> None:
    _fill(store)
    store.set_sources("h1", (Source("doc-x", "/x.txt", 3, ("g:all",)),
                            Source("doc-y", "/y.txt", 1, ("g:all",))))
    query = np.zeros(DIM, dtype=np.float32)
    query[0] = 1.0
    hit = store.reveal(store.search_dense(query, 1, READER), READER)[0]
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


def test_access_scope_filters_every_read(store: VectorStore) -> None:
    """Dense, sparse and reveal all take the scope; a deduplicated content shows a reader
    only the documents he may read; an empty scope sees nothing."""
    _fill(store)
    store.set_sources("h1", (Source("doc-hr", "/hr/salaires.txt", 1, ("g:hr",)),
                             Source("doc-pub", "/pub/copie.txt", 1, ("g:all", "u:bob"))))
    store.set_sources("h2", (Source("doc-hr2", "/hr/coffre.txt", 1, ("g:hr",)),))
    query = np.ones(DIM, dtype=np.float32) / np.sqrt(DIM)
    hr, bob, nobody = (AccessScope(frozenset({"g:hr"})), AccessScope.of("bob"),
                       AccessScope(frozenset({"g:other", "u:eve"})))
    assert {p.content_hash for p in store.search_dense(query, 10, hr)} == {"h1", "h2"}
    seen = store.search_dense(query, 10, bob)
    assert {p.content_hash for p in seen} == {"h1"}
    assert {s.doc_id for p in seen for s in p.sources} == {"doc-pub"}  # not the HR copy
    assert store.search_dense(query, 10, nobody) == []
    assert store.search_dense(query, 10, AccessScope(frozenset())) == []
    sparse = ANALYZER.query_vector("coffre sous-sol", "fr")
    assert store.search_sparse(sparse, 5, bob) == []
    assert [p.content_hash for p in store.search_sparse(sparse, 5, hr)] == ["h2"]
    # A passage id learnt elsewhere does not open for a scope that may not read it.
    hr_hits = store.search_dense(query, 10, hr)
    assert store.reveal(hr_hits, nobody) == []
    assert {p.content_hash for p in store.reveal(hr_hits, bob)} == {"h1"}
    # Revoking takes effect at once: the HR group loses h2.
    store.set_sources("h2", (Source("doc-hr2", "/hr/coffre.txt", 1, ("u:alice",)),))
    assert {p.content_hash for p in store.search_dense(query, 10, hr)} == {"h1"}


ENTRIES = st.sampled_from(["g:a", "g:b", "g:c", "u:x", "u:y"])


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(acls=st.lists(st.frozensets(ENTRIES, max_size=3), min_size=1, max_size=8),
       scope=st.frozensets(ENTRIES, max_size=3))
def test_filtered_results_equal_a_brute_force_check(
        tmp_path_factory: pytest.TempPathFactory, acls: list[frozenset[str]],
        scope: frozenset[str]) -> None:
    """Random ACLs on random documents, a random reader: what the store returns (dense,
    sparse, reveal) is exactly what checking every document by hand allows."""
    store = EdgeStore(tmp_path_factory.mktemp("prop") / "edge", CIPHER)
    store.open(DIM)
    try:
        items = []
        for n, acl in enumerate(acls):
            CIPHER.new_content_key(f"c{n}")
            item = _item(f"c{n}", 0, f"walrus report number {n}", n % DIM, path=f"/d/{n}.txt")
            items.append(IndexedChunk(chunk=item.chunk, dense=item.dense, sparse=item.sparse,
                                      sources=(Source(f"doc-{n}", f"/d/{n}.txt", 1,
                                                      tuple(sorted(acl))),), model_id="m@1"))
        store.upsert(items)
        store.flush()
        reader = AccessScope(scope)
        expected = {f"c{n}" for n, acl in enumerate(acls) if acl & scope}
        query = np.ones(DIM, dtype=np.float32) / np.sqrt(DIM)
        dense = store.search_dense(query, 50, reader)
        assert {p.content_hash for p in dense} == expected
        sparse = store.search_sparse(ANALYZER.query_vector("walrus report", "en"), 50, reader)
        assert {p.content_hash for p in sparse} == expected
        everything = store.search_dense(query, 50, AccessScope.maintenance())
        assert {p.content_hash for p in store.reveal(everything, reader)} == expected
    finally:
        store.close()


def test_only_the_stores_upkeep_reads_without_a_readers_scope() -> None:
    """``AccessScope.maintenance()`` (every point) is for erasure evidence and the store's
    own re-indexing: no use case, route or command may build it."""
    root = Path(__file__).resolve().parents[1]
    users = sorted(str(p.relative_to(root)) for pkg in ("appliance", "generation", "ingest")
                   for p in (root / pkg).rglob("*.py") if "maintenance()" in p.read_text())
    assert users == ["appliance/_evidence.py"]


def test_every_use_case_reads_with_its_callers_scope() -> None:
    """``Appliance.search``/``ask`` default to the local operator's scope (the CLI without a
    service); the service's use cases must always pass the caller's."""
    import re

    root = Path(__file__).resolve().parents[1] / "appliance" / "service"
    calls = [(p.name, m.group(0)) for p in root.glob("*.py")
             for m in re.finditer(r"app\.(search|ask|ingest)\((?:[^()]|\([^()]*\))*\)",
                                  p.read_text())]
    assert calls, "the pattern no longer finds the use cases' calls"
    missing = [c for c in calls if "scope=" not in c[1] and "acl=" not in c[1]]
    assert missing == []
