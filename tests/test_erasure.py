"""Erasure leaves nothing on disk, and its certificate states only what was measured.

The review's attack: after `greffier erase`, the erased chunk's dense vector (cosine 1.0
with a fresh embedding of the chunk) and its sealed payload stayed in the Qdrant segment
and WAL. These tests scan every file of the data directory, independently of the code
under test, for every form of what was erased.
"""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner

from appliance import Appliance
from appliance._erase import erase
from appliance.cli import cli
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
from security import Keyring

from conftest import make_cipher, make_settings, open_appliance

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[1]

# -- the store seam: stored() and purge() on both back-ends ------------------------------

DIM = 32
CIPHER = make_cipher()
for _hash in ("h1", "h2"):
    CIPHER.new_content_key(_hash)
ANALYZER = Analyzer()

ALL = AccessScope(frozenset({"g:all"}))


def _item(content: str, index: int, text: str, seed: int) -> IndexedChunk:
    dense = np.random.default_rng(seed).standard_normal(DIM).astype(np.float32)
    dense /= np.linalg.norm(dense)
    chunk = Chunk(content_hash=content, index=index, text=text, page=1, section="S",
                  lang="en", kind="text", format="txt")
    return IndexedChunk(chunk=chunk, dense=dense, sparse=ANALYZER.document_vector(text, "en"),
                        sources=(Source("doc-" + content, f"/docs/{content}.txt", 1, ("g:all",)),),
                        model_id="m@1")


ITEMS = [_item("h1", 0, "The cafeteria access code is ZORBLAX", 1),
         _item("h1", 1, "Parking rules for visitors and the night shift", 2),
         _item("h2", 0, "Le coffre se trouve au sous-sol du bâtiment", 3)]


def _store(kind: str, path: Path) -> VectorStore:
    if kind == "edge":
        return EdgeStore(path / "edge", CIPHER)
    return ClientStore(collection="test", cipher=CIPHER, path=path / "client")


def _files_holding(root: Path, needles: list[bytes]) -> list[str]:
    return sorted({str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()
                   for n in needles if n in p.read_bytes()})


def _point_needles(store: VectorStore, content: str) -> list[bytes]:
    """Every form the tests know a point's bytes take: float32 LE (Qdrant's vector
    storage), float64 BE (pickle, qdrant-client local mode), the sealed text."""
    needles: list[bytes] = []
    for p in store.stored(content):
        needles += [p.dense.astype("<f4").tobytes(),
                    np.asarray(p.dense, dtype=">f8").tobytes()[:64],
                    p.sealed.encode()]
    return needles


@pytest.mark.parametrize("kind", ["edge", "client"])
def test_purge_leaves_no_byte_of_deleted_points_and_keeps_the_rest(kind: str,
                                                                   tmp_path: Path) -> None:
    store = _store(kind, tmp_path)
    store.open(DIM)
    store.upsert(ITEMS)
    store.flush()
    stored = store.stored("h1")
    assert {p.chunk_id for p in stored} == {i.chunk.chunk_id for i in ITEMS[:2]}
    by_id = {i.chunk.chunk_id: i for i in ITEMS}
    for p in stored:  # as stored: the normalised vector, the sparse vector, the sealed text
        assert np.allclose(p.dense, by_id[p.chunk_id].dense, atol=1e-6)
        assert p.sparse.indices == by_id[p.chunk_id].sparse.indices
        assert base64.b64decode(p.sealed)
    needles = _point_needles(store, "h1")
    assert _files_holding(tmp_path, needles)  # the needles are in a form the files hold
    before = store.reveal(store.search_dense(ITEMS[2].dense, 1, ALL), ALL)
    store.delete_content("h1")
    store.flush()
    store.optimize()
    store.purge()
    assert _files_holding(tmp_path, needles) == []
    assert store.count() == 1 and store.stored("h1") == []
    after = store.reveal(store.search_dense(ITEMS[2].dense, 1, ALL), ALL)
    assert [(p.chunk_id, p.text) for p in after] == [(p.chunk_id, p.text) for p in before]
    assert after[0].score == pytest.approx(before[0].score, abs=1e-6)
    sparse = store.search_sparse(ANALYZER.query_vector("coffre sous-sol", "fr"), 1, ALL)
    assert [p.chunk_id for p in sparse] == [ITEMS[2].chunk.chunk_id]
    store.upsert(ITEMS[:1])  # the rebuilt store takes writes and survives a reopen
    store.close()
    again = _store(kind, tmp_path)
    again.open(DIM)
    assert again.count() == 2
    assert again.count(SearchFilter(doc_ids=("doc-h2",))) == 1
    again.close()


# -- crash safety of the embedded store's rebuild ------------------------------------------

_CRASH = textwrap.dedent("""
    import os, sys
    sys.path[:0] = [{root!r}, {tests!r}]
    import retrieval._swap as swap
    from test_erasure import CIPHER, DIM
    from retrieval import EdgeStore
    def crash(name):
        if name == {step!r}:
            os._exit(9)  # the process dies here: no cleanup, no finally
    swap._step = crash
    store = EdgeStore(__import__("pathlib").Path({path!r}), CIPHER)
    store.open(DIM)
    store.delete_content("h1")
    store.flush()
    store.purge()
    os._exit(0)
""")


@pytest.mark.parametrize("step", ["before-marker", "before-first-rename", "between-renames",
                                  "before-delete"])
def test_a_crash_during_the_rebuild_leaves_a_usable_store(step: str, tmp_path: Path) -> None:
    path = tmp_path / "edge"
    store = EdgeStore(path, CIPHER)
    store.open(DIM)
    store.upsert(ITEMS)
    store.close()
    # The child process shares the module-level CIPHER only by construction: the same
    # content keys are not needed to rebuild (sealed payloads are copied as they are).
    script = _CRASH.format(root=str(ROOT), tests=str(ROOT / "tests"), step=step, path=str(path))
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=300, check=False)
    assert done.returncode == 9, done.stderr
    again = EdgeStore(path, CIPHER)
    again.open(DIM)  # finishes or rolls back the swap
    # before the marker the new copy is incomplete and the old store is kept (its delete
    # is in its WAL); after it, the swap is finished and the old files are gone.
    assert again.count() == 1
    assert [p.chunk_id for p in again.search_dense(ITEMS[2].dense, 1, ALL)] == [
        ITEMS[2].chunk.chunk_id]
    again.close()
    leftovers = sorted(p.name for p in tmp_path.iterdir())
    assert leftovers == ["edge"]
    assert not (path / ".greffier-rebuild-complete").exists()
    if step != "before-marker":
        needles = [i.dense.astype("<f4").tobytes() for i in ITEMS[:2]]
        assert _files_holding(tmp_path, needles) == []


def test_client_store_finishes_an_interrupted_purge(tmp_path: Path) -> None:
    store = ClientStore(collection="test", cipher=CIPHER, path=tmp_path / "client")
    store.open(DIM)
    store.upsert(ITEMS)
    # The state a crash leaves while copying back: the scratch collection is complete,
    # the recreated collection holds only part of the points.
    store._create("test.purge", DIM)
    store._copy("test", "test.purge")
    store.client.delete_collection("test")
    store._create("test", DIM)
    store.upsert(ITEMS[:1])
    store.close()
    again = ClientStore(collection="test", cipher=CIPHER, path=tmp_path / "client")
    again.open(DIM)
    assert again.count() == 3
    assert not again.client.collection_exists("test.purge")
    again.close()


# -- the appliance: erase, scan everything, compare -----------------------------------------

SECRET = "SALGRID-7781-HERON"
DOCS = {
    "salaries.md": textwrap.dedent(f"""\
        # Salary grid 2026

        The 2026 salary grid reference is {SECRET}; it is kept by the human resources
        director and revised every January after the annual review of all positions.

        ## Engineers

        Junior engineers start at level E1, senior engineers reach level E4 after five
        years, and principal engineers are appointed by a committee of directors.

        ## Bonuses

        The yearly bonus depends on the company's results and is paid in March together
        with the profit-sharing scheme negotiated with the works council.
        """),
    "canteen.txt": "The canteen serves lunch from noon to two; the menu code is LUNCH-4432.",
    "parking.md": "# Parking\n\nVisitors park on level minus two; the gate code is GATE-9127.",
    "fire.txt": "In case of fire, leave by the east stairs and gather at assembly point KILO-5.",
}
QUERIES = ["canteen lunch menu code", "visitor parking gate code", "fire assembly point"]


@dataclass
class Erased:
    app: Appliance
    data: Path
    certificate: dict[str, Any]
    content_hash: str
    chunk_ids: list[str]
    needles: dict[str, list[bytes]] = field(default_factory=dict)
    fresh: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), dtype=np.float32))
    before: dict[tuple[str, str], list[tuple[str, str]]] = field(default_factory=dict)


def _searches(app: Appliance, exclude: set[str]) -> dict[tuple[str, str], list[tuple[str, str]]]:
    out = {}
    for query in QUERIES:
        for mode in ("dense", "bm25", "hybrid"):
            passages = app.searcher.search(query, scope=app.operator_scope,
                                           k=5, mode=mode).passages  # type: ignore[arg-type]
            out[(query, mode)] = [(p.chunk_id, p.text) for p in passages
                                  if p.chunk_id not in exclude]
    return out


def _independent_needles(app: Appliance, content_hash: str) -> tuple[dict[str, list[bytes]],
                                                                      list[str], np.ndarray]:
    """Read the erased content straight from Qdrant Edge, the catalog and the blob folder,
    without the code under test: every byte form the tests look for afterwards."""
    import qdrant_edge as q

    store = app.store
    assert isinstance(store, EdgeStore)
    records, _ = store.shard.scroll(q.ScrollRequest(
        limit=1000, with_payload=True, with_vector=True,
        filter=q.Filter(must=[q.FieldCondition(key="content_hash",
                                               match=q.MatchAny([content_hash]))])))
    assert records
    dense, sparse, sealed, texts = [], [], [], []
    for r in records:
        vector = np.asarray(r.vector["dense"], dtype=np.float32)
        dense.append(vector.astype("<f4").tobytes())
        values = list(r.vector["bm25"].values)
        if len(values) >= 8 and len(set(values)) > 1:
            sparse.append(np.asarray(values, dtype="<f4").tobytes())
        blob = base64.b64decode(r.payload["sealed"])
        sealed += [r.payload["sealed"].encode(), blob]
        text, _section = app.cipher.open_chunk(content_hash, int(r.payload["chunk_index"]), blob)
        texts.append(text)
    wrapped = app.deks.wrapped_dek(content_hash, app.keys.kek_id)
    assert wrapped is not None
    original = app.indexer.blob_path(content_hash).read_bytes()
    slices = [original[i:i + 256] for i in range(0, len(original), 256)][:16]
    needles = {"dense": dense, "sparse": sparse, "sealed": sealed,
               "key": [wrapped, base64.b64encode(wrapped)], "original": slices,
               "plaintext": [SECRET.encode(), SECRET.encode("utf-16-le")]}
    fresh = app.encoder.encode_passages(texts)
    return needles, [str(r.id) for r in records], np.asarray(fresh, dtype=np.float32)


def _leftovers(data: Path, needles: dict[str, list[bytes]]) -> dict[str, list[str]]:
    found = {kind: _files_holding(data, forms) for kind, forms in needles.items()}
    return {kind: files for kind, files in found.items() if files}


def _best_cosine(root: Path, fresh: np.ndarray) -> float:
    """The review's test: does any stored float32 vector match a fresh embedding of an
    erased chunk? Vector files are read at every row of the model's dimension."""
    dim = fresh.shape[1]
    unit = fresh / np.linalg.norm(fresh, axis=1, keepdims=True)
    best = 0.0
    for path in root.rglob("*"):
        if not path.is_file() or path.stat().st_size < dim * 4:
            continue
        raw = np.fromfile(path, dtype="<f4", count=path.stat().st_size // (dim * 4) * dim)
        with np.errstate(all="ignore"):
            rows = raw.reshape(-1, dim).astype(np.float64)
            rows = np.nan_to_num(rows, nan=0.0, posinf=0.0, neginf=0.0)
            norms = np.linalg.norm(rows, axis=1)
            rows = rows[(norms > 0.5) & (norms < 2.0)]
            if len(rows):
                cos = (rows / np.linalg.norm(rows, axis=1, keepdims=True)) @ unit.T
                best = max(best, float(np.max(cos)))
    return best


@pytest.fixture(scope="module")
def erased(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Erased]:
    tmp = tmp_path_factory.mktemp("erasure")
    docs = tmp / "docs"
    docs.mkdir()
    for name, text in DOCS.items():
        (docs / name).write_text(text, encoding="utf-8")
    settings = make_settings(tmp / "data")
    app = open_appliance(settings)
    try:
        app.ingest([docs])
        doc = app.catalog.document(str((docs / "salaries.md").resolve()))
        assert doc is not None
        needles, ids, fresh = _independent_needles(app, doc.content_hash)
        # Before the erasure, the independent scan sees what the review saw.
        assert set(_leftovers(settings.data_dir, needles)) >= {"dense", "sealed", "key",
                                                                 "original"}
        assert _best_cosine(settings.data_dir / "qdrant", fresh) > 0.99
        before = _searches(app, exclude=set(ids))
        certificate = erase(app, doc.doc_id, erased_by="dpo")
        yield Erased(app, settings.data_dir, certificate, doc.content_hash, ids, needles,
                     fresh, before)
    finally:
        app.close()


def test_nothing_of_the_erased_document_remains_on_disk(erased: Erased) -> None:
    assert _leftovers(erased.data, erased.needles) == {}
    assert _best_cosine(erased.data, erased.fresh) < 0.9


def test_the_other_documents_answer_as_before(erased: Erased) -> None:
    after = _searches(erased.app, exclude=set())
    for (query, mode), expected in erased.before.items():
        got = after[(query, mode)]
        assert not {c for c, _ in got} & set(erased.chunk_ids)
        if mode == "dense":  # dense scores do not depend on the other points
            assert got[:len(expected)] == expected, (query, mode)
        else:  # BM25's IDF changes with the collection: the best passage must stay
            assert got[0] == expected[0], (query, mode)


def test_the_certificate_matches_an_independent_scan(erased: Erased) -> None:
    certificate = erased.certificate
    assert certificate["version"] == 2 and certificate["complete"] is True
    scan = certificate["scan"]
    assert scan["found"] == 0 and scan["found_in"] == [] and scan["store_files_scanned"]
    patterns = scan["patterns"]
    points = len(erased.chunk_ids)
    assert certificate["destroyed"]["points_deleted"] == points
    assert certificate["destroyed"]["points_remaining"] == 0
    assert patterns["dense_vectors"]["targets"] == points
    assert patterns["sealed_payloads"]["targets"] == points
    assert patterns["data_keys"]["targets"] == 1 and patterns["original"]["targets"] == 1
    for kind, row in patterns.items():  # the scanner saw every pattern before
        assert row["seen_before"] == row["targets"] and row["found_after"] == 0, kind
    files = [p for p in erased.data.rglob("*") if p.is_file()]
    assert abs(scan["files_scanned"] - len(files)) <= 3  # + certificate, audit heads
    assert 0 < scan["bytes_scanned"] <= sum(p.stat().st_size for p in files)
    assert SECRET not in json.dumps(certificate)
    assert "salaries" not in json.dumps(certificate)  # no file name in the certificate


def test_a_later_ingest_and_optimize_bring_nothing_back(erased: Erased, tmp_path: Path) -> None:
    more = tmp_path / "more"
    more.mkdir()
    (more / "holidays.txt").write_text("Holidays are booked in the HR portal by March 31.")
    erased.app.ingest([more])
    erased.app.store.optimize()
    erased.app.store.flush()
    assert _leftovers(erased.data, erased.needles) == {}
    assert _best_cosine(erased.data, erased.fresh) < 0.9
    hits = erased.app.searcher.search("when to book holidays",
                                      scope=erased.app.operator_scope, k=1, mode="dense").passages
    assert "HR portal" in hits[0].text


def test_a_tampered_certificate_fails_verification(erased: Erased, tmp_path: Path) -> None:
    public = base64.b64encode(Keyring(erased.data).public_key()).decode()
    good = tmp_path / "good.json"
    good.write_text(json.dumps(erased.certificate))
    runner = CliRunner()
    ok = runner.invoke(cli, ["verify-certificate", str(good), "--public-key", public])
    assert ok.exit_code == 0 and "valid" in ok.output
    forged = json.loads(json.dumps(erased.certificate))
    forged["scan"]["patterns"]["dense_vectors"]["found_after"] = 0
    forged["scan"]["files_scanned"] += 1
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(forged))
    result = runner.invoke(cli, ["verify-certificate", str(bad), "--public-key", public])
    assert result.exit_code == 1 and "INVALID" in result.output


def test_a_copy_left_in_the_data_directory_is_reported_not_hidden(tmp_path: Path) -> None:
    """If the bytes survive anywhere (here a stray copy of the store's files), the
    certificate says so and does not claim a complete erasure."""
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "vault.txt").write_text("The vault combination is CANARY-QX7-TOPAZE.")
    (docs / "other.txt").write_text("The cafeteria opens at noon.")
    settings = make_settings(tmp_path / "data")
    with open_appliance(settings) as app:
        app.ingest([docs])
        app.store.flush()
        import shutil

        shutil.copytree(settings.data_dir / "qdrant", settings.data_dir / "stray-copy",
                        ignore=shutil.ignore_patterns("*.lock"))
        certificate = erase(app, str(docs / "vault.txt"), erased_by="dpo")
    assert certificate["complete"] is False
    assert certificate["scan"]["found"] > 0
    assert all(p.startswith("stray-copy/") for p in certificate["scan"]["found_in"])
    assert certificate["scan"]["patterns"]["sealed_payloads"]["found_after"] >= 1



@pytest.mark.integration
def test_several_documents_erased_with_one_rebuild(tmp_path: Path) -> None:
    from appliance._erase import erase_many

    docs = tmp_path / "docs"
    docs.mkdir()
    for name, text in DOCS.items():
        (docs / name).write_text(text, encoding="utf-8")
    settings = make_settings(tmp_path / "data")
    with open_appliance(settings) as app:
        app.ingest([docs])
        names = sorted(DOCS)[:2]
        targets = [app.catalog.document(str((docs / n).resolve())) for n in names]
        assert all(targets)
        needles = {t.content_hash: _independent_needles(app, t.content_hash)[0]
                   for t in targets if t is not None}
        rebuilds = []
        purge = app.store.purge
        app.store.purge = lambda: (rebuilds.append(1), purge())[1]  # type: ignore[method-assign]
        certificates = erase_many(app, [str(docs / n) for n in names], erased_by="dpo")
        assert rebuilds == [1]  # one rebuild for both
        assert [c["content_sha256"] for c in certificates] == [t.content_hash for t in targets
                                                               if t is not None]
        for certificate in certificates:
            assert certificate["complete"] is True
            assert certificate["destroyed"]["data_keys"] == 1
            assert all(row["seen_before"] == row["targets"]
                       for row in certificate["scan"]["patterns"].values())
        for forms in needles.values():
            assert _leftovers(settings.data_dir, forms) == {}
        assert app.store.count() > 0  # the third document stays
        with pytest.raises(Exception, match="No document"):  # a typo erases nothing
            erase_many(app, [sorted(DOCS)[2], "no-such-document"], erased_by="dpo")
        assert app.catalog.document(str((docs / sorted(DOCS)[2]).resolve())) is not None
