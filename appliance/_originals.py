"""Originals handed out: a stored file decrypted segment by segment, streamed to a reader
or written to a file (exports never leave a decrypted beginning behind). Audited before
the first byte."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from security import AuditLog, AuthenticationError, ContentCipher, StoreError


def _blob(blobs: Path, content_hash: str) -> Path:
    if not blobs.exists():
        raise StoreError(f"No stored original for content {content_hash[:12]}….",
                         hint="It was erased, or ingested before originals were kept.")
    return blobs


def stream_original(cipher: ContentCipher, audit: AuditLog, blob: Path, content_hash: str,
                    user: str) -> Iterator[bytes]:
    """The original file of a content, each segment authenticated before it is handed out."""
    _blob(blob, content_hash)
    audit.append("download", user, {"content_sha256": content_hash})
    return cipher.decrypt_original(blob, content_hash)


def export_original(cipher: ContentCipher, audit: AuditLog, blob: Path, content_hash: str,
                    user: str, output: Path) -> int:
    """Write the original file of a content, decrypted, to ``output``. Returns its size."""
    _blob(blob, content_hash)
    audit.append("export", user, {"content_sha256": content_hash, "output": str(output)})
    size = 0
    tmp = output.with_name(output.name + ".partial")
    try:
        with tmp.open("wb") as handle:
            for segment in cipher.decrypt_original(blob, content_hash):
                handle.write(segment)
                size += len(segment)
    except AuthenticationError as exc:
        tmp.unlink(missing_ok=True)  # never leave a decrypted beginning behind
        audit.append("export.failed", user, {"content_sha256": content_hash,
                                             "reason": "authentication"})
        raise StoreError(f"The stored original of {content_hash[:12]}… fails "
                         "authentication: it was altered or damaged; nothing was written.",
                         hint="Restore blobs/ from backup, then run `greffier audit verify`."
                         ) from exc
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    tmp.replace(output)
    return size
