"""Which files Greffier ingests, and the cheap checks made before any parser runs."""

from __future__ import annotations

import os
import stat
import zipfile
from dataclasses import dataclass
from pathlib import Path

from security import (
    EmptyDocumentError,
    EncryptedDocumentError,
    FileTooLargeError,
    IngestError,
    ParseFailedError,
    SuspiciousArchiveError,
    UnsupportedFormatError,
)

# extension → format name
FORMATS: dict[str, str] = {
    ".pdf": "pdf",
    ".docx": "docx",
    ".pptx": "pptx",
    ".xlsx": "xlsx",
    ".odt": "odt",
    ".html": "html",
    ".htm": "html",
    ".md": "md",
    ".markdown": "md",
    ".txt": "txt",
    ".text": "txt",
    ".csv": "csv",
    ".tsv": "tsv",
    ".tab": "tsv",
    ".json": "json",
    ".ndjson": "ndjson",
    ".jsonl": "ndjson",
    ".yaml": "yaml",
    ".yml": "yaml",
    ".xml": "xml",
    ".rst": "rst",
    ".org": "org",
    ".jpg": "jpeg",
    ".jpeg": "jpeg",
    ".png": "png",
    ".tif": "tiff",
    ".tiff": "tiff",
    ".bmp": "bmp",
    ".gif": "gif",
    ".webp": "webp",
    ".heic": "heic",
    ".heif": "heic",
    ".eml": "eml",
    ".msg": "msg",
    ".epub": "epub",
    ".rtf": "rtf",
    ".doc": "doc",
    ".ppt": "ppt",
    ".xls": "xls",
}
TEXT_FORMATS = frozenset({"txt", "md", "csv", "html", "tsv", "json", "ndjson", "yaml",
                          "xml", "rst", "org"})
ZIP_FORMATS = frozenset({"docx", "pptx", "xlsx", "odt", "epub"})
OLE_FORMATS = frozenset({"doc", "ppt", "xls", "msg"})
_OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_MB = 1024 * 1024


@dataclass(frozen=True)
class Limits:
    """Bounds that keep one bad file from taking the machine down."""

    max_file_mb: int = 200
    max_text_mb: int = 10
    max_unpacked_mb: int = 512
    max_compression_ratio: int = 200
    max_document_chars: int = 5_000_000


def format_of(path: Path) -> str:
    """The format Greffier parses ``path`` as, from its extension."""
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise UnsupportedFormatError(
            f"Unsupported file type {path.suffix or '(no extension)'!r}.",
            hint="Supported: " + ", ".join(sorted(set(FORMATS.values()))) + ".",
        )
    return fmt


def precheck(path: Path, fmt: str, limits: Limits) -> None:
    """Reject what no parser should even open: empty, oversized, encrypted, bombs, impostors.

    Byte-level checks only: this runs in the appliance's process, so no document library
    reads the file here (the PDF structure is checked in the parser worker,
    :func:`check_pdf_structure`). A FIFO or device is refused without blocking on it.
    """
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    with os.fdopen(fd, "rb") as handle:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise IngestError("This is not a regular file.",
                              hint="Only documents are ingested; remove it from the folder.")
        _check_size(info.st_size, fmt, limits)
        head = handle.read(8)
    if fmt == "pdf" and not head.startswith(b"%PDF-"):
        raise ParseFailedError(
            "This is not a PDF (no %PDF- header).",
            hint="The file may be mis-named or damaged; re-export it as PDF.",
        )
    if fmt in ZIP_FORMATS:
        _check_zip(path, fmt, head, limits)
    elif fmt in OLE_FORMATS and head != _OLE_MAGIC:
        raise ParseFailedError(
            f"This is not a valid {fmt.upper()} file (no OLE2 header).",
            hint="Check the file opens in its application; re-export it.",
        )


def _check_size(size: int, fmt: str, limits: Limits) -> None:
    if size == 0:
        raise EmptyDocumentError("The file is empty (0 bytes).", hint="Nothing to index.")
    cap_mb = limits.max_text_mb if fmt in TEXT_FORMATS else limits.max_file_mb
    if size > cap_mb * _MB:
        knob = "max_text_mb" if fmt in TEXT_FORMATS else "max_file_mb"
        raise FileTooLargeError(
            f"The file is {size / _MB:.1f} MB, above the {cap_mb} MB limit for {fmt}.",
            hint=f"Split it, or raise ingest.{knob} (GREFFIER_INGEST__{knob.upper()}).",
        )


def check_pdf_structure(path: Path) -> None:
    """Open the PDF with pypdf: damaged or password-protected? Runs in the parser worker."""
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    try:
        reader = PdfReader(str(path), strict=False)
        if reader.is_encrypted and not reader.decrypt(""):
            raise EncryptedDocumentError(
                "The PDF is password-protected.",
                hint="Remove the password and ingest it again.",
            )
    except (PdfReadError, ValueError, OSError) as exc:
        raise ParseFailedError(
            f"The PDF is damaged: {exc}.", hint="Re-export or repair it, then ingest again."
        ) from exc


def _check_zip(path: Path, fmt: str, head: bytes, limits: Limits) -> None:
    if head == _OLE_MAGIC:
        # An OOXML file wrapped in an OLE container is an encrypted Office document.
        raise EncryptedDocumentError(
            f"The {fmt.upper()} is password-protected.",
            hint="Save an unprotected copy and ingest that.",
        )
    try:
        with zipfile.ZipFile(path) as archive:
            infos = archive.infolist()
    except (zipfile.BadZipFile, OSError) as exc:
        raise ParseFailedError(
            f"This is not a valid {fmt.upper()} file: {exc}.",
            hint="Check the file opens in its application; re-export it.",
        ) from exc
    unpacked = sum(info.file_size for info in infos)
    packed = max(1, sum(info.compress_size for info in infos))
    if unpacked > limits.max_unpacked_mb * _MB or unpacked / packed > limits.max_compression_ratio:
        raise SuspiciousArchiveError(
            f"The {fmt.upper()} would unpack to {unpacked / _MB:.0f} MB "
            f"({unpacked / packed:.0f}× its size): refused as a likely zip bomb.",
            hint="If the document is genuine, raise ingest.max_unpacked_mb.",
        )
