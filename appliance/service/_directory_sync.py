"""One directory sync, inside one transaction: what the directory says, applied to the
accounts and groups whose origin is ``ldap``. Local (and OIDC) accounts, groups and
memberships are never touched. Returns the counts, the skipped entries and the audit
entries to write (the caller writes them once the changes are flushed)."""

from __future__ import annotations

import re
import unicodedata
import uuid
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from security import InvalidRequestError

from .._directory_settings import LdapSettings
from ..db import NO_PASSWORD, ApiTokenRow, Group, Membership, SessionRow, User
from ..directory import DirectorySnapshot, resolve_members
from ._directory_models import SyncConflict, SyncCounts
from ._identity_common import NAME, join, split
from ._principal import check_roles

LDAP = "ldap"
_INVALID = re.compile(r"[^a-z0-9._-]+")


@dataclass
class Outcome:
    counts: SyncCounts = field(default_factory=lambda: SyncCounts())
    conflicts: list[SyncConflict] = field(default_factory=list)
    entries: list[tuple[str, dict[str, Any]]] = field(default_factory=list)

    def skip(self, kind: str, dn: str, name: str, reason: str) -> None:
        self.conflicts.append(SyncConflict(kind=kind, dn=dn, name=name,  # type: ignore[arg-type]
                                           reason=reason))
        self.counts.conflicts += 1

    def log(self, event: str, **details: Any) -> None:
        self.entries.append((event, {**details, "origin": LDAP}))


def greffier_name(raw: str) -> str:
    """A directory name as an account or group name here: lower case, accents dropped,
    other characters folded to '-' ("Ressources Humaines" → "ressources-humaines")."""
    ascii_ = unicodedata.normalize("NFKD", raw).encode("ascii", "ignore").decode()
    return _INVALID.sub("-", ascii_.strip().lower()).strip("-._")[:64]


def apply(s: Session, snap: DirectorySnapshot, ldap: LdapSettings, now: float) -> Outcome:
    out = Outcome()
    users = _unique(out, "user", [(u.dn, u.name) for u in snap.users])
    groups = _unique(out, "group", [(g.dn, g.name) for g in snap.groups])
    members = resolve_members(snap.users, snap.groups)
    group_names = {dn: groups[dn] for dn in groups}
    user_ids = _sync_users(s, out, snap, users, group_names, members, ldap, now)
    group_ids = _sync_groups(s, out, groups, now)
    _sync_memberships(s, out, members, group_ids, user_ids)
    return out


def _unique(out: Outcome, kind: str, entries: Iterable[tuple[str, str]]) -> dict[str, str]:
    """DN → name here, for the entries whose name is valid and used by no other entry."""
    named = [(dn, raw, greffier_name(raw)) for dn, raw in entries]
    taken = Counter(name for _, _, name in named)
    found: dict[str, str] = {}
    for dn, raw, name in sorted(named):
        if not NAME.fullmatch(name):
            out.skip(kind, dn, raw[:64], "its name cannot be a name here")
        elif taken[name] > 1:
            out.skip(kind, dn, name, f"another directory {kind} has the same name")
        else:
            found[dn] = name
    return found


def _roles(ldap: LdapSettings, group_names: Iterable[str]) -> frozenset[str]:
    mapped: set[str] = {role for name in group_names for role in ldap.roles.get(name, ())}
    wanted: set[str] = mapped or set(ldap.default_roles)
    return check_roles(wanted)


def _sync_users(s: Session, out: Outcome, snap: DirectorySnapshot, users: dict[str, str],
                group_names: dict[str, str], members: dict[str, frozenset[str]],
                ldap: LdapSettings, now: float) -> dict[str, str]:
    """Create, update, disable and enable the directory's accounts; DN → account id."""
    rows = {u.external_id or "": u for u in s.scalars(select(User).where(User.origin == LDAP))}
    by_name = {u.name: u for u in s.scalars(select(User))}
    entries = {u.dn: u for u in snap.users}
    groups_of: dict[str, list[str]] = {}
    for group_dn, user_dns in members.items():
        for dn in user_dns:
            if group_dn in group_names:
                groups_of.setdefault(dn, []).append(group_names[group_dn])
    ids: dict[str, str] = {}
    for dn, name in sorted(users.items()):
        try:
            roles = _roles(ldap, groups_of.get(dn, ()))
        except InvalidRequestError as exc:
            out.skip("user", dn, name, f"its groups map to roles that cannot go together "
                     f"({exc.message})")
            if dn in rows:
                ids[dn] = rows[dn].id  # kept as it is, memberships still follow
            continue
        row = rows.get(dn)
        holder = by_name.get(name)
        if row is None and holder is not None and holder.origin == LDAP \
                and holder.external_id not in users:
            row = holder  # the same name, a DN gone: the entry moved in the directory
            out.log("user.update", name=name, dn={"from": row.external_id, "to": dn})
            row.external_id = dn
            out.counts.users_updated += 1
        if row is None:
            if holder is not None:
                out.skip("user", dn, name, f"the name belongs to a {holder.origin} account")
                continue
            row = User(id=uuid.uuid4().hex, name=name, password_hash=NO_PASSWORD,
                       roles=join(roles), disabled=entries[dn].disabled, totp_enabled=False,
                       failed_logins=0, lockouts=0, created_at=now, updated_at=now,
                       origin=LDAP, external_id=dn)
            s.add(row)
            by_name[name] = row
            out.counts.users_created += 1
            out.log("user.add", name=name, roles=sorted(roles), totp=False,
                    disabled=row.disabled)
        else:
            _update_user(s, out, row, name, roles, entries[dn].disabled, by_name, now)
        ids[dn] = row.id
    for dn, account in rows.items():
        if dn not in users and account.external_id not in users and not account.disabled:
            _disable(s, out, account, "skipped (see the conflicts)" if dn in entries
                     else "gone from the directory", now)
    return ids


def _update_user(s: Session, out: Outcome, row: User, name: str, roles: frozenset[str],
                 disabled: bool, by_name: dict[str, User], now: float) -> None:
    if row.name != name:
        if name in by_name:
            out.skip("user", row.external_id or "", name,
                     f"renamed in the directory, but the name belongs to a "
                     f"{by_name[name].origin} account; kept as {row.name}")
        else:
            out.log("user.update", name=name, renamed_from=row.name)
            del by_name[row.name]
            row.name, row.updated_at, by_name[name] = name, now, row
            out.counts.users_updated += 1
    if split(row.roles) != roles:
        sessions = _end_sessions(s, row)
        out.log("user.roles", name=row.name, **{"from": sorted(split(row.roles)),
                                                "to": sorted(roles)}, totp=False,
                sessions=sessions)
        row.roles, row.updated_at = join(roles), now
        out.counts.users_updated += 1
    if disabled and not row.disabled:
        _disable(s, out, row, "disabled in the directory", now)
    elif not disabled and row.disabled:
        row.disabled, row.updated_at = False, now
        out.log("user.enable", name=row.name)
        out.counts.users_enabled += 1


def _disable(s: Session, out: Outcome, row: User, reason: str, now: float) -> None:
    """Disabled, never deleted (his audit trail and conversations stay); his sessions end
    and his tokens are revoked now."""
    row.disabled, row.updated_at = True, now
    sessions = _end_sessions(s, row)
    tokens = sorted(s.scalars(select(ApiTokenRow.id).where(
        ApiTokenRow.user_id == row.id, ApiTokenRow.revoked_at.is_(None))))
    s.execute(update(ApiTokenRow).where(ApiTokenRow.id.in_(tokens)).values(revoked_at=now))
    out.log("user.disable", name=row.name, reason=reason, sessions=sessions,
            tokens_revoked=tokens)
    out.counts.users_disabled += 1


def _end_sessions(s: Session, row: User) -> int:
    ids = list(s.scalars(select(SessionRow.id).where(SessionRow.user_id == row.id)))
    s.execute(delete(SessionRow).where(SessionRow.id.in_(ids)))
    return len(ids)


def _sync_groups(s: Session, out: Outcome, groups: dict[str, str],
                 now: float) -> dict[str, str]:
    """Create, rename and delete the directory's groups; DN → group id."""
    rows = {g.external_id or "": g
            for g in s.scalars(select(Group).where(Group.origin == LDAP))}
    by_name = {g.name: g for g in s.scalars(select(Group))}
    ids: dict[str, str] = {}
    for dn, old in rows.items():
        if dn not in groups:
            gone = _member_names(s, old.id)
            s.execute(delete(Membership).where(Membership.group_id == old.id))
            s.delete(old)
            del by_name[old.name]
            out.log("group.delete", group=old.name, group_id=old.id, members=gone)
            out.counts.groups_deleted += 1
    s.flush()  # a deleted group's name is free for the next step
    for dn, name in sorted(groups.items()):
        row = rows.get(dn)
        holder = by_name.get(name)
        if row is None:
            if holder is not None:
                out.skip("group", dn, name, f"the name belongs to a {holder.origin} group")
                continue
            row = Group(id=uuid.uuid4().hex, name=name, created_at=now, origin=LDAP,
                        external_id=dn)
            s.add(row)
            by_name[name] = row
            out.log("group.create", group=name, group_id=row.id)
            out.counts.groups_created += 1
        elif row.name != name:
            if holder is not None:
                out.skip("group", dn, name, f"renamed in the directory, but the name "
                         f"belongs to a {holder.origin} group; kept as {row.name}")
            else:
                out.log("group.update", group=name, group_id=row.id, renamed_from=row.name)
                del by_name[row.name]
                row.name, by_name[name] = name, row
                out.counts.groups_updated += 1
        ids[dn] = row.id
    return ids


def _sync_memberships(s: Session, out: Outcome, members: dict[str, frozenset[str]],
                      group_ids: dict[str, str], user_ids: dict[str, str]) -> None:
    """A directory group's directory members follow the directory; a local account an
    admin put in it stays (local accounts are never touched)."""
    s.flush()
    names = dict(s.execute(select(User.id, User.name).where(User.origin == LDAP)).all())
    group_names = dict(s.execute(select(Group.id, Group.name).where(Group.origin == LDAP))
                       .all())
    for dn, group_id in sorted(group_ids.items()):
        wanted = {user_ids[u] for u in members.get(dn, ()) if u in user_ids}
        have = set(s.scalars(select(Membership.user_id).join(User, User.id == Membership.user_id)
                             .where(Membership.group_id == group_id, User.origin == LDAP)))
        for user_id in sorted(wanted - have, key=lambda i: names.get(i, i)):
            s.add(Membership(user_id=user_id, group_id=group_id))
            out.log("group.member.add", group=group_names[group_id], member=names[user_id])
            out.counts.memberships_added += 1
        gone = sorted(have - wanted)
        if gone:
            s.execute(delete(Membership).where(Membership.group_id == group_id,
                                               Membership.user_id.in_(gone)))
        for user_id in gone:
            out.log("group.member.remove", group=group_names[group_id],
                    member=names.get(user_id) or _name_of(s, user_id))
            out.counts.memberships_removed += 1


def _member_names(s: Session, group_id: str) -> list[str]:
    return sorted(s.scalars(select(User.name).join(Membership, Membership.user_id == User.id)
                            .where(Membership.group_id == group_id)))


def _name_of(s: Session, user_id: str) -> str:
    return s.scalar(select(User.name).where(User.id == user_id)) or user_id
