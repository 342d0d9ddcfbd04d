"""Ingest pieces without a parser process: language, chunking, pre-checks, walk."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from ingest import (
    Block,
    Limits,
    ParsedDocument,
    SectionChunker,
    detect_language,
    format_of,
    precheck,
    walk,
)
from security import (
    EmptyDocumentError,
    FileTooLargeError,
    ParseFailedError,
    SuspiciousArchiveError,
    UnsupportedFormatError,
)

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("text", "lang"),
    [
        ("Les salariés disposent de vingt-cinq jours de congés payés par an.", "fr"),
        ("Quel est le code du coffre ?", "fr"),
        ("Employees may work from home two days per week.", "en"),
        ("What is the access code of the cafeteria?", "en"),
        ("ZORBLAX-17 42", "und"),
    ],
)
def test_detect_language(text: str, lang: str) -> None:
    assert detect_language(text, min_hits=1) == lang


def _doc(*blocks: Block) -> ParsedDocument:
    return ParsedDocument(format="docx", blocks=blocks, pages=1)


def test_chunker_groups_by_section_and_prefixes_the_title() -> None:
    doc = _doc(
        Block("title", "Congés", 1),
        Block("text", "Les salariés ont vingt-cinq jours de congés par an.", 1),
        Block("title", "Remote work", 2),
        Block("text", "Employees work from home two days a week.", 2),
    )
    chunks = SectionChunker().chunk(doc, "h" * 64)
    assert [c.section for c in chunks] == ["Congés", "Remote work"]
    assert chunks[0].text == "Congés\nLes salariés ont vingt-cinq jours de congés par an."
    assert [c.page for c in chunks] == [1, 2]
    assert [c.lang for c in chunks] == ["fr", "en"]
    assert [c.index for c in chunks] == [0, 1]
    assert len({c.chunk_id for c in chunks}) == 2


def test_chunker_keeps_tables_whole_and_splits_long_text() -> None:
    table = "\n".join(f"row {i} | value {i}" for i in range(300))  # ~5,000 characters
    long_text = " ".join(f"Sentence number {i} ends here." for i in range(200))
    doc = _doc(Block("title", "Data"), Block("table", table), Block("text", long_text))
    chunks = SectionChunker(max_chars=500).chunk(doc, "h" * 64)
    tables = [c for c in chunks if c.kind == "table"]
    assert len(tables) == 1 and "row 299 | value 299" in tables[0].text
    texts = [c for c in chunks if c.kind == "text"]
    assert len(texts) > 5
    assert all(len(c.text) <= 500 + len("Data\n") for c in texts)
    assert "Sentence number 199 ends here." in texts[-1].text


def test_chunk_ids_are_deterministic() -> None:
    doc = _doc(Block("text", "Same text."))
    first = SectionChunker().chunk(doc, "a" * 64)
    again = SectionChunker().chunk(doc, "a" * 64)
    other = SectionChunker().chunk(doc, "b" * 64)
    assert first[0].chunk_id == again[0].chunk_id != other[0].chunk_id


def test_format_and_prechecks(tmp_path: Path) -> None:
    with pytest.raises(UnsupportedFormatError, match="Supported"):
        format_of(tmp_path / "x.exe")
    assert format_of(Path("A.PDF")) == "pdf"
    empty = tmp_path / "e.txt"
    empty.write_bytes(b"")
    with pytest.raises(EmptyDocumentError):
        precheck(empty, "txt", Limits())
    big = tmp_path / "b.txt"
    big.write_bytes(b"x" * (2 * 1024 * 1024))
    with pytest.raises(FileTooLargeError, match="GREFFIER_INGEST__MAX_TEXT_MB"):
        precheck(big, "txt", Limits(max_text_mb=1))
    junk = tmp_path / "j.pdf"
    junk.write_bytes(b"\x00garbage" * 100)
    with pytest.raises(ParseFailedError, match="not a PDF"):
        precheck(junk, "pdf", Limits())
    notzip = tmp_path / "n.docx"
    notzip.write_bytes(b"plain text, not a zip")
    with pytest.raises(ParseFailedError, match="not a valid DOCX"):
        precheck(notzip, "docx", Limits())


def test_zip_bomb_is_refused_from_its_directory(tmp_path: Path) -> None:
    bomb = tmp_path / "bomb.docx"
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("word/document.xml", b"\0" * (20 * 1024 * 1024))
    with pytest.raises(SuspiciousArchiveError, match="zip bomb"):
        precheck(bomb, "docx", Limits())


def test_walk_skips_hidden_lock_files_and_dir_symlinks(tmp_path: Path) -> None:
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "a.txt").write_text("a")
    (tmp_path / "d" / "~$lock.docx").write_text("x")
    (tmp_path / ".hidden").mkdir()
    (tmp_path / ".hidden" / "b.txt").write_text("b")
    (tmp_path / "loop").symlink_to(tmp_path)
    found = list(walk([tmp_path, tmp_path / "d" / "a.txt"]))
    assert found == [(tmp_path / "d" / "a.txt").resolve()]
