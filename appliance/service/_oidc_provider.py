"""The OpenID provider as Greffier sees it: its discovery document and signing keys,
fetched from the configured issuer only and cached (the keys again when an ID token names
an unknown ``kid``), the code exchange (Authlib, PKCE), and the full check of an ID token
(joserfc: signature against the provider's JWKS with an allow-listed asymmetric algorithm,
then ``iss``, ``aud``, ``azp``, ``exp``, ``iat``, ``nonce``, ``sub``).

A provider that cannot be reached or answers something unusable raises :class:`SsoError`
(503, what to fix); a token that fails a check raises :class:`AuthError` with the reason in
``reason`` (audited, never the token).
"""

from __future__ import annotations

import secrets
import threading
import time
from typing import Any
from urllib.parse import urlparse

import httpx
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from security import AuthError, SsoError

from .._oidc_settings import OidcSettings

DISCOVERY_TTL_S = 3600.0
KEYS_REFRESH_MIN_S = 30.0  # an unknown kid refetches the keys at most this often
LEEWAY_S = 60  # clock skew allowed on exp and iat
MAX_AGE_S = 600  # an ID token issued longer ago than this is refused


class TokenRefused(AuthError):
    """An ID token or a callback failed a check; ``reason`` goes to the audit log."""

    def __init__(self, reason: str) -> None:
        super().__init__("Single sign-on failed.", hint="Start again from the sign-in page; "
                         "an admin finds the reason in the audit log (login.failure).")
        self.reason = reason


class Provider:
    """One configured provider; thread-safe, built once per process."""

    def __init__(self, settings: OidcSettings, clock: Any = time.time) -> None:
        assert settings.issuer
        self.settings = settings
        self.issuer = settings.issuer
        self.clock = clock
        self._lock = threading.Lock()
        self._meta: dict[str, Any] | None = None
        self._meta_at = 0.0
        self._keys: KeySet | None = None
        self._keys_at = 0.0

    # -- discovery and keys ---------------------------------------------------------------
    def metadata(self) -> dict[str, Any]:
        with self._lock:
            if self._meta is None or self.clock() - self._meta_at > DISCOVERY_TTL_S:
                url = self.issuer.rstrip("/") + "/.well-known/openid-configuration"
                meta = self._get(url)
                if meta.get("issuer") != self.issuer:
                    raise SsoError(f"The provider's discovery document names the issuer "
                                   f"{str(meta.get('issuer'))[:200]!r}, not {self.issuer!r}.",
                                   hint="Set oidc.issuer to exactly the provider's issuer.")
                for name in ("authorization_endpoint", "token_endpoint", "jwks_uri"):
                    self._same_origin(meta.get(name), name)
                if meta.get("end_session_endpoint"):
                    self._same_origin(meta["end_session_endpoint"], "end_session_endpoint")
                self._meta, self._meta_at = meta, self.clock()
            return self._meta

    def keys(self, *, refresh: bool = False) -> KeySet:
        meta = self.metadata()
        with self._lock:
            stale = refresh and self.clock() - self._keys_at >= KEYS_REFRESH_MIN_S
            if self._keys is None or stale:
                try:
                    self._keys = KeySet.import_key_set(self._get(meta["jwks_uri"]))  # type: ignore[arg-type]
                except (JoseError, ValueError, TypeError) as exc:
                    raise SsoError("The provider's signing keys (JWKS) cannot be read.",
                                   hint="Check the provider's jwks_uri.") from exc
                self._keys_at = self.clock()
            return self._keys

    def _same_origin(self, url: Any, name: str) -> None:
        mine, theirs = urlparse(self.issuer), urlparse(str(url or ""))
        if (theirs.scheme, theirs.hostname, theirs.port) != (mine.scheme, mine.hostname,
                                                             mine.port):
            raise SsoError(f"The provider's {name} ({str(url)[:200]!r}) is not on the "
                           f"issuer's host; Greffier talks to the issuer only.",
                           hint="Check oidc.issuer, or the provider's configuration.")

    def _get(self, url: str) -> dict[str, Any]:
        try:
            response = httpx.get(url, timeout=self.settings.timeout_s, follow_redirects=False)
            response.raise_for_status()
            body = response.json()
        except (httpx.HTTPError, ValueError) as exc:
            raise SsoError(f"The OpenID provider cannot be reached or answered badly "
                           f"({type(exc).__name__}).",
                           hint=f"Check that {self.issuer} answers from this host.") from exc
        if not isinstance(body, dict):
            raise SsoError("The OpenID provider answered something other than a JSON object.",
                           hint=f"Check oidc.issuer ({self.issuer}).")
        return body

    # -- the code exchange ----------------------------------------------------------------
    def exchange(self, code: str, verifier: str, secret: str) -> str:
        """The ID token the provider gives for ``code`` (PKCE ``verifier``)."""
        from authlib.integrations.httpx_client import OAuth2Client

        meta = self.metadata()
        client = OAuth2Client(self.settings.client_id, secret,
                              redirect_uri=self.settings.redirect_url,
                              timeout=self.settings.timeout_s)
        try:
            with client:
                token = client.fetch_token(meta["token_endpoint"], code=code,
                                           code_verifier=verifier,
                                           grant_type="authorization_code")
        except httpx.HTTPError as exc:
            raise SsoError("The OpenID provider's token endpoint cannot be reached.",
                           hint=f"Check that {self.issuer} answers from this host.") from exc
        except Exception as exc:  # Authlib's OAuthError: the provider refused the code
            raise TokenRefused(f"code refused by the provider ({type(exc).__name__}: "
                               f"{str(exc)[:120]})") from exc
        id_token = token.get("id_token")
        if not isinstance(id_token, str):
            raise TokenRefused("no ID token in the provider's answer")
        return id_token

    # -- the ID token ---------------------------------------------------------------------
    def validate(self, id_token: str, nonce: str) -> dict[str, Any]:
        """The ID token's claims once every check passed; :class:`TokenRefused` else."""
        algorithms = list(self.settings.algorithms)
        try:
            try:
                token = jwt.decode(id_token, self.keys(), algorithms=algorithms)
            except JoseError as exc:
                if type(exc).__name__ not in ("InvalidKeyIdError", "MissingKeyError"):
                    raise
                token = jwt.decode(id_token, self.keys(refresh=True), algorithms=algorithms)
        except JoseError as exc:
            raise TokenRefused(f"ID token signature or form refused ({type(exc).__name__})"
                               ) from exc
        except ValueError as exc:
            raise TokenRefused(f"ID token unreadable ({type(exc).__name__})") from exc
        claims = dict(token.claims)
        self._check(claims, nonce)
        return claims

    def _check(self, claims: dict[str, Any], nonce: str) -> None:
        client_id, now = self.settings.client_id, self.clock()
        if claims.get("iss") != self.issuer:
            raise TokenRefused("ID token from another issuer")
        aud = claims.get("aud")
        audiences = [aud] if isinstance(aud, str) else aud if isinstance(aud, list) else []
        if client_id not in audiences:
            raise TokenRefused("ID token for another audience")
        azp = claims.get("azp")
        if (len(audiences) > 1 or azp is not None) and azp != client_id:
            raise TokenRefused("ID token authorized for another party (azp)")
        exp, iat = claims.get("exp"), claims.get("iat")
        if not isinstance(exp, int | float) or exp <= now - LEEWAY_S:
            raise TokenRefused("ID token expired")
        if not isinstance(iat, int | float) or iat > now + LEEWAY_S or iat < now - MAX_AGE_S:
            raise TokenRefused("ID token issued at an unacceptable time (iat)")
        if not isinstance(claims.get("nonce"), str) or \
                not secrets.compare_digest(claims["nonce"].encode(), nonce.encode()):
            raise TokenRefused("ID token nonce does not match this sign-in")
        sub = claims.get("sub")
        if not isinstance(sub, str) or not 0 < len(sub) <= 255:
            raise TokenRefused("ID token without a subject (sub)")
