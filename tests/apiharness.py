"""Helpers for the API tests: a real Runtime over a real data directory, the real FastAPI
app (through httpx's ASGI transport via Starlette's TestClient), real accounts."""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any

import pyotp
from fastapi.testclient import TestClient

from appliance import Appliance
from appliance._settings import Settings
from appliance.api import create_app
from appliance.service import Principal, Runtime, operator

from conftest import KEKS, PASSPHRASE, make_settings

ROOT_OP = operator("root")
__all__ = ["KEKS", "PASSPHRASE", "Api", "api_settings"]


def api_settings(root: Path, **overrides: Any) -> Settings:
    api = {"plain_http": True, "rate_per_user": 100_000, "rate_per_ip": 100_000,
           "login_rate_per_ip": 100_000, **overrides.pop("api", {})}
    return make_settings(root / "data", api=api, llm={"port": _free_port(), "timeout_s": 5},
                         **overrides)


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Api:
    """A runtime, its app, and account helpers."""

    def __init__(self, settings: Settings, *, unseal: bool = True) -> None:
        if not (settings.data_dir / "keys" / "keyring.json").exists():
            Appliance.init(settings, KEKS)
        self.settings = settings
        self.rt = Runtime(settings)
        if unseal:
            self.rt.unseal(KEKS, user="test")
        self.app = create_app(self.rt)
        self.totp: dict[str, str] = {}
        self.passwords: dict[str, str] = {}
        self._principals: dict[str, Principal] = {}

    def client(self, **kwargs: Any) -> TestClient:
        return TestClient(self.app, base_url="https://testserver", **kwargs)

    def close(self) -> None:
        self.rt.close()

    # -- accounts ------------------------------------------------------------------------
    def user(self, name: str, *roles: str) -> str:
        """Create an account; returns its password (TOTP secret kept in self.totp)."""
        password = secrets.token_urlsafe(18)
        _user, uri = self.rt.identity.add_user(ROOT_OP, name, password, set(roles))
        if uri:
            self.totp[name] = pyotp.parse_uri(uri).secret
        self.passwords[name] = password
        return password

    def group(self, name: str, *members: str) -> str:
        """A group with these members (test setup, straight into the database); returns
        its access entry."""
        import time
        import uuid

        from sqlalchemy import select

        from appliance.db import Group, Membership, User

        group_id = uuid.uuid4().hex
        with self.rt.identity.db.session() as s:
            s.add(Group(id=group_id, name=name, created_at=time.time()))
            s.flush()
            for member in members:
                user_id = s.scalar(select(User.id).where(User.name == member))
                s.add(Membership(user_id=user_id, group_id=group_id))
        return f"g:{group_id}"

    def code(self, name: str) -> str | None:
        secret = self.totp.get(name)
        return pyotp.TOTP(secret).now() if secret else None

    def principal(self, name: str) -> Principal:
        """The account's principal (one login per account: a TOTP code is good once)."""
        if name not in self._principals:
            result = self.rt.identity.login(name, self.passwords[name], self.code(name),
                                            "test")
            self._principals[name] = result.principal
        return self._principals[name]

    def token(self, name: str, *scopes: str, days: int = 30) -> str:
        plaintext, _info = self.rt.identity.create_token(
            self.principal(name), f"{name}-{'-'.join(scopes)}", set(scopes), days)
        token: str = plaintext
        return token

    def login(self, client: TestClient, name: str) -> str:
        """Sign in through the API; returns the CSRF token (the cookie stays in client)."""
        response = client.post("/v1/auth/login", json={
            "name": name, "password": self.passwords[name], "totp": self.code(name)})
        assert response.status_code == 200, response.text
        csrf: str = response.json()["csrf_token"]
        return csrf


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}
