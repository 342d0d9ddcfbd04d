"""The directory contract: what ``POST /v1/directory/sync`` and ``GET /v1/directory``
return (and the CLI's ``--json``)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field


class SyncCounts(BaseModel):
    users_created: int = Field(default=0)
    users_updated: int = Field(default=0, description="Renamed, moved (new DN) or new roles.")
    users_disabled: int = Field(default=0, description="Gone from the directory or disabled there.")
    users_enabled: int = Field(default=0, description="Enabled again in the directory.")
    groups_created: int = 0
    groups_updated: int = Field(default=0, description="Renamed in the directory.")
    groups_deleted: int = 0
    memberships_added: int = 0
    memberships_removed: int = 0
    conflicts: int = 0

    def changed(self) -> bool:
        return any(v for k, v in self.model_dump().items() if k != "conflicts")


class SyncConflict(BaseModel):
    kind: Literal["user", "group"]
    dn: str
    name: str = Field(description="The name the entry would have here.")
    reason: str = Field(description="Why it was skipped (it is never merged silently).")


class SyncOut(BaseModel):
    ok: bool
    started_at: datetime
    finished_at: datetime
    by: str = Field(description="Who ran it (an admin, the operator, or the scheduler).")
    counts: SyncCounts = Field(default_factory=lambda: SyncCounts())
    conflicts: list[SyncConflict] = Field(default_factory=list,
                                          description="Entries skipped (at most 200 listed).")
    error: str | None = Field(default=None, description="Why it failed (then nothing changed).")


class DirectoryOut(BaseModel):
    configured: bool
    url: str | None
    every_minutes: int | None
    running: bool = Field(description="A sync is under way.")
    last: SyncOut | None = Field(description="The last sync, from the audit log if this "
                                 "process has run none.")
