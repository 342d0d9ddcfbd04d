"""The metadata database: accounts, groups, tokens, sessions, answers, conversations,
feedback. SQLAlchemy 2 on SQLite (embedded, the default) or PostgreSQL, with Alembic
migrations run at open (``migrations/`` beside this file)."""

from ._database import Database, DatabaseError
from ._tables import (
    Answer,
    ApiTokenRow,
    Base,
    Conversation,
    Feedback,
    Group,
    Membership,
    Message,
    SessionRow,
    SourceRow,
    User,
)

__all__ = [
    "Answer",
    "ApiTokenRow",
    "Base",
    "Conversation",
    "Database",
    "DatabaseError",
    "Feedback",
    "Group",
    "Membership",
    "Message",
    "SessionRow",
    "SourceRow",
    "User",
]
