"""Prometheus metrics in the text exposition format (no client library, no global state:
one :class:`Metrics` per app)."""

from __future__ import annotations

import threading
from collections import defaultdict
from collections.abc import Callable

BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


class _Histogram:
    def __init__(self) -> None:
        self.counts = [0] * len(BUCKETS)
        self.total = 0
        self.sum = 0.0

    def observe(self, value: float) -> None:
        self.total += 1
        self.sum += value
        for i, bound in enumerate(BUCKETS):
            if value <= bound:
                self.counts[i] += 1


class Metrics:
    """Counters and latency histograms, labelled; rendered for ``GET /metrics``."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._hist: dict[tuple[str, tuple[tuple[str, str], ...]], _Histogram] = \
            defaultdict(_Histogram)
        self._count: dict[tuple[str, tuple[tuple[str, str], ...]], float] = defaultdict(float)
        self._gauges: dict[str, Callable[[], float]] = {}
        self._help: dict[str, tuple[str, str]] = {}

    def describe(self, name: str, kind: str, text: str) -> None:
        self._help[name] = (kind, text)

    def observe(self, name: str, seconds: float, **labels: str) -> None:
        with self._lock:
            self._hist[(name, tuple(sorted(labels.items())))].observe(seconds)

    def inc(self, name: str, amount: float = 1.0, **labels: str) -> None:
        with self._lock:
            self._count[(name, tuple(sorted(labels.items())))] += amount

    def gauge(self, name: str, read: Callable[[], float]) -> None:
        self._gauges[name] = read

    def render(self) -> str:
        out: list[str] = []
        with self._lock:
            hists = sorted(self._hist.items())
            counts = sorted(self._count.items())
        seen: set[str] = set()

        def header(name: str) -> None:
            if name not in seen and name in self._help:
                kind, text = self._help[name]
                out.extend([f"# HELP {name} {text}", f"# TYPE {name} {kind}"])
            seen.add(name)

        for (name, labels), hist in hists:
            header(name)
            cumulative = 0
            for bound, count in zip(BUCKETS, hist.counts, strict=True):
                cumulative = count
                out.append(f"{name}_bucket{_labels(labels, le=str(bound))} {cumulative}")
            out.append(f"{name}_bucket{_labels(labels, le='+Inf')} {hist.total}")
            out.append(f"{name}_sum{_labels(labels)} {hist.sum:.6f}")
            out.append(f"{name}_count{_labels(labels)} {hist.total}")
        for (name, labels), value in counts:
            header(name)
            out.append(f"{name}{_labels(labels)} {value:g}")
        for name, read in sorted(self._gauges.items()):
            header(name)
            out.append(f"{name} {read():g}")
        return "\n".join(out) + "\n"


def _labels(labels: tuple[tuple[str, str], ...], **more: str) -> str:
    pairs = [*labels, *more.items()]
    if not pairs:
        return ""
    body = ",".join(f'{k}="{_escape(v)}"' for k, v in pairs)
    return "{" + body + "}"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
