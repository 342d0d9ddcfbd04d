"""Single sign-on against a real OpenID provider, Glewlwyd (tests/glewlwyd.py), through the
real app: the authorization code flow with PKCE, state and nonce, driven over HTTP (sign-in
at the provider, its redirect, the callback); the account, its groups and roles created
then updated; the session on /v1/me and /v1/search scoped to the provider's groups; and
the refusals (each audited): a forged, expired or wrongly addressed ID token, a replayed
state, a missing or foreign state cookie, a wrong nonce, a disabled account, a name held
by a local account."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlparse

import httpx
import pytest
from apiharness import Api, api_settings, bearer
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi.testclient import TestClient
from glewlwyd import CLIENT, CLIENT_SECRET, OTHER_CLIENT, REDIRECT_URI, Glewlwyd, glewlwyd  # noqa: F401
from joserfc import jwt
from joserfc.jwk import RSAKey
from sqlalchemy import select

from appliance import load_settings
from appliance.db import User
from appliance.service._oidc_provider import TokenRefused
from security import ConfigError

pytestmark = pytest.mark.integration
BROWSER_COOKIE, CSRF_COOKIE = "__Host-greffier-oidc", "__Host-greffier-csrf"


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory, glewlwyd: Glewlwyd,  # noqa: F811
        ) -> Iterator[Api]:
    oidc = {"issuer": glewlwyd.issuer, "client_id": CLIENT, "redirect_url": REDIRECT_URI,
            "roles": {"redaction": ["editor"]}}
    api = Api(api_settings(tmp_path_factory.mktemp("sso"), oidc=oidc))
    api.user("root-admin", "admin")  # the break-glass local admin
    api.user("lena", "reader")  # a local reader
    yield api
    api.close()


@pytest.fixture(autouse=True)
def secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GREFFIER_OIDC_SECRET", CLIENT_SECRET)


@pytest.fixture(scope="module")
def admin(api: Api) -> dict[str, str]:
    return bearer(api.token("root-admin", "admin"))


def _start(client: TestClient, next_path: str | None = None) -> str:
    """GET /v1/auth/oidc/login: the provider's authorization URL (cookie kept in client)."""
    response = client.get("/v1/auth/oidc/login", params={"next": next_path} if next_path
                          else {}, follow_redirects=False)
    assert response.status_code == 302, response.text
    assert client.cookies.get(BROWSER_COOKIE)
    location: str = response.headers["location"]
    return location


def _at_provider(glewlwyd: Glewlwyd, name: str, url: str) -> dict[str, str]:  # noqa: F811
    """The user signs in at the provider, which redirects back: the callback's query."""
    browser = glewlwyd.sign_in(name)
    try:
        back = glewlwyd.authorize(browser, url)
    finally:
        browser.close()
    assert back.startswith(REDIRECT_URI), back
    return {k: v[0] for k, v in parse_qs(urlparse(back).query).items()}


def _callback(client: TestClient, query: dict[str, str]) -> httpx.Response:
    return client.get("/v1/auth/oidc/callback",
                      params={k: query[k] for k in ("state", "code") if k in query})


def _sso(api: Api, glewlwyd: Glewlwyd, name: str,  # noqa: F811
         next_path: str | None = None) -> tuple[TestClient, dict[str, str]]:
    client = api.client()
    response = _callback(client, _at_provider(glewlwyd, name, _start(client, next_path)))
    assert response.status_code == 200, response.text
    return client, {"X-CSRF-Token": client.cookies[CSRF_COOKIE]}


def _entries(api: Api, event: str) -> list[dict[str, Any]]:
    lines = (api.settings.data_dir / "audit" / "log.jsonl").read_text().splitlines()
    return [e for e in map(json.loads, lines) if e["event"] == event]


def _refusals(api: Api) -> list[str]:
    return [e["details"]["reason"] for e in _entries(api, "login.failure")
            if e["details"].get("via") == "oidc"]


def _account(api: Api, name: str) -> User | None:
    with api.rt.identity.db.session() as s:
        user = s.scalars(select(User).where(User.name == name)).first()
        s.expunge_all()
    return user


# -- the flow ---------------------------------------------------------------------------------
def test_methods_are_public_and_say_sso_is_offered(api: Api) -> None:
    with api.client() as client:
        body = client.get("/v1/auth/methods").json()
    assert body == {"password": True, "sso": True, "sso_login": "/v1/auth/oidc/login"}


def test_the_authorization_request_uses_pkce_state_and_nonce(api: Api) -> None:
    with api.client() as client:
        url = _start(client)
    query = {k: v[0] for k, v in parse_qs(urlparse(url).query).items()}
    assert url.startswith(api.settings.oidc.issuer + "/auth?")
    assert query["code_challenge_method"] == "S256" and len(query["code_challenge"]) == 43
    assert query["response_type"] == "code" and query["client_id"] == CLIENT
    assert len(query["state"]) >= 40 and len(query["nonce"]) >= 40
    assert query["scope"].split() == ["openid", "profile"]
    for bad in ("https://evil.example/", "//evil.example/x", "x", "/\\evil"):
        with api.client() as client:
            response = client.get("/v1/auth/oidc/login", params={"next": bad},
                                  follow_redirects=False)
            assert response.status_code == 422, bad


def test_an_account_is_created_with_its_groups_and_roles_then_updated(
        api: Api, glewlwyd: Glewlwyd, admin: dict[str, str], tmp_path: Path) -> None:  # noqa: F811
    name = glewlwyd.user("ines", ["redaction", "Ressources Humaines"])
    client, csrf = _sso(api, glewlwyd, name, "/search?q=1")
    with client:
        me = client.get("/v1/me").json()
        assert me["name"] == name and me["via"] == "session"
        assert me["groups"] == ["redaction", "ressources-humaines"]
        assert me["roles"] == ["editor"]  # redaction → editor
        user = _account(api, name)
        assert user is not None and user.origin == "oidc"
        assert user.external_id == f"{glewlwyd.issuer} " + _sub(api, name)
        # A document readable by the provider's group only: found through the session.
        groups = {g["name"]: g["id"] for g in client.get(
            "/v1/groups", headers=admin, params={"limit": 500}).json()["items"]}
        (tmp_path / "rh").mkdir()
        (tmp_path / "rh" / "grille.txt").write_text("Grille des salaires: code QZ-5512.")
        with api.rt.using() as app:
            app.ingest([tmp_path / "rh"], acl=(f"g:{groups['ressources-humaines']}",))
        hits = client.post("/v1/search", headers=csrf, json={"query": "code QZ",
                                                             "mode": "bm25"})
        assert hits.status_code == 200, hits.text
        assert {p["document"] for p in hits.json()["passages"]} == {"grille.txt"}
        assert client.post("/v1/search", json={"query": "x"}).status_code == 403  # CSRF
    # The provider takes him out of both groups: the next sign-in follows.
    glewlwyd.set_user(name, groups=["compta"])
    client, csrf = _sso(api, glewlwyd, name)
    with client:
        me = client.get("/v1/me").json()
        assert me["groups"] == ["compta"] and me["roles"] == ["reader"]
        hits = client.post("/v1/search", headers=csrf, json={"query": "code QZ",
                                                             "mode": "bm25"})
        assert hits.json()["passages"] == []
    logins = [e for e in _entries(api, "login") if e["user"] == name]
    assert len(logins) == 2 and all(e["details"]["via"] == "oidc" for e in logins)
    assert any(e["details"].get("to") == ["reader"] for e in _entries(api, "user.roles"))
    removed = [e["details"]["group"] for e in _entries(api, "group.member.remove")
               if e["details"]["member"] == name]
    assert sorted(removed) == ["redaction", "ressources-humaines"]
    log = (api.settings.data_dir / "audit" / "log.jsonl").read_text()
    assert "eyJ" not in log  # no token, ID token or code in the audit log


def test_logout_ends_the_session_and_names_the_provider_s_logout(
        api: Api, glewlwyd: Glewlwyd) -> None:  # noqa: F811
    client, csrf = _sso(api, glewlwyd, glewlwyd.user("omar", []))
    with client:
        out = client.post("/v1/auth/oidc/logout", headers=csrf)
        assert out.status_code == 200, out.text
        assert out.json()["end_session_url"].startswith(glewlwyd.issuer + "/end_session?")
        assert client.get("/v1/me").status_code == 401


# -- refusals ---------------------------------------------------------------------------------
def test_a_replayed_state_is_refused(api: Api, glewlwyd: Glewlwyd) -> None:  # noqa: F811
    client = api.client()
    with client:
        query = _at_provider(glewlwyd, glewlwyd.user("rita", []), _start(client))
        assert _callback(client, query).status_code == 200
        again = _callback(client, query)
    assert again.status_code == 401 and again.json()["title"]
    assert _refusals(api)[-1] == "unknown, expired or already used state"


@pytest.mark.parametrize("cookie", [None, "another browser's value"])
def test_a_missing_or_foreign_state_cookie_is_refused(
        api: Api, glewlwyd: Glewlwyd, cookie: str | None) -> None:  # noqa: F811
    with api.client() as starter:
        query = _at_provider(glewlwyd, glewlwyd.user("sam", []), _start(starter))
    with api.client() as other:  # the code reaches another browser (login CSRF, stolen URL)
        if cookie:
            other.cookies.set(BROWSER_COOKIE, cookie)
        response = _callback(other, query)
    assert response.status_code == 401
    assert _refusals(api)[-1].startswith("state not issued to this browser")


def test_a_wrong_nonce_is_refused(api: Api, glewlwyd: Glewlwyd) -> None:  # noqa: F811
    from dataclasses import replace

    client = api.client()
    with client:
        query = _at_provider(glewlwyd, glewlwyd.user("tom", []), _start(client))
        pending = api.rt.sso.pending[query["state"]]
        api.rt.sso.pending[query["state"]] = replace(pending, nonce="another sign-in's")
        assert _callback(client, query).status_code == 401
    assert _refusals(api)[-1] == "ID token nonce does not match this sign-in"


def test_a_disabled_account_is_refused(api: Api, glewlwyd: Glewlwyd,  # noqa: F811
                                       admin: dict[str, str]) -> None:
    name = glewlwyd.user("ugo", [])
    client, _csrf = _sso(api, glewlwyd, name)
    client.close()
    with api.client() as c:
        assert c.post(f"/v1/users/{name}/disable", headers=admin).status_code == 200
        response = _callback(c, _at_provider(glewlwyd, name, _start(c)))
    assert response.status_code == 401
    assert _refusals(api)[-1] == "account disabled"


def test_a_local_account_s_name_is_never_taken_over(api: Api, glewlwyd: Glewlwyd,  # noqa: F811
                                                    ) -> None:
    name = glewlwyd.user("vera", ["redaction"], nick="lena")  # lena is a local reader
    with api.client() as client:
        response = _callback(client, _at_provider(glewlwyd, name, _start(client)))
    assert response.status_code == 401
    assert _refusals(api)[-1] == "the name lena belongs to a local account here"
    lena = _account(api, "lena")
    assert lena is not None and lena.origin == "local" and lena.roles == "reader"


def test_an_admin_without_a_second_factor_at_the_provider_is_refused(
        api: Api, glewlwyd: Glewlwyd) -> None:  # noqa: F811
    name = glewlwyd.user("xavi", ["chefs"])
    settings = api.rt.settings
    api.rt.settings = settings.model_copy(update={"oidc": settings.oidc.model_copy(
        update={"roles": {"chefs": ["admin"]}})})
    try:
        with api.client() as client:
            response = _callback(client, _at_provider(glewlwyd, name, _start(client)))
    finally:
        api.rt.settings = settings
    assert response.status_code == 401  # Glewlwyd's amr here is ["session"]
    assert _refusals(api)[-1].startswith("admins and auditors need a second factor")
    assert _account(api, name) is None  # nothing was created


def test_an_unreachable_provider_answers_503_and_local_sign_in_still_works(
        api: Api, glewlwyd: Glewlwyd) -> None:  # noqa: F811
    from appliance.service._oidc import SsoState

    settings, sso = api.rt.settings, api.rt.sso
    dead = f"http://127.0.0.1:{_dead_port()}/api/oidc"
    api.rt.settings = settings.model_copy(update={"oidc": settings.oidc.model_copy(
        update={"issuer": dead})})
    api.rt.sso = SsoState()
    try:
        with api.client() as client:
            response = client.get("/v1/auth/oidc/login", follow_redirects=False)
            assert response.status_code == 503, response.text
            assert response.json()["type"].endswith("/sso-unavailable")
            assert dead in response.json()["hint"]
            api.login(client, "lena")  # the local reader signs in as always
    finally:
        api.rt.settings, api.rt.sso = settings, sso


def test_forged_expired_and_misaddressed_id_tokens_are_refused(
        api: Api, glewlwyd: Glewlwyd) -> None:  # noqa: F811
    provider = api.rt.sso.provider(api.rt)
    real, kid = _real_claims(api, glewlwyd), _kid(api)
    assert provider.validate(_sign(glewlwyd.signing_key, real, kid), "n-1")["sub"] == real["sub"]
    cases = {
        "forged": (_sign(rsa.generate_private_key(public_exponent=65537, key_size=2048),
                         real, kid), "ID token signature or form refused"),
        "expired": (_sign(glewlwyd.signing_key, {**real, "exp": time.time() - 120,
                                                  "iat": time.time() - 400}, kid),
                    "ID token expired"),
        "other issuer": (_sign(glewlwyd.signing_key, {**real, "iss": "http://127.0.0.1:1/x"}, kid),
                         "ID token from another issuer"),
        "azp": (_sign(glewlwyd.signing_key, {**real, "aud": [CLIENT, OTHER_CLIENT],
                                             "azp": OTHER_CLIENT}, kid),
                "ID token authorized for another party (azp)"),
        "none": (_unsigned(real), "ID token signature or form refused"),
    }
    for label, (token, reason) in cases.items():
        with pytest.raises(TokenRefused) as refused:
            provider.validate(token, "n-1")
        assert refused.value.reason.startswith(reason), label
    # A real token the provider issued to another client: wrong audience.
    other = _issue(glewlwyd, OTHER_CLIENT, "n-2")
    with pytest.raises(TokenRefused) as refused:
        provider.validate(other, "n-2")
    assert refused.value.reason == "ID token for another audience"


def test_unsafe_sso_settings_are_refused(tmp_path: Path) -> None:
    base = {"client_id": "c", "redirect_url": "https://greffier.example/v1/auth/oidc/callback"}
    for issuer in ("http://sso.example.org/realm", "ftp://sso.example.org"):
        with pytest.raises(ConfigError, match=r"oidc\.issuer"):
            load_settings(None, data_dir=tmp_path, oidc={**base, "issuer": issuer})
    with pytest.raises(ConfigError, match="algorithms"):
        load_settings(None, data_dir=tmp_path, oidc={**base, "issuer": "https://sso.example",
                                                     "algorithms": ["HS256"]})
    with pytest.raises(ConfigError, match="algorithms"):
        load_settings(None, data_dir=tmp_path, oidc={**base, "issuer": "https://sso.example",
                                                     "algorithms": ["none"]})
    assert not load_settings(None, data_dir=tmp_path).oidc.enabled


def test_the_client_secret_comes_from_an_owner_only_file(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from appliance._oidc_settings import client_secret

    path = tmp_path / "oidc-secret"
    path.write_text("s3cret from a file\n")
    path.chmod(0o600)
    monkeypatch.delenv("GREFFIER_OIDC_SECRET")
    monkeypatch.setenv("GREFFIER_OIDC_SECRET_FILE", str(path))
    assert client_secret() == "s3cret from a file"
    path.chmod(0o644)
    with pytest.raises(ConfigError):
        client_secret()
    monkeypatch.delenv("GREFFIER_OIDC_SECRET_FILE")
    with pytest.raises(ConfigError, match="client secret"):
        client_secret()


def test_a_new_provider_key_is_fetched_when_a_token_names_an_unknown_kid(
        api: Api, glewlwyd: Glewlwyd) -> None:  # noqa: F811
    """(Last: it rotates the provider's key.) The keys are cached; an unknown kid refetches
    them, at most every 30 s; a token whose kid is still unknown is refused."""
    from appliance.service._oidc import SsoState
    from appliance.service._oidc_provider import Provider

    now = [time.time()]
    provider = Provider(api.rt.settings.oidc, clock=lambda: now[0])
    old = str(provider.keys().keys[0].kid)
    glewlwyd.rotate_key()
    api.rt.sso = SsoState()  # the app's own cache starts afresh for the rest
    token = _issue(glewlwyd, CLIENT, "n-3")
    with pytest.raises(TokenRefused):  # refetched less than 30 s ago: not yet
        provider.validate(token, "n-3")
    now[0] += 31
    assert provider.validate(token, "n-3")["nonce"] == "n-3"  # refetched, found
    assert str(provider.keys().keys[0].kid) != old
    now[0] += 31
    stranger = _sign(rsa.generate_private_key(public_exponent=65537, key_size=2048),
                     _real_claims(api, glewlwyd), kid="not-a-kid-of-the-provider")
    with pytest.raises(TokenRefused):
        provider.validate(stranger, "n-1")
    client, _csrf = _sso(api, glewlwyd, glewlwyd.user("yann", []))  # the full flow again
    client.close()


# -- helpers ----------------------------------------------------------------------------------
def _dead_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _sub(api: Api, name: str) -> str:
    user = _account(api, name)
    assert user is not None and user.external_id
    return user.external_id.rsplit(" ", 1)[1]


def _issue(glewlwyd: Glewlwyd, client_id: str, nonce: str) -> str:  # noqa: F811
    """A real ID token from the provider, for ``client_id`` (code flow, no PKCE)."""
    name = glewlwyd.user("wendy", [])
    browser = glewlwyd.sign_in(name, client_id)
    try:
        url = f"{glewlwyd.issuer}/auth?" + urlencode({
            "response_type": "code", "client_id": client_id, "redirect_uri": REDIRECT_URI,
            "scope": "openid", "state": "s", "nonce": nonce})
        back = glewlwyd.authorize(browser, url)
    finally:
        browser.close()
    code = parse_qs(urlparse(back).query)["code"][0]
    token = httpx.post(f"{glewlwyd.issuer}/token", auth=(client_id, CLIENT_SECRET), data={
        "grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT_URI})
    assert token.status_code == 200, token.text
    id_token: str = token.json()["id_token"]
    return id_token


def _real_claims(api: Api, glewlwyd: Glewlwyd) -> dict[str, Any]:  # noqa: F811
    token = _issue(glewlwyd, CLIENT, "n-1")
    claims: dict[str, Any] = jwt.decode(token, api.rt.sso.provider(api.rt).keys()).claims
    return claims


def _kid(api: Api) -> str:
    """The kid the provider publishes for its signing key."""
    return str(api.rt.sso.provider(api.rt).keys().keys[0].kid)


def _sign(key: Any, claims: dict[str, Any], kid: str) -> str:
    jwk = RSAKey.import_key(key)
    header = {"alg": "RS256", "kid": kid}
    return jwt.encode(header, {k: int(v) if isinstance(v, float) else v
                               for k, v in claims.items()}, jwk)


def _unsigned(claims: dict[str, Any]) -> str:
    import base64

    def part(value: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()

    return f"{part({'alg': 'none'})}.{part(claims)}."
