"""What an ingest reports: one outcome per file, the totals, and progress callbacks."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

Status = Literal["indexed", "updated", "deduplicated", "unchanged", "failed", "removed",
                 "skipped"]


@dataclass(frozen=True)
class FileOutcome:
    path: str
    status: Status
    chunks: int = 0
    pages: int = 0
    error: str = ""
    message: str = ""


@dataclass
class IngestReport:
    outcomes: list[FileOutcome] = field(default_factory=list)
    seconds: float = 0.0
    recovered: int = 0

    def count(self, status: Status) -> int:
        return sum(1 for o in self.outcomes if o.status == status)

    @property
    def chunks(self) -> int:
        return sum(o.chunks for o in self.outcomes)

    @property
    def pages(self) -> int:
        return sum(o.pages for o in self.outcomes)


@dataclass
class Progress:
    """Callbacks the CLI uses to draw its progress bar."""

    on_total: Callable[[int], None] = lambda total: None
    on_file: Callable[[FileOutcome], None] = lambda outcome: None
