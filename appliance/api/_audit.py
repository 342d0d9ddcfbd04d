"""The audit trail, for auditors: signed head, verification, entries."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from ..service import _audit as use
from ..service._models import AuditEntryOut, AuditHeadOut, Page, VerifyOut
from ._deps import Caller, Rt

router = APIRouter(prefix="/v1/audit", tags=["audit"])


@router.get("/head", response_model=AuditHeadOut, summary="A freshly signed tree head")
def head(rt: Rt, who: Caller) -> AuditHeadOut:
    return use.head(rt, who)


@router.post("/verify", response_model=VerifyOut,
             summary="Check the whole log: hash chain, signed heads, head copies")
def verify(rt: Rt, who: Caller) -> VerifyOut:
    return use.verify(rt, who)


@router.get("/entries", response_model=Page, summary="Entries (clear part), oldest first")
def entries(rt: Rt, who: Caller, offset: Annotated[int, Query(ge=0)] = 0,
            limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> Page:
    return use.entries(rt, who, offset=offset, limit=limit)


@router.get("/reads", response_model=list[AuditEntryOut],
            summary="Who read a document, when (searches, answers, downloads)")
def reads(rt: Rt, who: Caller,
          doc_id: Annotated[str, Query(min_length=1, max_length=64)]) -> list[AuditEntryOut]:
    return use.reads(rt, who, doc_id)
