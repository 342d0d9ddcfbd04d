"""Signatures in minisign's format (Ed25519), so that IT can check a bundle with Debian's
``minisign`` alone, without trusting Greffier's code (https://jedisct1.github.io/minisign/).

Keys: a minisign public key file (``Ed`` + key id + public key) and Greffier's own,
unencrypted secret key file (keep it on the offline build machine). Signatures are
pre-hashed (``ED``: Ed25519 over the BLAKE2b-512 of the file) with a trusted comment signed
too (the global signature). Legacy ``Ed`` signatures are refused."""

from __future__ import annotations

import base64
import hashlib
import os
import time
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from security import BundleError

_ALG = b"Ed"
_PREHASHED = b"ED"
_SECRET = b"Gk"


@dataclass(frozen=True)
class PublicKey:
    key_id: bytes  # 8 bytes
    key: Ed25519PublicKey

    @property
    def id_hex(self) -> str:
        return f"{int.from_bytes(self.key_id, 'little'):016X}"

    def text(self) -> str:
        raw = self.key.public_bytes(Encoding.Raw, PublicFormat.Raw)
        return (f"untrusted comment: minisign public key {self.id_hex}\n"
                f"{base64.b64encode(_ALG + self.key_id + raw).decode()}\n")

    @classmethod
    def parse(cls, text: str) -> PublicKey:
        lines = [line for line in text.splitlines() if line.strip()]
        try:
            raw = base64.b64decode(lines[-1], validate=True)
        except (IndexError, ValueError):
            raise BundleError("The public key is not a minisign public key.",
                              hint="Pass the .pub file published with the bundle.") from None
        if len(raw) != 42 or raw[:2] != _ALG:
            raise BundleError("The public key is not a minisign Ed25519 public key.",
                              hint="Pass the .pub file published with the bundle.")
        return cls(raw[2:10], Ed25519PublicKey.from_public_bytes(raw[10:]))


@dataclass(frozen=True)
class SecretKey:
    """The signing key, in Greffier's own file (``Gk`` + key id + Ed25519 seed): only its
    public key and its signatures need minisign's format."""

    key_id: bytes
    key: Ed25519PrivateKey

    @property
    def public(self) -> PublicKey:
        return PublicKey(self.key_id, self.key.public_key())

    def text(self) -> str:
        body = _SECRET + self.key_id + self.key.private_bytes_raw()
        return (f"untrusted comment: greffier bundle secret key {self.public.id_hex} "
                "(unencrypted: keep it on the offline build machine)\n"
                f"{base64.b64encode(body).decode()}\n")

    @classmethod
    def parse(cls, text: str) -> SecretKey:
        lines = [line for line in text.splitlines() if line.strip()]
        try:
            raw = base64.b64decode(lines[-1], validate=True)
        except (IndexError, ValueError):
            raw = b""
        if len(raw) != 42 or raw[:2] != _SECRET:
            raise BundleError("This is not a Greffier bundle secret key.",
                              hint="Make one with `greffier bundle keygen`.")
        return cls(raw[2:10], Ed25519PrivateKey.from_private_bytes(raw[10:]))


def generate() -> SecretKey:
    return SecretKey(os.urandom(8), Ed25519PrivateKey.generate())


def sign(secret: SecretKey, data: bytes, trusted_comment: str) -> str:
    """A .minisig text for ``data``."""
    if "\n" in trusted_comment or "\r" in trusted_comment:
        raise BundleError("A trusted comment is one line.")
    signature = secret.key.sign(hashlib.blake2b(data, digest_size=64).digest())
    global_sig = secret.key.sign(signature + trusted_comment.encode())
    return ("untrusted comment: signature from greffier bundle key "
            f"{secret.public.id_hex}\n"
            f"{base64.b64encode(_PREHASHED + secret.key_id + signature).decode()}\n"
            f"trusted comment: {trusted_comment}\n"
            f"{base64.b64encode(global_sig).decode()}\n")


def verify(public: PublicKey, data: bytes, signature_text: str) -> str:
    """Check a .minisig for ``data``; returns its trusted comment."""
    lines = signature_text.splitlines()
    try:
        raw = base64.b64decode(lines[1], validate=True)
        comment_line, global_sig = lines[2], base64.b64decode(lines[3], validate=True)
    except (IndexError, ValueError):
        raise BundleError("The signature file is not a minisign signature.") from None
    if not comment_line.startswith("trusted comment: ") or len(raw) != 74:
        raise BundleError("The signature file is not a minisign signature.")
    if raw[:2] != _PREHASHED:
        raise BundleError("The signature is not pre-hashed (legacy minisign format).",
                          hint="Sign with `greffier bundle build`, or minisign 0.8 or later.")
    if raw[2:10] != public.key_id:
        raise BundleError(f"The bundle is signed by another key than {public.id_hex}.",
                          hint="Check you were given the right public key.")
    trusted = comment_line[len("trusted comment: "):]
    try:
        public.key.verify(raw[10:], hashlib.blake2b(data, digest_size=64).digest())
        public.key.verify(global_sig, raw[10:] + trusted.encode())
    except InvalidSignature:
        raise BundleError("The manifest's signature is invalid: the bundle was altered.",
                          hint="Do not install it; get the bundle again.") from None
    return trusted


def write_keypair(secret_path: Path, public_path: Path) -> SecretKey:
    """A new key pair; the secret key is written 0600 and never overwritten."""
    if secret_path.exists() or public_path.exists():
        raise BundleError(f"{secret_path} or {public_path} already exists; not overwritten.")
    key = generate()
    fd = os.open(secret_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(key.text())
    public_path.write_text(key.public.text())
    return key


def timestamp_comment(name: str, **fields: str) -> str:
    parts = [f"timestamp:{int(time.time())}", f"file:{name}",
             *(f"{k}:{v}" for k, v in fields.items())]
    return "\t".join(parts)
