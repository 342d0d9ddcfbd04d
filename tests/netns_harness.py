"""Run a command in a fake Internet and record every attempt to reach it.

Started by ``tests/test_sandbox.py`` as ``unshare --net --mount --fork python netns_harness.py
OUT LOG -- COMMAND...``, so everything here happens inside namespaces the test created:

* ``dummy0`` (a dummy interface, or one end of a veth pair where the kernel lacks dummy)
  holds 192.0.2.1 (TEST-NET-1, documentation only) and carries the default route;
* ``/etc/resolv.conf`` is replaced, in this mount namespace only, by ``nameserver 192.0.2.1``;
* a DNS server on 192.0.2.1:53 (UDP and TCP) answers every A query with 192.0.2.1 and every
  AAAA query with ::ffff:192.0.2.1, and TCP listeners on :80 and :443 accept connections.

So a name lookup anywhere in the process tree reaches the fake DNS, and a connection to what
it answered reaches a listener: both are recorded. First a *control* (a plain Python child,
outside any sandbox, resolves and connects to ``mobile.events.data.microsoft.com``) shows the
harness sees attempts; then COMMAND runs under ``strace -f`` limited to network calls.
OUT receives the JSON record; LOG the strace output.
"""

from __future__ import annotations

import json
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

FAKE = "192.0.2.1"
CONTROL_HOST = "mobile.events.data.microsoft.com"
_events: list[dict[str, object]] = []
_phase = ["setup"]
_lock = threading.Lock()


def _record(kind: str, **detail: object) -> None:
    with _lock:
        _events.append({"phase": _phase[0], "kind": kind, **detail})


def _sh(*args: str) -> None:
    subprocess.run(args, check=True)


def _network() -> None:
    _sh("ip", "link", "set", "lo", "up")
    # A dummy interface; kernels built without it get a veth pair whose far end drops all.
    if subprocess.run(["ip", "link", "add", "dummy0", "type", "dummy"],
                      stderr=subprocess.DEVNULL).returncode != 0:
        _sh("ip", "link", "add", "dummy0", "type", "veth", "peer", "name", "dummy1")
        _sh("ip", "link", "set", "dummy1", "up")
    _sh("ip", "addr", "add", f"{FAKE}/24", "dev", "dummy0")
    _sh("ip", "link", "set", "dummy0", "up")
    _sh("ip", "route", "add", "default", "dev", "dummy0")
    resolv = Path(tempfile.mkdtemp(prefix="greffier-netns-")) / "resolv.conf"
    resolv.write_text(f"nameserver {FAKE}\noptions timeout:1 attempts:1\n")
    _sh("mount", "--bind", str(resolv), "/etc/resolv.conf")


def _question(query: bytes) -> tuple[str, int, int]:
    """(name, qtype, end offset of the question) of a DNS query."""
    labels, offset = [], 12
    while query[offset]:
        length = query[offset]
        labels.append(query[offset + 1:offset + 1 + length].decode("ascii", "replace"))
        offset += 1 + length
    qtype = struct.unpack("!H", query[offset + 1:offset + 3])[0]
    return ".".join(labels), qtype, offset + 5


def _answer(query: bytes) -> bytes:
    name, qtype, end = _question(query)
    _record("dns", name=name, qtype=qtype)
    rdata = b""
    if qtype == 1:
        rdata = socket.inet_aton(FAKE)
    elif qtype == 28:
        rdata = socket.inet_pton(socket.AF_INET6, f"::ffff:{FAKE}")
    header = query[:2] + struct.pack("!HHHHH", 0x8180, 1, 1 if rdata else 0, 0, 0)
    answer = b""
    if rdata:
        answer = struct.pack("!HHHIH", 0xC00C, qtype, 1, 60, len(rdata)) + rdata
    return header + query[12:end] + answer


def _serve_udp() -> None:
    server = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    server.bind((FAKE, 53))
    while True:
        data, peer = server.recvfrom(4096)
        try:
            server.sendto(_answer(data), peer)
        except (IndexError, struct.error):
            _record("dns", name="(malformed)", qtype=0)


def _serve_tcp(port: int) -> None:
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind((FAKE, port))
    server.listen(64)
    while True:
        conn, peer = server.accept()
        _record("connection", port=port, peer=peer[0])
        with conn:
            if port == 53:
                conn.settimeout(2)
                try:
                    size = struct.unpack("!H", conn.recv(2))[0]
                    reply = _answer(conn.recv(size))
                    conn.sendall(struct.pack("!H", len(reply)) + reply)
                except (OSError, IndexError, struct.error):
                    pass


def _control() -> dict[str, object]:
    probe = (
        "import socket\n"
        f"info = socket.getaddrinfo({CONTROL_HOST!r}, 443, type=socket.SOCK_STREAM)\n"
        "sock = socket.create_connection((info[0][4][0], 443), timeout=3)\n"
        "sock.close()\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          timeout=30)
    return {"rc": done.returncode, "stderr": done.stderr[-2000:]}


def main() -> int:
    out, log = Path(sys.argv[1]), Path(sys.argv[2])
    command = sys.argv[sys.argv.index("--") + 1:]
    _network()
    threads = [threading.Thread(target=_serve_udp, daemon=True)]
    threads += [threading.Thread(target=_serve_tcp, args=(p,), daemon=True) for p in (53, 80, 443)]
    for thread in threads:
        thread.start()
    time.sleep(0.3)
    _phase[0] = "control"
    control = _control()
    time.sleep(0.5)
    _phase[0] = "command"
    started = time.perf_counter()
    done = subprocess.run(["strace", "-f", "-qq", "-s", "128", "-e", "trace=%network",
                           "-o", str(log), *command], capture_output=True, text=True)
    seconds = time.perf_counter() - started
    time.sleep(1.0)  # late packets
    _phase[0] = "done"
    with _lock:
        events = list(_events)
    out.write_text(json.dumps({
        "control": control, "events": events, "rc": done.returncode, "seconds": seconds,
        "stdout": done.stdout[-4000:], "stderr": done.stderr[-4000:],
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main())
