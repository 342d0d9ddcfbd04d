"""Running the API: HTTPS (or plain HTTP on loopback) for users, and a root-only Unix
socket for the local CLI, both over one Runtime, in one process."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import struct
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

from security import ConfigError

from ..service import Runtime
from ._app import create_app


def socket_path(data_dir: Path) -> Path:
    return data_dir / "greffier.sock"


class PeerCheckedProtocol(H11Protocol):
    """Accepts a Unix-socket connection only from a process of this server's own user
    (root in production): SO_PEERCRED, checked by the kernel, not claimed by the client."""

    def connection_made(self, transport: Any) -> None:
        sock = transport.get_extra_info("socket")
        try:
            creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED,
                                    struct.calcsize("3i"))
            _pid, uid, _gid = struct.unpack("3i", creds)
        except (OSError, AttributeError):
            transport.close()
            return
        if uid != os.geteuid():
            transport.close()
            return
        super().connection_made(transport)


def bind_tcp(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP, not 0: asyncio sets TCP_NODELAY only on sockets that say they are TCP;
    # without it, small responses wait for delayed ACKs (+40 ms per request, measured).
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise ConfigError(f"Cannot listen on {host}:{port}: {exc.strerror}.",
                          hint="Set api.host / api.port (GREFFIER_API__PORT) to a free "
                          "address.") from exc
    sock.listen(512)
    sock.set_inheritable(True)
    return sock


def bind_unix(path: Path) -> socket.socket:
    if path.exists() or path.is_symlink():
        path.unlink()  # a stale socket (we hold the data-directory lock)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    old = os.umask(0o177)
    try:
        sock.bind(str(path))
    finally:
        os.umask(old)
    os.chmod(path, 0o600)
    sock.listen(64)
    return sock


class _Server(uvicorn.Server):
    """A uvicorn server that leaves signals to :func:`serve` (uvicorn's own handling
    re-raises SIGTERM after shutdown, which would kill the process before it seals)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


async def serve(rt: Runtime, tcp: socket.socket, unix: socket.socket | None, *,
                tls: tuple[Path, Path] | None, announce: str) -> None:
    """Serve until SIGINT/SIGTERM; both listeners stop together."""
    public = _Server(uvicorn.Config(
        create_app(rt), log_level="warning", access_log=False, server_header=False,
        date_header=False, ssl_certfile=str(tls[0]) if tls else None,
        ssl_keyfile=str(tls[1]) if tls else None, timeout_graceful_shutdown=10,
        ws="none", lifespan="off"))
    servers = [public]
    tasks = [public.serve(sockets=[tcp])]
    if unix is not None:
        local = _Server(uvicorn.Config(
            create_app(rt, local_socket=True), log_level="warning", access_log=False,
            server_header=False, date_header=False, http=PeerCheckedProtocol, ws="none",
            lifespan="off"))
        servers.append(local)
        tasks.append(local.serve(sockets=[unix]))

    def stop() -> None:
        for s in servers:
            s.should_exit = True

    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop)

    async def announce_when_started() -> None:
        while not all(s.started for s in servers):
            if any(s.should_exit for s in servers):
                return
            await asyncio.sleep(0.05)
        print(announce, flush=True)
        while not any(s.should_exit for s in servers):
            await asyncio.sleep(0.2)
        for s in servers:
            s.should_exit = True

    await asyncio.gather(*tasks, announce_when_started())
    sys.stdout.flush()
