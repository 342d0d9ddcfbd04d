"""Bearer secrets: API tokens, session cookies, CSRF tokens.

An API token reads ``gfr_<id>_<secret>``: the id (16 hex characters) finds the row, the
secret (32 random bytes from :mod:`secrets`, base64url) proves possession. The prefix lets
secret scanners recognise a leaked token. Only the SHA-256 of a secret is stored: the
secret has 256 bits of entropy, so a fast hash is enough (no guessing to slow down), and a
database dump gives nothing that can be presented. Hashes are compared in constant time.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from typing import NamedTuple

TOKEN_PREFIX = "gfr_"  # noqa: S105 (a prefix, not a secret)
SECRET_BYTES = 32
_TOKEN = re.compile(r"gfr_([0-9a-f]{16})_([A-Za-z0-9_-]{43})")


class ApiToken(NamedTuple):
    """A token as issued: the plaintext is shown once, the hash is stored."""

    id: str
    plaintext: str
    secret_hash: str


def random_token() -> str:
    """A fresh bearer secret (session cookie, CSRF token): 32 random bytes, base64url."""
    return secrets.token_urlsafe(SECRET_BYTES)


def token_hash(secret: str) -> str:
    """Hex SHA-256 of a bearer secret: what is stored in its place."""
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def token_matches(secret: str, stored_hash: str) -> bool:
    """Whether ``secret`` hashes to ``stored_hash`` (constant-time comparison)."""
    return hmac.compare_digest(token_hash(secret).encode(), stored_hash.encode())


def new_api_token() -> ApiToken:
    token_id = secrets.token_hex(8)
    secret = random_token()
    return ApiToken(token_id, f"{TOKEN_PREFIX}{token_id}_{secret}", token_hash(secret))


def parse_api_token(plaintext: str) -> tuple[str, str] | None:
    """``(id, secret)`` of a well-formed token, else None."""
    match = _TOKEN.fullmatch(plaintext)
    return (match.group(1), match.group(2)) if match else None
