"""Groups (admin): create, list, show, delete, and their members."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from ..service import _groups as use
from ..service._group_models import GroupIn, GroupOut, GroupPage, MembershipOut
from ._deps import Caller, Rt

router = APIRouter(prefix="/v1/groups", tags=["groups"])
_UNKNOWN: dict[int | str, dict[str, Any]] = {404: {"description": "No such group (or account)."}}


@router.get("", response_model=GroupPage, summary="Groups with their member counts (admin)")
def list_groups(rt: Rt, who: Caller,
                offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
                limit: Annotated[int, Query(ge=1, le=500)] = 50) -> GroupPage:
    return use.list_groups(rt, who, offset=offset, limit=limit)


@router.post("", status_code=201, response_model=GroupOut, summary="Create a group (admin)",
             responses={409: {"description": "The name is taken."}})
def create_group(body: GroupIn, rt: Rt, who: Caller) -> GroupOut:
    return use.create_group(rt, who, body.name)


@router.get("/{name}", response_model=GroupOut, summary="A group and its members (admin)",
            responses=_UNKNOWN)
def get_group(name: str, rt: Rt, who: Caller) -> GroupOut:
    return use.get_group(rt, who, name)


@router.delete("/{name}", response_model=GroupOut,
               summary="Delete a group and its memberships (admin); returns it as it was",
               responses=_UNKNOWN)
def delete_group(name: str, rt: Rt, who: Caller) -> GroupOut:
    return use.delete_group(rt, who, name)


@router.put("/{name}/members/{user}", response_model=MembershipOut,
            summary="Add an account to a group (admin; already a member: changed false)",
            responses=_UNKNOWN)
def add_member(name: str, user: str, rt: Rt, who: Caller) -> MembershipOut:
    return use.add_member(rt, who, name, user)


@router.delete("/{name}/members/{user}", response_model=MembershipOut,
               summary="Take an account out of a group (admin; not a member: changed false)",
               responses=_UNKNOWN)
def remove_member(name: str, user: str, rt: Rt, who: Caller) -> MembershipOut:
    return use.remove_member(rt, who, name, user)
