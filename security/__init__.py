"""Security primitives used by every layer: errors, egress guard, hashing, keys, encryption.

Formats are specified in FORMAT.md beside this file.
"""

from ._aead import AuthenticationError
from ._audit import AuditError, AuditLog
from ._cipher import ContentCipher, DekStore
from ._dekstore import SqliteDekStore
from ._egress import allow_network, blocked_attempts, forbid_network
from ._errors import (
    AuthError,
    BundleError,
    ConfigError,
    ConflictError,
    DirectoryError,
    EmptyDocumentError,
    EncryptedDocumentError,
    FileTooLargeError,
    ForbiddenError,
    GreffierError,
    IngestError,
    InvalidRequestError,
    ModelError,
    NetworkForbiddenError,
    NotFoundError,
    ParseFailedError,
    RequestError,
    SealedError,
    SsoError,
    StoreError,
    SuspiciousArchiveError,
    ThrottledError,
    UnsealWaitError,
    UnsupportedFormatError,
    WrongSecretError,
)
from ._hashing import sha256_file, sha256_text
from ._kek import Argon2Params, KeyWrapper, PassphraseKEK, Pkcs11KEK
from ._keyring import KekSource, Keyring, UnsealedKeys, chain_keys
from ._otp import new_totp_secret, totp_step, totp_uri, verify_totp
from ._passwords import hash_password, password_needs_rehash, verify_password
from ._receipt import issue_receipt, sha256_hex, verify_receipt
from ._session import load as held_secret
from ._session import revoke as drop_secret
from ._session import store as hold_secret
from ._signing import TrustedKeys, fingerprint, sign, verify
from ._throttle import UnsealThrottle
from ._tokens import (
    ApiToken,
    new_api_token,
    parse_api_token,
    random_token,
    token_hash,
    token_matches,
)
from ._verify import (
    VerifyReport,
    check_witnesses,
    extends,
    read_lines,
    scan_log,
    unexpected_tail,
    verify_log,
)
from ._witness import (
    Anchor,
    AnchorError,
    FileSink,
    HeadSink,
    last_head,
    make_sinks,
    witnessed_in,
    write_atomically,
)

__all__ = [
    "Anchor",
    "AnchorError",
    "ApiToken",
    "Argon2Params",
    "AuditError",
    "AuditLog",
    "AuthError",
    "AuthenticationError",
    "BundleError",
    "ConfigError",
    "ConflictError",
    "ContentCipher",
    "DekStore",
    "DirectoryError",
    "EmptyDocumentError",
    "EncryptedDocumentError",
    "FileSink",
    "FileTooLargeError",
    "ForbiddenError",
    "GreffierError",
    "HeadSink",
    "IngestError",
    "InvalidRequestError",
    "KekSource",
    "KeyWrapper",
    "Keyring",
    "ModelError",
    "NetworkForbiddenError",
    "NotFoundError",
    "ParseFailedError",
    "PassphraseKEK",
    "Pkcs11KEK",
    "RequestError",
    "SealedError",
    "SqliteDekStore",
    "SsoError",
    "StoreError",
    "SuspiciousArchiveError",
    "ThrottledError",
    "TrustedKeys",
    "UnsealThrottle",
    "UnsealWaitError",
    "UnsealedKeys",
    "UnsupportedFormatError",
    "VerifyReport",
    "WrongSecretError",
    "allow_network",
    "blocked_attempts",
    "chain_keys",
    "check_witnesses",
    "drop_secret",
    "extends",
    "fingerprint",
    "forbid_network",
    "hash_password",
    "held_secret",
    "hold_secret",
    "issue_receipt",
    "last_head",
    "make_sinks",
    "new_api_token",
    "new_totp_secret",
    "parse_api_token",
    "password_needs_rehash",
    "random_token",
    "read_lines",
    "scan_log",
    "sha256_file",
    "sha256_hex",
    "sha256_text",
    "sign",
    "token_hash",
    "token_matches",
    "totp_step",
    "totp_uri",
    "unexpected_tail",
    "verify",
    "verify_log",
    "verify_password",
    "verify_receipt",
    "verify_totp",
    "witnessed_in",
    "write_atomically",
]
