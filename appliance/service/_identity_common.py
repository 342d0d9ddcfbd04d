"""What the identity use cases share: the policy, the audit seam, and :class:`Core` (the
database, the sealer, the clock, and the lookups every use case needs)."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy import select
from sqlalchemy.orm import Session

from security import ForbiddenError, NotFoundError

from ..db import Database, Group, Membership, Sealer, User, field_aad
from ._identity_models import NAME_PATTERN, UserOut, when
from ._principal import Principal, Role, Via

NAME = re.compile(NAME_PATTERN.strip("^$"))  # used with fullmatch: no trailing newline
MFA_ROLES: frozenset[Role] = frozenset({"admin", "auditor"})


@dataclass(frozen=True)
class IdentityPolicy:
    """Accounts, sessions and tokens: the limits. The fields are those of the
    ``[identity]`` settings, so ``IdentityPolicy(**settings.identity.model_dump())``."""

    password_min_length: int = 12
    lockout_after: int = 5  # consecutive failed logins
    lockout_minutes: float = 15.0  # the first lockout; each further one doubles, up to a day
    session_idle_minutes: float = 30.0
    session_hours: float = 12.0  # absolute lifetime of a session
    token_max_days: int = 365


class Audit(Protocol):
    """Appends one entry to the signed audit log and returns its index. ``secret`` is
    sealed under the audit key; nothing here ever puts a password, a code or a token in
    either part."""

    def __call__(self, event: str, user: str, details: dict[str, Any],
                 secret: dict[str, Any] | None = None) -> int: ...


def join(names: Iterable[str]) -> str:
    return ",".join(sorted(set(names)))


def split(text: str) -> frozenset[Any]:
    return frozenset(part for part in text.split(",") if part)


DirectoryLogin = Callable[[str, str], bool]  # (the account's DN, password) → bound as him?


class Core:
    """The parts every identity use case works with. ``directory_login`` checks the password
    of an account that comes from the LDAP directory (None: no directory configured)."""

    def __init__(self, db: Database, audit: Audit, sealer: Sealer,
                 policy: IdentityPolicy | None = None,
                 clock: Callable[[], float] = time.time,
                 directory_login: DirectoryLogin | None = None) -> None:
        self.db = db
        self.audit = audit
        self.sealer = sealer
        self.policy = policy or IdentityPolicy()
        self.clock = clock
        self.directory_login = directory_login
        self.use_audited: dict[str, float] = {}  # token id → when its use was last audited

    # -- sealed fields -------------------------------------------------------------------
    def seal(self, text: str, table: str, row_id: str, column: str) -> bytes:
        return self.sealer.seal(text.encode("utf-8"), field_aad(table, row_id, column))

    def unseal(self, blob: bytes, table: str, row_id: str, column: str) -> str:
        return self.sealer.open(blob, field_aad(table, row_id, column)).decode("utf-8")

    # -- lookups -------------------------------------------------------------------------
    @staticmethod
    def user_named(s: Session, name: str, *, lock: bool = False) -> User | None:
        if not NAME.fullmatch(name):
            return None
        query = select(User).where(User.name == name)
        return s.scalars(query.with_for_update() if lock else query).first()

    def account(self, s: Session, name: str, *, lock: bool = False) -> User:
        user = self.user_named(s, name, lock=lock)
        if user is None:
            raise NotFoundError(f"No account named {name!r}.",
                                hint="List the accounts with `greffier users list`.")
        return user

    @staticmethod
    def own_account(s: Session, who: Principal) -> User:
        """The caller's own account (a session's or a token's; the local operator has none)."""
        user = s.get(User, who.user_id, with_for_update=True)
        if user is None:
            raise ForbiddenError(f"{who.name} has no account here.",
                                 hint="Log in with an account (the local operator has none).")
        return user

    @staticmethod
    def groups_of(s: Session, user_id: str) -> frozenset[str]:
        rows = s.scalars(select(Group.name).join(Membership, Membership.group_id == Group.id)
                         .where(Membership.user_id == user_id))
        return frozenset(rows)

    def principal(self, s: Session, user: User, *, via: Via, mfa: bool = False,
                  scopes: frozenset[Any] | None = None, token_id: str | None = None) -> Principal:
        groups = s.execute(select(Group.id, Group.name)
                           .join(Membership, Membership.group_id == Group.id)
                           .where(Membership.user_id == user.id)).all()
        return Principal(user_id=user.id, name=user.name, roles=split(user.roles),
                         groups=frozenset(name for _, name in groups), via=via, scopes=scopes,
                         token_id=token_id, mfa=mfa,
                         group_ids=frozenset(gid for gid, _ in groups))

    def user_out(self, s: Session, user: User) -> UserOut:
        return UserOut(id=user.id, name=user.name, roles=sorted(split(user.roles)),
                       groups=sorted(self.groups_of(s, user.id)), disabled=user.disabled,
                       totp_enabled=user.totp_enabled, locked_until=when(user.locked_until),
                       created_at=when(user.created_at), updated_at=when(user.updated_at))
