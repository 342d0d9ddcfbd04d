"""Single sign-on through an OpenID Connect provider (authorization code flow, PKCE S256,
``state`` and ``nonce``).

:func:`begin_login` keeps, server-side, what the callback will need (the PKCE verifier,
the nonce, where to go next) under a random ``state``, bound to the browser by a random
value whose hash is stored with it (the caller sets that value as a cookie). It lives
:data:`STATE_TTL_S` seconds and is used once: :func:`finish_login` takes it out before any
check, so a replayed ``state`` finds nothing. The callback then exchanges the code, checks
the ID token fully (``_oidc_provider``), brings the account in line (``_oidc_accounts``) and
opens the same session as a password login. Every sign-in and every refusal is audited
(``login`` / ``login.failure`` with ``via: oidc``), never a code or a token.

Pending sign-ins live in this process's memory (a restart only makes the users in the
middle of one start again).
"""

from __future__ import annotations

import contextlib
import secrets
import threading
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from authlib.oauth2.rfc7636 import create_s256_code_challenge

from security import ConflictError, GreffierError, InvalidRequestError, token_hash, token_matches

from .._oidc_settings import client_secret
from ..db import User
from ._identity_common import MFA_ROLES, split
from ._identity_models import LoginResult
from ._oidc_accounts import upsert
from ._oidc_provider import Provider, TokenRefused
from ._runtime import Runtime

STATE_TTL_S = 600.0
MAX_PENDING = 10_000
MFA_AMR = frozenset({"mfa", "otp", "hwk", "swk", "sc", "fpt"})  # RFC 8176 values


@dataclass(frozen=True)
class Pending:
    browser_hash: str
    nonce: str
    verifier: str
    next_path: str
    expires_at: float


class SsoState:
    """The provider (discovery and keys cached) and the pending sign-ins, per process."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.pending: dict[str, Pending] = {}
        self._provider: Provider | None = None

    def provider(self, rt: Runtime) -> Provider:
        with self.lock:
            if self._provider is None:
                self._provider = Provider(rt.settings.oidc)
            return self._provider

    def put(self, state: str, pending: Pending, now: float) -> None:
        with self.lock:
            for key in [k for k, p in self.pending.items() if p.expires_at <= now]:
                del self.pending[key]
            if len(self.pending) >= MAX_PENDING:
                raise ConflictError("Too many sign-ins are under way.",
                                    hint="Try again in a few minutes.")
            self.pending[state] = pending

    def take(self, state: str) -> Pending | None:
        with self.lock:
            return self.pending.pop(state, None)


def methods(rt: Runtime) -> dict[str, Any]:
    """What the sign-in page offers (public)."""
    return {"password": True, "sso": rt.settings.oidc.enabled,
            "sso_login": "/v1/auth/oidc/login" if rt.settings.oidc.enabled else None}


def begin_login(rt: Runtime, next_path: str | None) -> tuple[str, str]:
    """The provider's authorization URL and the browser-binding value (for a cookie)."""
    oidc = _configured(rt)
    target = _safe_next(next_path)
    meta = _sso(rt).provider(rt).metadata()
    state, nonce, binding = secrets.token_urlsafe(32), secrets.token_urlsafe(32), \
        secrets.token_urlsafe(32)
    verifier = secrets.token_urlsafe(64)
    now = time.time()
    _sso(rt).put(state, Pending(token_hash(binding), nonce, verifier, target,
                                now + STATE_TTL_S), now)
    scopes = ["openid", *[s for s in oidc.scopes if s != "openid"]]
    query = urlencode({"response_type": "code", "client_id": oidc.client_id,
                       "redirect_uri": oidc.redirect_url, "scope": " ".join(scopes),
                       "state": state, "nonce": nonce,
                       "code_challenge": create_s256_code_challenge(verifier),
                       "code_challenge_method": "S256"})
    endpoint = str(meta["authorization_endpoint"])
    return f"{endpoint}{'&' if '?' in endpoint else '?'}{query}", binding


def finish_login(rt: Runtime, *, state: str | None, code: str | None, error: str | None,
                 binding: str | None, client: str) -> tuple[LoginResult, str]:
    """The session for the provider's answer, and where the browser goes next."""
    oidc = _configured(rt)
    ident = rt.identity
    shown = "(single sign-on)"
    try:
        pending = _sso(rt).take(state) if state else None  # single use, whatever follows
        if pending is None or pending.expires_at <= time.time():
            raise TokenRefused("unknown, expired or already used state")
        if not binding or not token_matches(binding, pending.browser_hash):
            raise TokenRefused("state not issued to this browser (cookie missing or "
                               "different)")
        if error or not code:
            raise TokenRefused(f"the provider answered {str(error or 'no code')[:60]!r}")
        provider = _sso(rt).provider(rt)
        claims = provider.validate(provider.exchange(code, pending.verifier, client_secret()),
                                   pending.nonce)
        shown = f"(single sign-on {str(claims.get(oidc.username_claim, ''))[:64]})"
        amr = claims.get("amr")
        mfa = isinstance(amr, list) and bool(MFA_AMR & {str(a) for a in amr})
        entries: list[tuple[str, dict[str, Any]]] = []
        now = time.time()
        with ident.db.session() as s:
            user: User = upsert(s, claims, oidc, now, entries)
            shown = user.name
            if split(user.roles) & MFA_ROLES and not mfa:
                raise TokenRefused("admins and auditors need a second factor at the provider "
                                   "(amr)")
            s.flush()
            for event, details in entries:
                ident.audit(event, "(single sign-on)", details)
            result: LoginResult = ident.open_session(s, user, mfa, client, now, via="oidc")
        return result, pending.next_path
    except TokenRefused as exc:
        _refused(rt, shown, client, exc.reason)
        raise
    except GreffierError as exc:
        _refused(rt, shown, client, f"{type(exc).__name__}: {exc.message}"[:200])
        raise


def logout_url(rt: Runtime) -> str | None:
    """The provider's end-session URL when it advertises one (RP-initiated logout)."""
    if not rt.settings.oidc.enabled:
        return None
    try:
        meta = _sso(rt).provider(rt).metadata()
    except GreffierError:
        return None
    end = meta.get("end_session_endpoint")
    if not end:
        return None
    query = urlencode({"client_id": rt.settings.oidc.client_id})
    return f"{end}{'&' if '?' in str(end) else '?'}{query}"


def _refused(rt: Runtime, shown: str, client: str, reason: str) -> None:
    with contextlib.suppress(GreffierError):  # sealed meanwhile: nothing to write to
        rt.identity.audit("login.failure", shown, {"client": client, "via": "oidc",
                                                   "reason": reason})


def _configured(rt: Runtime) -> Any:
    if not rt.settings.oidc.enabled:
        raise ConflictError("Single sign-on is not configured.",
                            hint="Sign in with a password, or an admin sets oidc.issuer "
                            "(see the README).")
    return rt.settings.oidc


def _sso(rt: Runtime) -> SsoState:
    state: SsoState = rt.sso
    return state


def _safe_next(path: str | None) -> str:
    """A same-origin path only (never another site, never //host)."""
    if not path:
        return "/"
    if (not path.startswith("/") or path.startswith("//") or "\\" in path
            or any(ord(c) < 0x21 for c in path) or len(path) > 512):
        raise InvalidRequestError("next must be a path on this site, like /search.",
                                  hint="Leave it out to land on the home page.")
    return path
