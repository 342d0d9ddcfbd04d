"""The unsealed state between commands: the KEK held in the Linux kernel keyring.

``greffier unseal`` derives the KEK (or, for a PKCS#11 token, checks the PIN) and stores it
in the caller's *user* kernel keyring under ``greffier:<data-dir id>``, with a timeout; the
following commands read it from there; ``greffier seal`` revokes it. Kernel keyrings live in
kernel memory only: the KEK never touches the disk, and it disappears at the timeout, at
``seal``, or at reboot. Like a running service's memory, it is readable by the same user and
by root.
"""

from __future__ import annotations

import ctypes
import hashlib
import platform
from pathlib import Path

from ._errors import SealedError

# (add_key, keyctl) syscall numbers per architecture.
_SYSCALLS = {"x86_64": (248, 250), "aarch64": (217, 219)}
_KEY_SPEC_USER_KEYRING = -4
_KEYCTL_REVOKE, _KEYCTL_SEARCH, _KEYCTL_READ, _KEYCTL_SET_TIMEOUT = 3, 10, 11, 15


def _syscalls() -> tuple[ctypes.CDLL, int, int]:
    numbers = _SYSCALLS.get(platform.machine())
    if numbers is None:
        raise SealedError(f"Kernel keyrings are not supported on {platform.machine()} here.",
                          hint="Give the passphrase to each command (GREFFIER_PASSPHRASE_FILE).")
    return ctypes.CDLL(None, use_errno=True), numbers[0], numbers[1]


def description(data_dir: Path) -> bytes:
    digest = hashlib.sha256(str(data_dir.resolve()).encode()).hexdigest()[:16]
    return f"greffier:{digest}".encode()


def store(data_dir: Path, secret: bytes, timeout_s: int) -> None:
    libc, add_key, keyctl = _syscalls()
    key = libc.syscall(add_key, b"user", description(data_dir), secret, len(secret),
                       _KEY_SPEC_USER_KEYRING)
    if key < 0:
        raise SealedError(f"The kernel refused to hold the key (errno {ctypes.get_errno()}).",
                          hint="Give the passphrase to each command (GREFFIER_PASSPHRASE_FILE).")
    libc.syscall(keyctl, _KEYCTL_SET_TIMEOUT, key, timeout_s)


def _find(data_dir: Path) -> int | None:
    libc, _, keyctl = _syscalls()
    key = libc.syscall(keyctl, _KEYCTL_SEARCH, _KEY_SPEC_USER_KEYRING, b"user",
                       description(data_dir), 0)
    return int(key) if key > 0 else None


def load(data_dir: Path) -> bytes | None:
    """The secret stored by ``unseal``, or None when the appliance is sealed."""
    key = _find(data_dir)
    if key is None:
        return None
    libc, _, keyctl = _syscalls()
    buffer = ctypes.create_string_buffer(256)
    size = libc.syscall(keyctl, _KEYCTL_READ, key, buffer, 256)
    return buffer.raw[:size] if 0 < size <= 256 else None


def revoke(data_dir: Path) -> bool:
    """Drop the stored secret; True if there was one."""
    key = _find(data_dir)
    if key is None:
        return False
    libc, _, keyctl = _syscalls()
    libc.syscall(keyctl, _KEYCTL_REVOKE, key)
    return True
