"""The ``greffier`` command as a user runs it: subprocesses, kill -9, no network namespace."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import time
from pathlib import Path

import pytest
from clirun import GREFFIER, _env, _init, _run

pytestmark = pytest.mark.e2e
def _status(data: Path) -> dict:  # type: ignore[type-arg]
    return json.loads(_run(["status", "--json"], data).stdout)


def _indexed_contents(data: Path) -> int:
    db = data / "greffier.db"
    if not db.exists():
        return 0
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1) as conn:
            return int(conn.execute(
                "SELECT COUNT(*) FROM contents WHERE status = 'indexed'").fetchone()[0])
    except sqlite3.Error:
        return 0


def test_kill_9_mid_ingest_then_resume_matches_a_clean_run(tmp_path: Path) -> None:
    from corpus import build_bulk

    folder = tmp_path / "bulk"
    folder.mkdir()
    build_bulk(folder, 60)
    clean = tmp_path / "clean"
    _init(clean)
    _run(["ingest", str(folder)], clean)
    expected = _status(clean)

    crashed = tmp_path / "crashed"
    _init(crashed)
    proc = subprocess.Popen([*GREFFIER, "ingest", str(folder)], env=_env(crashed),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    while _indexed_contents(crashed) < 10 and time.monotonic() < deadline:
        assert proc.poll() is None, "the ingest finished before it could be killed"
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    partial = _indexed_contents(crashed)
    assert 10 <= partial < expected["documents"]

    _run(["ingest", str(folder)], crashed)
    resumed = _status(crashed)
    assert resumed["documents"] == expected["documents"] == 60
    assert resumed["chunks"] == expected["chunks"]
    assert resumed["points"] == expected["points"] == expected["chunks"]  # no duplicate
    # status reports the parser's confinement as measured inside the worker
    sandbox = resumed["parser_sandbox"]
    assert sandbox["offline_by_kernel"] is True and sandbox["seccomp"] is True
    assert sandbox["keyring_refused"] is True
    if os.geteuid() == 0:
        assert sandbox["network_namespace"] is True and sandbox["uid"] != 0


def _unshare_works() -> bool:
    try:
        return subprocess.run(["unshare", "-n", "true"], capture_output=True,
                              timeout=10).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


@pytest.mark.skipif(not _unshare_works(), reason="needs root for unshare -n")
def test_ingest_and_search_in_a_namespace_without_network(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "vpn.md").write_text(
        "# Accès distant\n\nLe VPN de l'entreprise est obligatoire pour accéder aux "
        "applications internes depuis le domicile.", encoding="utf-8")
    (docs / "fire.txt").write_text(
        "In case of fire, leave the building by the nearest staircase and gather in the "
        "north car park.", encoding="utf-8")
    data = tmp_path / "data"
    _init(data)
    ingest = _run(["ingest", str(docs), "--json"], data, prefix=("unshare", "-n"))
    assert json.loads(ingest.stdout)["summary"]["indexed"] == 2
    found = _run(["search", "où se rassembler en cas d'incendie ? fire gather", "--json", "--k",
                  "1"], data, prefix=("unshare", "-n"))
    result = json.loads(found.stdout)
    assert Path(result["passages"][0]["path"]).name == "fire.txt"
    vpn = _run(["search", "Le VPN est-il obligatoire ?", "--json", "--k", "1",
                "--filter", "lang=fr"], data, prefix=("unshare", "-n"))
    assert Path(json.loads(vpn.stdout)["passages"][0]["path"]).name == "vpn.md"


def test_cli_reports_bad_files_and_exits_3(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "ok.txt").write_text("The printer on floor three needs a badge.", encoding="utf-8")
    (docs / "broken.pdf").write_bytes(b"this is not a pdf at all")
    _init(tmp_path / "data")
    result = _run(["ingest", str(docs)], tmp_path / "data", check=False)
    assert result.returncode == 3
    assert "broken.pdf" in result.stdout and "not a PDF" in result.stdout
    assert "1 indexed" in result.stdout


def test_cli_refuses_unsafe_settings_with_a_clear_message(tmp_path: Path) -> None:
    env = _env(tmp_path)
    env["GREFFIER_STORE__BACKEND"] = "server"
    env["GREFFIER_STORE__URL"] = "http://qdrant.example:6333"
    result = subprocess.run([*GREFFIER, "status"], env=env, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 2
    assert "https" in result.stderr and "what to do" in result.stderr


def test_security_commands_as_an_operator_runs_them(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "salaries.txt").write_text("The salary grid of 2026 is kept by the HR director.")
    (docs / "canteen.txt").write_text("The canteen serves lunch from noon to two.")
    data = tmp_path / "data"
    init = _run(["init"], data)
    assert "signing key" in init.stdout
    assert _run(["init"], data, check=False).returncode == 2  # never overwrites the keys
    _run(["ingest", str(docs)], data)
    receipt = tmp_path / "receipt.json"
    _run(["search", "salary grid", "--receipt", str(receipt)], data)
    assert "valid" in _run(["receipt", "verify", str(receipt)], data).stdout
    erased = json.loads(_run(["erase", str(docs / "salaries.txt"), "--by", "dpo"], data).stdout)
    certificate = tmp_path / "certificate.json"
    certificate.write_text(json.dumps(erased))
    assert "valid" in _run(["verify-certificate", str(certificate)], data).stdout
    found = json.loads(_run(["search", "salary grid", "--json"], data).stdout)
    assert all("salary" not in p["text"] for p in found["passages"])
    bundle = tmp_path / "audit.json"
    _run(["audit", "export", str(bundle)], data)
    assert "valid" in _run(["audit", "verify"], data).stdout
    printed = next(line for line in init.stdout.splitlines() if "fingerprint:" in line)
    fingerprint = printed.split("fingerprint:")[1].strip()
    assert "valid" in _run(["audit", "verify", "--bundle", str(bundle), "--fingerprint",
                            fingerprint], data).stdout
    events = [json.loads(line)["event"] for line in json.loads(bundle.read_text())["log"]]
    assert {"unseal", "ingest.indexed", "search", "erase.begin", "erase.end", "seal"} <= set(
        events)
    env = _env(data)
    env["GREFFIER_NEW_PASSPHRASE"] = "the next operator passphrase"
    rotated = subprocess.run([*GREFFIER, "keys", "rotate"], env=env, capture_output=True,
                             text=True, timeout=300, check=True)
    assert "1 data keys re-wrapped" in rotated.stdout
    sealed = _run(["search", "canteen"], data, check=False)  # the old passphrase is refused
    assert sealed.returncode == 2 and "Wrong passphrase" in sealed.stderr
    env["GREFFIER_PASSPHRASE"] = env.pop("GREFFIER_NEW_PASSPHRASE")
    env.pop("GREFFIER_PASSPHRASE_FILE")
    again = subprocess.run([*GREFFIER, "search", "canteen lunch", "--json"], env=env,
                           capture_output=True, text=True, timeout=300, check=True)
    assert "canteen" in json.loads(again.stdout)["passages"][0]["text"]
    # The certificate handed out before the rotation still verifies: its retired key is
    # confirmed by the audit log; a forged one with an unknown id is refused.
    kept = subprocess.run([*GREFFIER, "verify-certificate", str(certificate)], env=env,
                          capture_output=True, text=True, timeout=300)
    assert kept.returncode == 0 and "retired key" in kept.stdout, kept.stderr


def test_unseal_holds_the_kek_in_the_kernel_keyring_until_seal(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.txt").write_text("The fire assembly point is the north car park.")
    data = tmp_path / "data"
    _init(data)
    _run(["ingest", str(docs)], data)
    no_secret = {k: v for k, v in _env(data).items() if not k.startswith("GREFFIER_PASSPHRASE")}

    def bare(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*GREFFIER, *args], env=no_secret, capture_output=True, text=True,
                              timeout=300, check=False)

    sealed = bare("search", "fire assembly point")
    assert sealed.returncode == 2 and "sealed" in sealed.stderr
    assert "greffier unseal" in sealed.stderr
    assert "Unsealed" in _run(["unseal", "--timeout", "600"], data).stdout
    found = bare("search", "fire assembly point", "--json")
    assert found.returncode == 0 and "north car park" in found.stdout  # no secret given
    assert "Sealed." in bare("seal").stdout
    again = bare("search", "fire assembly point")
    assert again.returncode == 2 and "sealed" in again.stderr
    assert list(data.rglob("*kek*")) == []  # nothing of the kind went to disk
    events = [json.loads(line)["event"]
              for line in (data / "audit" / "log.jsonl").read_text().splitlines()]
    assert "unseal.session" in events and "seal.session" in events
