"""Generation's types: an answer and its citations."""

from __future__ import annotations

from dataclasses import dataclass, field

from retrieval import Passage


@dataclass(frozen=True)
class Sampling:
    temperature: float = 0.1
    top_p: float = 0.9
    max_tokens: int = 384
    # No per-request seed by default: vLLM on the CPU dies on a seeded request whose
    # prefill is chunked ("CPU Generator does not use offset", bench/api_load.py).
    seed: int | None = None


@dataclass(frozen=True)
class Citation:
    number: int
    valid: bool  # False: the model cited a source it was not given
    chunk_id: str | None = None
    content_hash: str | None = None
    path: str | None = None
    page: int | None = None
    # "model": the model wrote [n]; "attributed": the model cited nothing and Greffier
    # matched the answer to the source sharing the most of its words (shown as such).
    origin: str = "model"


@dataclass
class Answer:
    question: str
    lang: str
    text: str
    passages: list[Passage]  # the numbered sources given to the model, in order
    citations: list[Citation]
    refused: bool = False  # nothing relevant enough: the model was not called
    degraded: bool = False  # the model was unavailable: passages only
    notice: str = ""
    model: str = ""
    model_sha256: str = ""
    template_version: str = ""
    sampling: Sampling = field(default_factory=Sampling)
    timings_ms: dict[str, float] = field(default_factory=dict)

    @property
    def invalid_citations(self) -> list[int]:
        return [c.number for c in self.citations if not c.valid]
