"""The egress guard and hashing."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

import security
from security import NetworkForbiddenError, sha256_file, sha256_text

pytestmark = pytest.mark.unit


def test_guard_blocks_outbound_connections_and_records_them() -> None:
    before = len(security.blocked_attempts())
    with pytest.raises(NetworkForbiddenError, match=r"203\.0\.113\.7"):
        socket.create_connection(("203.0.113.7", 443), timeout=1)
    with pytest.raises(NetworkForbiddenError, match=r"pypi\.org"):
        socket.getaddrinfo("pypi.org", 443)
    attempts = security.blocked_attempts()[before:]
    assert len(attempts) == 2
    # Drop these two deliberate attempts from the record the session checks at its end.
    del security._egress._GUARD.attempts[before:]


def test_guard_lets_loopback_through() -> None:
    before = len(security.blocked_attempts())
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        with socket.create_connection(server.getsockname(), timeout=1) as client:
            peer, _ = server.accept()
            with peer:
                client.sendall(b"ping")
                assert peer.recv(4) == b"ping"  # the connection really carries data
    assert len(security.blocked_attempts()) == before  # and nothing was recorded as blocked


def test_unstructured_telemetry_is_caught_if_the_opt_out_is_missing(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Proof the guard sees the real phone-home path: unstructured's analytics ping."""
    from unstructured.utils import scarf_analytics

    monkeypatch.delenv("DO_NOT_TRACK", raising=False)
    monkeypatch.delenv("SCARF_NO_ANALYTICS", raising=False)
    before = len(security.blocked_attempts())
    scarf_analytics()  # unstructured swallows the error; the guard still records it
    attempts = security.blocked_attempts()[before:]
    assert attempts and "packages.unstructured.io" in attempts[0]
    del security._egress._GUARD.attempts[before:]


def test_hashes_are_sha256(tmp_path: Path) -> None:
    path = tmp_path / "f"
    path.write_bytes(b"abc")
    expected = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    assert sha256_file(path) == expected
    assert sha256_text("abc") == expected
