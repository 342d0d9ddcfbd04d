"""A real PostgreSQL 15 server for the tests, from Debian's packages.

Started once per test session, on demand (only tests that ask for it pay for it): ``initdb``
in a temporary directory, run as an unprivileged user (PostgreSQL refuses root; the Debian
package's ``postgres`` account, else a ``greffier-pg`` system account made for it),
listening on a Unix socket only (no TCP port to collide with), trust authentication.
Each test gets a database of its own. The server is stopped and its files removed after.
"""

from __future__ import annotations

import itertools
import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

BIN = Path("/usr/lib/postgresql/15/bin")
PORT = 5432  # only names the socket file: the server listens on no TCP port


def _pg_user() -> str:
    for name in ("postgres", "greffier-pg"):
        try:
            pwd.getpwnam(name)
            return name
        except KeyError:
            continue
    subprocess.run(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin",
                    "greffier-pg"], check=True)
    return "greffier-pg"


class PostgresServer:
    def __init__(self, root: Path, user: str) -> None:
        self.root, self.user = root, user
        self.data, self.socket = root / "data", root / "socket"
        self._numbers = itertools.count()

    def _run(self, *argv: str) -> None:
        command = [*argv] if os.geteuid() != 0 else ["runuser", "-u", self.user, "--", *argv]
        done = subprocess.run(command, cwd=self.root, capture_output=True, text=True,
                              timeout=120)
        if done.returncode != 0:
            log = (self.root / "server.log")
            tail = log.read_text()[-2000:] if log.exists() else ""
            raise RuntimeError(f"{argv[0]} failed: {done.stderr}{done.stdout}\n{tail}")

    def start(self) -> None:
        self._run(str(BIN / "initdb"), "-D", str(self.data), "-U", "postgres", "-A", "trust",
                  "-E", "UTF8", "--locale=C", "--no-sync")
        options = (f"-k {self.socket} -p {PORT} -c listen_addresses='' -c fsync=off "
                   "-c full_page_writes=off -c max_connections=200")
        self._run(str(BIN / "pg_ctl"), "-D", str(self.data), "-l", str(self.root / "server.log"),
                  "-o", options, "-w", "-t", "60", "start")

    def stop(self) -> None:
        self._run(str(BIN / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop")

    def _admin(self) -> psycopg.Connection[tuple[object, ...]]:
        return psycopg.connect(host=str(self.socket), port=PORT, user="postgres",
                               dbname="postgres", autocommit=True)

    def new_database(self) -> str:
        """A fresh, empty database; its SQLAlchemy URL."""
        name = f"t{os.getpid()}_{next(self._numbers)}"
        with self._admin() as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return f"postgresql+psycopg://postgres@/{name}?host={self.socket}&port={PORT}"

    def drop_database(self, url: str) -> None:
        name = url.split("/")[3].split("?")[0]
        with self._admin() as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    if not (BIN / "initdb").exists():
        pytest.fail("PostgreSQL 15 is not installed: `apt-get install postgresql` (make setup).")
    user = _pg_user()
    root = Path(tempfile.mkdtemp(prefix="greffier-pg-"))
    server = PostgresServer(root, user)
    server.socket.mkdir()
    if os.geteuid() == 0:
        entry = pwd.getpwnam(user)
        for path in (root, server.socket):
            os.chown(path, entry.pw_uid, entry.pw_gid)
    try:
        server.start()
        try:
            yield server
        finally:
            server.stop()
    finally:
        shutil.rmtree(root, ignore_errors=True)
