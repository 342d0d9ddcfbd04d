"""The ``[ldap]`` settings: an LDAP or Active Directory server whose users and groups
Greffier follows. Off unless ``url`` is set.

The service account's password is never in the settings file: it comes from
``GREFFIER_LDAP_PASSWORD_FILE`` (a file only its owner can read, e.g. a systemd
credential) or ``GREFFIER_LDAP_PASSWORD`` (development), read when a sync starts.
"""

from __future__ import annotations

import ipaddress
import os
from pathlib import Path
from typing import Literal
from urllib.parse import urlparse

from pydantic import BaseModel, Field, model_validator

from security import ConfigError

PASSWORD_ENV = "GREFFIER_LDAP_PASSWORD"  # noqa: S105 (a variable name)
_Role = Literal["reader", "editor", "admin", "auditor"]


class LdapSettings(BaseModel):
    url: str | None = Field(
        None, description="ldaps://host:636 or ldap://host:389 (plain ldap:// to another "
        "host needs start_tls); none: no directory.")
    start_tls: bool = Field(False, description="Upgrade an ldap:// connection with StartTLS.")
    ca_file: Path | None = Field(
        None, description="CA certificates (PEM) that sign the server's certificate; "
        "default: the system's.")
    bind_dn: str | None = Field(
        None, description="The service account that reads the directory (its password: "
        "GREFFIER_LDAP_PASSWORD_FILE); none: anonymous.")
    user_base: str = Field("", description="Where the users are (e.g. ou=people,dc=example,"
                           "dc=org).")
    user_filter: str = Field(
        "(|(objectClass=inetOrgPerson)(&(objectCategory=person)(objectClass=user)))",
        description="Which entries are users (OpenLDAP inetOrgPerson, AD person users).")
    user_name_attribute: str = Field(
        "uid", description="The account name (uid; sAMAccountName on Active Directory).")
    group_base: str = Field("", description="Where the groups are.")
    group_filter: str = Field(
        "(|(objectClass=groupOfNames)(objectClass=groupOfUniqueNames)"
        "(objectClass=posixGroup)(objectClass=group))", description="Which entries are groups.")
    group_name_attribute: str = Field("cn", description="The group's name.")
    member_attribute: Literal["member", "uniqueMember", "memberUid"] = Field(
        "member", description="Where a group lists its members (member and uniqueMember "
        "hold DNs, groups included: nested groups count; memberUid holds account names).")
    every_minutes: int | None = Field(
        None, ge=5, le=7 * 24 * 60, description="Sync schedule under `greffier serve`; "
        "none: on demand only.")
    default_roles: list[_Role] = Field(
        ["reader"], min_length=1, description="Roles of a directory user none of whose "
        "groups is in ldap.roles.")
    roles: dict[str, list[_Role]] = Field(
        {}, description='Directory group (its name in Greffier) → roles, e.g. '
        '{ "redaction" = ["editor"] }; a user gets those of all his groups.')
    timeout_s: int = Field(10, ge=1, le=300, description="Connect and answer timeout (s).")
    page_size: int = Field(500, ge=10, le=5000, description="Entries per search page.")

    @property
    def enabled(self) -> bool:
        return bool(self.url)

    @model_validator(mode="after")
    def _refuse_unsafe(self) -> LdapSettings:
        if not self.url:
            return self
        parsed = urlparse(self.url)
        if parsed.scheme not in ("ldap", "ldaps") or not parsed.hostname:
            raise ValueError("ldap.url must look like ldaps://host:636 or ldap://host:389")
        if parsed.scheme == "ldap" and not self.start_tls and not _loopback(parsed.hostname):
            raise ValueError(
                "ldap.url: plain ldap:// to another host would send passwords in clear; use "
                "ldaps://, or set ldap.start_tls = true")
        if parsed.scheme == "ldaps" and self.start_tls:
            raise ValueError("ldap.start_tls is for ldap:// URLs (ldaps:// is TLS already)")
        if not self.user_base or not self.group_base:
            raise ValueError("ldap.url needs ldap.user_base and ldap.group_base")
        return self


def directory_hosts(ldap: LdapSettings) -> list[str]:
    """The directory's host, for the egress guard (a configured service of the appliance)."""
    host = urlparse(ldap.url).hostname if ldap.url else None
    return [host] if host else []


def directory_password() -> str | None:
    """The service account's password: ``GREFFIER_LDAP_PASSWORD_FILE`` (owner-only), else
    ``GREFFIER_LDAP_PASSWORD``; None when neither is set."""
    from ._unseal import _read_secret_file

    if os.environ.get(f"{PASSWORD_ENV}_FILE"):
        return _read_secret_file(Path(os.environ[f"{PASSWORD_ENV}_FILE"]),
                                 f"{PASSWORD_ENV}_FILE")
    return os.environ.get(PASSWORD_ENV) or None


def require_password(ldap: LdapSettings) -> str | None:
    """The bind password, or a clear error when a bind DN has none."""
    password = directory_password()
    if ldap.bind_dn and not password:
        raise ConfigError("ldap.bind_dn is set but its password is not.",
                          hint=f"Set {PASSWORD_ENV}_FILE to a file (mode 0600) holding it.")
    return password


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
