"""What a directory holds, in Greffier's terms (never ldap3's)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class DirectoryUser:
    dn: str  # normalised (normal_dn): how members and accounts find each other
    name: str  # the account-name attribute, as the directory has it
    display_name: str
    disabled: bool  # AD: userAccountControl has ACCOUNTDISABLE (2)


@dataclass(frozen=True)
class DirectoryGroup:
    dn: str
    name: str
    member_dns: frozenset[str] = frozenset()  # member / uniqueMember: users or groups
    member_names: frozenset[str] = frozenset()  # memberUid: account names


@dataclass(frozen=True)
class DirectorySnapshot:
    users: tuple[DirectoryUser, ...]
    groups: tuple[DirectoryGroup, ...]


class Directory(Protocol):
    """A directory of users and groups."""

    def read(self) -> DirectorySnapshot:
        """Every user and group under the configured bases (DirectoryError if it cannot)."""
        ...

    def verify_password(self, dn: str, password: str) -> bool:
        """Whether ``password`` is the one of the user at ``dn`` (a bind as him); False for
        a wrong or empty password, DirectoryError if the server cannot say."""
        ...


def normal_dn(dn: str) -> str:
    """A DN compared as directories compare them for these names: attribute types and
    values case-insensitively, spaces around separators ignored."""
    from ldap3.core.exceptions import LDAPInvalidDnError
    from ldap3.utils.dn import parse_dn

    try:
        parts = parse_dn(dn, escape=False, strip=True)
    except LDAPInvalidDnError:
        return dn.strip().lower()
    return ",".join(f"{kind.lower()}={value.lower()}" for kind, value, _ in parts)
