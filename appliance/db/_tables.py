"""The metadata database's tables (SQLAlchemy 2 typed ORM).

Times are seconds since the epoch (``Double``): one representation on SQLite and
PostgreSQL, compared exactly against the injected clock. Ids are uuid4 hex strings.
Columns named ``*_sealed`` hold AES-256-GCM blobs (see ``_sealer.py``),
never plaintext; secrets (passwords, tokens, session cookies, CSRF tokens) are stored as
hashes only.

Answers, conversations and feedback belong to a principal's ``owner`` id: an account's id,
or ``local:<name>`` for the operator on the box, which is not an account; so they carry no
foreign key to ``users``.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    Double,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    UniqueConstraint,
    false,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

ID = String(32)
ORIGINS = ("local", "ldap", "oidc")  # where an account or a group comes from
NO_PASSWORD = "!"  # noqa: S105 (a marker no password verifies, for non-local accounts)
HASH = String(64)  # hex SHA-256

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class User(Base):
    __tablename__ = "users"
    __table_args__ = (
        CheckConstraint("origin IN ('local', 'ldap', 'oidc')", name="origin"),
        UniqueConstraint("origin", "external_id", name="uq_users_origin_external_id"),
    )

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    roles: Mapped[str] = mapped_column(String(64))  # comma-separated, sorted
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    totp_secret_sealed: Mapped[bytes | None] = mapped_column(LargeBinary)
    totp_enabled: Mapped[bool] = mapped_column(Boolean, default=False)
    last_totp_step: Mapped[int | None] = mapped_column(Integer)
    failed_logins: Mapped[int] = mapped_column(Integer, default=0)
    lockouts: Mapped[int] = mapped_column(Integer, default=0)  # each one doubles the next
    locked_until: Mapped[float | None] = mapped_column(Double)
    created_at: Mapped[float] = mapped_column(Double)
    updated_at: Mapped[float] = mapped_column(Double)
    origin: Mapped[str] = mapped_column(String(8), default="local", server_default="local")
    external_id: Mapped[str | None] = mapped_column(String(512))  # DN, or "iss sub"


class Group(Base):
    __tablename__ = "groups"
    __table_args__ = (
        CheckConstraint("origin IN ('local', 'ldap', 'oidc')", name="origin"),
        UniqueConstraint("origin", "external_id", name="uq_groups_origin_external_id"),
    )

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[float] = mapped_column(Double)
    origin: Mapped[str] = mapped_column(String(8), default="local", server_default="local")
    external_id: Mapped[str | None] = mapped_column(String(512))  # DN, or the claim's value


class Membership(Base):
    __tablename__ = "memberships"

    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"),
                                         primary_key=True)
    group_id: Mapped[str] = mapped_column(ForeignKey("groups.id", ondelete="CASCADE"),
                                          primary_key=True, index=True)


class ApiTokenRow(Base):
    __tablename__ = "api_tokens"

    id: Mapped[str] = mapped_column(String(16), primary_key=True)  # the token's public part
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"),
                                         index=True)
    name: Mapped[str] = mapped_column(String(64))
    secret_hash: Mapped[str] = mapped_column(HASH)
    scopes: Mapped[str] = mapped_column(String(64))  # comma-separated, sorted
    created_at: Mapped[float] = mapped_column(Double)
    expires_at: Mapped[float] = mapped_column(Double)
    revoked_at: Mapped[float | None] = mapped_column(Double)
    last_used_at: Mapped[float | None] = mapped_column(Double)


class SessionRow(Base):
    __tablename__ = "sessions"

    id: Mapped[str] = mapped_column(HASH, primary_key=True)  # SHA-256 of the cookie value
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"),
                                         index=True)
    csrf_hash: Mapped[str] = mapped_column(HASH)
    mfa: Mapped[bool] = mapped_column(Boolean)
    created_at: Mapped[float] = mapped_column(Double)
    last_seen_at: Mapped[float] = mapped_column(Double)
    expires_at: Mapped[float] = mapped_column(Double, index=True)


class Conversation(Base):
    __tablename__ = "conversations"
    __table_args__ = (Index("ix_conversations_owner_updated", "user_id", "updated_at"),)

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    user_id: Mapped[str] = mapped_column(String(96))  # owner (see the module docstring)
    title_sealed: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[float] = mapped_column(Double)
    updated_at: Mapped[float] = mapped_column(Double)


class Answer(Base):
    __tablename__ = "answers"
    __table_args__ = (CheckConstraint("kind IN ('search', 'answer')", name="kind"),)

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    user_id: Mapped[str] = mapped_column(String(96), index=True)  # owner
    kind: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[float] = mapped_column(Double)
    receipt: Mapped[dict[str, Any]] = mapped_column(JSON)
    conversation_id: Mapped[str | None] = mapped_column(
        ForeignKey("conversations.id", ondelete="SET NULL"), index=True)


class Message(Base):
    __tablename__ = "messages"
    __table_args__ = (
        CheckConstraint("role IN ('user', 'assistant')", name="role"),
        UniqueConstraint("conversation_id", "seq", name="uq_messages_conversation_seq"),
    )

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    conversation_id: Mapped[str] = mapped_column(
        ForeignKey("conversations.id", ondelete="CASCADE"))
    seq: Mapped[int] = mapped_column(Integer)  # order within the conversation
    role: Mapped[str] = mapped_column(String(16))
    content_sealed: Mapped[bytes] = mapped_column(LargeBinary)
    answer_id: Mapped[str | None] = mapped_column(ForeignKey("answers.id", ondelete="SET NULL"))
    created_at: Mapped[float] = mapped_column(Double)


class Feedback(Base):
    __tablename__ = "feedback"
    __table_args__ = (CheckConstraint("rating IN (-1, 1)", name="rating"),)

    answer_id: Mapped[str] = mapped_column(ForeignKey("answers.id", ondelete="CASCADE"),
                                           primary_key=True)
    user_id: Mapped[str] = mapped_column(String(96), primary_key=True)  # owner
    rating: Mapped[int] = mapped_column(Integer)
    comment_sealed: Mapped[bytes | None] = mapped_column(LargeBinary)
    created_at: Mapped[float] = mapped_column(Double)


class SourceRow(Base):
    """A server-side folder registered by an admin (its path sealed: folder names say a
    lot)."""

    __tablename__ = "sources"

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    path_sealed: Mapped[bytes] = mapped_column(LargeBinary)
    every_minutes: Mapped[int | None] = mapped_column(Integer)
    created_by: Mapped[str] = mapped_column(String(96))
    created_at: Mapped[float] = mapped_column(Double)
    last_sync_at: Mapped[float | None] = mapped_column(Double)
    last_job_id: Mapped[str | None] = mapped_column(ID)
    # Who may read what it brings in: access entries ("g:<group id>"); [] = nobody.
    acl: Mapped[list[str]] = mapped_column(JSON, default=list)
    # Also each file's owning POSIX group, when a Greffier group bears its name.
    owning_group: Mapped[bool] = mapped_column(Boolean, default=False,
                                               server_default=false())
