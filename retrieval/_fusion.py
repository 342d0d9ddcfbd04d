"""Fusing the dense and sparse result lists into one ranking.

Weighted reciprocal-rank fusion: each list contributes ``weight / (k + rank)``. Ranks,
not raw scores, are fused, because cosine similarities and BM25 scores live on unrelated
scales. The weights are where quality is won: a dense model that does not cover the query's
language (the English dev embedder on a French question) is given a small weight, so it can
still break ties but cannot drown out BM25.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

from ._types import Passage


@dataclass(frozen=True)
class FusionPolicy:
    """How much each leg counts, by query language."""

    rrf_k: int = 60
    sparse_weight: float = 1.0
    dense_weight: float = 1.0
    # Weight of the dense leg when the query's language is not one the model was trained on.
    foreign_dense_weight: float = 0.25
    model_languages: tuple[str, ...] = ()  # empty: the model is taken as multilingual

    def weights(self, query_lang: str) -> tuple[float, float]:
        """``(dense, sparse)`` weights for a query in ``query_lang``."""
        covered = not self.model_languages or query_lang in self.model_languages
        return (self.dense_weight if covered else self.foreign_dense_weight, self.sparse_weight)


def rrf(legs: Sequence[tuple[Sequence[Passage], float]], *, k: int, limit: int) -> list[Passage]:
    """Weighted reciprocal-rank fusion of ranked lists; scores are the fused scores."""
    scores: dict[str, float] = {}
    first: dict[str, Passage] = {}
    for passages, weight in legs:
        if weight <= 0:
            continue
        for rank, passage in enumerate(passages, start=1):
            scores[passage.chunk_id] = scores.get(passage.chunk_id, 0.0) + weight / (k + rank)
            first.setdefault(passage.chunk_id, passage)
    ranked = sorted(scores.items(), key=lambda item: (-item[1], item[0]))[:limit]
    return [replace(first[cid], score=score) for cid, score in ranked]
