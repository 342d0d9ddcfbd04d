"""Sources (admin): server-side folders, synced on demand or on a schedule."""

from __future__ import annotations

from fastapi import APIRouter, Response

from ..service import _documents as docs
from ..service import _sources as use
from ..service._models import JobOut
from ..service._sources import SourceIn, SourceOut
from ._deps import Caller, Rt

router = APIRouter(prefix="/v1/sources", tags=["sources"])


@router.get("", response_model=list[SourceOut], summary="Registered folders (admin)")
def list_sources(rt: Rt, who: Caller) -> list[SourceOut]:
    return use.list_sources(rt, who)


@router.post("", status_code=201, response_model=SourceOut,
             summary="Register a folder of this appliance (admin)")
def add_source(body: SourceIn, rt: Rt, who: Caller) -> SourceOut:
    return use.add_source(rt, who, body)


@router.delete("/{source_id}", status_code=204,
               summary="Unregister a folder (its documents stay until erased)")
def remove_source(source_id: str, rt: Rt, who: Caller) -> Response:
    use.remove_source(rt, who, source_id)
    return Response(status_code=204)


@router.post("/{source_id}/sync", status_code=202, response_model=JobOut,
             summary="Sync now: new and changed files in, gone files out")
def sync_source(source_id: str, rt: Rt, who: Caller) -> JobOut:
    return docs.job_out(use.sync_source(rt, who, source_id))
