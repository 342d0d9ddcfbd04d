"""Sealed columns of the metadata database: text that must never reach the disk in clear
(conversation titles and messages, feedback comments, TOTP secrets).

Format (the same envelope as the rest of Greffier, ``security/FORMAT.md``)::

    metadata key = 32 random bytes, wrapped under the KEK (keys/metadata.<kek>.key)
    sealed       = 0x01 || nonce (12 random bytes) || AES-256-GCM(metadata key, nonce,
                                                                  plaintext, aad)
    aad          = "greffier/v1/meta/<table>/<row id>/<column>"

The key (``appliance/_metakey.py``) is available exactly while the appliance is unsealed;
a KEK rotation re-wraps it, so sealed rows stay readable. The random 96-bit nonce is
GCM's native size; the number of sealed fields stays far below the 2^32 messages per key
that random nonces allow. The associated data binds a blob to its row and column: a blob
copied into another user's conversation, or a title moved into a message, fails to open.
"""

from __future__ import annotations

import os
from typing import Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from ._database import DatabaseError

_VERSION = b"\x01"
_NONCE = 12
_TAG = 16


class Sealer(Protocol):
    """Encrypts and authenticates a column value, bound to ``aad``."""

    def seal(self, plaintext: bytes, aad: bytes) -> bytes: ...

    def open(self, blob: bytes, aad: bytes) -> bytes: ...


def field_aad(table: str, row_id: str, column: str) -> bytes:
    """The associated data of one sealed field."""
    return f"greffier/v1/meta/{table}/{row_id}/{column}".encode()


class AeadSealer:
    """:class:`Sealer` with AES-256-GCM under a 32-byte key."""

    def __init__(self, key: bytes) -> None:
        if len(key) != 32:
            raise ValueError("the metadata key is 32 bytes")
        self._aead = AESGCM(key)

    def seal(self, plaintext: bytes, aad: bytes) -> bytes:
        nonce = os.urandom(_NONCE)  # random per field: see the module docstring
        return _VERSION + nonce + self._aead.encrypt(nonce, plaintext, aad)

    def open(self, blob: bytes, aad: bytes) -> bytes:
        where = aad.decode(errors="replace")
        if len(blob) < 1 + _NONCE + _TAG or blob[:1] != _VERSION:
            raise DatabaseError(f"A sealed field of the metadata database is damaged ({where}).",
                                hint="Restore the metadata database from its backup.")
        try:
            return self._aead.decrypt(blob[1:1 + _NONCE], blob[1 + _NONCE:], aad)
        except InvalidTag as exc:
            raise DatabaseError(
                f"A sealed field of the metadata database cannot be opened ({where}): the "
                "row was altered or moved, or the database belongs to other keys.",
                hint="Restore the metadata database from the backup made with this "
                "appliance's keys.") from exc
