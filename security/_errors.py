"""Greffier's one exception tree.

Every error a user can meet derives from :class:`GreffierError` and says what to do next.
Library errors (unstructured, Qdrant, torch) are converted at the package boundary.

    GreffierError
    ├── ConfigError            settings are missing, unsafe or inconsistent
    ├── SealedError            content is locked until the appliance is unsealed (issue 4)
    │   └── WrongSecretError   a wrong passphrase or token PIN (counted by the throttle)
    ├── NetworkForbiddenError  something tried to open a connection the appliance forbids
    ├── IngestError            one file could not be ingested (the batch goes on)
    │   ├── UnsupportedFormatError
    │   ├── FileTooLargeError
    │   ├── SuspiciousArchiveError   zip bomb, archive too large once unpacked
    │   ├── EncryptedDocumentError   password-protected document
    │   ├── EmptyDocumentError       parsed, but no text came out
    │   └── ParseFailedError         parser crashed, timed out or ran out of memory
    ├── ModelError             the embedding model folder is missing, unsafe or changed
    └── StoreError             the vector store refused an operation or is inconsistent
"""

from __future__ import annotations


class GreffierError(Exception):
    """Root of every error Greffier raises on purpose."""

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        self.message = message
        self.hint = hint
        super().__init__(f"{message} — {hint}" if hint else message)


class ConfigError(GreffierError):
    """The settings are missing, unsafe or inconsistent."""


class SealedError(GreffierError):
    """The appliance is sealed: content cannot be read or written."""


class WrongSecretError(SealedError):
    """The passphrase (or the token's PIN) is wrong."""


class NetworkForbiddenError(GreffierError):
    """Code tried to reach the network while the appliance forbids it."""


class IngestError(GreffierError):
    """One file could not be ingested; the rest of the batch goes on."""


class UnsupportedFormatError(IngestError):
    """No parser handles this file type."""


class FileTooLargeError(IngestError):
    """The file is larger than the configured limit."""


class SuspiciousArchiveError(IngestError):
    """A zip-based document would unpack to something far too large (zip bomb)."""


class EncryptedDocumentError(IngestError):
    """The document is password-protected."""


class EmptyDocumentError(IngestError):
    """The document parsed but yielded no text (a scan without OCR, an empty file)."""


class ParseFailedError(IngestError):
    """The parser failed, timed out or exceeded its memory budget."""


class ModelError(GreffierError):
    """The embedding model folder is missing, unsafe, or does not match the index."""


class StoreError(GreffierError):
    """The vector store failed or is inconsistent with the catalog."""
