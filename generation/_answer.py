"""Answering: refuse without the model when nothing is relevant, else prompt, stream, cite."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from retrieval import SearchResult

from ._citations import attribute, parse_citations
from ._client import GenerationUnavailable, Generator
from ._prompt import NOT_FOUND, TEMPLATE_VERSION, build_prompt
from ._sanitize import TokenGuard
from ._types import Answer, Sampling

DEGRADED = {
    "en": "The language model is unavailable right now: here are the most relevant passages.",
    "fr": "Le modèle de langage est indisponible pour le moment : voici les passages les plus "
          "pertinents.",
}


@dataclass(frozen=True)
class Relevance:
    """Below both thresholds, nothing retrieved is relevant enough to answer from."""

    min_dense: float = 0.35  # cosine of the best dense hit
    min_sparse: float = 3.0  # BM25 score of the best sparse hit


class Answerer:
    def __init__(self, generator: Generator, count_tokens: Callable[[str], int], *,
                 context_tokens: int = 4096, sampling: Sampling | None = None,
                 relevance: Relevance | None = None, max_sources: int = 6,
                 model_sha256: str = "", guard: TokenGuard | None = None) -> None:
        self.generator = generator
        self.count_tokens = count_tokens
        self.context_tokens = context_tokens
        self.sampling = sampling or Sampling()
        self.relevance = relevance or Relevance()
        self.max_sources = max_sources
        self.model_sha256 = model_sha256
        # Neutralises the model's special tokens in untrusted text; give it
        # ``TokenGuard.for_model(folder)`` so the tokenizer's own tokens are covered too.
        self.guard = guard or TokenGuard()

    def relevant(self, result: SearchResult) -> bool:
        dense = result.best_dense if result.best_dense is not None else 0.0
        sparse = result.best_sparse if result.best_sparse is not None else 0.0
        return dense >= self.relevance.min_dense or sparse >= self.relevance.min_sparse

    def answer(self, question: str, result: SearchResult,
               on_token: Callable[[str], None] = lambda token: None) -> Answer:
        lang = result.query_lang if result.query_lang in NOT_FOUND else "en"
        timings = {"retrieval_ms": result.timings_ms.get("total_ms", 0.0)}
        base = Answer(question=question, lang=lang, text="", passages=[], citations=[],
                      model=self.generator.model, model_sha256=self.model_sha256,
                      template_version=TEMPLATE_VERSION, sampling=self.sampling,
                      timings_ms=timings)
        if not result.passages or not self.relevant(result):
            base.text, base.refused = NOT_FOUND[lang], True
            return base
        budget = self.context_tokens - self.sampling.max_tokens
        prompt = build_prompt(question, result.passages[: self.max_sources], lang,
                              count_tokens=self.count_tokens, budget=budget, guard=self.guard)
        base.passages = prompt.passages
        started = time.perf_counter()
        pieces: list[str] = []
        try:
            for token in self.generator.stream(prompt.messages, self.sampling):
                if not pieces:
                    timings["first_token_ms"] = (time.perf_counter() - started) * 1000
                pieces.append(token)
                on_token(token)
        except GenerationUnavailable:
            base.degraded, base.notice = True, DEGRADED[lang]
            base.passages = list(result.passages)
            timings["total_ms"] = (time.perf_counter() - started) * 1000 + timings[
                "retrieval_ms"]
            return base
        base.text = "".join(pieces)
        base.citations = parse_citations(base.text, prompt.passages) or attribute(
            base.text, prompt.passages)
        timings["generation_ms"] = (time.perf_counter() - started) * 1000
        timings["total_ms"] = timings["generation_ms"] + timings["retrieval_ms"]
        return base
