"""Partition files with unstructured and convert its elements to Greffier blocks.

This module is the only one that touches unstructured's element types. It runs inside the
parse worker process (see ``_worker.py``), never in the appliance's main process.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

from security import (
    EmptyDocumentError,
    EncryptedDocumentError,
    ParseFailedError,
    SuspiciousArchiveError,
)

from . import _images as images
from . import _structured as structured
from ._images import IMAGE_FORMATS
from ._structured import STRUCTURED
from ._types import Block, BlockKind, ParsedDocument

_SKIP = frozenset({"Header", "Footer", "PageBreak", "PageNumber", "Image", "FigureCaption"})
_KIND: dict[str, BlockKind] = {"Title": "title", "Table": "table", "ListItem": "list"}
# Tesseract language codes for OCR, and unstructured's document languages.
LANGUAGES = ["fra", "eng"]


class Parser(Protocol):
    """Turns one file into blocks. Raises an :class:`~security.IngestError` on failure."""

    def parse(self, path: Path, fmt: str) -> ParsedDocument: ...


class UnstructuredParser:
    """The production parser: unstructured, offline, OCR through tesseract for scans."""

    def __init__(self, languages: list[str] | None = None) -> None:
        self.languages = languages or LANGUAGES

    def parse(self, path: Path, fmt: str) -> ParsedDocument:
        try:
            if fmt == "pdf":
                blocks, pages, ocr_pages = self._pdf(path)
            elif fmt in STRUCTURED:  # read by Greffier itself (encodings, ragged rows, bombs)
                blocks, pages, ocr_pages = structured.parse(path, fmt), 1, 0
            elif fmt in IMAGE_FORMATS:  # OCR, every page turned upright
                blocks, pages = images.parse(path, self.languages)
                ocr_pages = pages
            else:
                blocks = _to_blocks(self._partition(path, fmt))
                pages = max((b.page or 1 for b in blocks), default=0)
                ocr_pages = 0
        except (EmptyDocumentError, EncryptedDocumentError, ParseFailedError,
                SuspiciousArchiveError):
            raise
        except Exception as exc:  # any library failure becomes one clear per-file error
            raise _convert(exc, fmt) from exc
        if not any(b.text.strip() for b in blocks):
            raise EmptyDocumentError(
                "No text could be extracted.",
                hint="If it is a scan, check its resolution; if it holds only images, "
                "there is nothing to index.",
            )
        return ParsedDocument(format=fmt, blocks=tuple(blocks), pages=pages, ocr_pages=ocr_pages)

    def _partition(self, path: Path, fmt: str) -> list[Any]:
        kwargs: dict[str, Any] = {"filename": str(path), "languages": self.languages}
        if fmt == "eml":
            from unstructured.partition.email import partition_email

            return list(partition_email(**kwargs, process_attachments=False))
        if fmt == "rtf":
            # pandoc's RTF reader (unstructured's default) drops letters after accented
            # characters ("numéro" → "numéo"); LibreOffice reads RTF faithfully.
            from unstructured.partition.doc import partition_doc

            return list(partition_doc(**kwargs))
        if fmt == "msg":
            from unstructured.partition.msg import partition_msg

            return list(partition_msg(**kwargs, process_attachments=False))
        from unstructured.partition.auto import partition

        return list(partition(**kwargs, strategy="fast"))

    def _pdf(self, path: Path) -> tuple[list[Block], int, int]:
        from pypdf import PdfReader
        from unstructured.partition.pdf import partition_pdf

        pages = len(PdfReader(str(path), strict=False).pages)
        fast = _to_blocks(partition_pdf(filename=str(path), strategy="fast",
                                         languages=self.languages))
        with_text = {b.page for b in fast if b.text.strip()}
        missing = [p for p in range(1, pages + 1) if p not in with_text]
        if not missing:
            return fast, pages, 0
        # Some pages have no text layer: they are scans. OCR the document with tesseract
        # and take the OCR'd text for exactly those pages.
        ocr = _to_blocks(partition_pdf(filename=str(path), strategy="ocr_only",
                                       languages=self.languages))
        merged = [b for b in fast if b.page in with_text]
        merged += [b for b in ocr if b.page in set(missing)]
        merged.sort(key=lambda b: b.page or 0)  # stable: keeps order within a page
        return merged, pages, len(missing)


def _to_blocks(elements: list[Any]) -> list[Block]:
    blocks: list[Block] = []
    for element in elements:
        category = type(element).__name__
        if category in _SKIP:
            continue
        kind = _KIND.get(category, "text")
        text = _table_text(element) if kind == "table" else (element.text or "")
        text = text.strip()
        if not text:
            continue
        meta = element.metadata
        blocks.append(
            Block(kind=kind, text=text, page=meta.page_number,
                  depth=int(getattr(meta, "category_depth", None) or 0))
        )
    return blocks


def _table_text(element: Any) -> str:
    """A table as rows of ``cell | cell``, so its structure survives into the passage."""
    html = getattr(element.metadata, "text_as_html", None)
    if not html:
        return str(element.text or "")
    from lxml import html as lxml_html

    try:
        root = lxml_html.fromstring(html)
    except Exception:
        return str(element.text or "")
    rows = []
    for tr in root.iter("tr"):
        cells = [" ".join(td.text_content().split()) for td in tr if td.tag in ("td", "th")]
        if any(cells):
            rows.append(" | ".join(cells))
    return "\n".join(rows) or str(element.text or "")


def _convert(exc: Exception, fmt: str) -> ParseFailedError | EncryptedDocumentError:
    text = f"{type(exc).__name__}: {exc}"
    lowered = text.lower()
    if "password" in lowered or "encrypt" in lowered:
        return EncryptedDocumentError(
            f"The {fmt.upper()} is password-protected.",
            hint="Save an unprotected copy and ingest that.",
        )
    return ParseFailedError(
        f"The {fmt.upper()} parser failed: {text[:300]}",
        hint="Check the file opens in its application; re-export it and ingest again.",
    )
