"""Security primitives used by every layer: the exception tree, the egress guard, hashing.

Issue 4 adds keys, envelope encryption, erasure, the audit log and receipts here.
"""

from ._egress import allow_network, blocked_attempts, forbid_network
from ._errors import (
    ConfigError,
    EmptyDocumentError,
    EncryptedDocumentError,
    FileTooLargeError,
    GreffierError,
    IngestError,
    ModelError,
    NetworkForbiddenError,
    ParseFailedError,
    SealedError,
    StoreError,
    SuspiciousArchiveError,
    UnsupportedFormatError,
)
from ._hashing import sha256_file, sha256_text

__all__ = [
    "ConfigError",
    "EmptyDocumentError",
    "EncryptedDocumentError",
    "FileTooLargeError",
    "GreffierError",
    "IngestError",
    "ModelError",
    "NetworkForbiddenError",
    "ParseFailedError",
    "SealedError",
    "StoreError",
    "SuspiciousArchiveError",
    "UnsupportedFormatError",
    "allow_network",
    "blocked_attempts",
    "forbid_network",
    "sha256_file",
    "sha256_text",
]
