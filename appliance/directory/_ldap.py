"""The :class:`Directory` on an LDAP or Active Directory server, through ldap3.

One connection per read and per password check (synchronous strategy, thread-safe that
way), TLS checked against ``ldap.ca_file`` or the system's CAs, paged searches (so a
directory of tens of thousands of entries reads in pages), AD's ranged ``member`` values
fetched in full (ldap3's auto-range), a timeout on connecting and on every answer.
Every ldap3 error becomes one :class:`DirectoryError` saying what to fix.
"""

from __future__ import annotations

import re
import ssl
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import Any

from security import DirectoryError

from .._directory_settings import PASSWORD_ENV, LdapSettings
from ._types import DirectoryGroup, DirectorySnapshot, DirectoryUser, normal_dn

ACCOUNTDISABLE = 0x2  # userAccountControl: the account is disabled (Active Directory)
_UNIQUE_UID = re.compile(r"#'[01]*'B$")  # uniqueMember's optional "#'0101'B" suffix
_PARTIAL = {3: "time limit exceeded", 4: "size limit exceeded", 11: "administrative limit"}
_UNREACHABLE_HINT = ("Check ldap.url, the network and the directory server; local "
                     "accounts still sign in meanwhile.")


class LdapDirectory:
    """The directory described by the ``[ldap]`` settings; ``password`` is the service
    account's (None: an anonymous bind)."""

    def __init__(self, settings: LdapSettings, password: str | None) -> None:
        if not settings.url:
            raise DirectoryError("No directory is configured.",
                                 hint="Set ldap.url, ldap.user_base and ldap.group_base.")
        self.settings = settings
        self._password = password

    # -- the Directory protocol ----------------------------------------------------------
    def read(self) -> DirectorySnapshot:
        s = self.settings
        name, member = s.user_name_attribute, s.member_attribute
        with self._bound(s.bind_dn, self._password) as conn:
            users = [self._user(e) for e in self._search(
                conn, s.user_base, "user_base", s.user_filter,
                [name, "displayName", "cn", "userAccountControl"])]
            groups = [self._group(e) for e in self._search(
                conn, s.group_base, "group_base", s.group_filter, [s.group_name_attribute,
                                                                   member])]
        return DirectorySnapshot(users=tuple(u for u in users if u is not None),
                                 groups=tuple(g for g in groups if g is not None))

    def verify_password(self, dn: str, password: str) -> bool:
        if not password:  # an empty password is an anonymous bind: it proves nothing
            return False
        from ldap3.core.exceptions import LDAPInvalidCredentialsResult

        try:
            with self._bound(dn, password, service=False):
                return True
        except LDAPInvalidCredentialsResult:
            return False

    # -- connection ----------------------------------------------------------------------
    @contextmanager
    def _bound(self, dn: str | None, password: str | None, *,
               service: bool = True) -> Iterator[Any]:
        import ldap3
        from ldap3.core import exceptions as lx

        s = self.settings
        tls = ldap3.Tls(validate=ssl.CERT_REQUIRED, version=ssl.PROTOCOL_TLS_CLIENT,
                        ca_certs_file=str(s.ca_file) if s.ca_file else None)
        server = ldap3.Server(s.url, tls=tls, get_info=ldap3.NONE,
                              connect_timeout=s.timeout_s)
        conn = ldap3.Connection(
            server, user=dn, password=password, read_only=True, raise_exceptions=True,
            authentication=ldap3.SIMPLE if dn else ldap3.ANONYMOUS, receive_timeout=s.timeout_s,
            auto_referrals=False)
        try:
            conn.open()
            if s.start_tls:
                conn.start_tls()
            conn.bind()
        except lx.LDAPInvalidCredentialsResult:
            _unbind(conn)
            if not service:
                raise  # a user's wrong password: the caller answers False
            raise DirectoryError(
                f"The directory refused the service account {s.bind_dn!r} (wrong DN or "
                "password).", hint=f"Check ldap.bind_dn and {PASSWORD_ENV}_FILE.") from None
        except (lx.LDAPStartTLSError, lx.LDAPSSLConfigurationError) as exc:
            _unbind(conn)
            raise DirectoryError(f"TLS with the directory at {s.url} failed: {exc}.",
                                 hint="Check ldap.ca_file (the CA that signed the server's "
                                 "certificate) and the server's name.") from None
        except lx.LDAPException as exc:
            _unbind(conn)
            raise DirectoryError(f"The directory at {s.url} cannot be reached: "
                                 f"{_short(exc)}.", hint=_UNREACHABLE_HINT) from None
        try:
            yield conn
        finally:
            _unbind(conn)

    def _search(self, conn: Any, base: str, setting: str, query: str,
                attributes: list[str]) -> Iterator[dict[str, Any]]:
        import ldap3
        from ldap3.core import exceptions as lx

        try:
            for entry in conn.extend.standard.paged_search(
                    search_base=base, search_filter=query, search_scope=ldap3.SUBTREE,
                    attributes=attributes, paged_size=self.settings.page_size,
                    generator=True):
                if entry.get("type") == "searchResEntry":
                    yield entry
            code = (conn.result or {}).get("result", 0)
        except lx.LDAPSizeLimitExceededResult:
            code = 4
        except lx.LDAPNoSuchObjectResult:
            raise DirectoryError(f"The directory has no entry {base!r} (ldap.{setting}).",
                                 hint=f"Fix ldap.{setting}: the DN of an existing entry "
                                 "that holds them.") from None
        except lx.LDAPInvalidFilterError as exc:
            raise DirectoryError(f"The directory refused a search filter: {_short(exc)}.",
                                 hint="Check ldap.user_filter and ldap.group_filter.") from None
        except (lx.LDAPSocketOpenError, lx.LDAPSocketReceiveError,
                lx.LDAPSessionTerminatedByServerError, lx.LDAPCommunicationError) as exc:
            raise DirectoryError(f"The directory at {self.settings.url} stopped answering: "
                                 f"{_short(exc)}.", hint=_UNREACHABLE_HINT) from None
        except lx.LDAPException as exc:
            raise DirectoryError(f"The directory refused the search under {base!r}: "
                                 f"{_short(exc)}.", hint=f"Check ldap.{setting} and the "
                                 "service account's rights to read it.") from None
        if code in _PARTIAL:  # a partial read must never pass for the whole directory
            raise DirectoryError(
                f"The directory returned only part of the entries under {base!r} "
                f"({_PARTIAL[code]}); nothing was changed.",
                hint="Raise the service account's limits on the server (OpenLDAP: "
                "size.prtotal; AD: MaxPageSize is fine, paging is used).")

    # -- entries -------------------------------------------------------------------------
    def _user(self, entry: dict[str, Any]) -> DirectoryUser | None:
        raw = entry.get("raw_attributes") or {}
        name = _first(raw, self.settings.user_name_attribute)
        if not name:
            return None  # not an account this appliance can name
        control = _first(raw, "userAccountControl")
        disabled = bool(control and control.lstrip("-").isdigit()
                        and int(control) & ACCOUNTDISABLE)
        return DirectoryUser(dn=normal_dn(entry["dn"]), name=name,
                             display_name=_first(raw, "displayName") or _first(raw, "cn")
                             or name, disabled=disabled)

    def _group(self, entry: dict[str, Any]) -> DirectoryGroup | None:
        raw = entry.get("raw_attributes") or {}
        name = _first(raw, self.settings.group_name_attribute)
        if not name:
            return None
        values = _values(raw, self.settings.member_attribute)
        if self.settings.member_attribute == "memberUid":
            return DirectoryGroup(dn=normal_dn(entry["dn"]), name=name,
                                  member_names=frozenset(values))
        return DirectoryGroup(dn=normal_dn(entry["dn"]), name=name, member_dns=frozenset(
            normal_dn(_UNIQUE_UID.sub("", v)) for v in values))


def _values(raw: Any, attribute: str) -> list[str]:
    found = raw.get(attribute)
    if found is None:  # attribute names are case-insensitive; ldap3's dict may not be
        found = next((v for k, v in raw.items() if k.lower() == attribute.lower()), [])
        found = found or next((v for k, v in raw.items()  # AD's ranged "member;range=0-*"
                               if k.lower().startswith(attribute.lower() + ";")), [])
    return [v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v) for v in found]


def _first(raw: Any, attribute: str) -> str:
    values = _values(raw, attribute)
    return values[0].strip() if values else ""


def _short(exc: Exception) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0][:200]


def _unbind(conn: Any) -> None:
    from ldap3.core.exceptions import LDAPException

    with suppress(LDAPException, OSError):
        conn.unbind()
