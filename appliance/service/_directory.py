"""Directory groups (LDAP / Active Directory): an admin syncs the directory's users,
groups and memberships on demand (``POST /v1/directory/sync``, ``greffier directory
sync``), and ``greffier serve`` does it every ``ldap.every_minutes``.

A sync reads the whole directory first, then applies it in one transaction
(``_directory_sync.apply``): accounts and groups whose origin is ``ldap`` follow it,
nested groups resolved; nothing else is touched. It runs synchronously, one at a time:
it takes seconds even for ten thousand entries, and the caller gets its counts and
conflicts at once (a second caller meanwhile gets 409). A failed sync changes nothing and
is audited as ``directory.sync.failure``; a successful one writes its per-change entries
(``user.add``, ``user.disable``, ``group.member.add``, … with ``origin: ldap``) and one
``directory.sync`` entry with the counts. Membership changes hold from the next request.
"""

from __future__ import annotations

import contextlib
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import func, select

from security import ConflictError, DirectoryError, GreffierError

from .._directory_settings import require_password
from .._settings import Settings
from ..db import User
from ..directory import Directory, LdapDirectory
from ._directory_models import DirectoryOut, SyncCounts, SyncOut
from ._directory_sync import LDAP, apply
from ._principal import Principal
from ._runtime import Runtime

MAX_CONFLICTS = 200  # listed in the result and its audit entry; all are counted


def directory_of(settings: Settings) -> Directory:
    """The configured directory, bound with the service account's password."""
    return LdapDirectory(settings.ldap, require_password(settings.ldap))


def sync_directory(rt: Runtime, who: Principal, directory: Directory | None = None) -> SyncOut:
    """Bring the directory's users, groups and memberships in; see the module docstring."""
    who.require("users")
    who.require("groups")
    if not rt.settings.ldap.enabled:
        raise ConflictError("No directory is configured.",
                            hint="Set ldap.url, ldap.user_base and ldap.group_base (see the "
                            "README), then restart the service.")
    state = rt.directory_state
    if not state.lock.acquire(blocking=False):
        raise ConflictError("A directory sync is already running.",
                            hint="Wait for it: `greffier directory status` shows its result.")
    try:
        return _sync(rt, who, directory or directory_of(rt.settings))
    finally:
        state.lock.release()


def _sync(rt: Runtime, who: Principal, directory: Directory) -> SyncOut:
    ident = rt.identity
    started = time.time()
    try:
        snap = directory.read()  # the network first, the transaction after
        with ident.db.session() as s:
            if not snap.users and s.scalar(select(func.count()).select_from(User).where(
                    User.origin == LDAP, User.disabled.is_(False))):
                raise DirectoryError(
                    "The directory returned no users at all; nothing was changed (every "
                    "directory account would have been disabled).",
                    hint="Check ldap.user_base and ldap.user_filter.")
            outcome = apply(s, snap, rt.settings.ldap, started)
            s.flush()  # a constraint fails here, before anything is audited
            result = SyncOut(ok=True, started_at=_when(started), finished_at=_when(time.time()),
                             by=who.audit_name, counts=outcome.counts,
                             conflicts=outcome.conflicts[:MAX_CONFLICTS])
            for event, details in outcome.entries:
                ident.audit(event, who.audit_name, details)
            ident.audit("directory.sync", who.audit_name, result.model_dump(mode="json"))
    except Exception as exc:  # audited, then raised as it came
        failed = SyncOut(ok=False, started_at=_when(started), finished_at=_when(time.time()),
                         by=who.audit_name, counts=SyncCounts(),
                         error=exc.message if isinstance(exc, GreffierError)
                         else type(exc).__name__)
        with contextlib.suppress(GreffierError):  # sealed meanwhile: nothing to write to
            ident.audit("directory.sync.failure", who.audit_name,
                        failed.model_dump(mode="json"))
        rt.directory_state.record(failed)
        raise
    rt.directory_state.record(result)
    return result


def directory_status(rt: Runtime, who: Principal) -> DirectoryOut:
    who.require("users")
    ldap = rt.settings.ldap
    state = rt.directory_state
    running = state.lock.locked()
    return DirectoryOut(configured=ldap.enabled, url=ldap.url, every_minutes=ldap.every_minutes,
                        running=running, last=state.last(_log(rt)))


def due(rt: Runtime, now: float) -> bool:
    """Whether the scheduled sync is due (configured, a schedule, and time)."""
    ldap = rt.settings.ldap
    if not ldap.enabled or not ldap.every_minutes or rt.sealed:
        return False
    last = rt.directory_state.last(_log(rt))
    return last is None or last.started_at.timestamp() + ldap.every_minutes * 60 <= now


def run_schedule(rt: Runtime, scheduler: Principal, stop: threading.Event,
                 period_s: float = 30.0) -> None:
    """Sync the directory when due, every ``period_s``, until ``stop`` (a thread of the
    service). Failures are audited by the sync itself; the next one comes at its time."""
    while not stop.wait(period_s):
        if due(rt, time.time()):
            with contextlib.suppress(GreffierError):
                sync_directory(rt, scheduler)


def _log(rt: Runtime) -> Path:
    return rt.settings.data_dir / "audit" / "log.jsonl"


def _when(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, tz=UTC)
