"""The groups contract: what the REST routes and the CLI's ``--json`` receive and return."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from ._identity_models import NAME_PATTERN
from ._models import Page


class GroupIn(BaseModel):
    """The name is checked by the use case (one clear message, as for every caller)."""

    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=64, description="The rule of account names: "
                      f"{NAME_PATTERN} (lower-case letters, digits, . _ -).")


class GroupSummary(BaseModel):
    id: str = Field(description="What a document's access entries name (g:<id>).")
    name: str
    members: int = Field(description="How many accounts belong to it.")
    created_at: datetime


class GroupPage(Page):
    items: list[GroupSummary]


class GroupOut(BaseModel):
    id: str
    name: str
    members: list[str] = Field(description="Its members' account names, sorted.")
    created_at: datetime


class MembershipOut(BaseModel):
    group: str
    member: str
    member_of: bool = Field(description="Whether the account belongs to the group now.")
    changed: bool = Field(description="False: it already was so (nothing done, nothing "
                          "audited).")
