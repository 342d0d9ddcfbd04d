"""What a hostile review of the API found, kept as tests: each failed before its fix."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from apiharness import PASSPHRASE, Api, api_settings, bearer
from fastapi.testclient import TestClient

from appliance.api import create_app
from generation import Sampling

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    root = tmp_path_factory.mktemp("attacks")
    docs = root / "docs"
    docs.mkdir()
    (docs / "a.txt").write_text("Security incidents go to the CERT team, extension 4242.")
    api = Api(api_settings(root))
    for name, role in (("alice", "reader"), ("carol", "reader"), ("edith", "editor"),
                       ("adam", "admin"), ("audrey", "auditor")):
        api.user(name, role)
    staff = api.group("staff", "alice", "carol", "edith")
    with api.rt.using() as app:
        app.ingest([docs], acl=(staff,))
    yield api
    api.close()


def _log(api: Api) -> list[dict[str, Any]]:
    lines = (api.settings.data_dir / "audit" / "log.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines]


def test_an_admin_cannot_become_a_reader_of_anything(api: Api) -> None:
    admin = api.principal("adam")
    from security import ForbiddenError, InvalidRequestError

    with pytest.raises(ForbiddenError):  # a token acting as carol would read as carol
        api.rt.identity.create_token(admin, "x", {"ask", "read"}, 1, user="carol")
    with pytest.raises(ForbiddenError):  # nor as an auditor
        api.rt.identity.create_token(admin, "x", {"audit"}, 1, user="audrey")
    with pytest.raises(InvalidRequestError, match="separation"):
        api.rt.identity.add_user(admin, "both", "x" * 16, {"admin", "reader"})
    with pytest.raises(InvalidRequestError, match="separation"):
        api.rt.identity.add_user(admin, "both", "x" * 16, {"auditor", "editor"})
    with pytest.raises(ForbiddenError):
        api.rt.identity.set_roles(admin, "adam", {"admin"})


def test_the_model_writing_does_not_hold_the_service(api: Api) -> None:
    """A slow (or abandoned) answer must not stall other requests: the runtime is held to
    retrieve and to record, not while the model writes. The model is held on purpose."""
    answerer = api.rt.appliance().answerer()
    real = answerer.generator
    writing, release = threading.Event(), threading.Event()

    class Held:
        model = real.model

        def stream(self, messages: list[dict[str, str]],
                   sampling: Sampling) -> Iterator[str]:
            writing.set()
            assert release.wait(60)
            yield "The CERT team [1]."

    answerer.generator = Held()  # type: ignore[assignment]
    token = bearer(api.token("alice", "ask", "read"))
    results: list[int] = []
    try:
        with api.client() as client:
            asking = threading.Thread(target=lambda: results.append(client.post(
                "/v1/ask", json={"question": "Where do security incidents go?"},
                headers=token).status_code))
            asking.start()
            assert writing.wait(60)
            found = client.post("/v1/search", json={"query": "CERT"}, headers=token)
            assert found.status_code == 200 and client.get("/v1/me", headers=token).json()
            release.set()
            asking.join(60)
    finally:
        release.set()
        answerer.generator = real
    assert results == [200]


def test_metrics_labels_stay_bounded(api: Api) -> None:
    with api.client() as client:
        for i in range(5):
            client.request(f"M{i}XYZ", "/healthz")
        text = client.get("/metrics").text
    assert "M0XYZ" not in text and 'method="OTHER"' in text


def test_a_truncated_upload_is_refused_and_leaves_nothing(api: Api) -> None:
    body = (b'--B\r\nContent-Disposition: form-data; name="file"; filename="cut.txt"\r\n'
            b"Content-Type: text/plain\r\n\r\ntruncated text body")
    with api.client() as client:
        response = client.post("/v1/documents", content=body, headers={
            **bearer(api.token("edith", "ingest", "read")),
            "Content-Type": "multipart/form-data; boundary=B"})
        assert response.status_code == 422, response.text
        listed = client.get("/v1/documents", params={"name": "cut"},
                            headers=bearer(api.token("edith", "read"))).json()
    assert listed["total"] == 0


def test_the_socket_operator_name_cannot_be_forged(api: Api) -> None:
    local = TestClient(create_app(api.rt, local_socket=True), base_url="http://x")
    with local:
        local.get("/v1/status", headers={"X-Greffier-Operator": "alice (token 6cd3)"})
        local.post("/v1/search", json={"query": "CERT"},
                   headers={"X-Greffier-Operator": "bob\x1b[31m"})
    last = _log(api)[-1]
    assert last["event"] == "search" and last["user"] == "root (local operator)"


def test_login_failures_reveal_nothing_and_log_no_secrets(api: Api) -> None:
    with api.client() as client:
        typed = client.post("/v1/auth/login", json={"name": "Tr0ub4dor&3-secret",
                                                    "password": "x"})
        assert typed.status_code == 401
        no_code = client.post("/v1/auth/login", json={
            "name": "audrey", "password": api.passwords["audrey"]})
        wrong = client.post("/v1/auth/login", json={"name": "audrey", "password": "nope"})
    assert no_code.status_code == wrong.status_code == 401
    assert no_code.json()["detail"] == wrong.json()["detail"]  # the password stays unknown
    text = (api.settings.data_dir / "audit" / "log.jsonl").read_text()
    assert "Tr0ub4dor" not in text and "(invalid name)" in text
    reasons = [str(e) for e in _log(api) if e["user"] == "audrey"]
    assert any("no code" in r for r in reasons)


def test_refusals_and_bad_tokens_are_audited(api: Api) -> None:
    with api.client() as client:
        assert client.get("/v1/users", headers=bearer(api.token("carol", "read"))
                          ).status_code == 403
        assert client.get("/v1/me", headers=bearer("gfr_0123456789abcdef_" + "A" * 43)
                          ).status_code == 401
    events = [(e["event"], e["user"]) for e in _log(api)]
    assert any(ev == "denied" and user.startswith("carol") for ev, user in events)
    assert ("token.failure", "(unknown)") in events


def test_sealing_ends_every_session(api: Api, tmp_path: Path) -> None:
    with api.client() as client:
        api.login(client, "carol")
        assert client.get("/v1/me").status_code == 200
        api.rt.seal(user="test")
        api.rt.unseal(__import__("conftest").KEKS, user="test")
        assert client.get("/v1/me").status_code == 401
    assert PASSPHRASE
