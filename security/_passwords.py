"""Account passwords: Argon2id (argon2-cffi's RFC 9106 "low memory" profile: t = 3,
m = 64 MiB, p = 4, 16-byte salt, 32-byte tag), encoded in the PHC string format, which
carries its own parameters, so stronger ones can be adopted later (:func:`password_needs_rehash`).
"""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

# Longer inputs are refused before hashing: Argon2 accepts them, but a megabyte-long
# "password" should not cost the server anything more than a comparison.
MAX_PASSWORD_CHARS = 1024

_HASHER = PasswordHasher()  # stateless and thread-safe; creating it does no work


def hash_password(password: str) -> str:
    """The Argon2id PHC string of ``password`` (a fresh random salt each time)."""
    if len(password) > MAX_PASSWORD_CHARS:
        raise ValueError(f"passwords are at most {MAX_PASSWORD_CHARS} characters")
    return _HASHER.hash(password)


def verify_password(encoded: str, password: str) -> bool:
    """Whether ``password`` matches ``encoded``; False for a malformed hash or an
    over-long password (never an exception)."""
    if len(password) > MAX_PASSWORD_CHARS:
        return False
    try:
        return _HASHER.verify(encoded, password)
    except (VerificationError, InvalidHashError):  # a mismatch is a VerificationError
        return False


def password_needs_rehash(encoded: str) -> bool:
    """Whether ``encoded`` was made with other parameters than today's (rehash at login)."""
    try:
        return _HASHER.check_needs_rehash(encoded)
    except InvalidHashError:
        return True
