"""Images and scans read by OCR: JPEG, PNG, TIFF (every page of a multi-page TIFF), BMP,
GIF, WebP and HEIC, through tesseract in the configured languages, each page turned upright
first (tesseract's orientation detection). Runs in the parse worker like every parser.

Bounds: a page over :data:`MAX_PIXELS` or a file over :data:`MAX_PAGES` pages is refused
(a decompression bomb is a few KB that decodes to gigabytes); small images are enlarged so
that tesseract sees letters of a readable size."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from security import EmptyDocumentError, ParseFailedError, SuspiciousArchiveError

from ._types import Block

IMAGE_FORMATS = frozenset({"jpeg", "png", "tiff", "bmp", "gif", "webp", "heic"})
MAX_PIXELS = 80_000_000  # about a 600 dpi A3 page
MAX_PAGES = 500
_MIN_SIDE = 1000  # pixels: smaller pages are enlarged before OCR
_ROTATE = re.compile(r"Rotate:\s*(\d+)")


def parse(path: Path, languages: list[str]) -> tuple[list[Block], int]:
    """Blocks (paragraphs, with their page) and the page count."""
    from PIL import Image, ImageSequence

    _register_heif()
    Image.MAX_IMAGE_PIXELS = MAX_PIXELS  # decoding past it raises, never allocates
    try:
        with Image.open(path) as image:
            blocks: list[Block] = []
            pages = 0
            for number, frame in enumerate(ImageSequence.Iterator(image), 1):
                if number > MAX_PAGES:
                    raise SuspiciousArchiveError(
                        f"The image has more than {MAX_PAGES} pages.",
                        hint="Split it; a scan that long is better sent as a PDF.")
                pages = number
                width, height = frame.size
                if width * height > MAX_PIXELS:
                    raise SuspiciousArchiveError(
                        f"Page {number} is {width}×{height} pixels, over the "
                        f"{MAX_PIXELS // 1_000_000} megapixel limit.",
                        hint="Scan at 300 dpi.")
                text = _ocr(_prepare(frame), languages)
                blocks += [Block(kind="text", text=" ".join(p.split()), page=number)
                           for p in re.split(r"\n\s*\n", text) if p.strip()]
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise SuspiciousArchiveError(f"The image decodes to too many pixels ({exc}).") from None
    except (OSError, SyntaxError, ValueError) as exc:  # PIL's "cannot identify image file"
        raise ParseFailedError(f"The image cannot be read: {exc}.",
                               hint="Check it opens in an image viewer; re-export it.") from None
    if not blocks:
        raise EmptyDocumentError("No text was recognised in the image.",
                                 hint="A photo without text has nothing to index; a scan "
                                 "needs about 300 dpi.")
    return blocks, pages


def _prepare(frame: Any) -> Any:
    from PIL import Image

    page = frame.convert("L")  # greyscale: colour only slows tesseract down
    shortest = min(page.size)
    if 0 < shortest < _MIN_SIDE:
        scale = _MIN_SIDE / shortest
        page = page.resize((round(page.width * scale), round(page.height * scale)),
                           Image.Resampling.LANCZOS)
    return page


def _ocr(page: Any, languages: list[str]) -> str:
    import unstructured_pytesseract as tesseract  # type: ignore[import-untyped]

    try:
        found = _ROTATE.search(tesseract.image_to_osd(page, config="--psm 0"))
        angle = int(found.group(1)) if found else 0
    except tesseract.TesseractError:
        angle = 0  # too little text to tell its orientation: read it as it is
    if angle:
        page = page.rotate(-angle, expand=True)  # tesseract's angle is clockwise
    text: str = tesseract.image_to_string(page, lang="+".join(languages))
    return text


def _register_heif() -> None:
    try:
        from pi_heif import register_heif_opener  # type: ignore[import-untyped]
    except ImportError:  # HEIC then fails to open, with a clear line
        return
    register_heif_opener()
