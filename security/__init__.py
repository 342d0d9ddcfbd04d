"""Security primitives used by every layer: errors, egress guard, hashing, keys, encryption.

Formats are specified in FORMAT.md beside this file.
"""

from ._aead import AuthenticationError
from ._audit import AuditError, AuditLog, VerifyReport, verify_log
from ._cipher import ContentCipher, DekStore
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
from ._kek import Argon2Params, KeyWrapper, PassphraseKEK, Pkcs11KEK
from ._keyring import KekSource, Keyring, UnsealedKeys
from ._receipt import issue_receipt, sha256_hex, verify_receipt
from ._session import load as held_secret
from ._session import revoke as drop_secret
from ._session import store as hold_secret
from ._signing import sign, verify

__all__ = [
    "Argon2Params",
    "AuditError",
    "AuditLog",
    "AuthenticationError",
    "ConfigError",
    "ContentCipher",
    "DekStore",
    "EmptyDocumentError",
    "EncryptedDocumentError",
    "FileTooLargeError",
    "GreffierError",
    "IngestError",
    "KekSource",
    "KeyWrapper",
    "Keyring",
    "ModelError",
    "NetworkForbiddenError",
    "ParseFailedError",
    "PassphraseKEK",
    "Pkcs11KEK",
    "SealedError",
    "StoreError",
    "SuspiciousArchiveError",
    "UnsealedKeys",
    "UnsupportedFormatError",
    "VerifyReport",
    "allow_network",
    "blocked_attempts",
    "drop_secret",
    "forbid_network",
    "held_secret",
    "hold_secret",
    "issue_receipt",
    "sha256_file",
    "sha256_hex",
    "sha256_text",
    "sign",
    "verify",
    "verify_log",
    "verify_receipt",
]
