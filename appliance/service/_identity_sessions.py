"""Logging in and staying logged in: passwords, the TOTP second factor, lockout, browser
sessions and their CSRF tokens."""

from __future__ import annotations

from sqlalchemy import delete, or_
from sqlalchemy.orm import Session

from security import (
    AuthError,
    ConflictError,
    DirectoryError,
    ForbiddenError,
    GreffierError,
    InvalidRequestError,
    ThrottledError,
    hash_password,
    new_totp_secret,
    password_needs_rehash,
    random_token,
    token_hash,
    token_matches,
    totp_uri,
    verify_password,
    verify_totp,
)

from ..db import NO_PASSWORD, SessionRow, User
from ._identity_common import MFA_ROLES, NAME, Core, split
from ._identity_models import LoginResult
from ._principal import Principal

TOUCH_S = 15.0  # last_seen_at is written at most this often (one write per request is waste)
MAX_LOCKOUT_S = 24 * 3600.0
_WRONG = "Wrong account name, password or code."
_WRONG_HINT = ("Check them and try again (admins, auditors and accounts with a second "
               "factor also give their 6-digit code); repeated failures lock the account "
               "for a while.")


class Sessions(Core):
    """Login, sessions, CSRF, logout, and enrolling a second factor."""

    # dummy hash: an unknown name costs as much as a known one (no account enumeration)
    _dummy_hash: str | None = None

    def login(self, name: str, password: str, totp: str | None, client: str) -> LoginResult:
        """Open a browser session for ``name``; audited whichever way it goes."""
        now = self.clock()
        with self.db.session() as s:
            user = self.user_named(s, name)
            found = None if user is None else (user.id, user.password_hash, user.disabled,
                                                user.locked_until, user.origin,
                                                user.external_id)
        # What a caller typed goes into the log only if it can be an account name (not a
        # password typed in the wrong field, not a forged "(local operator)" label).
        shown = name if NAME.fullmatch(name) else "(invalid name)"
        if found is None or found[2]:
            verify_password(self._dummy(), password)
            self.audit("login.failure", shown, {"client": client, "reason": "unknown account"
                                                if found is None else "account disabled"})
            raise AuthError(_WRONG, hint=_WRONG_HINT)
        user_id, password_hash, _, locked_until, origin, external_id = found
        if locked_until is not None and now < locked_until:
            self.audit("login.locked", shown, {"client": client})
            raise _locked(locked_until - now)
        password_ok = self._password_ok(origin, external_id, password_hash, password, shown,
                                        client)
        new_hash = (hash_password(password) if password_ok and origin == "local"
                    and password_needs_rehash(password_hash) else None)
        failure: GreffierError | None = None
        with self.db.session() as s:
            user = s.get(User, user_id, with_for_update=True)
            assert user is not None  # accounts are disabled, never deleted
            mfa = user.totp_enabled or bool(split(user.roles) & MFA_ROLES)
            if user.locked_until is not None and now < user.locked_until:
                # locked by a concurrent attempt while this one was being checked
                self.audit("login.locked", user.name, {"client": client})
                failure = _locked(user.locked_until - now)
            elif not password_ok:
                failure = self._failed(user, "password", client, now)
            elif mfa and not totp:
                # Answered like a wrong password, and counted: a missing code must not tell
                # a guesser that the password was right.
                failure = self._failed(user, "no code", client, now)
            elif mfa and not self._code_ok(user, totp or "", now):
                failure = self._failed(user, "code", client, now)
            else:
                result = self._open(s, user, mfa, client, now, new_hash)
        if failure is not None:
            raise failure
        return result

    def _password_ok(self, origin: str, dn: str | None, password_hash: str, password: str,
                     shown: str, client: str) -> bool:
        """A local account's password against its hash; a directory account's by a bind
        as its DN (never stored). A directory that cannot answer is not the user's
        failure: not counted, audited, and answered 503 (local accounts are unaffected)."""
        if origin == "ldap" and dn:
            try:
                if self.directory_login is None:
                    raise DirectoryError("Directory accounts cannot sign in: no directory is "
                                         "configured.", hint="An admin sets ldap.url, or "
                                         "signs in with a local account.")
                return self.directory_login(dn, password)
            except DirectoryError as exc:
                self.audit("login.failure", shown, {"client": client,
                                                    "reason": "directory unavailable"})
                raise DirectoryError("Directory sign-in is unavailable right now.",
                                     hint="Try again later; an admin checks "
                                     "`greffier directory status`.") from exc
        if password_hash == NO_PASSWORD:  # signs in through its origin, never a password
            verify_password(self._dummy(), password)
            return False
        return verify_password(password_hash, password)

    def _dummy(self) -> str:
        if self._dummy_hash is None:
            self._dummy_hash = hash_password(random_token())
        return self._dummy_hash

    def _code_ok(self, user: User, code: str, now: float) -> bool:
        if not user.totp_enabled or user.totp_secret_sealed is None:
            return False  # an admin or auditor without a second factor cannot log in
        secret = self.unseal(user.totp_secret_sealed, "users", user.id, "totp_secret")
        step = verify_totp(secret, code, now=now, last_step=user.last_totp_step)
        if step is None:
            return False
        user.last_totp_step = step  # this step, and every earlier one, is spent
        return True

    def _failed(self, user: User, reason: str, client: str, now: float) -> GreffierError:
        user.failed_logins += 1
        user.updated_at = now
        if user.failed_logins < self.policy.lockout_after:
            self.audit("login.failure", user.name, {"client": client, "reason": reason,
                                                    "failures": user.failed_logins})
            return AuthError(_WRONG, hint=_WRONG_HINT)
        user.lockouts += 1
        seconds = min(self.policy.lockout_minutes * 60 * 2 ** min(user.lockouts - 1, 16),
                      MAX_LOCKOUT_S)
        user.locked_until = now + seconds
        user.failed_logins = 0
        self.audit("login.lockout", user.name, {"client": client, "reason": reason,
                                                "lockout": user.lockouts, "seconds": seconds})
        # This attempt is answered like any failure; the next ones meet the lock (429).
        return AuthError(_WRONG, hint=_WRONG_HINT)

    def _open(self, s: Session, user: User, mfa: bool, client: str, now: float,
              new_hash: str | None, via: str | None = None) -> LoginResult:
        user.failed_logins = user.lockouts = 0
        user.locked_until = None
        if new_hash is not None:
            user.password_hash = new_hash
        idle = self.policy.session_idle_minutes * 60
        s.execute(delete(SessionRow).where(or_(SessionRow.expires_at <= now,
                                               SessionRow.last_seen_at <= now - idle)))
        # A new random id at every login: a cookie planted before the login is worthless.
        token, csrf = random_token(), random_token()
        expires = now + self.policy.session_hours * 3600
        s.add(SessionRow(id=token_hash(token), user_id=user.id, csrf_hash=token_hash(csrf),
                         mfa=mfa, created_at=now, last_seen_at=now, expires_at=expires))
        self.audit("login", user.name, {"client": client, "mfa": mfa,
                                        **({"via": via} if via else {})})
        return LoginResult(token, csrf, self.principal(s, user, via="session", mfa=mfa), expires)

    def open_session(self, s: Session, user: User, mfa: bool, client: str, now: float, *,
                     via: str) -> LoginResult:
        """A session for ``user``, whom another method (single sign-on) authenticated."""
        return self._open(s, user, mfa, client, now, None, via=via)

    def session(self, token: str) -> Principal:
        """The principal of a session cookie; AuthError once it is idle, too old or gone."""
        now = self.clock()
        with self.db.session() as s:
            row = s.get(SessionRow, token_hash(token))
            if row is None:
                raise AuthError("You are not logged in.", hint="Log in.")
            user = s.get(User, row.user_id)
            assert user is not None
            if (now >= row.expires_at
                    or now - row.last_seen_at >= self.policy.session_idle_minutes * 60
                    or user.disabled or (split(user.roles) & MFA_ROLES and not row.mfa)):
                s.delete(row)
                principal = None
            else:
                if now - row.last_seen_at >= TOUCH_S:
                    row.last_seen_at = now
                principal = self.principal(s, user, via="session", mfa=row.mfa)
        if principal is None:
            raise AuthError("Your session has expired.", hint="Log in again.")
        return principal

    def check_csrf(self, token: str, csrf: str | None) -> None:
        """Refuse a state-changing request whose CSRF token is not the session's."""
        with self.db.session() as s:
            row = s.get(SessionRow, token_hash(token))
            if row is None:
                raise AuthError("You are not logged in.", hint="Log in.")
            expected = row.csrf_hash
        if not csrf or not token_matches(csrf, expected):
            raise ForbiddenError("The CSRF token is missing or wrong.",
                                 hint="Reload the page; scripts send the X-CSRF-Token header "
                                 "the login returned, or use an API token.")

    def logout(self, token: str) -> None:
        """End a session (nothing happens for an unknown one)."""
        with self.db.session() as s:
            row = s.get(SessionRow, token_hash(token))
            if row is None:
                return
            user = s.get(User, row.user_id)
            s.delete(row)
            self.audit("logout", user.name if user else row.user_id, {})

    # -- a second factor for readers and editors -----------------------------------------
    def enroll_totp(self, who: Principal) -> str:
        """A new TOTP secret for the caller's own account (confirmed by
        :meth:`confirm_totp`); returns its otpauth:// URI, shown once."""
        if who.via != "session":
            raise ForbiddenError("A second factor is enrolled from a logged-in session.",
                                 hint="Log in with your password first.")
        with self.db.session() as s:
            user = self.own_account(s, who)
            if user.totp_enabled:
                raise ConflictError("This account already has a second factor.",
                                    hint="Ask an admin to reset it if the device was lost.")
            secret = new_totp_secret()
            user.totp_secret_sealed = self.seal(secret, "users", user.id, "totp_secret")
            user.last_totp_step = None
            user.updated_at = self.clock()
            self.audit("totp.enroll", who.audit_name, {"name": user.name})
            return totp_uri(secret, user.name)

    def confirm_totp(self, who: Principal, code: str) -> None:
        """Turn the enrolled second factor on, given a current code from it."""
        now = self.clock()
        with self.db.session() as s:
            user = self.own_account(s, who)
            if user.totp_enabled or user.totp_secret_sealed is None:
                raise ConflictError("There is no second factor waiting for confirmation.",
                                    hint="Enrol one first (POST /v1/me/totp).")
            secret = self.unseal(user.totp_secret_sealed, "users", user.id, "totp_secret")
            step = verify_totp(secret, code, now=now, last_step=None)
            if step is not None:
                user.totp_enabled, user.last_totp_step, user.updated_at = True, step, now
                self.audit("totp.confirm", who.audit_name, {"name": user.name})
        if step is None:
            raise InvalidRequestError("The code does not match the enrolled secret.",
                                      hint="Check the device's clock, and enter a fresh code.")


def _locked(seconds: float) -> ThrottledError:
    return ThrottledError("Too many failed logins: the account is locked for a while.",
                          retry_after_s=max(1.0, round(seconds)),
                          hint=f"Try again in {max(1, round(seconds / 60))} minute(s).")
