"""Documents (upload, list, metadata, download, erase) and ingest jobs."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import StreamingResponse
from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header

from security import InvalidRequestError, RequestError

from ..service import _access as access
from ..service import _documents as use
from ..service._access import AccessIn, AccessOut
from ..service._models import DocumentOut, DocumentPage, ErasureOut, JobOut
from ._deps import Caller, Rt

router = APIRouter(prefix="/v1", tags=["documents"])

_UPLOAD_BODY: dict[str, Any] = {
    "requestBody": {"required": True, "content": {"multipart/form-data": {"schema": {
        "type": "object", "required": ["file"],
        "properties": {"file": {"type": "string", "format": "binary"}}}}}}}


class UnsupportedMediaType(RequestError):
    status = 415
    code = "unsupported-media-type"


@router.post("/documents", status_code=202, response_model=JobOut,
             openapi_extra=_UPLOAD_BODY,
             summary="Upload a document (multipart field `file`); ingested in the background",
             responses={413: {"description": "Larger than api.max_upload_mb."},
                        415: {"description": "Not multipart, or a format Greffier refuses."}})
async def upload(request: Request, rt: Rt, who: Caller,
                 groups: Annotated[list[str], Query(max_length=100)] = []) -> JobOut:  # noqa: B006
    """Streams the file to memory-backed staging (never to disk in clear), checks it like
    any ingested file (format, size, bombs, encryption), then returns the ingest job.

    The document is readable by its uploader and by the ``groups`` he grants (each one he
    belongs to): with none, by him alone."""
    ctype, options = parse_options_header(request.headers.get("content-type", ""))
    boundary = options.get(b"boundary")
    if ctype != b"multipart/form-data" or not boundary:
        raise UnsupportedMediaType("Send the document as multipart/form-data, field `file`.")
    state: dict[str, Any] = {"field": b"", "value": b"", "headers": {}, "staged": None}
    staged_all: list[use.Staged] = []
    errors: list[BaseException] = []

    def on_header_field(data: bytes, start: int, end: int) -> None:
        state["field"] += data[start:end]

    def on_header_value(data: bytes, start: int, end: int) -> None:
        state["value"] += data[start:end]

    def on_header_end() -> None:
        state["headers"][state["field"].lower()] = state["value"]
        state["field"] = state["value"] = b""

    def on_headers_finished() -> None:
        _, opts = parse_options_header(state["headers"].get(b"content-disposition", b""))
        state["headers"] = {}
        if opts.get(b"name") == b"file" and not staged_all and not errors:
            filename = opts.get(b"filename", b"").decode("utf-8", "replace")
            try:
                staged = use.Staged(rt, who, filename or "upload", tuple(groups))
            except BaseException as exc:
                errors.append(exc)
                return
            staged_all.append(staged)
            state["staged"] = staged

    def on_part_data(data: bytes, start: int, end: int) -> None:
        if state["staged"] is not None:
            state["staged"].write(data[start:end])

    def on_part_end() -> None:
        state["staged"] = None

    def on_end() -> None:
        state["ended"] = True

    parser = MultipartParser(boundary, {
        "on_header_field": on_header_field, "on_header_value": on_header_value,
        "on_header_end": on_header_end, "on_headers_finished": on_headers_finished,
        "on_part_data": on_part_data, "on_part_end": on_part_end, "on_end": on_end})
    try:
        async for chunk in request.stream():
            parser.write(chunk)
            if errors:
                raise errors[0]
        parser.finalize()
        if not state.get("ended"):
            raise MultipartParseError("no closing boundary: the body was cut short")
    except MultipartParseError as exc:
        for staged in staged_all:
            staged.abort()
        raise InvalidRequestError("The multipart body is malformed.",
                                  hint="curl -F file=@report.pdf … builds a valid one.") from exc
    except BaseException:
        for staged in staged_all:
            staged.abort()
        raise
    if errors:
        raise errors[0]
    if not staged_all:
        raise InvalidRequestError("No `file` field in the form.",
                                  hint="curl -F file=@report.pdf …")
    job = await asyncio.to_thread(staged_all[0].finish)
    return use.job_out(job)


@router.get("/documents", response_model=DocumentPage, summary="List documents")
def list_documents(rt: Rt, who: Caller,
                   offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
                   limit: Annotated[int, Query(ge=1, le=500)] = 50,
                   format: Annotated[str | None, Query(max_length=16)] = None,
                   name: Annotated[str | None, Query(max_length=200)] = None) -> DocumentPage:
    return use.list_documents(rt, who, offset=offset, limit=limit, fmt=format, name=name)


@router.get("/documents/{doc_id}", response_model=DocumentOut, summary="Document metadata")
def get_document(doc_id: str, rt: Rt, who: Caller) -> DocumentOut:
    return use.get_document(rt, who, doc_id)


@router.get("/documents/{doc_id}/content", summary="Download the original (decrypted)",
            response_class=StreamingResponse,
            responses={200: {"content": {"application/octet-stream": {}}}})
def download(doc_id: str, rt: Rt, who: Caller) -> StreamingResponse:
    doc, segments = use.download(rt, who, doc_id)
    quoted = "".join(c if c.isalnum() or c in "._-" else "_" for c in doc.name)
    return StreamingResponse(
        _iterate(segments), media_type="application/octet-stream",
        headers={"Content-Disposition": f'attachment; filename="{quoted}"',
                 "X-Content-SHA256": doc.content_sha256})


async def _iterate(segments: Iterator[bytes]) -> AsyncIterator[bytes]:
    while True:
        segment = await asyncio.to_thread(next, segments, None)
        if segment is None:
            return
        yield segment


@router.delete("/documents/{doc_id}", response_model=ErasureOut,
               summary="Crypto-erase a document; returns the signed certificate")
def erase(doc_id: str, rt: Rt, who: Caller) -> ErasureOut:
    return use.erase_document(rt, who, doc_id)


@router.get("/documents/{doc_id}/access", response_model=AccessOut,
            summary="Who may read a document (an admin, or one of its readers)")
def get_access(doc_id: str, rt: Rt, who: Caller) -> AccessOut:
    return access.get_access(rt, who, doc_id)


@router.put("/documents/{doc_id}/access", response_model=AccessOut,
            summary="Change who may read a document (admin); applies at once")
def set_access(doc_id: str, body: AccessIn, rt: Rt, who: Caller) -> AccessOut:
    return access.set_access(rt, who, doc_id, body)


@router.get("/jobs/{job_id}", response_model=JobOut, summary="An ingest job's progress")
def job(job_id: str, rt: Rt, who: Caller) -> JobOut:
    return use.get_job(rt, who, job_id)
