"""Concurrent queries encoded together.

A server embeds each query before it searches. The encoder runs one forward pass at a time
(its thread setting is process-wide), so under load queries queue behind each other. The
batcher turns that queue into batches: the first caller leads and encodes what is waiting
(itself included); callers arriving meanwhile wait, and when the pass ends the oldest of
them leads the next one, with everything that arrived. A query alone is encoded at once:
nothing waits for company."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence

import numpy as np
import numpy.typing as npt

Vectors = npt.NDArray[np.float32]


class _Slot:
    __slots__ = ("done", "error", "text", "vector", "wake")

    def __init__(self, text: str) -> None:
        self.text = text
        self.wake = threading.Event()  # set when done, or when this caller is to lead
        self.done = False
        self.vector: Vectors | None = None
        self.error: BaseException | None = None

    def result(self) -> Vectors:
        if self.error is not None:
            raise self.error
        assert self.vector is not None
        return self.vector


class QueryBatcher:
    """Runs ``encode`` over the texts of concurrent callers, ``max_batch`` at most a pass."""

    def __init__(self, encode: Callable[[Sequence[str]], Vectors], max_batch: int = 32) -> None:
        self._encode = encode
        self._max = max_batch
        self._lock = threading.Lock()
        self._pending: list[_Slot] = []
        self._leading = False
        self.passes = 0  # forward passes run, and the queries they served
        self.queries = 0

    def encode(self, text: str) -> Vectors:
        slot = _Slot(text)
        with self._lock:
            self._pending.append(slot)
            lead = not self._leading
            self._leading = True
        if not lead:
            slot.wake.wait()
            if slot.done:
                return slot.result()
        self._pass()  # this caller leads: its slot is the oldest waiting, so in this pass
        return slot.result()

    def _pass(self) -> None:
        with self._lock:
            batch, self._pending = self._pending[:self._max], self._pending[self._max:]
        try:
            vectors = self._encode([s.text for s in batch])
            for s, vector in zip(batch, vectors, strict=True):
                s.vector = vector
        except BaseException as exc:  # every caller of the pass gets the error
            for s in batch:
                s.error = exc
        with self._lock:
            self.passes += 1
            self.queries += len(batch)
            for s in batch:
                s.done = True
                s.wake.set()
            if self._pending:
                self._pending[0].wake.set()  # the oldest waiting caller leads the next pass
            else:
                self._leading = False
