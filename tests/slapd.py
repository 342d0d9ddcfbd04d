"""A real OpenLDAP ``slapd`` (Debian's package) for the directory tests: started once per
session on a free loopback port, in a temp dir, with an mdb database and the schemas an
OpenLDAP or an Active Directory tree needs (``msuser`` brings AD's ``user``, ``group`` and
``userAccountControl``). Each test fills its own subtree (:meth:`Slapd.tree`)."""

from __future__ import annotations

import itertools
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import ldap3
import pytest

SUFFIX = "dc=example,dc=org"
ROOT_DN, ROOT_PW = f"cn=admin,{SUFFIX}", "admin secret for the tests"
READER_DN, READER_PW = f"cn=greffier,{SUFFIX}", "greffier reader secret"
LIMITED_DN = f"cn=limited,{SUFFIX}"  # same password; its searches stop at 1000 entries
SLAPD = Path("/usr/sbin/slapd")
_CONF = """\
include /etc/ldap/schema/core.schema
include /etc/ldap/schema/cosine.schema
include /etc/ldap/schema/nis.schema
include /etc/ldap/schema/inetorgperson.schema
include /etc/ldap/schema/msuser.schema
modulepath /usr/lib/ldap
moduleload back_mdb
pidfile {root}/slapd.pid
sizelimit 1000
database mdb
suffix "{suffix}"
rootdn "{root_dn}"
rootpw "{root_pw}"
directory {root}/db
maxsize 268435456
access to attrs=userPassword by self write by anonymous auth by * none
limits dn.exact="{reader}" size=unlimited
access to * by dn.exact="{reader}" read by dn.exact="{limited}" read by * none
"""


@dataclass
class Tree:
    """One test's subtree: ``ou=people`` and ``ou=groups`` under ``base``."""

    server: Slapd
    base: str
    _conn: Any = field(default=None, repr=False)

    @property
    def people(self) -> str:
        return f"ou=people,{self.base}"

    @property
    def groups(self) -> str:
        return f"ou=groups,{self.base}"

    def conn(self) -> Any:
        if self._conn is None:
            self._conn = self.server.admin()
        return self._conn

    def user(self, uid: str, password: str | None = None, **attrs: Any) -> str:
        dn = f"uid={uid},{self.people}"
        values = {"cn": uid.title(), "sn": uid, "uid": uid, **attrs}
        if password:
            values["userPassword"] = password
        self.conn().add(dn, ["inetOrgPerson"], values)
        return dn

    def ad_user(self, name: str, password: str, *, disabled: bool = False) -> str:
        """An Active Directory user: objectClass user, sAMAccountName, userAccountControl."""
        dn = f"cn={name} AD,{self.people}"
        self.conn().add(dn, ["user", "extensibleObject"], {
            "cn": f"{name} AD", "sn": name, "sAMAccountName": name, "instanceType": "4",
            "nTSecurityDescriptor": b"\x01", "objectCategory": f"cn=person,{SUFFIX}",
            "userAccountControl": str(512 | (2 if disabled else 0)), "userPassword": password})
        return dn

    def group(self, cn: str, *members: str) -> str:
        dn = f"cn={cn},{self.groups}"
        self.conn().add(dn, ["groupOfNames"], {"cn": cn, "member": list(members) or [""]})
        return dn

    def set_members(self, group_dn: str, *members: str) -> None:
        self.conn().modify(group_dn, {"member": [(ldap3.MODIFY_REPLACE, list(members) or [""])]})

    def modify(self, dn: str, **attrs: Any) -> None:
        self.conn().modify(dn, {k: [(ldap3.MODIFY_REPLACE, [v])] for k, v in attrs.items()})

    def delete(self, dn: str) -> None:
        self.conn().delete(dn)


class Slapd:
    def __init__(self, root: Path) -> None:
        self.root = root
        (root / "db").mkdir(parents=True)
        (root / "slapd.conf").write_text(_CONF.format(
            root=root, suffix=SUFFIX, root_dn=ROOT_DN, root_pw=ROOT_PW, reader=READER_DN,
            limited=LIMITED_DN))
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = int(sock.getsockname()[1])
        self.url = f"ldap://127.0.0.1:{self.port}"
        self._process: subprocess.Popen[bytes] | None = None
        self._trees = itertools.count()

    def start(self) -> None:
        # -d 0: stay in the foreground (the test session owns the process), log nothing.
        self._process = subprocess.Popen(
            [str(SLAPD), "-f", str(self.root / "slapd.conf"), "-h", f"{self.url}/", "-d", "0"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 10
        while True:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    break
            except OSError:
                if self._process.poll() is not None or time.monotonic() > deadline:
                    err = self._process.stderr.read().decode() if self._process.stderr else ""
                    raise RuntimeError(f"slapd did not start: {err}") from None
                time.sleep(0.02)
        conn = self.admin()
        conn.add(SUFFIX, ["dcObject", "organization"], {"o": "Example"})
        for dn in (READER_DN, LIMITED_DN):
            conn.add(dn, ["applicationProcess", "simpleSecurityObject"],
                     {"cn": dn.split(",")[0][3:], "userPassword": READER_PW})
        conn.unbind()

    def stop(self) -> None:
        if self._process is not None:
            self._process.terminate()
            self._process.wait(timeout=10)
            if self._process.stderr:
                self._process.stderr.close()
            self._process = None

    def admin(self) -> Any:
        return ldap3.Connection(ldap3.Server(self.url, get_info=ldap3.NONE), ROOT_DN, ROOT_PW,
                                auto_bind=True, raise_exceptions=True)

    def tree(self) -> Tree:
        """A fresh subtree with its people and groups."""
        base = f"ou=t{next(self._trees)},{SUFFIX}"
        tree = Tree(self, base)
        conn = tree.conn()
        for dn in (base, tree.people, tree.groups):
            conn.add(dn, ["organizationalUnit"])
        return tree


@pytest.fixture(scope="session")
def slapd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Slapd]:
    if not SLAPD.exists() or shutil.which("slapadd") is None:
        pytest.fail("slapd is missing: `make deps` installs Debian's slapd and ldap-utils")
    server = Slapd(tmp_path_factory.mktemp("slapd"))
    server.start()
    yield server
    server.stop()
