"""The CLI under hostile input: documents and file names that try to drive the terminal,
and every error a user can cause ending in one line on stderr (never a traceback)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from clirun import _env, _init, _run

pytestmark = pytest.mark.e2e

HOSTILE_TEXT = ("Zorglub policy [/bogus] [bold]loud[/bold] \x1b[2J\x1b]52;c;ZXZpbA==\x07 "
                "and \x1b[31mALERT\x1b[0m \u202etxt.exe end.")
HOSTILE_NAME = "evil\n1 indexed [red]x.txt"  # a name cannot hold "/"
FAILING_NAME = "bad\r\nfailed ok.txt [x].pdf"


def _wide(data: Path) -> dict[str, str]:
    env = _env(data)
    env["COLUMNS"] = "1000"  # tables on one line each, so text can be compared
    return env


def _one_error_line(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 2, (result.returncode, result.stderr)
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    return lines[0]


def test_hostile_text_and_file_names_print_as_visible_text(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / HOSTILE_NAME).write_text(HOSTILE_TEXT, encoding="utf-8")
    (docs / FAILING_NAME).write_bytes(b"this is not a pdf at all")
    (docs / "fine.txt").write_text("The canteen opens at noon.", encoding="utf-8")
    data = tmp_path / "data"
    _init(data)
    ingest = _run(["ingest", str(docs)], data, check=False, env=_wide(data))
    assert ingest.returncode == 3, ingest.stderr  # one file failed
    assert "\x1b" not in ingest.stdout + ingest.stderr and "\r" not in ingest.stdout
    lines = ingest.stdout.splitlines()
    # The summary, then exactly one line for the one failed file: its name forged nothing.
    assert len(lines) == 2, lines
    assert lines[0].startswith("2 indexed, 0 updated") and "1 failed" in lines[0]
    assert lines[1].startswith("failed ") and "bad\\r\\nfailed ok.txt [x].pdf" in lines[1]
    progress = [line for line in ingest.stderr.splitlines() if line.startswith("✗")]
    assert len(progress) == 1 and "bad\\r\\nfailed ok.txt [x].pdf" in progress[0]

    found = _run(["search", "Zorglub policy"], data, env=_wide(data))  # exit 0: no crash
    out = found.stdout
    assert "\x1b" not in out and "\x07" not in out and "\u202e" not in out
    row = next(line for line in out.splitlines() if "Zorglub policy [" in line)
    assert "evil\\n1 indexed [red]x.txt" in row  # the file name, on its own row
    assert "[/bogus] [bold]loud[/bold] \\x1b[2J\\x1b]52;c;ZXZpbA==\\x07" in row
    assert "\\x1b[31mALERT\\x1b[0m \\u202etxt.exe" in row
    assert "Zorglub" in _run(["search", "[/bogus] \x1b[2J", "--k", "1"], data).stdout
    as_json = _run(["search", "Zorglub policy", "--json", "--k", "1"], data).stdout
    assert "\u202e" not in as_json and "\x1b" not in as_json  # escaped inside the strings
    assert "\x1b[31mALERT\x1b[0m \u202etxt.exe" in json.loads(as_json)["passages"][0]["text"]


def test_a_missing_passphrase_file_is_one_line(tmp_path: Path) -> None:
    data = tmp_path / "data"
    _init(data)
    env = _env(data)
    env["GREFFIER_PASSPHRASE_FILE"] = str(tmp_path / "no-such-file")
    line = _one_error_line(_run(["status"], data, check=False, env=env))
    assert str(tmp_path / "no-such-file") in line


def test_a_corrupt_keyring_is_one_line(tmp_path: Path) -> None:
    data = tmp_path / "data"
    _init(data)
    (data / "keys" / "keyring.json").write_text("{ this is not json")
    line = _one_error_line(_run(["status"], data, check=False))
    assert "keyring" in line and "what to do" in line


def test_a_tampered_original_fails_export_in_one_line(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    # Two segments: the first decrypts fine, the altered last one fails.
    (docs / "memo.txt").write_text("The board meets on Tuesdays in room 4.\n" * 2500)
    data = tmp_path / "data"
    _init(data)
    _run(["ingest", str(docs)], data)
    (blob,) = (data / "blobs").rglob("*.blob")
    raw = bytearray(blob.read_bytes())
    assert len(raw) > 65536 + 100
    raw[-3] ^= 1
    blob.write_bytes(bytes(raw))
    output = tmp_path / "memo-out.txt"
    line = _one_error_line(_run(["export", str(docs / "memo.txt"), str(output)], data,
                                check=False))
    assert "altered" in line and "greffier audit verify" in line
    assert not output.exists()
    assert list(tmp_path.glob("memo-out*")) == []  # no decrypted beginning left behind


@pytest.mark.parametrize("content", ["{ not json", "[]", '{"kind": "search"}',
                                     '{"kind": "search", "signature": "!!", "audit": 3}'])
def test_a_malformed_receipt_is_one_line(tmp_path: Path, content: str) -> None:
    data = tmp_path / "data"
    _init(data)
    receipt = tmp_path / "receipt.json"
    receipt.write_text(content)
    result = _run(["receipt", "verify", str(receipt)], data, check=False)
    assert result.returncode in (1, 2) and "Traceback" not in result.stderr, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr


@pytest.mark.parametrize("head", ["not json", '{"tree_size": "x"}', "{}"])
def test_a_malformed_head_line_is_one_line(tmp_path: Path, head: str) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.txt").write_text("Anything at all.")
    data = tmp_path / "data"
    _init(data)
    _run(["ingest", str(docs)], data)
    heads = data / "audit" / "heads.jsonl"
    heads.write_text(heads.read_text() + head + "\n")
    result = _run(["audit", "verify"], data, check=False)
    assert result.returncode in (1, 2) and "Traceback" not in result.stderr, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
