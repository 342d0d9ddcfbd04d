"""The directory seam: a :class:`Directory` (LDAP / Active Directory) read in Greffier's
own types, the ldap3 implementation, and the nested-group resolution.

    Directory (Protocol)  read() → DirectorySnapshot; verify_password(dn, password)
    └── LdapDirectory     ldap3: paged searches, timeouts, TLS; library errors become
                          one DirectoryError with what to do next
"""

from ._ldap import LdapDirectory
from ._nesting import resolve_members
from ._types import Directory, DirectoryGroup, DirectorySnapshot, DirectoryUser, normal_dn

__all__ = ["Directory", "DirectoryGroup", "DirectorySnapshot", "DirectoryUser",
           "LdapDirectory", "normal_dn", "resolve_members"]
