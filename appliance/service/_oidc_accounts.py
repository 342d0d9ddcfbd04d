"""What a validated ID token does to the accounts, inside the sign-in's transaction: the
account whose origin is ``oidc`` and external id ``"<issuer> <sub>"`` is created or
updated (name from the username claim, roles from ``oidc.roles``), and its ``oidc`` groups
follow the groups claim (created as needed). A name held by a local, directory or other
provider account is never taken over: the sign-in is refused. Local and directory groups
and memberships are never touched. Returns the audit entries to write."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from security import InvalidRequestError

from .._oidc_settings import OidcSettings
from ..db import NO_PASSWORD, Group, Membership, SessionRow, User
from ._directory_sync import greffier_name
from ._identity_common import NAME, join, split
from ._oidc_provider import TokenRefused
from ._principal import check_roles

OIDC = "oidc"
MAX_GROUPS = 500
Entries = list[tuple[str, dict[str, Any]]]


def upsert(s: Session, claims: dict[str, Any], oidc: OidcSettings, now: float,
           entries: Entries) -> User:
    """The signed-in account (locked), brought in line with ``claims``."""
    external_id = f"{oidc.issuer} {claims['sub']}"
    raw_name = claims.get(oidc.username_claim)
    name = greffier_name(raw_name) if isinstance(raw_name, str) else ""
    if not NAME.fullmatch(name):
        raise TokenRefused(f"the {oidc.username_claim} claim cannot be an account name here")
    groups = _group_names(claims.get(oidc.groups_claim))
    try:
        roles = check_roles({r for g in groups.values() for r in oidc.roles.get(g, ())}
                            or set(oidc.default_roles))
    except InvalidRequestError as exc:
        raise TokenRefused(f"the groups map to roles that cannot go together "
                           f"({exc.message})") from exc
    user = s.scalars(select(User).where(User.origin == OIDC, User.external_id == external_id)
                     .with_for_update()).first()
    holder = s.scalars(select(User).where(User.name == name)).first()
    if user is None:
        if holder is not None:
            raise TokenRefused(f"the name {name} belongs to a {holder.origin} account here")
        user = User(id=uuid.uuid4().hex, name=name, password_hash=NO_PASSWORD,
                    roles=join(roles), disabled=False, totp_enabled=False, failed_logins=0,
                    lockouts=0, created_at=now, updated_at=now, origin=OIDC,
                    external_id=external_id)
        s.add(user)
        s.flush()
        entries.append(("user.add", {"name": name, "roles": sorted(roles), "totp": False,
                                     "origin": OIDC}))
    else:
        if user.disabled:
            raise TokenRefused("account disabled")
        if user.name != name and holder is None:
            entries.append(("user.update", {"name": name, "renamed_from": user.name,
                                            "origin": OIDC}))
            user.name, user.updated_at = name, now
        if split(user.roles) != roles:
            ids = list(s.scalars(select(SessionRow.id).where(SessionRow.user_id == user.id)))
            s.execute(delete(SessionRow).where(SessionRow.id.in_(ids)))
            entries.append(("user.roles", {"name": user.name, "from": sorted(split(user.roles)),
                                           "to": sorted(roles), "totp": False,
                                           "sessions": len(ids), "origin": OIDC}))
            user.roles, user.updated_at = join(roles), now
    _memberships(s, user, groups, now, entries)
    return user


def _group_names(value: Any) -> dict[str, str]:
    """The claim's group values (a list, or one string) → their names here."""
    values: Iterable[Any] = [value] if isinstance(value, str) else \
        value if isinstance(value, list) else []
    found: dict[str, str] = {}
    for raw in list(values)[:MAX_GROUPS]:
        if isinstance(raw, str) and 0 < len(raw) <= 512 and NAME.fullmatch(greffier_name(raw)):
            found[raw] = greffier_name(raw)
    return found


def _memberships(s: Session, user: User, groups: dict[str, str], now: float,
                 entries: Entries) -> None:
    """The account's ``oidc`` groups follow the claim; a group name held by a local or
    directory group is skipped (reported in the login entry), never merged."""
    rows = {g.external_id: g for g in s.scalars(
        select(Group).where(Group.origin == OIDC, Group.external_id.in_(list(groups))))}
    wanted: set[str] = set()
    for raw, name in sorted(groups.items()):
        row = rows.get(raw)
        if row is None:
            holder = s.scalars(select(Group).where(Group.name == name)).first()
            if holder is not None:
                entries.append(("group.conflict", {"group": name, "origin": OIDC,
                                                   "reason": f"the name belongs to a "
                                                   f"{holder.origin} group"}))
                continue
            row = Group(id=uuid.uuid4().hex, name=name, created_at=now, origin=OIDC,
                        external_id=raw)
            s.add(row)
            s.flush()
            entries.append(("group.create", {"group": name, "group_id": row.id,
                                             "origin": OIDC}))
        wanted.add(row.id)
    have = dict(s.execute(select(Group.id, Group.name)
                          .join(Membership, Membership.group_id == Group.id)
                          .where(Membership.user_id == user.id, Group.origin == OIDC)).all())
    names = dict(s.execute(select(Group.id, Group.name).where(Group.id.in_(wanted))).all())
    for group_id in sorted(wanted - set(have), key=lambda i: names[i]):
        s.add(Membership(user_id=user.id, group_id=group_id))
        entries.append(("group.member.add", {"group": names[group_id], "member": user.name,
                                             "origin": OIDC}))
    gone = sorted(set(have) - wanted, key=lambda i: have[i])
    if gone:
        s.execute(delete(Membership).where(Membership.user_id == user.id,
                                           Membership.group_id.in_(gone)))
    for group_id in gone:
        entries.append(("group.member.remove", {"group": have[group_id], "member": user.name,
                                                "origin": OIDC}))
