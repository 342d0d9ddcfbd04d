"""Key-encryption keys: from an operator passphrase (Argon2id) or inside a PKCS#11 token."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Protocol

from cryptography.hazmat.primitives.kdf.argon2 import Argon2id

from . import _aead
from ._errors import ConfigError, SealedError, WrongSecretError


class KeyWrapper(Protocol):
    """Wraps and unwraps keys under the KEK. The KEK itself is never exposed."""

    def wrap(self, key: bytes, label: bytes) -> bytes: ...

    def unwrap(self, blob: bytes, label: bytes) -> bytes: ...

    def close(self) -> None:
        """Drop the KEK (or log out of the token)."""


@dataclass(frozen=True)
class Argon2Params:
    salt: bytes
    time_cost: int = 3
    memory_kib: int = 65536
    lanes: int = 4

    @classmethod
    def fresh(cls) -> Argon2Params:
        return cls(salt=os.urandom(16))


class PassphraseKEK:
    """A KEK derived from a passphrase with Argon2id; it lives only in this object."""

    def __init__(self, passphrase: str, params: Argon2Params, *, kek: bytes | None = None
                 ) -> None:
        self.params = params
        if kek is not None:  # already derived (held by the kernel keyring between commands)
            self._kek = kek
            return
        if not passphrase:
            raise SealedError("An empty passphrase cannot unseal the appliance.",
                              hint="Give the operator passphrase (GREFFIER_PASSPHRASE_FILE).")
        self._kek = Argon2id(salt=params.salt, length=32, iterations=params.time_cost,
                             lanes=params.lanes, memory_cost=params.memory_kib).derive(
            passphrase.encode("utf-8"))

    def wrap(self, key: bytes, label: bytes) -> bytes:
        return _aead.seal(self._kek, key, label)

    def unwrap(self, blob: bytes, label: bytes) -> bytes:
        return _aead.open_(self._kek, blob, label)

    def close(self) -> None:
        self._kek = b""

    @property
    def raw_kek(self) -> bytes:
        """For ``greffier unseal`` only: handed to the kernel keyring, never to disk."""
        return self._kek


class Pkcs11KEK:
    """A non-extractable AES-256 key inside a PKCS#11 token (an HSM; SoftHSM2 in tests).

    Wrapping is AES-GCM computed by the token: the KEK never leaves it. The blob format is
    the same as for passphrase KEKs (``0x01 || nonce || ciphertext``).
    """

    def __init__(self, module: str, token_label: str, key_label: str, pin: str, *,
                 create: bool = False) -> None:
        try:
            import pkcs11
        except ImportError as exc:  # pragma: no cover - python-pkcs11 is in the lock
            raise ConfigError("python-pkcs11 is not installed.",
                              hint="Install Greffier from its lock file.") from exc
        self._pkcs11 = pkcs11
        try:
            lib = pkcs11.lib(module)
            token = lib.get_token(token_label=token_label)
            self._session: Any = token.open(user_pin=pin, rw=True)
        except pkcs11.PinIncorrect as exc:
            raise WrongSecretError(f"Wrong PIN for the PKCS#11 token {token_label!r}: the "
                                   "appliance stays sealed.",
                                   hint="Try again with the token's user PIN.") from exc
        except Exception as exc:
            raise SealedError(f"Cannot open the PKCS#11 token {token_label!r}: "
                              f"{type(exc).__name__} {exc}",
                              hint="Check security.pkcs11_module, the token label and the PIN."
                              ) from exc
        attrs = pkcs11.Attribute
        if create:
            self._key: Any = self._session.generate_key(
                pkcs11.KeyType.AES, 256, label=key_label, store=True,
                template={attrs.EXTRACTABLE: False, attrs.SENSITIVE: True,
                          attrs.ENCRYPT: True, attrs.DECRYPT: True})
        else:
            try:
                self._key = self._session.get_key(object_class=pkcs11.ObjectClass.SECRET_KEY,
                                                  label=key_label)
            except Exception as exc:
                raise SealedError(f"The KEK {key_label!r} is not in the token.",
                                  hint="Set security.kek = 'pkcs11' and run `greffier init` "
                                  "on this token.") from exc

    def _gcm(self, nonce: bytes, label: bytes) -> tuple[Any, Any]:
        from pkcs11.mechanisms import GCMParams

        return self._pkcs11.Mechanism.AES_GCM, GCMParams(nonce, label, 128)

    def wrap(self, key: bytes, label: bytes) -> bytes:
        nonce = os.urandom(_aead.NONCE_BYTES)
        mechanism, param = self._gcm(nonce, label)
        body = self._key.encrypt(key, mechanism=mechanism, mechanism_param=param)
        return _aead.VERSION + nonce + bytes(body)

    def unwrap(self, blob: bytes, label: bytes) -> bytes:
        if len(blob) < 29 or blob[:1] != _aead.VERSION:
            raise _aead.AuthenticationError("not a version-1 Greffier ciphertext")
        nonce, body = blob[1:13], blob[13:]
        mechanism, param = self._gcm(nonce, label)
        try:
            return bytes(self._key.decrypt(body, mechanism=mechanism, mechanism_param=param))
        except Exception as exc:
            raise _aead.AuthenticationError("authentication failed in the token") from exc

    def close(self) -> None:
        self._session.close()
