"""The metadata key: seals the fields of the metadata database that must not be in clear
(TOTP secrets, conversations, feedback, source paths). A random key wrapped under the KEK,
one file per KEK generation (``keys/metadata.<kek_id>.key``), re-wrapped by a rotation
before the keyring swap, like the audit anchor; the index key that rotations renew is not
used for it, so sealed rows survive a rotation."""

from __future__ import annotations

import os
from pathlib import Path

from security import UnsealedKeys, write_atomically

_LABEL = b"greffier/v1/metadata-key"


def metadata_key_path(data: Path, keys: UnsealedKeys) -> Path:
    return data / "keys" / f"metadata.{keys.kek_id}.key"


def metadata_key(data: Path, keys: UnsealedKeys) -> bytes:
    """The key, made on first use (a data directory from before the service has none)."""
    path = metadata_key_path(data, keys)
    if path.exists():
        return keys.wrapper.unwrap(path.read_bytes(), _LABEL)
    key = os.urandom(32)
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    write_atomically(path, keys.wrapper.wrap(key, _LABEL))
    return key


def rewrap_metadata_key(data: Path, old: UnsealedKeys, new: UnsealedKeys) -> None:
    """During a rotation, before the keyring swap: the key under the next KEK."""
    old_path = metadata_key_path(data, old)
    if old_path.exists():
        key = old.wrapper.unwrap(old_path.read_bytes(), _LABEL)
        write_atomically(metadata_key_path(data, new), new.wrapper.wrap(key, _LABEL))


def drop_stale_metadata_keys(data: Path, keys: UnsealedKeys) -> None:
    """After a rotation (or an interrupted one, at the next open): only the current
    generation's wrap stays."""
    current = metadata_key_path(data, keys)
    if not current.exists():
        return
    for stale in (data / "keys").glob("metadata.*.key"):
        if stale != current:
            stale.unlink()
