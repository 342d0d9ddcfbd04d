"""The request/response contract, shared by the REST routes and the CLI's ``--json``."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

Mode = Literal["hybrid", "dense", "bm25", "hybrid+rerank"]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Filters(_In):
    doc_ids: list[str] = Field(default_factory=list, max_length=100)
    langs: list[str] = Field(default_factory=list, max_length=10)
    formats: list[str] = Field(default_factory=list, max_length=20)


class SearchIn(_In):
    query: str = Field(min_length=1, max_length=2000, description="What to look for.")
    k: int | None = Field(None, ge=1, le=50, description="Passages to return.")
    mode: Mode = "hybrid"
    filters: Filters | None = None


class AskIn(_In):
    question: str = Field(min_length=1, max_length=2000)
    stream: bool = Field(False, description="Answer as server-sent events.")
    filters: Filters | None = None
    conversation_id: str | None = Field(None, max_length=64)


class SourceOut(BaseModel):
    """Where a passage comes from."""

    doc_id: str
    name: str = Field(description="The document's file name (no folder).")
    version: int


class PassageOut(BaseModel):
    number: int = Field(description="1-based; answers cite passages as [number].")
    chunk_id: str
    text: str
    score: float
    doc_id: str
    document: str = Field(description="File name of the document.")
    page: int | None
    section: str
    lang: str
    version: int
    content_sha256: str


class SearchOut(BaseModel):
    id: str = Field(description="Answer id: GET /v1/answers/{id}/receipt.")
    query: str
    mode: Mode
    passages: list[PassageOut]
    receipt_id: str
    timings_ms: dict[str, float]


class CitationOut(BaseModel):
    number: int
    valid: bool


class AskOut(BaseModel):
    id: str
    question: str
    answer: str
    refused: bool
    degraded: bool
    notice: str
    lang: str
    model: str
    citations: list[CitationOut]
    passages: list[PassageOut]
    receipt_id: str
    conversation_id: str | None
    timings_ms: dict[str, float]


class DocumentOut(BaseModel):
    doc_id: str
    name: str
    format: str
    size: int
    version: int
    content_sha256: str
    modified_at: float


class Page(BaseModel):
    items: list[Any]
    total: int
    offset: int
    limit: int
    next_offset: int | None


class DocumentPage(Page):
    items: list[DocumentOut]


class FileResultOut(BaseModel):
    name: str
    status: str
    doc_id: str | None
    chunks: int
    error: str | None
    message: str | None


class JobOut(BaseModel):
    id: str
    kind: str
    state: Literal["queued", "running", "done", "failed", "cancelled"]
    total: int | None
    done: int
    files: list[FileResultOut]
    error: str | None
    created_at: float
    finished_at: float | None


class ErasureOut(BaseModel):
    certificate: dict[str, Any]


class UnsealIn(_In):
    passphrase: str = Field(min_length=1, max_length=1024)


class StatusOut(BaseModel):
    sealed: bool
    version: str
    documents: int | None = None
    chunks: int | None = None
    embedder: str | None = None
    uptime_s: float


class AuditHeadOut(BaseModel):
    tree_head: dict[str, Any]
    public_key: str


class VerifyOut(BaseModel):
    ok: bool
    entries: int
    problems: list[str]


class AuditEntryOut(BaseModel):
    index: int
    time: str | None
    event: str | None
    user: str | None
    details: dict[str, Any]
