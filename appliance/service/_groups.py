"""Groups: an admin creates and deletes them and sets their members; documents are granted
to them (``g:<group id>`` access entries).

A caller's groups are read from the database at each authentication
(:meth:`Core.principal`), so a membership change holds from the member's very next
request, whether he comes with a session or a token. A deleted group's id is never given
again: the access entries still naming it grant nobody.

Every change is audited (``group.create``, ``group.delete``, ``group.member.add``,
``group.member.remove``); a change that is already so does nothing and is not audited
twice.
"""

from __future__ import annotations

import uuid

from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from security import ConflictError, InvalidRequestError, NotFoundError

from ..db import Group, Membership, User
from ._group_models import GroupOut, GroupPage, GroupSummary, MembershipOut
from ._identity_common import NAME, Core
from ._identity_models import when
from ._principal import Principal
from ._runtime import Runtime

_LIST_HINT = "List the groups with `greffier groups list` (or GET /v1/groups)."


def create_group(rt: Runtime, who: Principal, name: str) -> GroupOut:
    """A new, empty group. Names follow the rule of account names and are unique."""
    who.require("groups")
    if not NAME.fullmatch(name):
        raise InvalidRequestError(
            f"{name[:80]!r} is not a valid group name.",
            hint="1 to 64 lower-case letters, digits, '.', '_' or '-', starting with a "
            "letter or digit.")
    ident: Core = rt.identity
    taken = ConflictError(f"The group name {name!r} is taken.",
                          hint="Choose another name, or add members to the existing group.")
    try:
        with ident.db.session() as s:
            if s.scalars(select(Group.id).where(Group.name == name)).first() is not None:
                raise taken
            group = Group(id=uuid.uuid4().hex, name=name, created_at=ident.clock())
            s.add(group)
            s.flush()  # a name taken at the same instant fails here, before the audit
            ident.audit("group.create", who.audit_name, {"group": name, "group_id": group.id})
            return _out(s, group)
    except IntegrityError as exc:
        raise taken from exc


def list_groups(rt: Runtime, who: Principal, *, offset: int = 0,
                limit: int = 50) -> GroupPage:
    """The groups by name, with how many members each has."""
    who.require("groups")
    count = func.count(Membership.user_id)
    with rt.identity.db.session() as s:
        total = s.scalar(select(func.count()).select_from(Group)) or 0
        rows = s.execute(select(Group, count).outerjoin(Membership,
                                                        Membership.group_id == Group.id)
                         .group_by(Group.id).order_by(Group.name)
                         .offset(offset).limit(limit)).all()
    items = [GroupSummary(id=g.id, name=g.name, members=n, created_at=when(g.created_at))
             for g, n in rows]
    following = offset + limit
    return GroupPage(items=items, total=total, offset=offset, limit=limit,
                     next_offset=following if following < total else None)


def get_group(rt: Runtime, who: Principal, name: str) -> GroupOut:
    """One group and its members."""
    who.require("groups")
    with rt.identity.db.session() as s:
        return _out(s, _group(s, name))


def delete_group(rt: Runtime, who: Principal, name: str) -> GroupOut:
    """Delete a group and its memberships; returns it as it was. Its members lose what it
    granted at their next request."""
    who.require("groups")
    ident: Core = rt.identity
    with ident.db.session() as s:
        group = _group(s, name, lock=True)
        out = _out(s, group)
        s.execute(delete(Membership).where(Membership.group_id == group.id))
        s.delete(group)
        s.flush()
        ident.audit("group.delete", who.audit_name,
                    {"group": name, "group_id": out.id, "members": out.members})
        return out


def add_member(rt: Runtime, who: Principal, name: str, user: str) -> MembershipOut:
    """Put an account in a group (already there: nothing done, ``changed`` false). The
    group's row is locked: concurrent changes to one group take turns."""
    who.require("groups")
    ident: Core = rt.identity
    with ident.db.session() as s:
        group, account = _group(s, name, lock=True), ident.account(s, user)
        if s.get(Membership, (account.id, group.id)) is not None:
            return MembershipOut(group=name, member=user, member_of=True, changed=False)
        s.add(Membership(user_id=account.id, group_id=group.id))
        s.flush()  # written before it is audited
        ident.audit("group.member.add", who.audit_name, {"group": name, "member": user})
        return MembershipOut(group=name, member=user, member_of=True, changed=True)


def remove_member(rt: Runtime, who: Principal, name: str, user: str) -> MembershipOut:
    """Take an account out of a group (not in it: nothing done, ``changed`` false)."""
    who.require("groups")
    ident: Core = rt.identity
    with ident.db.session() as s:
        group, account = _group(s, name, lock=True), ident.account(s, user)
        gone = s.execute(delete(Membership).where(Membership.group_id == group.id,
                                                  Membership.user_id == account.id))
        if not getattr(gone, "rowcount", 0):
            return MembershipOut(group=name, member=user, member_of=False, changed=False)
        ident.audit("group.member.remove", who.audit_name, {"group": name, "member": user})
        return MembershipOut(group=name, member=user, member_of=False, changed=True)


# -- helpers -----------------------------------------------------------------------------
def _group(s: Session, name: str, *, lock: bool = False) -> Group:
    query = select(Group).where(Group.name == name)
    group = (s.scalars(query.with_for_update() if lock else query).first()
             if NAME.fullmatch(name) else None)
    if group is None:
        raise NotFoundError(f"No group named {name[:80]!r}.", hint=_LIST_HINT)
    return group


def _out(s: Session, group: Group) -> GroupOut:
    members = s.scalars(select(User.name).join(Membership, Membership.user_id == User.id)
                        .where(Membership.group_id == group.id).order_by(User.name))
    return GroupOut(id=group.id, name=group.name, members=list(members),
                    created_at=when(group.created_at))

