"""The identity contract: what the REST routes and the CLI's ``--json`` receive and return
for accounts, logins, tokens, conversations and feedback."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal, overload

from pydantic import BaseModel, ConfigDict, Field

from ._principal import Principal, Role, Scope

NAME_PATTERN = r"^[a-z0-9][a-z0-9._-]{0,63}$"


@overload
def when(epoch_s: float) -> datetime: ...
@overload
def when(epoch_s: None) -> None: ...
@overload
def when(epoch_s: float | None) -> datetime | None: ...
def when(epoch_s: float | None) -> datetime | None:
    """A stored time (seconds since the epoch) as an aware UTC datetime."""
    return None if epoch_s is None else datetime.fromtimestamp(epoch_s, UTC)


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class LoginIn(_In):
    name: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=1024)
    totp: str | None = Field(None, max_length=16, description="The 6-digit code, when the "
                             "account has a second factor (always for admins and auditors).")


class UserIn(_In):
    name: str = Field(pattern=NAME_PATTERN, description="Lower-case letters, digits, . _ -")
    password: str = Field(min_length=1, max_length=1024)
    roles: list[Role] = Field(min_length=1, max_length=4)


class RolesIn(_In):
    roles: list[Role] = Field(min_length=1, max_length=4)


class TokenIn(_In):
    name: str = Field(min_length=1, max_length=64, description="What the token is for.")
    scopes: list[Scope] = Field(min_length=1, max_length=5)
    expires_in_days: int = Field(90, ge=1, le=3650)


class FeedbackIn(_In):
    rating: Literal[-1, 1]
    comment: str | None = Field(None, max_length=2000)


class UserOut(BaseModel):
    id: str
    name: str
    roles: list[Role]
    groups: list[str]
    disabled: bool
    totp_enabled: bool = Field(description="Whether logins need a TOTP code.")
    locked_until: datetime | None = Field(description="Set while too many failures lock it.")
    created_at: datetime
    updated_at: datetime


class NewUserOut(BaseModel):
    user: UserOut
    totp_uri: str | None = Field(
        description="otpauth:// URI of the second factor, shown this once (admin, auditor).")


class TokenOut(BaseModel):
    id: str
    name: str
    user: str = Field(description="The owner's account name.")
    scopes: list[Scope]
    created_at: datetime
    expires_at: datetime
    revoked_at: datetime | None
    last_used_at: datetime | None


class NewTokenOut(BaseModel):
    token: str = Field(description="gfr_… : shown this once, stored only as a hash.")
    info: TokenOut


class MessageOut(BaseModel):
    role: Literal["user", "assistant"]
    content: str
    answer_id: str | None
    created_at: datetime


class ConversationSummary(BaseModel):
    id: str
    title: str
    created_at: datetime
    updated_at: datetime


class ConversationOut(ConversationSummary):
    messages: list[MessageOut]


@dataclass(frozen=True)
class LoginResult:
    """A new browser session. ``session_token`` goes in the ``__Host-`` cookie and
    ``csrf_token`` to the page; the database keeps only their hashes."""

    session_token: str
    csrf_token: str
    principal: Principal
    expires_at: float
