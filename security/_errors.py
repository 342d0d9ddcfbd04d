"""Greffier's one exception tree.

Every error a user can meet derives from :class:`GreffierError` and says what to do next.
Library errors (unstructured, Qdrant, torch) are converted at the package boundary.

    GreffierError
    ├── ConfigError            settings are missing, unsafe or inconsistent
    ├── SealedError            content is locked until the appliance is unsealed (issue 4)
    │   ├── WrongSecretError   a wrong passphrase or token PIN (counted by the throttle)
    │   └── UnsealWaitError    too many wrong secrets: wait before the next attempt
    ├── NetworkForbiddenError  something tried to open a connection the appliance forbids
    ├── IngestError            one file could not be ingested (the batch goes on)
    │   ├── UnsupportedFormatError
    │   ├── FileTooLargeError
    │   ├── SuspiciousArchiveError   zip bomb, archive too large once unpacked
    │   ├── EncryptedDocumentError   password-protected document
    │   ├── EmptyDocumentError       parsed, but no text came out
    │   └── ParseFailedError         parser crashed, timed out or ran out of memory
    ├── ModelError             the embedding model folder is missing, unsafe or changed
    ├── StoreError             the vector store refused an operation or is inconsistent
    ├── DirectoryError         the LDAP directory cannot be reached, refuses the service
    │                          account's bind, or lacks a configured base DN
    ├── SsoError               the OpenID provider cannot be reached or answers unusably
    └── RequestError           a caller's request cannot be served (the service layer)
        ├── AuthError              not authenticated: no, wrong or expired credentials
        ├── ForbiddenError         authenticated, but the role or token scope does not allow it
        ├── NotFoundError          no such document, job, answer, user or token
        ├── ConflictError          the request clashes with the current state
        ├── InvalidRequestError    the request is malformed or out of bounds
        └── ThrottledError         too many attempts or requests: retry after a delay
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


class UnsealWaitError(SealedError):
    """Too many wrong secrets: the next unseal attempt must wait ``retry_after_s``."""

    def __init__(self, message: str, *, retry_after_s: float, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.retry_after_s = retry_after_s


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


class DirectoryError(GreffierError):
    """The LDAP / Active Directory server is unreachable, refused the service account's
    bind, or has no entry at a configured base DN. Nothing was changed."""


class BundleError(GreffierError):
    """An offline bundle is refused (bad signature, a file changed, missing or extra, an
    older release, expired) or cannot be built. Nothing was installed or changed."""


class SsoError(GreffierError):
    """The OpenID Connect provider is unreachable, or its discovery document, keys or token
    answer are unusable. Nobody was signed in."""


class RequestError(GreffierError):
    """A caller's request cannot be served. ``status`` is the HTTP status the API answers."""

    status = 400
    code = "invalid-request"


class AuthError(RequestError):
    """Not authenticated: missing, wrong or expired credentials (never says which)."""

    status = 401
    code = "unauthenticated"


class ForbiddenError(RequestError):
    """Authenticated, but the caller's roles or token scopes do not allow this."""

    status = 403
    code = "forbidden"


class NotFoundError(RequestError):
    """No such object (or one the caller may not know of)."""

    status = 404
    code = "not-found"


class ConflictError(RequestError):
    """The request clashes with the current state (a name taken, already unsealed)."""

    status = 409
    code = "conflict"


class InvalidRequestError(RequestError):
    """The request is malformed or out of bounds."""

    status = 422
    code = "invalid-request"


class ThrottledError(RequestError):
    """Too many attempts or requests; ``retry_after_s`` says when to try again."""

    status = 429
    code = "throttled"

    def __init__(self, message: str, *, retry_after_s: float, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.retry_after_s = retry_after_s
