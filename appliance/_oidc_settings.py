"""The ``[oidc]`` settings: single sign-on through an OpenID Connect provider
(authorization code flow with PKCE). Off unless ``issuer`` is set.

The client secret is never in the settings file: it comes from
``GREFFIER_OIDC_SECRET_FILE`` (a file only its owner can read) or ``GREFFIER_OIDC_SECRET``
(development), read when a sign-in starts.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal
from urllib.parse import urlparse

from pydantic import BaseModel, Field, model_validator

from security import ConfigError

from ._directory_settings import _loopback

SECRET_ENV = "GREFFIER_OIDC_SECRET"  # noqa: S105 (a variable name)
_Role = Literal["reader", "editor", "admin", "auditor"]
# Asymmetric signatures only: never "none", never HS* (an HMAC "signed" with the public key).
_Alg = Literal["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384",
               "ES512", "EdDSA"]


class OidcSettings(BaseModel):
    issuer: str | None = Field(
        None, description="The provider's issuer URL (https://; http:// on loopback only); "
        "none: no single sign-on.")
    client_id: str = Field("", description="Greffier's client id at the provider.")
    redirect_url: str = Field(
        "", description="Greffier's public callback URL, registered at the provider "
        "(https://host/v1/auth/oidc/callback).")
    scopes: list[str] = Field(["openid", "profile"], description="Scopes asked for "
                              "(openid is always asked).")
    username_claim: str = Field("preferred_username",
                                description="The claim that names the account here.")
    groups_claim: str = Field("groups", description="The claim listing the user's groups.")
    algorithms: list[_Alg] = Field(["RS256", "PS256", "ES256", "EdDSA"], min_length=1,
                                   description="ID-token signature algorithms accepted.")
    default_roles: list[_Role] = Field(
        ["reader"], min_length=1, description="Roles of a user none of whose groups is in "
        "oidc.roles.")
    roles: dict[str, list[_Role]] = Field(
        {}, description='Provider group (its name in Greffier) → roles, e.g. '
        '{ "redaction" = ["editor"] }; a user gets those of all his groups.')
    timeout_s: int = Field(10, ge=1, le=120, description="Provider request timeout (s).")

    @property
    def enabled(self) -> bool:
        return bool(self.issuer)

    @model_validator(mode="after")
    def _refuse_unsafe(self) -> OidcSettings:
        if not self.issuer:
            return self
        issuer = urlparse(self.issuer)
        if issuer.scheme not in ("https", "http") or not issuer.hostname:
            raise ValueError("oidc.issuer must look like https://sso.example.org/realm")
        if issuer.scheme == "http" and not _loopback(issuer.hostname):
            raise ValueError("oidc.issuer: http:// is allowed on loopback only (tokens and "
                             "the client secret would travel in clear); use https://")
        if not self.client_id or not self.redirect_url:
            raise ValueError("oidc.issuer needs oidc.client_id and oidc.redirect_url")
        redirect = urlparse(self.redirect_url)
        if redirect.scheme != "https" and not _loopback(redirect.hostname or ""):
            raise ValueError("oidc.redirect_url must be an https:// URL (the browser brings "
                             "the code back to it)")
        return self


def provider_hosts(oidc: OidcSettings) -> list[str]:
    """The provider's host, for the egress guard (a configured service of the appliance)."""
    host = urlparse(oidc.issuer).hostname if oidc.issuer else None
    return [host] if host else []


def client_secret() -> str:
    """The client secret: ``GREFFIER_OIDC_SECRET_FILE`` (owner-only), else
    ``GREFFIER_OIDC_SECRET``; a clear error when neither is set."""
    from ._unseal import _read_secret_file

    if os.environ.get(f"{SECRET_ENV}_FILE"):
        return _read_secret_file(Path(os.environ[f"{SECRET_ENV}_FILE"]), f"{SECRET_ENV}_FILE")
    secret = os.environ.get(SECRET_ENV)
    if not secret:
        raise ConfigError("oidc.issuer is set but the client secret is not.",
                          hint=f"Set {SECRET_ENV}_FILE to a file (mode 0600) holding it.")
    return secret
