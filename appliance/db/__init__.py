"""The metadata database: the catalog (documents, contents, failures, tombstones),
accounts, groups, tokens, sessions, sources, answers, conversations, feedback. SQLAlchemy 2
on SQLite (embedded, the default) or PostgreSQL, with Alembic migrations run at open
(``migrations/`` beside this file)."""

from ._catalog import SqlCatalog, lookup_key
from ._catalog_tables import ContentRow, DocumentRow, FailureRow, TombstoneRow
from ._database import Database, DatabaseError
from ._sealer import AeadSealer, Sealer, field_aad
from ._tables import (
    NO_PASSWORD,
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
    "NO_PASSWORD",
    "AeadSealer",
    "Answer",
    "ApiTokenRow",
    "Base",
    "ContentRow",
    "Conversation",
    "Database",
    "DatabaseError",
    "DocumentRow",
    "FailureRow",
    "Feedback",
    "Group",
    "Membership",
    "Message",
    "Sealer",
    "SessionRow",
    "SourceRow",
    "SqlCatalog",
    "TombstoneRow",
    "User",
    "field_aad",
    "lookup_key",
]
