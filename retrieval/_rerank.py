"""Optional cross-encoder reranking of the fused candidates, within a time budget."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, Protocol

from security import ModelError

from ._types import Passage


class Reranker(Protocol):
    """Reorders passages for a query; returns them with reranker scores."""

    def rerank(self, query: str, passages: Sequence[Passage]) -> list[Passage]: ...


class CrossEncoderReranker:
    """A sentence-transformers ``CrossEncoder`` from a local folder (safetensors only).

    Scores the top ``top_n`` candidates in batches; once ``budget_ms`` is spent, the
    candidates not yet scored keep their fused order behind the scored ones, so a slow
    machine degrades quality, never latency.
    """

    def __init__(self, folder: Path, *, top_n: int = 30, budget_ms: float = 1500.0,
                 batch_size: int = 8) -> None:
        if not any(folder.glob("*.safetensors")):
            raise ModelError(f"No safetensors cross-encoder in {folder}.",
                             hint="Point search.reranker_dir at a CrossEncoder folder.")
        self.folder, self.top_n, self.budget_ms, self.batch_size = folder, top_n, budget_ms, \
            batch_size
        self._model: Any = None

    def _load(self) -> Any:
        if self._model is None:
            from sentence_transformers import CrossEncoder

            self._model = CrossEncoder(str(self.folder), device="cpu", local_files_only=True,
                                       trust_remote_code=False)
        return self._model

    def rerank(self, query: str, passages: Sequence[Passage]) -> list[Passage]:
        model = self._load()
        head, tail = list(passages[: self.top_n]), list(passages[self.top_n:])
        deadline = time.perf_counter() + self.budget_ms / 1000
        scored: list[Passage] = []
        for start in range(0, len(head), self.batch_size):
            if time.perf_counter() > deadline:
                break
            batch = head[start:start + self.batch_size]
            scores = model.predict([(query, p.text) for p in batch], show_progress_bar=False)
            scored += [replace(p, score=float(s)) for p, s in zip(batch, scores, strict=True)]
        scored.sort(key=lambda p: -p.score)
        return scored + head[len(scored):] + tail
