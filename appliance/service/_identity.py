"""Identity: local accounts with roles, logins and sessions, the TOTP second factor,
personal API tokens, and what each person asked (receipts, conversations, feedback).

Every use case takes the calling :class:`Principal`, checks what it may do, and audits
what it did: every login and failure, lockout, token creation, use and revocation,
account creation and disabling, role change and TOTP enrolment. No password, code or
token ever reaches the audit log or the database in clear.

The accounts are local; the next identity providers (OIDC, LDAP groups) plug in at
:meth:`Identity.principal`: whatever proves who someone is ends in a Principal built from
an account row.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterable

from sqlalchemy import delete, select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from security import ConflictError, ForbiddenError, InvalidRequestError, hash_password

from ..db import AeadSealer, ApiTokenRow, Database, Sealer, SessionRow, User
from ._identity_common import (
    MFA_ROLES,
    NAME,
    Audit,
    DirectoryLogin,
    IdentityPolicy,
    join,
    split,
)
from ._identity_conversations import Conversations
from ._identity_models import UserOut
from ._identity_sessions import Sessions
from ._identity_tokens import Tokens
from ._principal import Principal, Role, check_roles

__all__ = ["AeadSealer", "Audit", "Identity", "IdentityPolicy", "Sealer"]


class Identity(Sessions, Tokens, Conversations):
    """The identity use cases over the metadata database."""

    def __init__(self, db: Database, audit: Audit, sealer: Sealer,
                 policy: IdentityPolicy | None = None,
                 clock: Callable[[], float] = time.time,
                 directory_login: DirectoryLogin | None = None) -> None:
        super().__init__(db, audit, sealer, policy, clock, directory_login)
        self._dummy()  # the decoy hash for unknown names, made now rather than at a login

    # -- accounts ------------------------------------------------------------------------
    def add_user(self, by: Principal, name: str, password: str,
                 roles: Iterable[str]) -> tuple[UserOut, str | None]:
        """A new account. An admin or auditor gets its second factor now: the otpauth://
        URI is returned this once, and every login needs a code from it."""
        by.require("users")
        return self._add(by.audit_name, name, password, roles, first_admin=False)

    def bootstrap_admin(self, name: str, password: str) -> tuple[UserOut, str]:
        """The first admin, for the operator on the box; refused once an admin exists."""
        out, uri = self._add("local operator (bootstrap)", name, password, {"admin"},
                             first_admin=True)
        assert uri is not None
        return out, uri

    def _add(self, actor: str, name: str, password: str, roles: Iterable[str], *,
             first_admin: bool) -> tuple[UserOut, str | None]:
        if not NAME.fullmatch(name):
            raise InvalidRequestError(
                f"{name[:80]!r} is not a valid account name.",
                hint="1 to 64 lower-case letters, digits, '.', '_' or '-', starting with a "
                "letter or digit.")
        checked = _roles(roles)
        self._check_password(name, password)
        password_hash = hash_password(password)  # slow: before the transaction, not in it
        now = self.clock()
        try:
            with self.db.session() as s:
                if first_admin and self.db.backend == "postgresql":
                    # two first admins at once: the second waits, then sees the first
                    s.execute(text("LOCK TABLE users IN SHARE ROW EXCLUSIVE MODE"))
                if first_admin and self._admins(s):
                    raise ConflictError("An admin account exists already.",
                                        hint="Log in as that admin to add accounts.")
                if self.user_named(s, name) is not None:
                    raise ConflictError(f"The account name {name!r} is taken.",
                                        hint="Choose another name.")
                user = User(id=uuid.uuid4().hex, name=name, password_hash=password_hash,
                            roles=join(checked), disabled=False, totp_enabled=False,
                            failed_logins=0, lockouts=0, created_at=now, updated_at=now)
                uri = self._new_totp(user) if checked & MFA_ROLES else None
                s.add(user)
                s.flush()
                self.audit("user.add", actor, {"name": name, "roles": sorted(checked),
                                               "totp": uri is not None})
                return self.user_out(s, user), uri
        except IntegrityError as exc:  # the same name, added at the same instant
            raise ConflictError(f"The account name {name!r} is taken.",
                                hint="Choose another name.") from exc

    def list_users(self, by: Principal) -> list[UserOut]:
        by.require("users")
        with self.db.session() as s:
            return [self.user_out(s, u) for u in s.scalars(select(User).order_by(User.name))]

    def disable_user(self, by: Principal, name: str) -> UserOut:
        """Disable an account: its sessions end and its tokens are revoked at once."""
        by.require("users")
        now = self.clock()
        with self.db.session() as s:
            user = self.account(s, name, lock=True)
            if not user.disabled:
                self._keep_an_admin(s, user, set())
            user.disabled, user.updated_at = True, now
            sessions = self._end_sessions(s, user)
            tokens = list(s.scalars(select(ApiTokenRow.id).where(
                ApiTokenRow.user_id == user.id, ApiTokenRow.revoked_at.is_(None))))
            s.execute(update(ApiTokenRow).where(ApiTokenRow.id.in_(tokens))
                      .values(revoked_at=now))
            self.audit("user.disable", by.audit_name,
                       {"name": name, "sessions": sessions, "tokens_revoked": sorted(tokens)})
            return self.user_out(s, user)

    def set_roles(self, by: Principal, name: str,
                  roles: Iterable[str]) -> tuple[UserOut, str | None]:
        """Replace an account's roles. Its sessions end (the next login meets the new
        roles' rules). Promoted to admin or auditor without a second factor, it gets one:
        the otpauth:// URI is returned this once. Nobody changes his own roles."""
        by.require("users")
        if name == by.name and by.via not in ("socket", "local"):
            raise ForbiddenError("Nobody changes his own roles.",
                                 hint="Another admin, or the operator on the box, can.")
        checked = _roles(roles)
        with self.db.session() as s:
            user = self.account(s, name, lock=True)
            before = split(user.roles)
            if not user.disabled:
                self._keep_an_admin(s, user, checked)
            user.roles, user.updated_at = join(checked), self.clock()
            uri = None
            if checked & MFA_ROLES and not user.totp_enabled:
                uri = self._new_totp(user)
            sessions = self._end_sessions(s, user)
            self.audit("user.roles", by.audit_name,
                       {"name": name, "from": sorted(before), "to": sorted(checked),
                        "totp": uri is not None, "sessions": sessions})
            return self.user_out(s, user), uri

    # -- helpers -------------------------------------------------------------------------
    def _check_password(self, name: str, password: str) -> None:
        low = self.policy.password_min_length
        if not low <= len(password) <= 1024:
            raise InvalidRequestError(f"A password is {low} to 1024 characters long.",
                                      hint="A passphrase of four or five words is easy to "
                                      "remember and long enough.")
        if name in password.lower() or len(set(password)) < 4:
            raise InvalidRequestError("This password is too easy to guess.",
                                      hint="Do not use the account name or repeat a few "
                                      "characters; a passphrase of several words works.")

    def _new_totp(self, user: User) -> str:
        from security import new_totp_secret, totp_uri

        secret = new_totp_secret()
        user.totp_secret_sealed = self.seal(secret, "users", user.id, "totp_secret")
        user.totp_enabled, user.last_totp_step = True, None
        return totp_uri(secret, user.name)

    @staticmethod
    def _admins(s: Session) -> list[str]:
        users = s.scalars(select(User).where(User.disabled.is_(False)))
        return [u.id for u in users if "admin" in split(u.roles)]

    def _keep_an_admin(self, s: Session, user: User, roles: frozenset[Role] | set[str]) -> None:
        if "admin" in split(user.roles) and "admin" not in roles and self._admins(s) == [user.id]:
            raise ConflictError(f"{user.name} is the last admin.",
                                hint="Make another account admin first.")

    @staticmethod
    def _end_sessions(s: Session, user: User) -> int:
        ids = list(s.scalars(select(SessionRow.id).where(SessionRow.user_id == user.id)))
        s.execute(delete(SessionRow).where(SessionRow.id.in_(ids)))
        return len(ids)


def _roles(roles: Iterable[str]) -> frozenset[Role]:
    checked = check_roles(set(roles))
    if not checked:
        raise InvalidRequestError("An account needs at least one role.",
                                  hint="reader, editor, admin or auditor.")
    return checked
