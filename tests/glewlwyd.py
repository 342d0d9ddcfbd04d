"""A real OpenID provider, Glewlwyd (Debian's package), for the single sign-on tests:
started once per session on a free loopback port, in a temp dir, with its own SQLite
database (Debian's schema) and configuration. Through its admin API it gets an OIDC
plugin signing ID tokens with RS256 (PKCE allowed, a ``groups`` claim from the users'
``groups`` property), two confidential clients, and the users each test adds.

A user signs in at the provider through its login API (:meth:`Glewlwyd.sign_in`), which
stands for the provider's login page."""

from __future__ import annotations

import contextlib
import itertools
import socket
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

GLEWLWYD = Path("/usr/bin/glewlwyd")
SCHEMA = Path("/usr/share/dbconfig-common/data/glewlwyd/install/sqlite3")
PLUGIN = "oidc"
CLIENT, CLIENT_SECRET = "greffier", "greffier client secret for the tests"
OTHER_CLIENT = "another-app"  # same secret; tokens issued to it are not for Greffier
ADMIN_PW = "password"  # Debian's schema creates admin/password
_CONF = """\
port={port}
bind_address="127.0.0.1"
external_url="{url}"
login_url="login.html"
static_files_path="/usr/share/glewlwyd/webapp/"
api_prefix="api"
allow_origin="{url}"
log_mode="console"
log_level="ERROR"
cookie_secure=0
cookie_same_site="empty"
session_expiration=3600
session_key="GLEWLWYD2_SESSION_ID"
admin_session_authentication="cookie"
profile_session_authentication="cookie"
allow_multiple_user_per_session=false
login_api_enabled=true
admin_scope="g_admin"
profile_scope="g_profile"
user_module_path="/usr/lib/glewlwyd/user"
client_module_path="/usr/lib/glewlwyd/client"
user_auth_scheme_module_path="/usr/lib/glewlwyd/scheme"
plugin_module_path="/usr/lib/glewlwyd/plugin"
hash_algorithm="SHA512"
database = {{
  type = "sqlite3"
  path = "{db}"
}};
"""


class Glewlwyd:
    def __init__(self, root: Path) -> None:
        self.root = root
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = int(sock.getsockname()[1])
        self.url = f"http://127.0.0.1:{self.port}"
        self.api = f"{self.url}/api"
        self.issuer = f"{self.url}/api/{PLUGIN}"
        self._process: subprocess.Popen[bytes] | None = None
        self._admin: httpx.Client | None = None
        self._names = itertools.count()
        self.signing_key: rsa.RSAPrivateKey | None = None

    def start(self, redirect_uri: str) -> None:
        db = self.root / "glewlwyd.db"
        with contextlib.closing(sqlite3.connect(db)) as conn:
            conn.executescript(SCHEMA.read_text())
        conf = self.root / "glewlwyd.conf"
        conf.write_text(_CONF.format(port=self.port, url=self.url, db=db))
        self._process = subprocess.Popen([str(GLEWLWYD), "-c", str(conf)],
                                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 15
        while True:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    break
            except OSError:
                if self._process.poll() is not None or time.monotonic() > deadline:
                    err = self._process.stderr.read().decode() if self._process.stderr else ""
                    raise RuntimeError(f"glewlwyd did not start: {err}") from None
                time.sleep(0.05)
        self._configure(redirect_uri)

    def _configure(self, redirect_uri: str) -> None:
        admin = self.admin()
        # The users' database module gets a multi-valued "groups" property.
        module = _ok(admin.get(f"{self.api}/mod/user/database")).json()
        formats = module["parameters"]["data-format"]
        formats["groups"] = {"multiple": True, "read": True, "write": True,
                             "profile-read": True, "profile-write": False}
        formats["nick"] = {"multiple": False, "read": True, "write": True,
                           "profile-read": True, "profile-write": False}
        _ok(admin.put(f"{self.api}/mod/user/database", json=module))
        _ok(admin.put(f"{self.api}/mod/user/database/reset"))
        private, public = self._new_key()
        _ok(admin.post(f"{self.api}/mod/plugin/", json={
            "module": "oidc", "name": PLUGIN, "display_name": "OpenID Connect", "enabled": True,
            "parameters": {
                "iss": self.issuer, "jwt-type": "rsa", "jwt-key-size": "256", "key": private,
                "cert": public, "jwks-show": True, "code-duration": 600,
                "refresh-token-duration": 1209600, "access-token-duration": 3600,
                "allow-non-oidc": False, "auth-type-code-enabled": True,
                "auth-type-token-enabled": False, "auth-type-id-token-enabled": False,
                "auth-type-none-enabled": False, "auth-type-password-enabled": False,
                "auth-type-client-enabled": False, "auth-type-refresh-enabled": False,
                "pkce-allowed": True, "pkce-method-plain-allowed": False,
                "subject-type": "public", "session-management-allowed": True,
                "session-cookie-name": "GLEWLWYD2_OIDC_SID", "session-cookie-expiration": 3600,
                "allowed-scope": ["openid", "profile"], "name-claim": "no",
                "email-claim": "no", "scope-claim": "no",
                "claims": [{"name": "groups", "user-property": "groups", "type": "string",
                            "mandatory": True, "scope": []},
                           {"name": "preferred_username", "user-property": "nick",
                            "type": "string", "mandatory": True, "scope": []}],
            }}))
        for client in (CLIENT, OTHER_CLIENT):
            _ok(admin.post(f"{self.api}/client/", json={
                "client_id": client, "name": client, "enabled": True, "confidential": True,
                "password": CLIENT_SECRET, "redirect_uri": [redirect_uri],
                "authorization_type": ["code"], "token_endpoint_auth_method":
                    ["client_secret_basic", "client_secret_post"], "scope": []}))

    def _new_key(self) -> tuple[str, str]:
        key = self.signing_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        private = key.private_bytes(serialization.Encoding.PEM,
                                    serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption()).decode()
        public = key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()
        return private, public

    def rotate_key(self) -> None:
        """A new signing key (and kid) for the provider, in use at once."""
        admin = self.admin()
        plugin = _ok(admin.get(f"{self.api}/mod/plugin/{PLUGIN}")).json()
        plugin["parameters"]["key"], plugin["parameters"]["cert"] = self._new_key()
        _ok(admin.put(f"{self.api}/mod/plugin/{PLUGIN}", json=plugin))
        _ok(admin.put(f"{self.api}/mod/plugin/{PLUGIN}/reset"))

    def admin(self) -> httpx.Client:
        if self._admin is None:
            self._admin = httpx.Client(timeout=10)
            _ok(self._admin.post(f"{self.api}/auth/",
                                 json={"username": "admin", "password": ADMIN_PW}))
        return self._admin

    def user(self, prefix: str, groups: list[str], *, nick: str | None = None) -> str:
        """A new user (password: :func:`password`) in ``groups``, whose
        ``preferred_username`` is ``nick`` (default: his name); returns his name."""
        name = f"{prefix}{next(self._names)}"
        _ok(self.admin().post(f"{self.api}/user/", json={
            "username": name, "name": name.title(), "password": password(name),
            "scope": ["openid", "g_profile"], "enabled": True, "groups": groups,
            "nick": nick or name}))
        return name

    def set_user(self, name: str, **changes: Any) -> None:
        current = _ok(self.admin().get(f"{self.api}/user/{name}")).json()
        current.update(changes)
        current.pop("source", None)
        _ok(self.admin().put(f"{self.api}/user/{name}", json=current))

    def sign_in(self, name: str, client_id: str = CLIENT) -> httpx.Client:
        """A browser at the provider, signed in as ``name`` who granted ``openid`` to the
        client (what the login and consent pages would do)."""
        browser = httpx.Client(timeout=10)
        _ok(browser.post(f"{self.api}/auth/", json={"username": name,
                                                     "password": password(name)}))
        _ok(browser.put(f"{self.api}/auth/grant/{client_id}", json={"scope": "openid"}))
        return browser

    def authorize(self, browser: httpx.Client, url: str) -> str:
        """Follow the authorization request ``url`` at the provider as the signed-in
        ``browser``: the provider sends it to its login page, whose script (the user is
        signed in and has consented) continues the request with ``g_continue``; returns
        where the provider finally redirects (the client's redirect URI, code or error)."""
        response = browser.get(url)
        location = response.headers.get("location", "")
        if response.status_code == 302 and location.startswith(f"{self.url}/login.html"):
            callback = parse_qs(urlparse(location).query)["callback_url"][0]
            response = browser.get(f"{callback}&g_continue")
            location = response.headers.get("location", "")
        if response.status_code != 302 or not location:
            raise RuntimeError(f"glewlwyd did not redirect: {response.status_code} "
                               f"{response.text[:300]}")
        return location

    def stop(self) -> None:
        if self._admin is not None:
            self._admin.close()
        if self._process is not None:
            self._process.terminate()
            self._process.wait(timeout=10)
            if self._process.stderr:
                self._process.stderr.close()
            self._process = None


def password(name: str) -> str:
    return f"{name} password at the provider"


def _ok(response: httpx.Response) -> httpx.Response:
    if response.status_code >= 400:
        raise RuntimeError(f"glewlwyd: {response.request.method} {response.request.url} → "
                           f"{response.status_code} {response.text[:500]}")
    return response


@pytest.fixture(scope="session")
def glewlwyd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Glewlwyd]:
    if not GLEWLWYD.exists() or not SCHEMA.exists():
        pytest.fail("glewlwyd is missing: `make deps` installs Debian's glewlwyd")
    server = Glewlwyd(tmp_path_factory.mktemp("glewlwyd"))
    server.start(REDIRECT_URI)
    yield server
    server.stop()


REDIRECT_URI = "https://greffier.test/v1/auth/oidc/callback"
