"""Envelope encryption of chunk text: one DEK per content, wrapped by the KEK."""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from collections.abc import Iterator
from pathlib import Path
from typing import Protocol

from . import _aead
from ._errors import SealedError
from ._keyring import UnsealedKeys
from ._stream import decrypt_stream, encrypt_file


class DekStore(Protocol):
    """Where wrapped DEKs live (``SqliteDekStore``), by content and KEK generation."""

    def wrapped_dek(self, content_hash: str, kek_id: int) -> bytes | None: ...

    def put_wrapped_dek(self, content_hash: str, kek_id: int, blob: bytes) -> None: ...

    def destroy(self, content_hash: str) -> bool: ...


def chunk_aad(content_hash: str, index: int) -> bytes:
    return f"greffier/v1/chunk/{content_hash}/{index}".encode()


class ContentCipher:
    """Seals and opens chunk payloads. Unwrapped DEKs are cached in memory (LRU)."""

    def __init__(self, keys: UnsealedKeys, store: DekStore, *, cache: int = 4096) -> None:
        self._keys = keys
        self._store = store
        self._cache: OrderedDict[str, bytes] = OrderedDict()
        self._size = cache
        self._lock = threading.Lock()

    def rekey(self, keys: UnsealedKeys) -> None:
        """After a KEK rotation: unwrap DEKs with the new generation's wraps from now on."""
        with self._lock:
            self._keys = keys
            self._cache.clear()

    @property
    def index_key(self) -> bytes:
        return self._keys.index_key

    def new_content_key(self, content_hash: str) -> None:
        """A fresh DEK for a new content (or a new version of it), wrapped and stored."""
        dek = _aead.new_key()
        self._store.put_wrapped_dek(content_hash, self._keys.kek_id,
                                    self._keys.wrap_dek(content_hash, dek))
        self._remember(content_hash, dek)

    def forget(self, content_hash: str) -> None:
        with self._lock:
            self._cache.pop(content_hash, None)

    def destroy(self, content_hash: str) -> bool:
        """Crypto-erasure: the content's DEK leaves the cache and the store. True if the
        store held one."""
        self.forget(content_hash)
        return self._store.destroy(content_hash)

    def _remember(self, content_hash: str, dek: bytes) -> None:
        with self._lock:
            self._cache[content_hash] = dek
            self._cache.move_to_end(content_hash)
            while len(self._cache) > self._size:
                self._cache.popitem(last=False)

    def _dek(self, content_hash: str) -> bytes:
        with self._lock:
            dek = self._cache.get(content_hash)
        if dek is not None:
            return dek
        blob = self._store.wrapped_dek(content_hash, self._keys.kek_id)
        if blob is None:
            raise SealedError(f"No data key for content {content_hash[:12]}… (erased?).",
                              hint="The document was erased or its key lost; re-ingest it.")
        dek = self._keys.unwrap_dek(content_hash, blob)
        self._remember(content_hash, dek)
        return dek

    def encrypt_original(self, source: Path, target: Path, content_hash: str) -> None:
        """Store the original file as an encrypted stream (see _stream.py)."""
        encrypt_file(source, target, self._dek(content_hash), content_hash)

    def decrypt_original(self, blob: Path, content_hash: str) -> Iterator[bytes]:
        with blob.open("rb") as handle:
            yield from decrypt_stream(handle, self._dek(content_hash), content_hash)

    def seal_chunk(self, content_hash: str, index: int, text: str, section: str) -> bytes:
        plaintext = json.dumps({"text": text, "section": section}).encode()
        return _aead.seal(self._dek(content_hash), plaintext, chunk_aad(content_hash, index))

    def open_chunk(self, content_hash: str, index: int, blob: bytes) -> tuple[str, str]:
        plaintext = _aead.open_(self._dek(content_hash), blob, chunk_aad(content_hash, index))
        data = json.loads(plaintext)
        return str(data["text"]), str(data["section"])
