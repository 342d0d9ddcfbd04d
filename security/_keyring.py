"""The keyring: which KEK protects this appliance, and the keys wrapped under it.

``keys/keyring.json`` holds only wrapped keys and public parameters (FORMAT.md). Opening
it with the passphrase (or the token) gives an :class:`UnsealedKeys`; dropping that object
seals the appliance again.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from . import _aead
from ._errors import ConfigError, SealedError, WrongSecretError
from ._kek import Argon2Params, KeyWrapper, PassphraseKEK, Pkcs11KEK
from ._signing import TrustedKeys, fingerprint, sign, verify
from ._witness import write_atomically

KekKind = Literal["passphrase", "pkcs11"]
SourceKind = Literal["passphrase", "pkcs11", "derived"]
VERSION = 2
_CHECK = b"greffier/v1/check"
_MAC = b"greffier/v1/keyring-mac"
_INDEX = b"greffier/v1/index-key"
_SIGNING = b"greffier/v1/signing-key"
_V1_AUDIT = b"greffier/v1/audit-key"
_RESTORE = "Restore keys/keyring.json from your backup."


def dek_label(content_hash: str) -> bytes:
    return f"greffier/v1/dek/{content_hash}".encode()


def audit_label(from_index: int) -> bytes:
    return f"greffier/v1/audit-key/{from_index}".encode()


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


def _digest(data: dict[str, Any]) -> bytes:
    body = {k: v for k, v in data.items() if k != "mac"}
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()
                          ).digest()


class UnsealedKeys:
    """The appliance's keys while unsealed. Holds the KEK wrapper and the unwrapped keys."""

    def __init__(self, wrapper: KeyWrapper, index_key: bytes, audit_key: bytes,
                 signing_key: Ed25519PrivateKey, kek_id: int = 1, *,
                 earlier_audit_keys: list[tuple[int, bytes]] | None = None,
                 audit_from: int = 0, signing_chain: list[dict[str, Any]] | None = None,
                 reindex_pending: bool = False) -> None:
        self.wrapper = wrapper
        self.kek_id = kek_id  # generation of the KEK: 1, then + 1 at every rotation
        self.index_key = index_key
        self.signing_key = signing_key
        # (first audit entry index, key) per generation of the audit key, current last
        self.audit_keys = [*(earlier_audit_keys or []), (audit_from, audit_key)]
        self.signing_chain = list(signing_chain or [])
        self.reindex_pending = reindex_pending
        self.upgraded = False  # opened from a version-1 keyring (before anchors and MAC)

    @property
    def audit_key(self) -> bytes:
        return self.audit_keys[-1][1]

    @property
    def public_key(self) -> bytes:
        return self.signing_key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)

    @property
    def trusted_keys(self) -> TrustedKeys:
        """Every signing key this appliance has had, oldest first (heads and receipts signed
        before a rotation stay verifiable)."""
        return chain_keys(self.signing_chain, self.public_key)

    def close(self) -> None:
        """Seal: drop the KEK (log out of the token) and the unwrapped keys."""
        self.wrapper.close()
        self.index_key = b""
        self.audit_keys = []

    def wrap_dek(self, content_hash: str, dek: bytes) -> bytes:
        return self.wrapper.wrap(dek, dek_label(content_hash))

    def unwrap_dek(self, content_hash: str, blob: bytes) -> bytes:
        return self.wrapper.unwrap(blob, dek_label(content_hash))


def rotation_statement(old: Ed25519PrivateKey, new_public: bytes, head: dict[str, Any]
                       ) -> dict[str, Any]:
    """The old signing key vouches for the new one, and retires itself after ``head``: it
    is trusted for tree heads of at most that size, so a copy of it cannot sign history."""
    return sign({"format": "greffier-key-rotation", "version": 1,
                 "previous_key": _b64(old.public_key().public_bytes_raw()),
                 "next_key": _b64(new_public), "time": _now(),
                 "tree_size": int(head["tree_size"]), "root": str(head["root"])}, old)


def chain_keys(chain: list[dict[str, Any]], current: bytes, pinned: str | None = None
               ) -> TrustedKeys:
    """Follow the rotation statements from the first key (or from the ``pinned``
    fingerprint) to ``current``; every link must be signed by the key before it. Each
    retired key is trusted up to the tree size its statement names."""
    broken = ConfigError("The keyring's signing-key chain is broken.", hint=_RESTORE)
    try:
        keys: list[tuple[bytes, int | None]] = []
        previous = _unb64(str(chain[0]["previous_key"])) if chain else current
        for statement in chain:
            if (not isinstance(statement, dict) or _unb64(str(statement["previous_key"]))
                    != previous or not verify(statement, previous)):
                raise broken
            keys.append((previous, int(statement["tree_size"])))
            previous = _unb64(str(statement["next_key"]))
        keys.append((previous, None))
    except (KeyError, TypeError, ValueError, IndexError) as exc:
        raise broken from exc
    if previous != current:
        raise ConfigError("The keyring's signing-key chain does not end at its current key.",
                          hint=_RESTORE)
    if pinned is not None:
        prints = [fingerprint(k) for k, _ in keys]
        if pinned not in prints:
            raise ConfigError(
                f"The signing key {pinned} is not in this keyring's chain (it has "
                f"{', '.join(prints)}): the keyring was replaced, or this is another "
                "appliance.", hint="Compare with the fingerprint printed at `greffier init`.")
        keys = keys[prints.index(pinned):]
    return TrustedKeys(keys)


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
        try:
            data: dict[str, Any] = json.loads(self.path.read_text())
            if not isinstance(data, dict):
                raise ValueError("not an object")
        except (OSError, ValueError) as exc:
            raise ConfigError(f"{self.path} cannot be read as a keyring ({exc}).",
                              hint=_RESTORE) from exc
        if data.get("format") != "greffier-keyring" or data.get("version") not in (1, VERSION):
            raise ConfigError(f"{self.path} is not a version-{VERSION} Greffier keyring.",
                              hint=_RESTORE)
        return data

    def kind(self) -> str:
        return str(self._read()["kek"]["kind"])

    def unseal(self, source: KekSource, *, upgrade: bool = False) -> UnsealedKeys:
        """Open the keyring with the KEK and authenticate all of it.

        A version-2 keyring carries a MAC (a hash of all its fields wrapped under the KEK):
        a swapped public key, a shortened signing chain or any other edit is refused. A
        version-1 keyring (before the MAC) opens only with ``upgrade`` (``greffier keys
        upgrade``): it is then rewritten as version 2, its unauthenticated fields ignored."""
        data = self._read()
        if data["version"] != VERSION and not upgrade:
            raise ConfigError(f"{self.path} is a version-1 keyring (no MAC): it must be "
                              "upgraded once, on purpose.",
                              hint="If you did not restore an old keyring, run `greffier keys "
                              "upgrade`; if you did not expect this, restore from backup.")
        try:
            wrapper = self._wrapper(data["kek"], source, create=False)
            check = wrapper.unwrap(_unb64(data["check"]), _CHECK)
        except _aead.AuthenticationError as exc:
            raise WrongSecretError("Wrong passphrase (or wrong token key): the appliance stays "
                              "sealed.", hint="Try again with the operator passphrase.") from exc
        except (KeyError, TypeError, ValueError) as exc:
            raise ConfigError(f"{self.path} is damaged (field {exc}).", hint=_RESTORE) from exc
        if check != bytes(32):
            raise SealedError("The keyring's check value is damaged.", hint=_RESTORE)
        try:
            if data["version"] == VERSION:
                mac = wrapper.unwrap(_unb64(data["mac"]), _MAC)
                if not hmac.compare_digest(mac, _digest(data)):
                    raise _aead.AuthenticationError("keyring MAC mismatch")
                audit = [(int(a["from_index"]),
                          wrapper.unwrap(_unb64(a["key"]), audit_label(int(a["from_index"]))))
                         for a in data["audit_keys"]]
            else:
                audit = [(0, wrapper.unwrap(_unb64(data["audit_key"]), _V1_AUDIT))]
            index_key = wrapper.unwrap(_unb64(data["index_key"]), _INDEX)
            seed = wrapper.unwrap(_unb64(data["signing_key"]), _SIGNING)
        except (_aead.AuthenticationError, KeyError, TypeError, ValueError) as exc:
            raise SealedError(f"{self.path} was altered or is damaged: it fails "
                              "authentication under the KEK.", hint=_RESTORE) from exc
        signing = Ed25519PrivateKey.from_private_bytes(seed)
        v2 = data["version"] == VERSION  # a version-1 file's other fields are not authenticated
        keys = UnsealedKeys(wrapper, index_key, audit[-1][1], signing,
                            int(data.get("kek_id", 1)) if v2 else 1,
                            earlier_audit_keys=audit[:-1], audit_from=audit[-1][0],
                            signing_chain=list(data.get("signing_chain", [])) if v2 else [],
                            reindex_pending=bool(data.get("reindex_pending")) and v2)
        if _unb64(data["signing_public_key"]) != keys.public_key:
            raise SealedError(f"{self.path} names a signing public key that is not its own.",
                              hint=_RESTORE)
        if not v2:
            keys.upgraded = True
            self._write(data["kek"], keys, created_at=data["created_at"],
                        rotated_at=data.get("rotated_at"))
        return keys

    def public_key(self) -> bytes:
        """The current signing key as the keyring states it (unauthenticated: a verifier
        that does not unseal compares its fingerprint with the one printed at init)."""
        return _unb64(self._read()["signing_public_key"])

    def signing_chain(self) -> list[dict[str, Any]]:
        return list(self._read().get("signing_chain", []))

    def trusted_keys(self, pinned: str | None = None) -> TrustedKeys:
        """Every signing key of this appliance, oldest first, from ``pinned`` on if given."""
        data = self._read()
        return chain_keys(list(data.get("signing_chain", [])),
                          _unb64(data["signing_public_key"]), pinned)

    def rotate(self, old: UnsealedKeys, new_source: KekSource, rewrap: Any = None, *,
               audit_from: int = 0, last_head: dict[str, Any] | None = None) -> UnsealedKeys:
        """A new KEK *and* new signing, audit and index keys, crash-safely.

        An old passphrase with an old copy of the keyring then yields only old keys: it
        cannot sign, read new audit entries or map the new index's term ids. The new
        signing key is vouched for by the old one (``signing_chain``); earlier audit keys
        stay, wrapped under the new KEK, so earlier entries remain readable; the index is
        marked ``reindex_pending`` until its sparse vectors are recomputed under the new
        index key (the caller does it, and resumes it after a crash).

        ``rewrap(old_keys, new_keys)`` stores every DEK wrapped under the new KEK *beside*
        the old wraps (new KEK generation); then the keyring file is replaced atomically.
        A crash before the rename leaves the old keys in force with their wraps intact;
        after it, the new ones with their own. The caller then drops the old wraps.
        """
        data = self._read()
        meta = self._kek_meta(new_source)
        wrapper = self._wrapper(meta, new_source, create=True)
        signing = Ed25519PrivateKey.generate()
        statement = rotation_statement(old.signing_key, signing.public_key().public_bytes_raw(),
                                       last_head or {"tree_size": audit_from, "root": ""})
        new = UnsealedKeys(wrapper, _aead.new_key(), _aead.new_key(), signing, old.kek_id + 1,
                           earlier_audit_keys=list(old.audit_keys), audit_from=audit_from,
                           signing_chain=[*old.signing_chain, statement],
                           reindex_pending=True)
        if rewrap is not None:
            rewrap(old, new)
        self._write(meta, new, created_at=data["created_at"], rotated_at=_now())
        return new

    def mark_reindexed(self, keys: UnsealedKeys) -> None:
        """The sparse index is rebuilt under the current index key."""
        keys.reindex_pending = False
        data = self._read()
        self._write(data["kek"], keys, created_at=data["created_at"],
                    rotated_at=data.get("rotated_at"))

    def _write(self, meta: dict[str, Any], keys: UnsealedKeys, *, created_at: str,
               rotated_at: str | None) -> None:
        seed = keys.signing_key.private_bytes_raw()
        wrap = keys.wrapper.wrap
        data: dict[str, Any] = {
            "format": "greffier-keyring", "version": VERSION, "kek": meta,
            "kek_id": keys.kek_id,
            "check": _b64(wrap(bytes(32), _CHECK)),
            "index_key": _b64(wrap(keys.index_key, _INDEX)),
            "audit_keys": [{"from_index": start, "key": _b64(wrap(key, audit_label(start)))}
                           for start, key in keys.audit_keys],
            "signing_key": _b64(wrap(seed, _SIGNING)),
            "signing_public_key": _b64(keys.public_key),
            "signing_chain": keys.signing_chain,
            "reindex_pending": keys.reindex_pending,
            "created_at": created_at, "rotated_at": rotated_at,
        }
        data["mac"] = _b64(wrap(_digest(data), _MAC))
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.chmod(self.path.parent, 0o700)
        write_atomically(self.path, json.dumps(data, indent=2).encode())
