"""The REST API through the real app: every role, the error shapes, the guards."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path

import pytest
from apiharness import Api, api_settings, bearer
from fastapi.testclient import TestClient

from security import TrustedKeys, verify_receipt

pytestmark = pytest.mark.integration

DOCS = {
    "teletravail.txt": "Télétravail. Les salariés peuvent télétravailler deux jours par "
                       "semaine, après accord de leur responsable.",
    "security.txt": "Security incidents. Report any security incident to the CERT team "
                    "within one hour, by phone at extension 4242.",
}


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def api(request: pytest.FixtureRequest,
        tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    """The whole module runs on the embedded SQLite, then on a real PostgreSQL."""
    root = tmp_path_factory.mktemp("api")
    docs = root / "docs"
    docs.mkdir()
    for name, text in DOCS.items():
        (docs / name).write_text(text, encoding="utf-8")
    database = {}
    if request.param == "postgresql":
        database = {"url": request.getfixturevalue("postgres_server").new_database()}
    api = Api(api_settings(root, database=database))
    api.user("alice", "reader")
    api.user("bob", "reader")
    api.user("edith", "editor")
    api.user("adam", "admin")
    api.user("audrey", "auditor")
    staff = api.group("staff", "alice", "bob", "edith")
    with api.rt.using() as app:
        app.ingest([docs], acl=(staff,))
    yield api
    api.close()


@pytest.fixture(scope="module")
def tokens(api: Api) -> dict[str, str]:
    return {"alice": api.token("alice", "read", "ask"), "bob": api.token("bob", "read", "ask"),
            "edith": api.token("edith", "read", "ingest"), "adam": api.token("adam", "admin"),
            "audrey": api.token("audrey", "audit"),
            "alice-read": api.token("alice", "read")}


@pytest.fixture
def client(api: Api) -> Iterator[TestClient]:
    with api.client() as c:
        yield c


def _problem(response: object, status: int) -> dict[str, object]:
    assert response.status_code == status, response.text  # type: ignore[attr-defined]
    assert response.headers["content-type"].startswith(  # type: ignore[attr-defined]
        "application/problem+json")
    body: dict[str, object] = response.json()  # type: ignore[attr-defined]
    assert body["status"] == status and body["title"]
    assert "Traceback" not in response.text  # type: ignore[attr-defined]
    return body


# -- search, receipts ------------------------------------------------------------------
def test_search_returns_passages_and_a_receipt_the_asker_and_an_auditor_can_fetch(
        api: Api, client: TestClient, tokens: dict[str, str]) -> None:
    response = client.post("/v1/search", json={"query": "security incident", "k": 3},
                           headers=bearer(tokens["alice"]))
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["passages"][0]["document"] == "security.txt"
    assert "CERT" in body["passages"][0]["text"]
    answer_id = body["id"]
    receipt = client.get(f"/v1/answers/{answer_id}/receipt", headers=bearer(tokens["alice"]))
    assert receipt.status_code == 200
    document = receipt.json()
    assert document["id"] == answer_id and document["user"].startswith("alice")
    public = base64.b64decode(client.get("/v1/audit/head", headers=bearer(
        tokens["audrey"])).json()["public_key"])
    assert verify_receipt(document, TrustedKeys.of(public)) == (True, "valid")
    # another reader does not even learn it exists; an auditor reads it; an admin does not
    _problem(client.get(f"/v1/answers/{answer_id}/receipt", headers=bearer(tokens["bob"])), 404)
    assert client.get(f"/v1/answers/{answer_id}/receipt",
                      headers=bearer(tokens["audrey"])).status_code == 200
    assert client.get(f"/v1/answers/{answer_id}/receipt",
                      headers=bearer(tokens["adam"])).status_code in (403, 404)


@pytest.mark.parametrize("who", ["adam", "audrey"])
def test_admin_and_auditor_cannot_search(client: TestClient, tokens: dict[str, str],
                                         who: str) -> None:
    _problem(client.post("/v1/search", json={"query": "incident"}, headers=bearer(tokens[who])),
             403)


def test_search_needs_credentials(client: TestClient) -> None:
    body = _problem(client.post("/v1/search", json={"query": "incident"}), 401)
    assert "token" in str(body["hint"]).lower()
    _problem(client.post("/v1/search", json={"query": "x"},
                         headers=bearer("gfr_0123456789abcdef_" + "A" * 43)), 401)


def test_a_read_token_cannot_ask(client: TestClient, tokens: dict[str, str]) -> None:
    _problem(client.post("/v1/ask", json={"question": "incident?"},
                         headers=bearer(tokens["alice-read"])), 403)


def test_invalid_requests_are_problem_details(client: TestClient,
                                              tokens: dict[str, str]) -> None:
    auth = bearer(tokens["alice"])
    body = _problem(client.post("/v1/search", json={"query": ""}, headers=auth), 422)
    assert body["errors"]
    _problem(client.post("/v1/search", json={"query": "x", "k": 10_000}, headers=auth), 422)
    _problem(client.post("/v1/search", json={"query": "x", "evil": 1}, headers=auth), 422)
    _problem(client.post("/v1/search", content=b"{not json", headers=auth), 422)
    _problem(client.get("/v1/nowhere", headers=auth), 404)
    _problem(client.delete("/v1/search", headers=auth), 405)


def test_body_cap_answers_413(client: TestClient, tokens: dict[str, str]) -> None:
    big = "x" * (300 * 1024)
    _problem(client.post("/v1/search", json={"query": big}, headers=bearer(tokens["alice"])),
             413)


# -- documents -------------------------------------------------------------------------
def _wait(client: TestClient, job_id: str, auth: dict[str, str]) -> dict[str, object]:
    import time

    for _ in range(600):
        job: dict[str, object] = client.get(f"/v1/jobs/{job_id}", headers=auth).json()
        if job["state"] not in ("queued", "running"):
            return job
        time.sleep(0.1)
    raise AssertionError("the job did not finish")


def test_editor_uploads_downloads_and_erases_a_document(
        api: Api, client: TestClient, tokens: dict[str, str]) -> None:
    auth = bearer(tokens["edith"])
    original = b"Cantine. Le code de la cantine est QUOKKA-88."
    response = client.post("/v1/documents", headers=auth, params={"groups": ["staff"]},
                           files={"file": ("../../etc/cantine.txt", original, "text/plain")})
    assert response.status_code == 202, response.text
    job = _wait(client, response.json()["id"], auth)
    assert job["state"] == "done", job
    files = job["files"]
    assert isinstance(files, list) and files[0]["status"] == "indexed"
    doc_id = files[0]["doc_id"]
    meta = client.get(f"/v1/documents/{doc_id}", headers=auth).json()
    assert meta["name"] == "cantine.txt"  # the client's path is never used as a path
    listed = client.get("/v1/documents", params={"name": "cantine"}, headers=auth).json()
    assert [d["doc_id"] for d in listed["items"]] == [doc_id]
    download = client.get(f"/v1/documents/{doc_id}/content", headers=auth)
    assert download.status_code == 200 and download.content == original
    found = client.post("/v1/search", json={"query": "code cantine QUOKKA"},
                        headers=bearer(tokens["alice"])).json()
    assert any("QUOKKA" in p["text"] for p in found["passages"])
    # a reader may not erase; the editor gets a signed certificate
    _problem(client.delete(f"/v1/documents/{doc_id}", headers=bearer(tokens["alice"])), 403)
    erased = client.delete(f"/v1/documents/{doc_id}", headers=auth)
    assert erased.status_code == 200, erased.text
    assert erased.json()["certificate"]["signature"]
    _problem(client.get(f"/v1/documents/{doc_id}", headers=auth), 404)
    after = client.post("/v1/search", json={"query": "code cantine QUOKKA"},
                        headers=bearer(tokens["alice"])).json()
    assert not any("QUOKKA" in p["text"] for p in after["passages"])


def test_uploads_refused_with_clear_statuses(client: TestClient,
                                             tokens: dict[str, str]) -> None:
    auth = bearer(tokens["edith"])
    _problem(client.post("/v1/documents", headers=auth, content=b"hello",
                         ), 415)
    _problem(client.post("/v1/documents", headers=auth,
                         files={"file": ("tool.exe", b"MZ\x90\x00", "application/octet-stream")}),
             415)
    impostor = client.post("/v1/documents", headers=auth,
                           files={"file": ("report.pdf", b"<html>not a pdf</html>", "x/y")})
    assert impostor.status_code in (415, 422)
    _problem(impostor, impostor.status_code)
    _problem(client.post("/v1/documents", headers=auth,
                         files={"other": ("a.txt", b"x", "text/plain")}), 422)
    _problem(client.post("/v1/documents", headers=bearer(tokens["alice"]),
                         files={"file": ("a.txt", b"hello there", "text/plain")}), 403)


def test_upload_over_the_cap_is_413(tmp_path: Path) -> None:
    api = Api(api_settings(tmp_path, api={"max_upload_mb": 1}))
    try:
        api.user("edith", "editor")
        token = api.token("edith", "ingest")
        with api.client() as client:
            _problem(client.post("/v1/documents", headers=bearer(token), files={
                "file": ("big.txt", b"a" * (1024 * 1024 + 10), "text/plain")}), 413)
    finally:
        api.close()


# -- audit -----------------------------------------------------------------------------
def test_auditor_reads_and_verifies_the_log_without_content(
        client: TestClient, tokens: dict[str, str]) -> None:
    auth = bearer(tokens["audrey"])
    client.post("/v1/search", json={"query": "secret words zanzibar"},
                headers=bearer(tokens["alice"]))
    verified = client.post("/v1/audit/verify", headers=auth).json()
    assert verified["ok"] is True and verified["entries"] > 5
    page = client.get("/v1/audit/entries", params={"limit": 1000}, headers=auth)
    assert page.status_code == 200
    assert "zanzibar" not in page.text  # questions stay sealed in the log
    events = [e["event"] for e in page.json()["items"]]
    assert "search" in events and "token.use" in events
    _problem(client.get("/v1/audit/head", headers=bearer(tokens["alice"])), 403)
    _problem(client.get("/v1/audit/entries", headers=bearer(tokens["adam"])), 403)


# -- sessions --------------------------------------------------------------------------
def test_session_cookie_flags_csrf_and_fixation(api: Api) -> None:
    with api.client() as client:
        response = client.post("/v1/auth/login", json={
            "name": "alice", "password": api.passwords["alice"]})
        assert response.status_code == 200, response.text
        cookie = response.headers["set-cookie"]
        assert cookie.startswith("__Host-greffier-session=")
        for flag in ("Secure", "HttpOnly", "SameSite=strict", "Path=/"):
            assert flag.lower() in cookie.lower()
        csrf = response.json()["csrf_token"]
        first = client.cookies.get("__Host-greffier-session")
        assert client.get("/v1/me").json()["name"] == "alice"
        # a change without the CSRF header is refused; with it, it passes
        _problem(client.post("/v1/search", json={"query": "incident"}), 403)
        assert client.post("/v1/search", json={"query": "incident"},
                           headers={"X-CSRF-Token": csrf}).status_code == 200
        # a new login gives a new session id; the old one no longer works after logout
        again = client.post("/v1/auth/login", json={
            "name": "alice", "password": api.passwords["alice"]})
        second = client.cookies.get("__Host-greffier-session")
        assert second and second != first
        client.post("/v1/auth/logout", headers={"X-CSRF-Token": again.json()["csrf_token"]})
    with api.client() as stale:
        stale.cookies.set("__Host-greffier-session", str(second))
        _problem(stale.get("/v1/me"), 401)
        stale.cookies.set("__Host-greffier-session", str(first))
        assert stale.get("/v1/me").status_code == 200  # the first session is its own


def test_admin_login_needs_the_second_factor(api: Api) -> None:
    api.user("adele", "admin")
    with api.client() as client:
        body = _problem(client.post("/v1/auth/login", json={
            "name": "adele", "password": api.passwords["adele"]}), 401)
        assert "code" in str(body["detail"]).lower()
        _problem(client.post("/v1/auth/login", json={
            "name": "adele", "password": api.passwords["adele"], "totp": "000000"}), 401)
        api.login(client, "adele")
        assert client.get("/v1/me").json()["roles"] == ["admin"]


def test_lockout_after_repeated_failures(api: Api) -> None:
    api.user("lou", "reader")
    with api.client() as client:
        for _ in range(api.settings.identity.lockout_after):
            _problem(client.post("/v1/auth/login", json={"name": "lou", "password": "nope"}),
                     401)
        locked = client.post("/v1/auth/login", json={
            "name": "lou", "password": api.passwords["lou"]})
        _problem(locked, 429)
        assert int(locked.headers["retry-after"]) > 0


def test_tokens_revoked_and_admin_separation(api: Api, client: TestClient,
                                             tokens: dict[str, str]) -> None:
    token = api.token("bob", "read")
    auth = bearer(token)
    listed = client.get("/v1/tokens", headers=auth).json()
    assert token not in str(listed)
    mine = [t for t in listed if t["name"] == "bob-read"]
    assert client.delete(f"/v1/tokens/{mine[0]['id']}", headers=auth).status_code == 204
    _problem(client.post("/v1/search", json={"query": "x"}, headers=auth), 401)
    # admin and auditor are two duties
    body = _problem(client.post("/v1/users", headers=bearer(tokens["adam"]), json={
        "name": "both", "password": "x" * 16, "roles": ["admin", "auditor"]}), 422)
    assert "separation" in str(body["detail"]).lower()
    _problem(client.post("/v1/users", headers=bearer(tokens["alice"]), json={
        "name": "eve", "password": "x" * 16, "roles": ["reader"]}), 403)


def test_admin_cannot_read_a_conversation(api: Api, client: TestClient,
                                          tokens: dict[str, str]) -> None:
    # no model service runs here: the answer degrades to passages, and is still kept
    asked = client.post("/v1/ask", json={"question": "How do I report a security incident?"},
                        headers=bearer(tokens["alice"]))
    assert asked.status_code == 200, asked.text
    conv = asked.json()["conversation_id"]
    assert conv
    mine = client.get(f"/v1/conversations/{conv}", headers=bearer(tokens["alice"]))
    assert mine.status_code == 200 and "security incident" in mine.text
    as_admin = client.get(f"/v1/conversations/{conv}", headers=bearer(tokens["adam"]))
    _problem(as_admin, as_admin.status_code)
    assert as_admin.status_code in (403, 404) and "security incident" not in as_admin.text
    _problem(client.get(f"/v1/conversations/{conv}", headers=bearer(tokens["bob"])), 404)


# -- the guards ------------------------------------------------------------------------
def test_security_headers_and_closed_cors(client: TestClient) -> None:
    response = client.get("/healthz", headers={"Origin": "https://evil.example"})
    assert response.text == "ok"
    headers = response.headers
    assert headers["x-content-type-options"] == "nosniff"
    assert "frame-ancestors 'none'" in headers["content-security-policy"]
    assert headers["referrer-policy"] == "no-referrer"
    assert "server" not in headers
    assert "access-control-allow-origin" not in headers
    preflight = client.options("/v1/search", headers={
        "Origin": "https://evil.example", "Access-Control-Request-Method": "POST"})
    assert "access-control-allow-origin" not in preflight.headers


def test_metrics_name_routes(client: TestClient, tokens: dict[str, str]) -> None:
    client.post("/v1/search", json={"query": "incident"}, headers=bearer(tokens["alice"]))
    text = client.get("/metrics").text
    assert 'greffier_http_request_duration_seconds_bucket{method="POST",route="/v1/search"' \
        in text
    assert "greffier_sealed 0" in text


def test_rate_limit_per_user_answers_429_with_retry_after(api: Api) -> None:
    from appliance.api._limits import RateLimiter

    token = api.token("bob", "read")
    with api.client() as client:
        client.app.state.per_user = RateLimiter(3)  # type: ignore[attr-defined]
        try:
            statuses = [client.get("/v1/documents", headers=bearer(token)).status_code
                        for _ in range(5)]
        finally:
            client.app.state.per_user = RateLimiter(100_000)  # type: ignore[attr-defined]
    assert statuses[:3] == [200, 200, 200] and statuses[3:] == [429, 429]


# -- sealed ----------------------------------------------------------------------------
def test_sealed_appliance_answers_503_and_unseals_over_the_api(tmp_path: Path) -> None:
    from apiharness import PASSPHRASE

    settings = api_settings(tmp_path)
    Api(settings).close()  # initialise
    api = Api(settings, unseal=False)
    try:
        with api.client() as client:
            assert client.get("/healthz").status_code == 200
            assert client.get("/readyz").status_code == 503
            _problem(client.post("/v1/search", json={"query": "x"}), 503)
            _problem(client.post("/v1/unseal", json={"passphrase": "wrong one"}), 401)
            assert client.post("/v1/unseal", json={"passphrase": PASSPHRASE}).status_code == 204
            assert client.get("/readyz").text == "ready"
            _problem(client.post("/v1/unseal", json={"passphrase": PASSPHRASE}), 409)
    finally:
        api.close()


def test_searches_go_on_while_an_upload_is_being_parsed(
        api: Api, client: TestClient, tokens: dict[str, str]) -> None:
    """The ingest job lets go of the runtime while its file is parsed (OCR can take
    minutes): a search answers meanwhile. The parse is held open on purpose."""
    import threading

    worker = api.rt.appliance().indexer.worker
    real_parse = worker.parse
    parsing, release = threading.Event(), threading.Event()

    def held_parse(*args: object, **kwargs: object) -> object:
        parsing.set()
        assert release.wait(60)
        return real_parse(*args, **kwargs)  # type: ignore[arg-type]

    worker.parse = held_parse  # type: ignore[method-assign]
    try:
        auth = bearer(tokens["edith"])
        started = client.post("/v1/documents", headers=auth, files={
            "file": ("slow.txt", b"Slow document about walruses.", "text/plain")})
        assert started.status_code == 202
        assert parsing.wait(60)
        found = client.post("/v1/search", json={"query": "security incident"},
                            headers=bearer(tokens["alice"]))
        assert found.status_code == 200 and found.json()["passages"]
        assert client.get(f"/v1/jobs/{started.json()['id']}",
                          headers=auth).json()["state"] == "running"
        release.set()
        assert _wait(client, started.json()["id"], auth)["state"] == "done"
    finally:
        release.set()
        worker.parse = real_parse  # type: ignore[method-assign]
