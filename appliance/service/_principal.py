"""Who is calling: a :class:`Principal`, and what each role and token scope allows.

Roles keep duties apart: an admin runs the appliance but reads no content and no
conversation; an auditor reads the audit trail but no content; nobody is both.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, get_args

from retrieval import USER_PREFIX, AccessScope
from security import ForbiddenError, InvalidRequestError

Role = Literal["reader", "editor", "admin", "auditor"]
Scope = Literal["read", "ask", "ingest", "admin", "audit"]
Via = Literal["session", "token", "socket", "local"]
Permission = Literal[
    "search", "ask", "documents.read", "documents.write", "documents.access", "sources",
    "users", "groups", "audit", "receipts",
]

ROLES: tuple[Role, ...] = get_args(Role)
SCOPES: tuple[Scope, ...] = get_args(Scope)

# What each role may do. An editor is also a reader; admin and auditor are not readers.
_BY_ROLE: dict[Role, frozenset[Permission]] = {
    "reader": frozenset({"search", "ask", "documents.read", "receipts"}),
    "editor": frozenset({"search", "ask", "documents.read", "documents.write", "receipts"}),
    "admin": frozenset({"users", "groups", "sources", "documents.access"}),
    "auditor": frozenset({"audit", "receipts"}),
}
# What a token scope lets through (a token never exceeds its owner's roles).
_BY_SCOPE: dict[Scope, frozenset[Permission]] = {
    "read": frozenset({"search", "documents.read", "receipts"}),
    "ask": frozenset({"search", "ask", "receipts"}),
    "ingest": frozenset({"documents.read", "documents.write"}),
    "admin": frozenset({"users", "groups", "sources", "documents.access"}),
    "audit": frozenset({"audit", "receipts"}),
}


def check_roles(roles: frozenset[str] | set[str]) -> frozenset[Role]:
    """Validate a set of roles: known names, and never admin with auditor."""
    unknown = set(roles) - set(ROLES)
    if unknown:
        raise InvalidRequestError(f"Unknown role(s): {', '.join(sorted(unknown))}.",
                                  hint=f"Roles are {', '.join(ROLES)}.")
    if {"admin", "auditor"} <= set(roles):
        raise InvalidRequestError(
            "An account cannot be both admin and auditor (separation of duties).",
            hint="Create two accounts, one per duty.")
    if set(roles) & {"admin", "auditor"} and set(roles) & {"reader", "editor"}:
        raise InvalidRequestError(
            "An admin or auditor account reads no content: it cannot also be reader or "
            "editor (separation of duties).",
            hint="Give the person a second account for reading documents.")
    return frozenset(roles)  # type: ignore[arg-type]


@dataclass(frozen=True)
class Principal:
    """The caller of a use case."""

    user_id: str
    name: str
    roles: frozenset[Role]
    groups: frozenset[str] = frozenset()
    via: Via = "session"
    scopes: frozenset[Scope] | None = None  # a token's scopes; None: a session, all roles
    token_id: str | None = None
    mfa: bool = False
    extra: dict[str, str] = field(default_factory=dict, compare=False)
    group_ids: frozenset[str] = frozenset()  # what the access entries name

    @property
    def scope(self) -> AccessScope:
        """What this caller may read: his own entry and his groups' (admins and operators
        included: nobody bypasses it). Built here, from the authenticated account."""
        return AccessScope.of(self.user_id, self.group_ids)

    @property
    def own_entry(self) -> str:
        return USER_PREFIX + self.user_id

    @property
    def audit_name(self) -> str:
        """How the audit log names this caller."""
        if self.via == "token":
            return f"{self.name} (token {self.token_id})"
        if self.via in ("socket", "local"):
            return f"{self.name} (local operator)"
        return self.name

    def permissions(self) -> frozenset[Permission]:
        allowed: set[Permission] = set()
        for role in self.roles:
            allowed |= _BY_ROLE[role]
        if self.scopes is not None:
            through: set[Permission] = set()
            for scope in self.scopes:
                through |= _BY_SCOPE[scope]
            allowed &= through
        return frozenset(allowed)

    def can(self, permission: Permission) -> bool:
        return permission in self.permissions()

    def require(self, permission: Permission) -> None:
        if not self.can(permission):
            raise ForbiddenError(
                f"{self.name} may not do this ({permission}).",
                hint="Ask an admin for the role, or use a token with the scope it needs."
                if self.scopes is None else "This token's scopes do not include it.")


def operator(name: str, *, via: Via = "local") -> Principal:
    """The local operator (root on the box, through the CLI): every duty, audited as such.

    Root on the appliance's machine can read the data directory anyway; the CLI names
    what it does in the audit log rather than pretending otherwise."""
    return Principal(user_id=f"local:{name}", name=name,
                     roles=frozenset({"reader", "editor", "admin", "auditor"}), via=via,
                     mfa=True)
