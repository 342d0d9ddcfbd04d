"""Shared fixtures. Tests use the real components: unstructured, sentence-transformers, Qdrant.

Every test session runs with the egress guard on: any attempt to reach a non-loopback host,
from any library, fails and is recorded; the session fails if one was recorded.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from pg import PostgresServer, postgres_server  # noqa: F401  (the session's PostgreSQL)

import security
from appliance import Appliance, Settings, load_settings
from ingest import set_offline_environment
from security import (
    Argon2Params,
    ContentCipher,
    KekSource,
    Keyring,
    PassphraseKEK,
    UnsealedKeys,
)

if TYPE_CHECKING:
    from corpus import Fact

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session", autouse=True)
def no_network() -> Iterator[None]:
    set_offline_environment()
    security.forbid_network()
    yield
    attempts = security.blocked_attempts()
    assert attempts == [], f"connection attempts during the tests: {attempts}"


PASSPHRASE = "correct horse battery staple"
KEKS = KekSource("passphrase", PASSPHRASE)


class MemoryDeks:
    """Wrapped data keys in a dict: lets store tests run without a catalog."""

    def __init__(self) -> None:
        self.rows: dict[tuple[str, int], bytes] = {}

    def wrapped_dek(self, content_hash: str, kek_id: int) -> bytes | None:
        return self.rows.get((content_hash, kek_id))

    def put_wrapped_dek(self, content_hash: str, kek_id: int, blob: bytes) -> None:
        self.rows[(content_hash, kek_id)] = blob

    def destroy(self, content_hash: str) -> bool:
        gone = [key for key in self.rows if key[0] == content_hash]
        for key in gone:
            del self.rows[key]
        return bool(gone)


def make_cipher() -> ContentCipher:
    keys = UnsealedKeys(PassphraseKEK(PASSPHRASE, Argon2Params.fresh()), os.urandom(32),
                        os.urandom(32), Ed25519PrivateKey.generate())
    return ContentCipher(keys, MemoryDeks())


def make_settings(data_dir: Path, **overrides: object) -> Settings:
    os.environ.pop("GREFFIER_CONFIG", None)
    return load_settings(None, data_dir=str(data_dir), **overrides)


def open_appliance(settings: Settings) -> Appliance:
    """Initialise the data directory on first use, then unseal it with the test passphrase."""
    if not Keyring(settings.data_dir).exists():
        Appliance.init(settings, KEKS)
    return Appliance.open(settings, KEKS)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path / "data")


@pytest.fixture(scope="session")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Fact]]:
    """One file of every supported format, each holding a unique fact (built once)."""
    from corpus import build_corpus

    dest = tmp_path_factory.mktemp("corpus")
    return dest, build_corpus(dest)


@pytest.fixture(scope="session")
def corpus_dir(corpus: tuple[Path, list[Fact]]) -> Path:
    return corpus[0]


@pytest.fixture(scope="session")
def corpus_facts(corpus: tuple[Path, list[Fact]]) -> list[Fact]:
    return corpus[1]


@pytest.fixture(scope="session")
def indexed(tmp_path_factory: pytest.TempPathFactory, corpus_dir: Path) -> Iterator[Appliance]:
    """An appliance that has ingested the whole fixture corpus (once per session)."""
    data = tmp_path_factory.mktemp("indexed-data")
    app = open_appliance(make_settings(data))
    app.ingest_report = app.ingest([corpus_dir])  # type: ignore[attr-defined]
    yield app
    app.close()


@pytest.fixture(params=[pytest.param("sqlite", marks=pytest.mark.unit),
                        pytest.param("postgresql", marks=pytest.mark.integration)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty metadata database: an SQLite file, then a real PostgreSQL database."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'metadata.db'}"
        return
    server: PostgresServer = request.getfixturevalue("postgres_server")
    url = server.new_database()
    yield url
    server.drop_database(url)


# The session's vLLM, shared by the e2e modules (imported last: tests/llm.py uses this module).
from llm import llm  # noqa: E402, F401
