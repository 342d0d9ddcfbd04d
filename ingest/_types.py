"""Ingest's own types: what a parser yields and what the chunker emits."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Literal

BlockKind = Literal["title", "text", "list", "table"]

# Namespace for Greffier's deterministic ids (uuid5): the same input always gives the same id,
# which is what makes an interrupted ingest idempotent when it runs again.
GREFFIER_NAMESPACE = uuid.UUID("6f1c2b9e-3d4a-5b8c-9e0f-1a2b3c4d5e6f")


@dataclass(frozen=True, slots=True)
class Block:
    """One structural element of a parsed document, independent of the parser."""

    kind: BlockKind
    text: str
    page: int | None = None
    depth: int = 0


@dataclass(frozen=True, slots=True)
class ParsedDocument:
    """Everything a parser extracted from one file."""

    format: str
    blocks: tuple[Block, ...]
    pages: int
    ocr_pages: int = 0

    @property
    def chars(self) -> int:
        return sum(len(block.text) for block in self.blocks)


@dataclass(frozen=True, slots=True)
class Chunk:
    """A passage ready to embed: text plus where it comes from."""

    content_hash: str  # sha256 of the source file's bytes: identical files share chunks
    index: int  # position within the document
    text: str
    page: int | None
    section: str
    lang: str
    kind: Literal["text", "table"]
    format: str

    @property
    def chunk_id(self) -> str:
        """Deterministic point id: re-indexing the same content overwrites, never duplicates."""
        return str(uuid.uuid5(GREFFIER_NAMESPACE, f"{self.content_hash}:{self.index}"))


def document_id(path: str) -> str:
    """Stable id of a logical document: its canonical path, hashed."""
    return str(uuid.uuid5(GREFFIER_NAMESPACE, f"path:{path}"))
