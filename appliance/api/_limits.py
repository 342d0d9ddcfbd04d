"""Rate limits: a token bucket per key (client address, user, token), in memory."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class RateLimiter:
    """``per_minute`` requests per key on average, bursts up to ``per_minute``."""

    def __init__(self, per_minute: int, *, clock: Callable[[], float] = time.monotonic,
                 max_keys: int = 100_000) -> None:
        self.capacity = float(per_minute)
        self.rate = per_minute / 60.0
        self._clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()
        self._max_keys = max_keys

    def take(self, key: str) -> float:
        """0 when allowed; else the seconds to wait before the next request would pass."""
        now = self._clock()
        with self._lock:
            tokens, last = self._buckets.get(key, (self.capacity, now))
            tokens = min(self.capacity, tokens + (now - last) * self.rate)
            if tokens >= 1.0:
                self._store(key, tokens - 1.0, now)
                return 0.0
            self._store(key, tokens, now)
            return (1.0 - tokens) / self.rate

    def _store(self, key: str, tokens: float, now: float) -> None:
        if len(self._buckets) >= self._max_keys and key not in self._buckets:
            # Forget full buckets first (they carry no information), then the oldest.
            full = [k for k, (t, _) in self._buckets.items() if t >= self.capacity]
            for k in full or sorted(self._buckets, key=lambda k: self._buckets[k][1])[:1000]:
                del self._buckets[k]
        self._buckets[key] = (tokens, now)
