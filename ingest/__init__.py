"""Ingest: find files, parse them with unstructured (offline, sandboxed), chunk, track state.

Lowest layer of the data flow: it knows nothing of embeddings, stores or models.
"""

from ._catalog import Catalog, DocumentRecord, FailureRecord, Tombstone
from ._chunk import Chunker, SectionChunker
from ._formats import FORMATS, Limits, format_of, precheck
from ._lang import detect_language, strip_accents
from ._offline import OFFLINE_ENV, set_offline_environment
from ._parse import Parser
from ._sandbox import Isolation
from ._types import Block, Chunk, ParsedDocument, document_id
from ._walk import walk
from ._worker import ParseWorker, WorkerLimits

__all__ = [
    "FORMATS",
    "OFFLINE_ENV",
    "Block",
    "Catalog",
    "Chunk",
    "Chunker",
    "DocumentRecord",
    "FailureRecord",
    "Isolation",
    "Limits",
    "ParseWorker",
    "ParsedDocument",
    "Parser",
    "SectionChunker",
    "Tombstone",
    "WorkerLimits",
    "detect_language",
    "document_id",
    "format_of",
    "precheck",
    "set_offline_environment",
    "strip_accents",
    "walk",
]
