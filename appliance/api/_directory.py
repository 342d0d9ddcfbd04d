"""The directory (admin): its sync status, and a sync on demand."""

from __future__ import annotations

from fastapi import APIRouter

from ..service import _directory as use
from ..service._directory_models import DirectoryOut, SyncOut
from ._deps import Caller, Rt

router = APIRouter(prefix="/v1/directory", tags=["directory"])


@router.get("", response_model=DirectoryOut,
            summary="The directory (LDAP) and its last sync (admin)")
def status(rt: Rt, who: Caller) -> DirectoryOut:
    return use.directory_status(rt, who)


@router.post("/sync", response_model=SyncOut,
             summary="Sync users, groups and memberships from the directory now (admin)",
             responses={409: {"description": "No directory configured, or a sync is running."},
                        503: {"description": "The directory cannot be read; nothing changed."}})
def sync(rt: Rt, who: Caller) -> SyncOut:
    return use.sync_directory(rt, who)
