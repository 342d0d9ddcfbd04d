"""The parser worker is kept off the network by the kernel, not only by Python.

* the worker, seen from outside (``/proc``), runs in its own network namespace, under
  seccomp, as an unprivileged user; it still parses a root-only file (handed as a descriptor);
* the seccomp filter, installed in a throwaway process, refuses inet/netlink/packet sockets,
  the keyring calls and io_uring, and lets Unix sockets through;
* the whole CLI (``init`` + ``ingest`` of the fixture corpus, every format) runs in a fake
  Internet (``netns_harness.py``) under ``strace -f``: no DNS query, no connection, no
  ``connect``/``sendto`` to a non-loopback address from any process. A control run by the
  harness proves it sees an attempt.
"""

from __future__ import annotations

import ipaddress
import json
import os
import pwd
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from ingest import ParseWorker, WorkerLimits

if TYPE_CHECKING:
    from corpus import Fact

ROOT = Path(__file__).resolve().parents[1]
HARNESS = Path(__file__).with_name("netns_harness.py")
GREFFIER = ROOT / ".venv" / "bin" / "greffier"


def _proc_status(pid: int) -> dict[str, str]:
    lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    return {k: v.strip() for k, _, v in (line.partition(":") for line in lines)}


@pytest.mark.integration
def test_worker_is_confined_and_reads_root_only_files(tmp_path: Path) -> None:
    private = tmp_path / "private"
    private.mkdir(mode=0o700)
    note = private / "note.txt"
    note.write_text("The archive room key is kept by the caretaker, Mr Duval.\n")
    note.chmod(0o600)
    worker = ParseWorker(WorkerLimits())
    try:
        isolation = worker.start()
        assert worker.pid is not None and worker.scratch is not None
        status = _proc_status(worker.pid)
        assert status["Seccomp"] == "2" and status["NoNewPrivs"] == "1"
        assert os.readlink(f"/proc/{worker.pid}/ns/net") != os.readlink("/proc/self/ns/net")
        assert isolation.netns and isolation.seccomp and isolation.offline
        assert isolation.inet_refused and isolation.keyring_refused
        if os.geteuid() == 0:
            nobody = pwd.getpwnam("nobody")
            assert status["Uid"].split() == [str(nobody.pw_uid)] * 4
            assert status["Gid"].split() == [str(nobody.pw_gid)] * 4
            assert status["Groups"] == ""
            assert isolation.uid == nobody.pw_uid != 0
            scratch = worker.scratch.stat()
            assert scratch.st_uid == nobody.pw_uid and scratch.st_mode & 0o777 == 0o700
        parsed = worker.parse(note, "txt")
        assert "caretaker" in " ".join(block.text for block in parsed.blocks)
        assert not any(p.name.startswith("input-") for p in worker.scratch.iterdir())
    finally:
        worker.close()


_FILTER_PROBE = textwrap.dedent("""
    import ctypes, errno, json, platform, socket
    from ingest._sandbox import install_filter
    install_filter()
    libc = ctypes.CDLL(None, use_errno=True)
    def family(f):
        try:
            kind = socket.SOCK_RAW if f == socket.AF_PACKET else socket.SOCK_DGRAM
            socket.socket(f, kind).close()
            return 0
        except OSError as exc:
            return exc.errno
    def call(nr, *args):
        r = libc.syscall(nr, *args)
        return ctypes.get_errno() if r < 0 else 0
    add_key, keyctl, uring = (248, 250, 425) if platform.machine() == "x86_64" else (217, 219, 425)
    print(json.dumps({
        "inet": family(socket.AF_INET), "inet6": family(socket.AF_INET6),
        "netlink": family(socket.AF_NETLINK), "packet": family(socket.AF_PACKET),
        "unix": family(socket.AF_UNIX),
        "add_key": call(add_key, b"user", b"greffier:probe", b"x", 1, -4),
        "keyctl": call(keyctl, 10, -4, b"user", b"greffier:probe", 0),
        "io_uring_setup": call(uring, 8, ctypes.create_string_buffer(120)),
    }))
""")


@pytest.mark.unit
def test_seccomp_filter_refuses_network_keyring_and_io_uring() -> None:
    done = subprocess.run([sys.executable, "-c", _FILTER_PROBE], capture_output=True,
                          text=True, timeout=60, cwd=ROOT, check=True)
    result = json.loads(done.stdout)
    assert result["unix"] == 0
    for name in ("inet", "inet6", "netlink", "packet"):
        assert result[name] == 13, (name, result)  # EACCES
    for name in ("add_key", "keyctl", "io_uring_setup"):
        assert result[name] == 1, (name, result)  # EPERM


# -- the CLI in a fake Internet, under strace -------------------------------------------

_CALL = re.compile(r"^(\d+)\s+(?:<\.\.\. (\w+) resumed>|(\w+)\()")
_ADDRESS = re.compile(r'inet_addr\("([0-9.]+)"\)|inet_pton\(AF_INET6, "([0-9a-fA-F:.]+)"')
_EGRESS_CALLS = frozenset({"connect", "sendto", "sendmsg", "sendmmsg"})


def _is_local(address: str) -> bool:
    ip = ipaddress.ip_address(address)
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_loopback or ip.is_unspecified


def analyse_strace(log: str) -> tuple[list[str], int]:
    """(egress lines to a non-loopback address, socket(AF_INET*) calls refused with EACCES)."""
    egress: list[str] = []
    refused = 0
    pending_inet: set[str] = set()  # pids with an unfinished socket(AF_INET…) call
    for line in log.splitlines():
        match = _CALL.match(line)
        if match is None:
            continue
        pid, resumed, call = match.group(1), match.group(2), match.group(3)
        name = resumed or call
        if name in _EGRESS_CALLS:
            for v4, v6 in _ADDRESS.findall(line):
                if not _is_local(v4 or v6):
                    egress.append(line)
        if name == "socket":
            inet = call == "socket" and "socket(AF_INET" in line
            if "<unfinished" in line:
                if inet:
                    pending_inet.add(pid)
                continue
            if resumed:
                inet = pid in pending_inet
                pending_inet.discard(pid)
            if inet and "= -1 EACCES" in line:
                refused += 1
    return egress, refused


def _cli_env(data: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GREFFIER_")}
    secret = data.parent / "passphrase"
    secret.write_text("operator passphrase for the sandbox test\n")
    secret.chmod(0o600)
    env.update(GREFFIER_DATA_DIR=str(data), GREFFIER_PASSPHRASE_FILE=str(secret))
    return env


@pytest.mark.e2e
@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("strace") is None,
                    reason="needs root (namespaces, mounts) and strace")
def test_ingest_of_every_format_sends_nothing_to_a_fake_internet(
        tmp_path: Path, corpus: tuple[Path, list[Fact]]) -> None:
    folder, facts = corpus  # in a root-only folder: the worker gets descriptors
    data = tmp_path / "data"
    env = _cli_env(data)
    out, log = tmp_path / "harness.json", tmp_path / "strace.log"
    script = f"{GREFFIER} init && {GREFFIER} ingest {folder}"
    subprocess.run(["unshare", "--net", "--mount", "--fork", "--", sys.executable,
                    str(HARNESS), str(out), str(log), "--", "sh", "-c", script],
                   env=env, check=True, timeout=900)
    record = json.loads(out.read_text())

    # The harness can fail this test: the control's lookup and connection were seen.
    control = [e for e in record["events"] if e["phase"] == "control"]
    assert record["control"]["rc"] == 0, record["control"]
    assert any(e["kind"] == "dns" and e["name"] == "mobile.events.data.microsoft.com"
               for e in control), control
    assert any(e["kind"] == "connection" and e["port"] == 443 for e in control), control

    assert record["rc"] == 0, record["stderr"]
    attempts = [e for e in record["events"] if e["phase"] in ("command", "done")]
    assert attempts == [], f"the ingest reached the fake Internet: {attempts}"
    egress, refused = analyse_strace(log.read_text())
    assert egress == [], "connect/sendto to a non-loopback address:\n" + "\n".join(egress[:20])
    assert refused >= 1  # at least the worker's own check: seccomp was on under strace

    status = json.loads(subprocess.run([str(GREFFIER), "status", "--json"], env=env,
                                       capture_output=True, text=True, check=True,
                                       timeout=300).stdout)
    assert status["documents"] == len(facts), record["stdout"]  # every format was parsed
    print(f"\nsandboxed ingest: {record['seconds']:.1f} s under strace; "
          f"socket(AF_INET*) refused by seccomp: {refused}")


@pytest.mark.unit
def test_strace_analysis_flags_egress_and_counts_refusals() -> None:
    log = "\n".join([
        '10 connect(3, {sa_family=AF_INET, sin_port=htons(53), '
        'sin_addr=inet_addr("192.0.2.1")}, 16) = 0',
        '10 connect(4, {sa_family=AF_INET, sin_port=htons(80), '
        'sin_addr=inet_addr("127.0.0.1")}, 16) = 0',
        '11 sendto(5, "x", 1, 0, {sa_family=AF_INET6, sin6_port=htons(443), '
        'sin6_flowinfo=htonl(0), inet_pton(AF_INET6, "::1", &sin6_addr)}, 28) = 1',
        "12 socket(AF_INET, SOCK_STREAM|SOCK_CLOEXEC, IPPROTO_TCP) = -1 EACCES (Permission "
        "denied)",
        "13 socket(AF_INET6, SOCK_DGRAM, IPPROTO_IP <unfinished ...>",
        "13 <... socket resumed>) = -1 EACCES (Permission denied)",
        "14 socket(AF_UNIX, SOCK_STREAM, 0) = -1 EACCES (Permission denied)",
    ])
    egress, refused = analyse_strace(log)
    assert len(egress) == 1 and "192.0.2.1" in egress[0]
    assert refused == 2
