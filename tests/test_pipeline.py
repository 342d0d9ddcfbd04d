"""The ingest pipeline end to end, in process: real parser, encoder and Qdrant Edge."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

import security
from appliance import Appliance

from conftest import make_settings, open_appliance

pytestmark = pytest.mark.integration


def _write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


POLICIES = {
    "leave.md": "# Leave policy\n\nEmployees receive twenty-five days of paid leave per year. "
                "Requests go through the HR portal two weeks ahead.",
    "parking.txt": "PARKING\n\nVisitors park on level minus two. The barrier code for visitors "
                   "is changed every Monday by the facilities team.",
    "cantine.md": "# Restaurant d'entreprise\n\nLe restaurant d'entreprise est ouvert de "
                  "11h30 à 14h. Le menu végétarien est proposé tous les jours.",
}


@pytest.fixture
def small_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "docs"
    folder.mkdir()
    for name, text in POLICIES.items():
        _write(folder, name, text)
    return folder


def test_reingest_dedupe_update_and_sync(tmp_path: Path, small_folder: Path) -> None:
    with open_appliance(make_settings(tmp_path / "data")) as app:
        first = app.ingest([small_folder])
        assert first.count("indexed") == 3 and first.count("failed") == 0
        points = app.store.count()
        again = app.ingest([small_folder])
        assert again.count("unchanged") == 3 and app.store.count() == points

        shutil.copy(small_folder / "leave.md", small_folder / "leave-copy.md")
        _write(small_folder, "parking.txt",
               "PARKING\n\nVisitors now park in the new car park on Rue Lavoisier.")
        (small_folder / "cantine.md").unlink()
        report = app.ingest([small_folder], sync=True)
        by_status = {o.path.rsplit("/", 1)[-1]: o.status for o in report.outcomes}
        assert by_status == {"leave-copy.md": "deduplicated", "leave.md": "unchanged",
                             "parking.txt": "updated", "cantine.md": "removed"}

        leave = app.searcher.search("how many days of paid leave",
                                    scope=app.operator_scope, k=1).passages[0]
        assert sorted(Path(s.path).name for s in leave.sources) == ["leave-copy.md", "leave.md"]
        parking = app.searcher.search("where do visitors park",
                                      scope=app.operator_scope, k=1).passages[0]
        assert "Lavoisier" in parking.text and parking.version == 2
        assert not any("barrier code" in p.text
                       for p in app.searcher.search("barrier code",
                                                    scope=app.operator_scope, k=10).passages)
        assert not any("végétarien" in p.text
                       for p in app.searcher.search("menu végétarien",
                                                    scope=app.operator_scope, k=10).passages)
        # Identical content is stored once: the copy added no point.
        stats = app.catalog.stats()
        assert stats["documents"] == 3 and stats["distinct_contents"] == 2
        assert app.store.count() == stats["chunks"]


def test_model_identity_is_recorded_and_a_new_model_reembeds(tmp_path: Path,
                                                              small_folder: Path) -> None:
    data = tmp_path / "data"
    with open_appliance(make_settings(data)) as app:
        app.ingest([small_folder])
        ident = app.encoder.identity
        assert len(ident.weights_sha256) == 64 and ident.dim == 384
        hit = app.searcher.search("paid leave", scope=app.operator_scope, k=1).passages[0]
        assert hit.model_id == ident.id
    renamed = make_settings(data, embeddings={"model_name": "minilm-retrained"})
    with open_appliance(renamed) as app:
        report = app.ingest([small_folder])
        assert report.count("updated") == 3
        assert app.searcher.search("paid leave",
                                   scope=app.operator_scope, k=1).passages[0].model_id.startswith(
            "minilm-retrained@")
        assert app.catalog.stale_contents(app.encoder.identity.id) == []


def test_every_format_is_ingested_and_each_fact_is_found(indexed: Appliance,
                                                         corpus_facts: list) -> None:  # type: ignore[type-arg]
    report = indexed.ingest_report  # type: ignore[attr-defined]
    failed = [(o.path, o.message) for o in report.outcomes if o.status == "failed"]
    assert failed == []
    assert report.count("indexed") == len(corpus_facts)
    misses = []
    for fact in corpus_facts:
        passages = indexed.searcher.search(fact.question,
                                           scope=indexed.operator_scope, k=3).passages
        top = [(Path(p.path).name, fact.marker in p.text) for p in passages]
        if (fact.filename, True) not in top:
            misses.append((fact.fmt, fact.question, top))
    assert misses == []


def test_scanned_pdf_is_read_through_ocr(indexed: Appliance, corpus_facts: list) -> None:  # type: ignore[type-arg]
    scans = [f for f in corpus_facts if f.fmt == "scanned_pdf"]
    assert scans, "the corpus must hold a scanned PDF"
    passage = indexed.searcher.search(scans[0].question,
                                      scope=indexed.operator_scope, k=1).passages[0]
    assert Path(passage.path).name == scans[0].filename
    assert scans[0].marker in passage.text and passage.page == 1


def test_french_accents_survive_every_format(indexed: Appliance,
                                             corpus_facts: list) -> None:  # type: ignore[type-arg]
    for fact in (f for f in corpus_facts if f.lang == "fr"):
        passage = indexed.searcher.search(fact.question,
                                          scope=indexed.operator_scope, k=1).passages[0]
        words = set(passage.text.split())
        assert {"numéro", "réglées"} & words or fact.fmt != "rtf", passage.text
        assert any(ch in passage.text for ch in "éèàç"), (fact.fmt, passage.text)


def test_passages_carry_their_provenance(indexed: Appliance, corpus_facts: list) -> None:  # type: ignore[type-arg]
    fact = next(f for f in corpus_facts if f.fmt == "docx")
    passage = indexed.searcher.search(fact.question, scope=indexed.operator_scope, k=1).passages[0]
    assert passage.doc_id and passage.version == 1 and passage.content_hash
    assert passage.lang == fact.lang and passage.format == "docx"
    assert passage.section  # the chunk knows its section title


def test_no_connection_was_attempted_by_the_parser(indexed: Appliance) -> None:
    assert indexed.indexer.worker.blocked_attempts == []
    assert security.blocked_attempts() == []


def test_bad_files_are_reported_and_the_batch_goes_on(tmp_path: Path) -> None:
    from corpus import build_bad_files

    folder = tmp_path / "bad"
    folder.mkdir()
    expected = build_bad_files(folder)
    _write(folder, "good.txt", "The quarterly budget review happens on the first Tuesday.")
    settings = make_settings(tmp_path / "data", ingest={"parse_timeout_s": 120})
    with open_appliance(settings) as app:
        report = app.ingest([folder])
    outcomes = {Path(o.path).name: o for o in report.outcomes}
    assert outcomes["good.txt"].status == "indexed"
    for name, error in expected.items():
        outcome = outcomes[name]
        if error == "indexed":
            assert outcome.status == "indexed", outcome
        else:
            assert (outcome.status, outcome.error) == ("failed", error), outcome
            assert outcome.message  # one clear line for the report
