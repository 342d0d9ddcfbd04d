"""The keyring: which KEK protects this appliance, and the keys wrapped under it.

``keys/keyring.json`` holds only wrapped keys and public parameters (FORMAT.md). Opening
it with the passphrase (or the token) gives an :class:`UnsealedKeys`; dropping that object
seals the appliance again.
"""

from __future__ import annotations

import base64
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from . import _aead
from ._errors import ConfigError, SealedError
from ._kek import Argon2Params, KeyWrapper, PassphraseKEK, Pkcs11KEK

KekKind = Literal["passphrase", "pkcs11"]
SourceKind = Literal["passphrase", "pkcs11", "derived"]
_CHECK = b"greffier/v1/check"
_LABELS = {"index_key": b"greffier/v1/index-key", "audit_key": b"greffier/v1/audit-key",
           "signing_key": b"greffier/v1/signing-key"}


def dek_label(content_hash: str) -> bytes:
    return f"greffier/v1/dek/{content_hash}".encode()


@dataclass(frozen=True)
class KekSource:
    """How to reach the KEK: a passphrase, or a PKCS#11 token and its PIN."""

    kind: SourceKind  # "derived": a passphrase KEK already derived (from `greffier unseal`)
    secret: str  # the passphrase, or the token's user PIN (empty for "derived")
    pkcs11_module: str = ""
    pkcs11_token: str = "greffier"  # noqa: S105 - a token label, not a secret
    pkcs11_key: str = "greffier-kek"


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _unb64(text: str) -> bytes:
    return base64.b64decode(text.encode())


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


class UnsealedKeys:
    """The appliance's keys while unsealed. Holds the KEK wrapper and the unwrapped keys."""

    def __init__(self, wrapper: KeyWrapper, index_key: bytes, audit_key: bytes,
                 signing_key: Ed25519PrivateKey, kek_id: int = 1) -> None:
        self.wrapper = wrapper
        self.kek_id = kek_id  # generation of the KEK: 1, then + 1 at every rotation
        self.index_key = index_key
        self.audit_key = audit_key
        self.signing_key = signing_key

    @property
    def public_key(self) -> bytes:
        return self.signing_key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)

    def close(self) -> None:
        """Seal: drop the KEK (log out of the token) and the unwrapped keys."""
        self.wrapper.close()
        self.index_key = self.audit_key = b""

    def wrap_dek(self, content_hash: str, dek: bytes) -> bytes:
        return self.wrapper.wrap(dek, dek_label(content_hash))

    def unwrap_dek(self, content_hash: str, blob: bytes) -> bytes:
        return self.wrapper.unwrap(blob, dek_label(content_hash))


class Keyring:
    """The keyring file of one data directory."""

    def __init__(self, data_dir: Path) -> None:
        self.path = data_dir / "keys" / "keyring.json"

    def exists(self) -> bool:
        return self.path.is_file()

    def _wrapper(self, meta: dict[str, Any], source: KekSource, *, create: bool) -> KeyWrapper:
        if source.kind == "derived" and meta["kind"] == "passphrase":
            params = Argon2Params(_unb64(meta["salt"]), meta["time_cost"], meta["memory_kib"],
                                  meta["lanes"])
            return PassphraseKEK("", params, kek=base64.b64decode(source.secret))
        if meta["kind"] != source.kind:
            raise ConfigError(
                f"This appliance's KEK is a {meta['kind']}, not a {source.kind}.",
                hint=f"Set security.kek = {meta['kind']!r}.")
        if source.kind == "passphrase":
            params = Argon2Params(_unb64(meta["salt"]), meta["time_cost"], meta["memory_kib"],
                                  meta["lanes"])
            return PassphraseKEK(source.secret, params)
        return Pkcs11KEK(meta["module"], meta["token_label"], meta["key_label"], source.secret,
                         create=create)

    def create(self, source: KekSource) -> UnsealedKeys:
        """``greffier init``: a new KEK and fresh keys. Refuses to overwrite a keyring."""
        if self.exists():
            raise ConfigError(f"{self.path} already exists: the appliance is initialised.",
                              hint="Use `greffier keys rotate` to change the KEK.")
        meta = self._kek_meta(source)
        wrapper = self._wrapper(meta, source, create=True)
        keys = UnsealedKeys(wrapper, _aead.new_key(), _aead.new_key(),
                            Ed25519PrivateKey.generate())
        self._write(meta, keys, created_at=_now(), rotated_at=None)
        return keys

    @staticmethod
    def _kek_meta(source: KekSource) -> dict[str, Any]:
        if source.kind == "passphrase":
            params = Argon2Params.fresh()
            return {"kind": "passphrase", "kdf": "argon2id", "salt": _b64(params.salt),
                    "time_cost": params.time_cost, "memory_kib": params.memory_kib,
                    "lanes": params.lanes}
        if not source.pkcs11_module:
            raise ConfigError("A PKCS#11 KEK needs security.pkcs11_module.",
                              hint="For SoftHSM2: /usr/lib/softhsm/libsofthsm2.so")
        return {"kind": "pkcs11", "module": source.pkcs11_module,
                "token_label": source.pkcs11_token, "key_label": source.pkcs11_key}

    def _read(self) -> dict[str, Any]:
        if not self.exists():
            raise SealedError("The appliance is not initialised: it has no keys.",
                              hint="Run `greffier init` first.")
        data: dict[str, Any] = json.loads(self.path.read_text())
        if data.get("format") != "greffier-keyring" or data.get("version") != 1:
            raise ConfigError(f"{self.path} is not a version-1 Greffier keyring.",
                              hint="Restore the keyring from your backup.")
        return data

    def kind(self) -> str:
        return str(self._read()["kek"]["kind"])

    def unseal(self, source: KekSource) -> UnsealedKeys:
        data = self._read()
        wrapper = self._wrapper(data["kek"], source, create=False)
        try:
            check = wrapper.unwrap(_unb64(data["check"]), _CHECK)
        except _aead.AuthenticationError as exc:
            raise SealedError("Wrong passphrase (or wrong token key): the appliance stays "
                              "sealed.", hint="Try again with the operator passphrase.") from exc
        if check != bytes(32):
            raise SealedError("The keyring's check value is damaged.",
                              hint="Restore the keyring from your backup.")
        try:
            keys = {name: wrapper.unwrap(_unb64(data[name]), label)
                    for name, label in _LABELS.items()}
        except _aead.AuthenticationError as exc:
            raise SealedError("The keyring is damaged: a wrapped key fails authentication.",
                              hint="Restore the keyring from your backup.") from exc
        return UnsealedKeys(wrapper, keys["index_key"], keys["audit_key"],
                            Ed25519PrivateKey.from_private_bytes(keys["signing_key"]),
                            int(data.get("kek_id", 1)))

    def public_key(self) -> bytes:
        return _unb64(self._read()["signing_public_key"])

    def rotate(self, old: UnsealedKeys, new_source: KekSource,
               rewrap: Any = None) -> UnsealedKeys:
        """Wrap every key under a new KEK, crash-safely.

        ``rewrap(old_keys, new_keys)`` stores every DEK wrapped under the new KEK *beside*
        the old wraps (new KEK generation); then the keyring file is replaced atomically.
        A crash before the rename leaves the old KEK in force with its wraps intact; after
        it, the new one with its own. The caller then drops the old generation's wraps.
        """
        data = self._read()
        meta = self._kek_meta(new_source)
        wrapper = self._wrapper(meta, new_source, create=True)
        new = UnsealedKeys(wrapper, old.index_key, old.audit_key, old.signing_key,
                           old.kek_id + 1)
        if rewrap is not None:
            rewrap(old, new)
        self._write(meta, new, created_at=data["created_at"], rotated_at=_now())
        return new

    def _write(self, meta: dict[str, Any], keys: UnsealedKeys, *, created_at: str,
               rotated_at: str | None) -> None:
        seed = keys.signing_key.private_bytes_raw()
        data = {
            "format": "greffier-keyring", "version": 1, "kek": meta,
            "check": _b64(keys.wrapper.wrap(bytes(32), _CHECK)),
            "index_key": _b64(keys.wrapper.wrap(keys.index_key, _LABELS["index_key"])),
            "audit_key": _b64(keys.wrapper.wrap(keys.audit_key, _LABELS["audit_key"])),
            "signing_key": _b64(keys.wrapper.wrap(seed, _LABELS["signing_key"])),
            "signing_public_key": _b64(keys.public_key),
            "kek_id": keys.kek_id,
            "created_at": created_at, "rotated_at": rotated_at,
        }
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        tmp = self.path.with_suffix(".tmp")
        with tmp.open("w") as handle:
            json.dump(data, handle, indent=2)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o600)
        os.replace(tmp, self.path)
