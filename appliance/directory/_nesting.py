"""Nested groups: a group's members are its users and, transitively, the users of the
groups it contains. Cycles (A in B in A) are harmless: each group is visited once."""

from __future__ import annotations

from collections.abc import Iterable

from ._types import DirectoryGroup, DirectoryUser


def resolve_members(users: Iterable[DirectoryUser],
                    groups: Iterable[DirectoryGroup]) -> dict[str, frozenset[str]]:
    """Group DN → the DNs of every user in it, directly or through nested groups. Member
    DNs that are neither a known user nor a known group (outside the bases, or filtered
    out) are ignored."""
    by_dn = {g.dn: g for g in groups}
    user_by_dn = {u.dn for u in users}
    user_by_name = {u.name.lower(): u.dn for u in users}
    direct: dict[str, set[str]] = {}
    inner: dict[str, set[str]] = {}
    for group in by_dn.values():
        direct[group.dn] = ({dn for dn in group.member_dns if dn in user_by_dn}
                            | {user_by_name[n.lower()] for n in group.member_names
                               if n.lower() in user_by_name})
        inner[group.dn] = {dn for dn in group.member_dns if dn in by_dn and dn != group.dn}
    resolved: dict[str, frozenset[str]] = {}
    for dn in by_dn:
        seen, todo, members = {dn}, [dn], set()
        while todo:
            current = todo.pop()
            members |= direct[current]
            for child in inner[current] - seen:
                seen.add(child)
                todo.append(child)
        resolved[dn] = frozenset(members)
    return resolved
