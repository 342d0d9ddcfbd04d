"""The service's one :class:`Runtime`: built at start, kept for the life of the process.

It holds the data directory for as long as the process lives (so a CLI command cannot open
it behind the server's back), starts sealed unless a secret is configured, and owns the
opened appliance (keys, catalog, store, encoder, searcher, answerer, audit log) once
unsealed. Models load once. Every use of the appliance goes through :meth:`using`, which
serialises the parts that are not thread-safe (the audit log, the store's writers).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import IO, Any

from security import ConflictError, KekSource, SealedError

from .._appliance import Appliance
from .._datadir import lock_data_dir
from .._guard import Guard
from .._settings import Settings
from ._directory_state import DirectoryState
from ._jobs import Jobs


def _sso_state() -> Any:
    from ._oidc import SsoState

    return SsoState()


class Runtime:
    """Settings, the held data directory, and (once unsealed) the appliance."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.started = time.time()
        self._dir_lock: IO[str] = lock_data_dir(settings.data_dir)
        self._guard = Guard()  # searches share it; changes hold it alone
        # The identity service writes its audit entries inside its database transactions,
        # and the catalog opens transactions under the guard: on SQLite (one writer at a
        # time) taking the guard there would deadlock. Those entries take this lock only;
        # the lock order is guard → database → audit lock, and nothing waits while holding it.
        self._audit_lock = threading.Lock()
        self._unsealing = threading.Lock()
        self._app: Appliance | None = None
        self._identity: Any = None
        self._db: Any = None
        self._audited: Appliance | None = None  # whose log the identity service writes to
        self.jobs = Jobs()
        self.directory_state = DirectoryState()  # directory syncs: one at a time, the last
        self.sso = _sso_state()  # single sign-on: the provider's cache, pending sign-ins
        # Stage timings (search, generation, ingest), set by the API to feed its metrics.
        self.observe: Callable[..., None] = lambda name, seconds, **labels: None
        self.count: Callable[..., None] = lambda name, amount=1.0, **labels: None

    # -- state ---------------------------------------------------------------------------
    @property
    def sealed(self) -> bool:
        return self._app is None

    def unseal(self, source: KekSource, *, user: str) -> None:
        """Open the appliance with the operator's secret (throttled and audited by
        :meth:`Appliance.open`), then the metadata database and the identity service."""
        if not self._unsealing.acquire(blocking=False):
            raise ConflictError("An unseal is already in progress.", hint="Wait for it.")
        try:
            if self._app is not None:
                raise ConflictError("The appliance is already unsealed.")
            app = Appliance.open(self.settings, source, user=user, lock=self._dir_lock)
            app.indexer.guard = self._guard  # an ingest lets searches in while it parses
            try:
                self._open_identity(app)
            except BaseException:
                app.close()
                raise
            self._app = app
        finally:
            self._unsealing.release()

    def _open_identity(self, app: Appliance) -> None:
        from .._metakey import metadata_key
        from ..db import AeadSealer
        from ._identity import Identity
        from ._policy import identity_policy

        def audit(event: str, user: str, details: dict[str, Any],
                  secret: dict[str, Any] | None = None) -> int:
            with self._audit_lock:  # the audit log appends atomically on its own
                if self._audited is not app:
                    raise SealedError("The appliance was sealed.", hint="Unseal it again.")
                return app.audit.append(event, user, details, secret=secret)

        self._db = app.db
        self._audited = app
        key = metadata_key(self.settings.data_dir, app.keys)
        self._identity = Identity(app.db, audit, AeadSealer(key),
                                  policy=identity_policy(self.settings),
                                  directory_login=self._directory_login())

    def _directory_login(self) -> Callable[[str, str], bool] | None:
        """Directory accounts sign in by a bind as themselves (no service password)."""
        ldap = self.settings.ldap
        if not ldap.enabled:
            return None
        from ..directory import LdapDirectory

        return LdapDirectory(ldap, None).verify_password

    def seal(self, *, user: str) -> None:
        """Close the appliance: the keys leave memory; the service answers 503 until the
        next unseal."""
        with self._guard:
            app = self._app
            if app is None:
                return
            with self._audit_lock:
                self._app = self._audited = None
            app.user = user
            self.jobs.cancel_all()
            if self._db is not None:  # sealing logs everybody out
                from sqlalchemy import delete

                from ..db import SessionRow

                with self._db.session() as s:
                    s.execute(delete(SessionRow))
            app.close()  # closes the database too
            self._db = self._identity = None

    def close(self) -> None:
        from ._documents import clear_staging

        self.seal(user="greffier serve")
        clear_staging(self)
        self._dir_lock.close()

    # -- access --------------------------------------------------------------------------
    def appliance(self) -> Appliance:
        app = self._app
        if app is None:
            raise SealedError("The appliance is sealed.",
                              hint="An admin unseals it: POST /v1/unseal with the passphrase, "
                              "or configure GREFFIER_PASSPHRASE_FILE for the service.")
        return app

    @property
    def identity(self) -> Any:
        """The identity service (users, sessions, tokens, conversations)."""
        if self._identity is None:
            self.appliance()  # raises SealedError
        return self._identity

    @contextmanager
    def using(self) -> Iterator[Appliance]:
        """The appliance, exclusively for the duration of the block."""
        with self._guard:
            yield self.appliance()

    @contextmanager
    def reading(self) -> Iterator[Appliance]:
        """The appliance for a search: alongside other searches, never during a change."""
        with self._guard.shared():
            yield self.appliance()
