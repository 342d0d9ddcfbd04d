"""Egress guard: forbid outbound connections from this process.

The appliance must never phone home or download anything while it runs. Python audit
hooks see every ``socket.connect`` and ``socket.getaddrinfo`` before they happen, so a
connection *attempt* fails fast, whatever library makes it. Loopback and the hosts the
operator configured (a Qdrant server, the vLLM service) stay reachable.

Audit hooks cannot be removed once added; :func:`forbid_network` installs one hook per
process and later calls only change the allowed hosts. Attempts are recorded so tests can
prove that none happened.
"""

from __future__ import annotations

import ipaddress
import sys
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from ._errors import NetworkForbiddenError

_LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost"})


@dataclass
class _Guard:
    allowed_hosts: set[str] = field(default_factory=set)
    attempts: list[str] = field(default_factory=list)
    active: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock)


_GUARD = _Guard()
_INSTALLED = False


def _is_loopback(host: str) -> bool:
    if host in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.split("%")[0]).is_loopback
    except ValueError:
        return False


def _host_allowed(host: object) -> bool:
    if host is None:
        return True
    text = host.decode() if isinstance(host, bytes) else str(host)
    return _is_loopback(text) or text in _GUARD.allowed_hosts


def _audit(event: str, args: tuple[Any, ...]) -> None:
    if not _GUARD.active:
        return
    host: object
    if event == "socket.getaddrinfo":
        host = args[0]
    elif event == "socket.connect":
        address = args[1]
        if not isinstance(address, tuple):  # AF_UNIX path: local by definition
            return
        host = address[0]
    else:
        return
    if _host_allowed(host):
        return
    with _GUARD.lock:
        _GUARD.attempts.append(f"{event} {host!r}")
    raise NetworkForbiddenError(
        f"Blocked a network connection to {host!r} ({event}).",
        hint="Greffier runs offline; add the host to security.allowed_hosts only if it "
        "is a service of this appliance.",
    )


def forbid_network(allowed_hosts: Iterable[str] = ()) -> None:
    """Block every outbound connection from this process except loopback and ``allowed_hosts``."""
    global _INSTALLED
    with _GUARD.lock:
        _GUARD.allowed_hosts = set(allowed_hosts)
        _GUARD.active = True
    if not _INSTALLED:
        sys.addaudithook(_audit)
        _INSTALLED = True


def allow_network() -> None:
    """Lift the guard (the hook stays installed but inactive)."""
    with _GUARD.lock:
        _GUARD.active = False


def blocked_attempts() -> list[str]:
    """Connection attempts the guard blocked since the process started."""
    with _GUARD.lock:
        return list(_GUARD.attempts)
