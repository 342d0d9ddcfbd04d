"""The real development embedder: vectors, and concurrent queries batched together."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from embeddings import SentenceTransformerEncoder, default_model_dir
from embeddings._batcher import QueryBatcher, Vectors

QUESTIONS = [f"Combien de jours de congé en {year} pour le poste {n} ?"
             for n in range(6) for year in range(2020, 2028)]


@pytest.fixture(scope="module")
def encoder() -> SentenceTransformerEncoder:
    return SentenceTransformerEncoder(default_model_dir())


def test_concurrent_queries_share_passes_and_get_their_own_vectors(
        encoder: SentenceTransformerEncoder) -> None:
    serial = {q: encoder.encode_query(q) for q in QUESTIONS}
    passes, queries = encoder.queries.passes, encoder.queries.queries
    assert passes == queries == len(QUESTIONS)  # alone, each query is its own pass
    with ThreadPoolExecutor(16) as pool:
        concurrent = dict(zip(QUESTIONS, pool.map(encoder.encode_query, QUESTIONS),
                              strict=True))
    ran = encoder.queries.passes - passes
    assert encoder.queries.queries - queries == len(QUESTIONS)
    assert ran < len(QUESTIONS)  # 16 callers at once: some passes served several
    for q in QUESTIONS:  # the same vector as alone (padding in a batch changes nothing)
        assert concurrent[q].shape == (encoder.identity.dim,)
        assert np.allclose(concurrent[q], serial[q], atol=1e-5), q


def test_a_failed_pass_fails_its_callers_only_and_the_next_pass_runs() -> None:
    gate = threading.Event()
    calls: list[list[str]] = []

    def encode(texts: Sequence[str]) -> Vectors:
        calls.append(list(texts))
        if len(calls) == 1:
            gate.wait(5)  # the first pass is slow: the others queue behind it
        if "boom" in texts:
            raise ValueError("the model failed")
        return np.array([[float(len(t))] for t in texts], dtype=np.float32)

    batcher = QueryBatcher(encode, max_batch=3)
    with ThreadPoolExecutor(8) as pool:
        first = pool.submit(batcher.encode, "first")
        _until(lambda: bool(calls))
        rest = [pool.submit(batcher.encode, t) for t in ("boom", "aa", "bbb", "cccc", "ddddd")]
        _until(lambda: len(batcher._pending) == 5)
        gate.set()
        assert first.result()[0] == 5.0
        outcomes = []
        for future in rest:
            try:
                outcomes.append(float(future.result()[0]))
            except ValueError as exc:
                outcomes.append(str(exc))
    # the four that queued behind the first ran in passes of at most 3, in arrival order;
    # the pass holding "boom" failed its own callers only
    assert calls[0] == ["first"] and calls[1] == ["boom", "aa", "bbb"]
    assert calls[2] == ["cccc", "ddddd"]
    assert outcomes == ["the model failed"] * 3 + [4.0, 5.0]
    assert batcher.encode("again")[0] == 5.0  # and the batcher still works


def _until(condition: Callable[[], bool]) -> None:
    deadline = time.monotonic() + 10
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.001)
