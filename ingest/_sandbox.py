"""Confine the parser worker with the kernel: no network, no keyring, no root.

The egress guard in :mod:`security` is a Python audit hook: native code (onnxruntime's
telemetry) and subprocesses (LibreOffice, pandoc, tesseract) never pass through it. So the
parse worker, before it imports any parser, calls :func:`confine`:

1. **its own network namespace** (``unshare(CLONE_NEWNET)``; unprivileged, inside a new user
   namespace): no interface but a loopback that is down, so nothing can be reached;
2. **an unprivileged user** when started as root (``setresgid``/``setresuid``, no
   supplementary groups): the worker cannot read root's files or signal root's processes;
3. **a seccomp filter** (classic BPF, written here): ``socket()`` for IPv4, IPv6, netlink
   and packet sockets, the kernel keyring calls (``add_key``, ``request_key``,
   ``keyctl``: the unsealed KEK lives in the user keyring) and io_uring (which can open
   sockets behind seccomp's back) fail with an error; a foreign architecture or the x32
   ABI kills the process. ``PR_SET_NO_NEW_PRIVS`` comes first, as the kernel requires.

Namespaces and seccomp filters are inherited across ``fork`` and ``exec``: every program
the parsers start is confined the same way. :func:`confine` then *checks* what it claims:
it tries an IPv4 socket and a keyring search, and reports what the kernel answered.
"""

from __future__ import annotations

import ctypes
import errno
import os
import platform
import pwd
import socket
import struct
from dataclasses import dataclass

_CLONE_NEWNET = 0x40000000
_CLONE_NEWUSER = 0x10000000
_PR_SET_NO_NEW_PRIVS = 38
_PR_SET_SECCOMP = 22
_SECCOMP_MODE_FILTER = 2

_RET_KILL_PROCESS = 0x80000000
_RET_ERRNO = 0x00050000
_RET_ALLOW = 0x7FFF0000

# Classic BPF opcodes.
_LD_W_ABS = 0x20  # BPF_LD | BPF_W | BPF_ABS
_JEQ_K = 0x15  # BPF_JMP | BPF_JEQ | BPF_K
_JGE_K = 0x35  # BPF_JMP | BPF_JGE | BPF_K
_RET_K = 0x06  # BPF_RET | BPF_K

# struct seccomp_data: int nr; u32 arch; u64 instruction_pointer; u64 args[6].
_OFF_NR, _OFF_ARCH, _OFF_ARG0 = 0, 4, 16  # args[0]'s low 32 bits (little-endian)

_X32_SYSCALL_BIT = 0x40000000


@dataclass(frozen=True)
class _Arch:
    audit: int
    socket: int
    denied: tuple[int, ...]  # add_key, request_key, keyctl, io_uring_setup/enter/register


_ARCHES = {
    "x86_64": _Arch(0xC000003E, 41, (248, 249, 250, 425, 426, 427)),
    "aarch64": _Arch(0xC00000B7, 198, (217, 218, 219, 425, 426, 427)),
}
# socket() families refused: IPv4, IPv6, netlink (routing, sockets diagnostics), raw packets.
DENIED_FAMILIES = (socket.AF_INET, socket.AF_INET6, socket.AF_NETLINK, socket.AF_PACKET)


@dataclass(frozen=True)
class Isolation:
    """What confines a parser worker, as measured inside it after :func:`confine`."""

    netns: bool  # a private network namespace
    seccomp: bool  # the filter is installed
    uid: int
    user: str
    inet_refused: bool  # socket(AF_INET) failed when tried
    keyring_refused: bool  # a keyring search failed with the filter's errno
    notes: tuple[str, ...] = ()

    @property
    def offline(self) -> bool:
        """The kernel, not only Python, keeps the worker off the network."""
        return self.seccomp and self.inet_refused

    def describe(self) -> str:
        parts = [f"network namespace {'yes' if self.netns else 'no'}",
                 f"seccomp {'yes' if self.seccomp else 'no'}",
                 f"user {self.user} (uid {self.uid})"]
        return ", ".join(parts) + "".join(f"; {note}" for note in self.notes)


def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(None, use_errno=True)


def _stmt(code: int, k: int) -> bytes:
    return struct.pack("HBBI", code, 0, 0, k)


def _jump(code: int, k: int, jt: int, jf: int) -> bytes:
    return struct.pack("HBBI", code, jt, jf, k)


def filter_program(machine: str | None = None) -> list[bytes]:
    """The BPF program, one 8-byte ``sock_filter`` per instruction."""
    name = machine or platform.machine()
    arch = _ARCHES[name]
    deny_socket = _RET_ERRNO | errno.EACCES
    deny_call = _RET_ERRNO | errno.EPERM
    prog = [
        _stmt(_LD_W_ABS, _OFF_ARCH),
        _jump(_JEQ_K, arch.audit, 1, 0),
        _stmt(_RET_K, _RET_KILL_PROCESS),  # 32-bit or foreign syscall table: other numbers
        _stmt(_LD_W_ABS, _OFF_NR),
    ]
    if name == "x86_64":  # x32 syscalls share the x86_64 audit arch, numbers | 0x40000000
        prog += [_jump(_JGE_K, _X32_SYSCALL_BIT, 0, 1), _stmt(_RET_K, _RET_KILL_PROCESS)]
    # Calls refused outright: each test jumps to the shared "deny" return.
    n = len(arch.denied)
    for i, nr in enumerate(arch.denied):
        prog.append(_jump(_JEQ_K, nr, n - i + 1, 0))  # → deny_call below the socket test
    # After the list: socket? then inspect the family, else allow.
    prog += [
        _jump(_JEQ_K, arch.socket, 2, 0),
        _stmt(_RET_K, _RET_ALLOW),
        _stmt(_RET_K, deny_call),
        _stmt(_LD_W_ABS, _OFF_ARG0),
    ]
    m = len(DENIED_FAMILIES)
    for i, family in enumerate(DENIED_FAMILIES):
        prog.append(_jump(_JEQ_K, int(family), m - i, 0))
    prog += [_stmt(_RET_K, _RET_ALLOW), _stmt(_RET_K, deny_socket)]
    return prog


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


def install_filter() -> None:
    """Install the seccomp filter on this thread's process (inherited by children)."""
    libc = _libc()
    prog = b"".join(filter_program())
    buffer = ctypes.create_string_buffer(prog, len(prog))
    fprog = _SockFprog(len(prog) // 8, ctypes.cast(buffer, ctypes.c_void_p))
    if libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_NO_NEW_PRIVS)")
    if libc.prctl(_PR_SET_SECCOMP, _SECCOMP_MODE_FILTER, ctypes.byref(fprog), 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_SECCOMP)")


def _unshare(flags: int) -> int:
    return 0 if _libc().unshare(flags) == 0 else ctypes.get_errno()


def _write_id_maps(uid: int, gid: int) -> None:
    with open("/proc/self/setgroups", "w") as handle:
        handle.write("deny")
    with open("/proc/self/uid_map", "w") as handle:
        handle.write(f"{uid} {uid} 1")
    with open("/proc/self/gid_map", "w") as handle:
        handle.write(f"{gid} {gid} 1")


def _enter_netns(notes: list[str]) -> bool:
    if _unshare(_CLONE_NEWNET) == 0:
        return True
    uid, gid = os.getuid(), os.getgid()
    code = _unshare(_CLONE_NEWUSER | _CLONE_NEWNET)
    if code == 0:
        _write_id_maps(uid, gid)  # same ids inside: files keep their owners
        return True
    notes.append(f"no network namespace ({os.strerror(code)}): seccomp alone refuses sockets")
    return False


def drop_to(user: str) -> None:
    """Become ``user`` for good: its uid and gid, no supplementary groups."""
    entry = pwd.getpwnam(user)
    os.setgroups([])
    os.setresgid(entry.pw_gid, entry.pw_gid, entry.pw_gid)
    os.setresuid(entry.pw_uid, entry.pw_uid, entry.pw_uid)


def _keyring_refused() -> bool:
    """Search the user keyring: the filter answers EPERM before the kernel looks."""
    numbers = _ARCHES[platform.machine()].denied
    libc = _libc()
    result = libc.syscall(numbers[2], 10, -4, b"user", b"greffier:probe", 0)  # KEYCTL_SEARCH
    return bool(result < 0 and ctypes.get_errno() == errno.EPERM)


def _inet_refused() -> bool:
    try:
        probe = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    except OSError:
        return True
    probe.close()
    return False


def confine(user: str) -> Isolation:
    """Confine this process (network namespace, user, seccomp), then measure the result.

    Call it in a fresh, single-threaded process, before any parser is imported.
    """
    notes: list[str] = []
    netns = _enter_netns(notes)
    if os.geteuid() == 0:
        drop_to(user)
    seccomp = platform.machine() in _ARCHES
    if seccomp:
        install_filter()
    else:
        notes.append(f"no seccomp filter for {platform.machine()}")
    uid = os.geteuid()
    try:
        name = pwd.getpwuid(uid).pw_name
    except KeyError:
        name = str(uid)
    return Isolation(netns=netns, seccomp=seccomp, uid=uid, user=name,
                     inet_refused=_inet_refused(),
                     keyring_refused=seccomp and _keyring_refused(), notes=tuple(notes))


def user_ids(user: str) -> tuple[int, int]:
    """The uid and gid of ``user`` (KeyError when it does not exist)."""
    entry = pwd.getpwnam(user)
    return entry.pw_uid, entry.pw_gid


