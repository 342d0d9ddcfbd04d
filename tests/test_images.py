"""Images and scans through tesseract: text drawn into real image files of every kind (a
multi-page TIFF, a page photographed sideways, a HEIC), read back; bombs, blanks and
impostors refused with their reason; then an image through the real sandboxed ingest."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image, ImageDraw, ImageFont

from ingest._images import parse
from security import EmptyDocumentError, ParseFailedError, SuspiciousArchiveError

from conftest import make_settings, open_appliance

FONT = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")
LINES = ["Note de service numéro douze", "Le badge du parking est renouvelé",
         "chaque année au mois de janvier", "auprès de l'accueil du bâtiment"]


def _page(lines: list[str], size: tuple[int, int] = (1400, 500)) -> Image.Image:
    page = Image.new("RGB", size, "white")
    draw = ImageDraw.Draw(page)
    font = ImageFont.truetype(str(FONT), 44)
    for n, line in enumerate(lines):
        draw.text((40, 40 + n * 100), line, fill="black", font=font)
    return page


def _words(path: Path) -> str:
    blocks, _pages = parse(path, ["fra", "eng"])
    return " ".join(b.text for b in blocks).lower()


@pytest.mark.unit
@pytest.mark.parametrize("suffix", ["png", "jpeg", "bmp", "gif", "webp"])
def test_text_in_an_image_is_read(suffix: str, tmp_path: Path) -> None:
    path = tmp_path / f"note.{suffix}"
    _page(LINES).save(path)
    words = _words(path)
    for word in ("parking", "renouvelé", "janvier", "accueil"):
        assert word in words, (suffix, words)


@pytest.mark.unit
def test_every_page_of_a_tiff_and_a_sideways_photo(tmp_path: Path) -> None:
    tiff = tmp_path / "fax.tiff"
    first, second = _page(LINES), _page(["Deuxième page du fax", "La cantine ferme à quinze",
                                          "heures le vendredi après-midi"])
    first.save(tiff, save_all=True, append_images=[second])
    blocks, pages = parse(tiff, ["fra", "eng"])
    assert pages == 2
    by_page = {p: " ".join(b.text for b in blocks if b.page == p).lower() for p in (1, 2)}
    assert "parking" in by_page[1] and "cantine" in by_page[2] and "cantine" not in by_page[1]
    sideways = tmp_path / "photo.jpg"
    _page(LINES * 2, (1400, 900)).rotate(90, expand=True).save(sideways)
    assert "parking" in _words(sideways)  # turned upright before reading


@pytest.mark.unit
def test_heic_from_a_phone(tmp_path: Path) -> None:
    from pi_heif import register_heif_opener  # type: ignore[import-untyped]

    register_heif_opener()
    path = tmp_path / "tableau.heic"
    try:
        _page(LINES).save(path, quality=90)
    except (KeyError, OSError) as exc:  # an encoder-less build can only decode
        pytest.skip(f"this pi-heif cannot write HEIC: {exc}")
    assert "janvier" in _words(path)


@pytest.mark.unit
def test_bombs_blanks_and_impostors_are_refused(tmp_path: Path) -> None:
    bomb = tmp_path / "bomb.png"
    Image.new("1", (12_000, 10_000), 1).save(bomb)  # 120 megapixels in a few KB
    assert bomb.stat().st_size < 100_000
    with pytest.raises(SuspiciousArchiveError, match="pixels"):
        parse(bomb, ["fra"])
    blank = tmp_path / "blank.png"
    Image.new("RGB", (800, 600), "white").save(blank)
    with pytest.raises(EmptyDocumentError, match="No text"):
        parse(blank, ["fra"])
    impostor = tmp_path / "fake.jpg"
    impostor.write_bytes(b"%PDF-1.7 this is not an image")
    with pytest.raises(ParseFailedError, match="cannot be read"):
        parse(impostor, ["fra"])


@pytest.mark.integration
def test_a_scan_is_ingested_and_found(tmp_path: Path) -> None:
    """Through the real pipeline: the sandboxed parse worker runs tesseract."""
    docs = tmp_path / "docs"
    docs.mkdir()
    _page(LINES).save(docs / "scan.png")
    app = open_appliance(make_settings(tmp_path / "data"))
    try:
        report = app.ingest([docs])
        assert [o.status for o in report.outcomes] == ["indexed"], report.outcomes
        result, _receipt = app.search("badge parking janvier", mode="bm25")
        assert result.passages and "parking" in result.passages[0].text.lower()
        assert result.passages[0].page == 1
    finally:
        app.close()
