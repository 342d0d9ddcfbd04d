"""Citations ``[n]`` in an answer, mapped to the exact passages the model was given."""

from __future__ import annotations

import re
from collections.abc import Sequence

from retrieval import Passage

from ._types import Citation

_BRACKETS = re.compile(r"\[(\d+(?:\s*[,;]\s*\d+)*)\]")


def parse_citations(text: str, passages: Sequence[Passage]) -> list[Citation]:
    """Each distinct number cited, in order of first appearance; invalid ones flagged."""
    seen: list[int] = []
    for match in _BRACKETS.finditer(text):
        for part in re.split(r"[,;]", match.group(1)):
            number = int(part)
            if number not in seen:
                seen.append(number)
    citations = []
    for number in seen:
        if 1 <= number <= len(passages):
            p = passages[number - 1]
            citations.append(Citation(number, True, p.chunk_id, p.content_hash, p.path, p.page))
        else:
            citations.append(Citation(number, False))
    return citations


_WORD = re.compile(r"\w{3,}", re.UNICODE)


def attribute(text: str, passages: Sequence[Passage], *, min_overlap: float = 0.3
              ) -> list[Citation]:
    """When a model cites nothing: the source whose words the answer uses most, if enough.

    Small models often ignore the instruction to cite. Rather than show an unsourced answer,
    Greffier attributes it to the passage that shares the largest fraction of the answer's
    words, and marks the citation ``origin="attributed"`` so the reader knows.
    """
    words = {w.lower() for w in _WORD.findall(text)}
    if not words:
        return []
    best, best_overlap = -1, 0.0
    for number, passage in enumerate(passages, start=1):
        overlap = len(words & {w.lower() for w in _WORD.findall(passage.text)}) / len(words)
        if overlap > best_overlap:
            best, best_overlap = number, overlap
    if best < 1 or best_overlap < min_overlap:
        return []
    p = passages[best - 1]
    return [Citation(best, True, p.chunk_id, p.content_hash, p.path, p.page, "attributed")]
