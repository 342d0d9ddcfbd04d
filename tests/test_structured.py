"""Structured and markup text (JSON, NDJSON, YAML, XML, CSV/TSV, RST, Org): read into
passages that keep a record together, in any common encoding, with the bombs refused; then
the same files through the real ingest (the sandboxed parse worker) and search."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ingest._structured import parse, read_text
from security import ParseFailedError, SuspiciousArchiveError

from conftest import make_settings, open_appliance


def _texts(path: Path, fmt: str) -> list[str]:
    return [b.text for b in parse(path, fmt)]


@pytest.mark.unit
@pytest.mark.parametrize(("data", "codec"), [
    ("Salarié;Congés\nÉlodie;25 jours\n".encode("utf-8-sig"), "utf-8 with BOM"),
    ("Salarié;Congés\nÉlodie;25 jours\n".encode("utf-16"), "utf-16 with BOM"),
    ("Salarié;Congés\nÉlodie;25 jours\n".encode("utf-16-le"), "utf-16 without BOM"),
    ("Salarié;Congés\nÉlodie;25 jours – 10 €\n".encode("cp1252"), "cp1252 (Excel FR)"),
    ("Salarié;Congés\nÉlodie;25 jours\n".encode("latin-1"), "latin-1"),
])
def test_text_encodings_are_detected(data: bytes, codec: str) -> None:
    text = read_text(data)
    assert "Salarié;Congés" in text and "Élodie;25 jours" in text, codec


@pytest.mark.unit
def test_a_ragged_utf16_csv_keeps_every_row_and_its_header(tmp_path: Path) -> None:
    rows = ["Salle;Étage;Capacité", "Colbert;2;12", "Vauban;3", "Turgot;1;8;vidéoprojecteur"]
    rows += [f"Salle {n};{n % 5};{n}" for n in range(100)]
    path = tmp_path / "salles.csv"
    path.write_bytes("\r\n".join(rows).encode("utf-16"))
    blocks = parse(path, "csv")
    assert len(blocks) == 3  # 103 rows, 40 a block, each block starting with the header
    assert all(b.kind == "table" and b.text.startswith("Salle | Étage | Capacité")
               for b in blocks)
    first = blocks[0].text.splitlines()
    assert first[1:4] == ["Colbert | 2 | 12", "Vauban | 3", "Turgot | 1 | 8 | vidéoprojecteur"]
    tsv = tmp_path / "t.tsv"
    tsv.write_text("nom\tvaleur\nplafond\t120 €\n", encoding="utf-8")
    assert _texts(tsv, "tsv") == ["nom | valeur\nplafond | 120 €"]


@pytest.mark.unit
def test_json_records_stay_together(tmp_path: Path) -> None:
    path = tmp_path / "policy.json"
    path.write_text(json.dumps({
        "télétravail": {"jours": 2, "pays": ["France", "Belgique"], "accord": True},
        "salariés": [{"nom": "Élodie", "poste": "juriste"}, {"nom": "Marc", "poste": None}],
    }, ensure_ascii=False), encoding="utf-8")
    assert _texts(path, "json") == [
        "télétravail.jours: 2\ntélétravail.pays: France, Belgique\ntélétravail.accord: true",
        "salariés[0].nom: Élodie\nsalariés[0].poste: juriste\n"
        "salariés[1].nom: Marc\nsalariés[1].poste: null"]
    array = tmp_path / "list.json"
    array.write_text('[{"id": 1, "titre": "A"}, {"id": 2, "titre": "B"}]')
    assert _texts(array, "json") == ["[0].id: 1\n[0].titre: A", "[1].id: 2\n[1].titre: B"]
    lines = tmp_path / "events.ndjson"
    lines.write_text('{"type": "incident", "salle": "Colbert"}\n\n{"type": "visite"}\n')
    assert _texts(lines, "ndjson") == ["type: incident\nsalle: Colbert", "type: visite"]
    lines.write_text('{"ok": 1}\n{"broken": \n')
    with pytest.raises(ParseFailedError, match="Line 2"):
        parse(lines, "ndjson")


@pytest.mark.unit
def test_yaml_is_read_as_plain_data_and_its_bombs_refused(tmp_path: Path) -> None:
    path = tmp_path / "conf.yaml"
    path.write_text("astreinte:\n  téléphone: '01 23 45 67 89'\n  horaires: [soir, week-end]\n"
                    "---\nversion: 3\n", encoding="utf-8")
    assert _texts(path, "yaml") == [
        "astreinte.téléphone: 01 23 45 67 89\nastreinte.horaires: soir, week-end",
        "version: 3"]
    code = tmp_path / "evil.yaml"
    code.write_text("x: !!python/object/apply:os.system ['touch /tmp/pwned']\n")
    with pytest.raises(ParseFailedError, match="not valid YAML"):
        parse(code, "yaml")  # the safe loader builds no Python object
    laughs = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for n in range(1, 9):
        prev = chr(ord("a") + n - 1)
        laughs.append(f"{chr(ord('a') + n)}: &{chr(ord('a') + n)} [{', '.join(['*' + prev] * 9)}]")
    bomb = tmp_path / "laughs.yaml"
    bomb.write_text("\n".join(laughs) + "\n")
    with pytest.raises(SuspiciousArchiveError, match="expands"):
        parse(bomb, "yaml")


@pytest.mark.unit
def test_xml_text_is_read_and_entities_refused(tmp_path: Path) -> None:
    path = tmp_path / "notes.xml"
    path.write_text('<?xml version="1.0" encoding="UTF-8"?>\n<notes xmlns="urn:x">'
                    '<note id="n1"><titre>Badge</titre><texte>Bureau 2, le  mardi</texte></note>'
                    '<note id="n2"><titre>Parking</titre><!-- secret --></note></notes>',
                    encoding="utf-8")
    assert _texts(path, "xml") == ["titre: Badge\ntexte: Bureau 2, le mardi\nnote.id: n1",
                                   "titre: Parking\nnote.id: n2"]
    bomb = tmp_path / "bomb.xml"
    bomb.write_text('<?xml version="1.0"?><!DOCTYPE l [<!ENTITY a "lol">'
                    '<!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;">]><l>&b;</l>')
    xxe = tmp_path / "xxe.xml"
    xxe.write_text('<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
                   '<r>&x;</r>')
    for evil in (bomb, xxe):
        with pytest.raises(SuspiciousArchiveError, match="entities"):
            parse(evil, "xml")
    broken = tmp_path / "broken.xml"
    broken.write_text("<a><b></a>")
    with pytest.raises(ParseFailedError, match="well-formed"):
        parse(broken, "xml")
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises((SuspiciousArchiveError, ParseFailedError)):
        parse(deep, "json")


@pytest.mark.unit
def test_rst_and_org_headings_become_titles(tmp_path: Path) -> None:
    rst = tmp_path / "guide.rst"
    rst.write_text("=====\nGuide\n=====\n\nIntro du guide.\n\nAccès\n-----\n\n"
                   ".. note:: ignoré\n\nLe badge ouvre\nla porte B.\n", encoding="utf-8")
    blocks = parse(rst, "rst")
    assert [(b.kind, b.text, b.depth) for b in blocks] == [
        ("title", "Guide", 0), ("text", "Intro du guide.", 0), ("title", "Accès", 1),
        ("text", "Le badge ouvre la porte B.", 0)]
    org = tmp_path / "notes.org"
    org.write_text("#+TITLE: Notes\n* TODO Sécurité :urgent:\nChanger les mots\nde passe.\n"
                   "** Détail\n:PROPERTIES:\n:ID: 1\n:END:\nTous les 90 jours.\n",
                   encoding="utf-8")
    assert [(b.kind, b.text, b.depth) for b in parse(org, "org")] == [
        ("title", "Sécurité", 0), ("text", "Changer les mots de passe.", 0),
        ("title", "Détail", 1), ("text", "Tous les 90 jours.", 0)]


@pytest.mark.integration
def test_structured_files_are_ingested_and_found(tmp_path: Path) -> None:
    """Through the real pipeline: the sandboxed parse worker, chunks, the store, search."""
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "astreinte.yaml").write_text("astreinte:\n  numéro: ZEBRA-7731\n", encoding="utf-8")
    (docs / "salles.csv").write_bytes("Salle;Code\nColbert;QUOKKA-5512\nVauban\n"
                                      .encode("cp1252"))
    (docs / "contrats.json").write_text('{"contrat": {"référence": "OTTER-9054"}}',
                                        encoding="utf-8")
    (docs / "inventaire.xml").write_text("<inv><poste><code>LYNX-2287</code></poste></inv>")
    (docs / "journal.ndjson").write_text('{"évènement": "IBIS-6619"}\n', encoding="utf-8")
    (docs / "mesures.tsv").write_text("mesure\tvaleur\nbruit\tHERON-4403\n")
    (docs / "guide.rst").write_text("Accès\n=====\n\nLe code est KOALA-3390.\n")
    (docs / "notes.org").write_text("* Accès\nLe code est PANDA-8812.\n")
    (docs / "bomb.xml").write_text('<!DOCTYPE l [<!ENTITY a "lol">]><l>&a;</l>')
    app = open_appliance(make_settings(tmp_path / "data"))
    try:
        report = app.ingest([docs])
        status = {Path(o.path).name: (o.status, o.error) for o in report.outcomes}
        assert status.pop("bomb.xml") == ("failed", "SuspiciousArchiveError")
        assert all(s == "indexed" for s, _ in status.values()), status
        for code in ("ZEBRA-7731", "QUOKKA-5512", "OTTER-9054", "LYNX-2287", "IBIS-6619",
                     "HERON-4403", "KOALA-3390", "PANDA-8812"):
            result = app.search(code, mode="bm25")[0]
            assert result.passages and code in result.passages[0].text, code
    finally:
        app.close()
