"""``greffier serve`` as a real process: uvicorn on 127.0.0.1 with TLS, the CLI beside it
over the peer-checked Unix socket, sealed start and unseal over the API, clean stop."""

from __future__ import annotations

import json
import signal
import socket
import ssl
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from clirun import GREFFIER, _env, _init, _run

pytestmark = pytest.mark.e2e


class Served:
    def __init__(self, data: Path, env: dict[str, str]) -> None:
        self.data = data
        self.env = env
        self.proc = subprocess.Popen([*GREFFIER, "serve", "--port", "0"], env=env,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            self._connect(data)
        except BaseException:
            self.proc.kill()  # never leave a server behind a failed start
            self.proc.wait()
            raise

    def _connect(self, data: Path) -> None:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        assert line.startswith("ready "), line + (self.proc.stderr.read()
                                                  if self.proc.stderr else "")
        self.url = line.split()[1]
        self.announce = line
        self.client = httpx.Client(base_url=self.url, timeout=60, verify=ssl.create_default_context(
            cafile=str(data / "tls" / "cert.pem")))

    def stop(self) -> tuple[int, str]:
        self.client.close()
        self.proc.send_signal(signal.SIGTERM)
        _out, err = self.proc.communicate(timeout=60)
        return self.proc.returncode, err


def _entries(data: Path) -> list[dict[str, object]]:
    lines = (data / "audit" / "log.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines]


@pytest.fixture
def data(tmp_path: Path) -> Iterator[Path]:
    data = tmp_path / "data"
    _init(data)
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "incident.txt").write_text("Security incidents are reported to the CERT team "
                                       "within one hour, at extension 4242.")
    _run(["ingest", str(docs)], data)
    yield data


def _closed_port() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return str(sock.getsockname()[1])


def test_https_service_and_the_cli_beside_it(data: Path) -> None:
    env = _env(data)
    env["GREFFIER_LLM__PORT"] = _closed_port()  # no model service: answers degrade
    server = Served(data, env)
    try:
        assert server.url.startswith("https://127.0.0.1:")
        health = server.client.get("/healthz")
        assert health.text == "ok"
        assert health.headers["strict-transport-security"].startswith("max-age=")
        assert server.client.get("/readyz").text == "ready"
        # the CLI goes through the socket (the server holds the data directory)
        added = _run(["users", "add", "alice", "--role", "reader"], data)
        assert "created alice" in added.stdout
        token = _run(["tokens", "create", "--user", "alice", "--name", "script",
                      "--scope", "read"], data).stdout.strip().splitlines()[0]
        assert token.startswith("gfr_")
        found = server.client.post("/v1/search", json={"query": "security incident"},
                                   headers={"Authorization": f"Bearer {token}"})
        # What the operator ingested is his alone until an admin grants it.
        assert found.status_code == 200 and "4242" not in found.text
        cli_search = _run(["search", "security incident", "--json"], data)
        assert "4242" in cli_search.stdout
        assert json.loads(_run(["status", "--json"], data).stdout)["documents"] == 1
        asked = json.loads(_run(["ask", "How are security incidents reported?", "--json"],
                                data).stdout)
        assert asked["degraded"] and any("4242" in p["text"] for p in asked["passages"])
        doc_id = json.loads(cli_search.stdout)["passages"][0]["doc_id"]
        _run(["users", "add", "adam", "--role", "admin"], data)
        admin = _run(["tokens", "create", "--user", "adam", "--name", "ops", "--scope",
                      "admin"], data).stdout.strip().splitlines()[0]
        granted = server.client.put(f"/v1/documents/{doc_id}/access", json={"users": ["alice"]},
                                    headers={"Authorization": f"Bearer {admin}"})
        assert granted.status_code == 200, granted.text
        found = server.client.post("/v1/search", json={"query": "security incident"},
                                   headers={"Authorization": f"Bearer {token}"})
        assert found.status_code == 200 and "4242" in found.text
        cli_search = _run(["search", "security incident", "--json"], data)
        assert "4242" not in cli_search.stdout  # the operator is no longer among its readers
        refused = _run(["ingest", str(data.parent / "docs")], data, check=False)
        assert refused.returncode == 2
        assert "greffier serve" in refused.stderr and "is running" in refused.stderr
        # only the server's own user may use the socket: another user is refused
        probe = subprocess.run(
            ["runuser", "-u", "nobody", "--", "python3", "-c",
             "import socket,sys; s=socket.socket(socket.AF_UNIX); "
             f"s.connect({str(data / 'greffier.sock')!r}); s.sendall(b'GET /healthz HTTP/1.1"
             "\\r\\nHost: x\\r\\n\\r\\n'); sys.stdout.write(repr(s.recv(100)))"],
            capture_output=True, text=True, timeout=30)
        assert "200 OK" not in probe.stdout
        code, err = server.stop()
        assert code == 0, err
    finally:
        if server.proc.poll() is None:
            server.proc.kill()
    operator_events = {str(e["event"]) for e in _entries(data)
                       if "(local operator)" in str(e["user"])}
    assert {"user.add", "token.create", "search", "ask"} <= operator_events, operator_events
    assert _entries(data)[-1]["event"] == "seal"
    assert not (data / "greffier.sock").exists()


def test_starts_sealed_and_unseals_over_the_api(data: Path) -> None:
    env = {k: v for k, v in _env(data).items() if k != "GREFFIER_PASSPHRASE_FILE"}
    env["GREFFIER_API__PLAIN_HTTP"] = "true"
    server = Served(data, env)
    try:
        client = httpx.Client(base_url=server.url, timeout=60)
        assert server.url.startswith("http://127.0.0.1:") and "sealed" in server.announce
        assert client.get("/readyz").status_code == 503
        sealed = client.post("/v1/search", json={"query": "x"})
        assert sealed.status_code == 503
        assert sealed.headers["content-type"] == "application/problem+json"
        secret = (data.parent / f"{data.name}.passphrase").read_text().strip()
        assert client.post("/v1/unseal", json={"passphrase": "not it"}).status_code == 401
        assert client.post("/v1/unseal", json={"passphrase": secret}).status_code == 204
        assert client.get("/readyz").status_code == 200
        client.close()
        code, err = server.stop()
        assert code == 0, err
    finally:
        if server.proc.poll() is None:
            server.proc.kill()


def test_plain_http_refused_off_loopback(data: Path) -> None:
    env = _env(data)
    env["GREFFIER_API__PLAIN_HTTP"] = "true"
    env["GREFFIER_API__HOST"] = "0.0.0.0"
    result = _run(["serve"], data, env=env, check=False)
    assert result.returncode == 2
    assert "plain_http" in result.stderr and "loopback" in result.stderr
