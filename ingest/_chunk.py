"""Cut parsed documents into passages by section, keeping tables whole."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol

from ._lang import detect_language
from ._types import Block, Chunk, ParsedDocument

_SENTENCE_END = re.compile(r"(?<=[.!?;:])\s+")


class Chunker(Protocol):
    """Turns a parsed document into chunks."""

    def chunk(self, doc: ParsedDocument, content_hash: str) -> list[Chunk]: ...


@dataclass(frozen=True)
class SectionChunker:
    """Groups text under its nearest title, up to ``max_chars`` per chunk.

    A title starts a new section; each chunk begins with its section title, which helps both
    retrieval and the reader. Tables are emitted whole, one chunk each. A block longer than
    ``max_chars`` is split at sentence ends, then at spaces.
    """

    max_chars: int = 2000

    def chunk(self, doc: ParsedDocument, content_hash: str) -> list[Chunk]:
        chunks: list[Chunk] = []

        def emit(text: str, page: int | None, section: str, kind: str) -> None:
            body = f"{section}\n{text}" if section and not text.startswith(section) else text
            chunks.append(
                Chunk(content_hash=content_hash, index=len(chunks), text=body, page=page,
                      section=section, lang=detect_language(body),
                      kind="table" if kind == "table" else "text", format=doc.format)
            )

        for section, page, kind, text in self._pieces(doc.blocks):
            emit(text, page, section, kind)
        if not chunks:  # a document made only of titles (a slide deck of headings)
            titles = [b for b in doc.blocks if b.text.strip()]
            text = "\n".join(b.text for b in titles)[: self.max_chars * 4]
            emit(text, titles[0].page, "", "text")
        return chunks

    def _pieces(self, blocks: tuple[Block, ...]) -> Iterator[tuple[str, int | None, str, str]]:
        titles: dict[int, str] = {}
        section = ""
        buffer: list[str] = []
        size = 0
        page: int | None = None
        for block in blocks:
            if block.kind == "title":
                if buffer:
                    yield section, page, "text", "\n".join(buffer)
                    buffer, size, page = [], 0, None
                titles = {d: t for d, t in titles.items() if d < block.depth}
                titles[block.depth] = block.text
                section = " › ".join(titles[d] for d in sorted(titles))[: self.max_chars // 2]
                continue
            if block.kind == "table":
                if buffer:
                    yield section, page, "text", "\n".join(buffer)
                    buffer, size, page = [], 0, None
                yield section, block.page, "table", block.text
                continue
            for piece in _split(block.text, self.max_chars):
                if buffer and size + len(piece) + 1 > self.max_chars:
                    yield section, page, "text", "\n".join(buffer)
                    buffer, size, page = [], 0, None
                if page is None:
                    page = block.page
                buffer.append(piece)
                size += len(piece) + 1
        if buffer:
            yield section, page, "text", "\n".join(buffer)


def _split(text: str, limit: int) -> list[str]:
    if len(text) <= limit:
        return [text]
    pieces: list[str] = []
    current = ""
    for sentence in _SENTENCE_END.split(text):
        while len(sentence) > limit:  # a "sentence" with no end in sight: cut at a space
            cut = sentence.rfind(" ", 0, limit)
            cut = cut if cut > limit // 2 else limit
            if current:
                pieces.append(current)
                current = ""
            pieces.append(sentence[:cut].strip())
            sentence = sentence[cut:].strip()
        if current and len(current) + len(sentence) + 1 > limit:
            pieces.append(current)
            current = sentence
        else:
            current = f"{current} {sentence}".strip()
    if current:
        pieces.append(current)
    return [p for p in pieces if p]
