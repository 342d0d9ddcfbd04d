"""What the ingest accepts from the disk, and where it looks at a file.

* a folder given to ``ingest`` is a boundary: links out of it (absolute, or ``..``) are
  refused with a one-line reason, and what they point at is never indexed, even with --sync;
* named pipes, sockets and devices are reported as failed files, never opened (a FIFO would
  block the ingest);
* the appliance's process does not open PDFs with a library: the PDF structure check runs in
  the confined parser worker;
* scratch directories of a worker killed with ``kill -9`` are removed when the next starts.
"""

from __future__ import annotations

import os
import signal
import socket
import stat
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from appliance import Appliance, Settings
from ingest import ParseWorker, WorkerLimits, walk
from security import EncryptedDocumentError, IngestError

from conftest import open_appliance

ROOT = Path(__file__).resolve().parents[1]
SCRATCH_PREFIX = "greffier-parse-"  # then the worker's pid


def _tree(tmp_path: Path) -> tuple[Path, Path, socket.socket]:
    root, outside = tmp_path / "docs", tmp_path / "outside"
    root.mkdir()
    outside.mkdir()
    (root / "kept.txt").write_text("The boiler room is on level minus two, behind the blue door.")
    secret = outside / "salaries.txt"
    secret.write_text("Salary grid for 2024: confidential figures for the board only.")
    (root / "escape.txt").symlink_to(secret)
    (root / "sub").mkdir()
    (root / "sub" / "dotdot.txt").symlink_to(Path("../../outside/salaries.txt"))
    (root / "linked_dir").symlink_to(outside, target_is_directory=True)
    (root / "alias.txt").symlink_to(root / "kept.txt")  # inside the folder: followed
    (root / "loop").symlink_to(root, target_is_directory=True)  # inside: not walked twice
    os.mkfifo(root / "pipe.txt")
    listener = socket.socket(socket.AF_UNIX)
    listener.bind(str(root / "sock.txt"))
    if os.geteuid() == 0:
        os.mknod(root / "null.txt", stat.S_IFCHR | 0o600, os.makedev(1, 3))
    return root, secret, listener


_REFUSED = {
    "escape.txt": "outside",
    "sub/dotdot.txt": "outside",
    "linked_dir": "outside",
    "pipe.txt": "named pipe (FIFO)",
    "sock.txt": "a socket",
    "null.txt": "character device",
}


@pytest.fixture
def tree(tmp_path: Path) -> Iterator[tuple[Path, Path]]:
    root, secret, listener = _tree(tmp_path)
    with listener:
        yield root, secret


@pytest.fixture
def unblock_fifo(tree: tuple[Path, Path]) -> Iterator[list[bool]]:
    """If anything opens the FIFO for reading and blocks, open its other end after 60 s
    (so the test ends) and remember it: the test then fails."""
    opened: list[bool] = []
    stop = threading.Event()

    def watchdog() -> None:
        if stop.wait(60):
            return
        try:
            fd = os.open(tree[0] / "pipe.txt", os.O_WRONLY | os.O_NONBLOCK)
        except OSError:  # ENXIO: nobody is reading it
            return
        opened.append(True)
        os.close(fd)

    thread = threading.Thread(target=watchdog, daemon=True)
    thread.start()
    yield opened
    stop.set()
    thread.join()


@pytest.mark.unit
def test_walk_refuses_escaping_links_fifos_sockets_and_devices(
        tree: tuple[Path, Path], unblock_fifo: list[bool]) -> None:
    root, _ = tree
    refused: dict[str, IngestError] = {}
    found = list(walk([root], refuse=lambda p, e: refused.setdefault(
        str(p.relative_to(root)), e)))
    assert found == [(root / "kept.txt").resolve()]
    expected = {k: v for k, v in _REFUSED.items() if os.geteuid() == 0 or k != "null.txt"}
    assert set(refused) == set(expected)
    for name, words in expected.items():
        assert words in refused[name].message, (name, refused[name].message)
        assert "\n" not in str(refused[name])
    assert unblock_fifo == []


@pytest.mark.integration
def test_ingest_reports_refusals_and_never_indexes_outside_targets(
        tree: tuple[Path, Path], unblock_fifo: list[bool], settings: Settings) -> None:
    root, secret = tree
    app: Appliance = open_appliance(settings)
    try:
        for _ in range(2):  # the second run with --sync must not bring anything back
            report = app.ingest([root], sync=True)
            failed = {o.path: o for o in report.outcomes if o.status == "failed"}
            for name in _REFUSED:
                if name == "null.txt" and os.geteuid() != 0:
                    continue
                outcome = failed[str(root / name)]
                assert outcome.message and "\n" not in outcome.message
            paths = [d.path for d in app.catalog.documents()]
            assert paths == [str((root / "kept.txt").resolve())]
            assert str(secret) not in paths
        assert unblock_fifo == []
    finally:
        app.close()


def _encrypted_pdf(path: Path) -> None:
    from pypdf import PdfWriter

    writer = PdfWriter()
    writer.add_blank_page(width=595, height=842)
    writer.encrypt("greffier")
    with path.open("wb") as handle:
        writer.write(handle)


_PARENT_CHECK = textwrap.dedent("""
    import sys
    from pathlib import Path
    from ingest import Limits, precheck
    precheck(Path(sys.argv[1]), "pdf", Limits())
    print("pypdf" in sys.modules)
""")


@pytest.mark.integration
def test_pdf_structure_is_checked_in_the_worker_not_the_parent(tmp_path: Path) -> None:
    pdf = tmp_path / "locked.pdf"
    _encrypted_pdf(pdf)
    parent = subprocess.run([sys.executable, "-c", _PARENT_CHECK, str(pdf)], cwd=ROOT,
                            capture_output=True, text=True, timeout=120, check=True)
    assert parent.stdout.strip() == "False"  # the parent only looked at bytes
    worker = ParseWorker(WorkerLimits())
    try:
        with pytest.raises(EncryptedDocumentError, match="password"):
            worker.parse(pdf, "pdf")
    finally:
        worker.close()


_HOLD_A_WORKER = textwrap.dedent("""
    import time
    from ingest import ParseWorker, WorkerLimits
    if __name__ == "__main__":
        worker = ParseWorker(WorkerLimits())
        worker.start()
        print(worker.pid, worker.scratch, flush=True)
        time.sleep(600)
""")


def _wait_gone(pid: int) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
        except FileNotFoundError:
            return
        if state == "Z":
            return
        time.sleep(0.1)
    raise AssertionError(f"process {pid} did not die")


@pytest.mark.integration
def test_scratch_of_a_killed_worker_is_removed_at_next_start(tmp_path: Path) -> None:
    holder = subprocess.Popen([sys.executable, "-c", _HOLD_A_WORKER], cwd=ROOT,
                              stdout=subprocess.PIPE, text=True)
    assert holder.stdout is not None
    pid_text, scratch_text = holder.stdout.readline().split()
    worker_pid, scratch = int(pid_text), Path(scratch_text)
    assert scratch.name.startswith(f"{SCRATCH_PREFIX}{worker_pid}-")
    (scratch / "leftover-plaintext.txt").write_text("a converted document")
    os.kill(worker_pid, signal.SIGKILL)
    holder.send_signal(signal.SIGKILL)  # and its parent, so nobody cleans up
    holder.wait()
    _wait_gone(worker_pid)
    assert scratch.is_dir()  # left behind
    alive = scratch.parent / f"{SCRATCH_PREFIX}{os.getpid()}-keep"
    alive.mkdir()
    fresh = ParseWorker(WorkerLimits())
    try:
        fresh.start()
        assert not scratch.exists()
        assert alive.is_dir()  # its owner (this process) is alive
        assert fresh.scratch is not None and fresh.scratch.is_dir()
    finally:
        fresh.close()
        alive.rmdir()
