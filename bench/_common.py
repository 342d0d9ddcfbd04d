"""Shared helpers for the benchmarks: machine description, table printing, JSON results."""

from __future__ import annotations

import contextlib
import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
for _key, _value in {"DO_NOT_TRACK": "1", "SCARF_NO_ANALYTICS": "true", "HF_HUB_OFFLINE": "1",
                     "HF_HUB_DISABLE_PROGRESS_BARS": "1", "TRANSFORMERS_VERBOSITY": "error",
                     "UNSTRUCTURED_DISABLE_NOTICE": "1"}.items():
    os.environ.setdefault(_key, _value)


def machine() -> dict[str, Any]:
    mem_kb = 0
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                mem_kb = int(line.split()[1])
    except OSError:
        pass
    cpu = ""
    with contextlib.suppress(OSError, StopIteration):
        cpu = next(line.split(":", 1)[1].strip() for line in
                   Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("model name"))
    return {"cpus": os.cpu_count(), "cpu": cpu, "memory_gb": round(mem_kb / 1024 / 1024, 1),
            "python": platform.python_version(), "date": time.strftime("%Y-%m-%d")}


def print_table(title: str, rows: list[dict[str, Any]]) -> None:
    if not rows:
        return
    headers = list(rows[0])
    widths = [max(len(h), *(len(_fmt(r[h])) for r in rows)) for h in headers]
    print(f"\n{title}")
    print("  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)))
    print("  ".join("-" * w for w in widths))
    for row in rows:
        print("  ".join(_fmt(row[h]).ljust(w) for h, w in zip(headers, widths, strict=True)))


def _fmt(value: Any) -> str:
    return f"{value:.2f}" if isinstance(value, float) else str(value)


def write_json(name: str, payload: dict[str, Any]) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps({"machine": machine(), **payload}, indent=2))
    print(f"\nwrote {path}")
    return path


class MemoryDeks:
    """Wrapped data keys kept in memory (benchmarks only; the appliance uses its catalog)."""

    def __init__(self) -> None:
        self.rows: dict[str, bytes] = {}

    def wrapped_dek(self, content_hash: str, kek_id: int) -> bytes | None:
        return self.rows.get(content_hash)

    def put_wrapped_dek(self, content_hash: str, kek_id: int, blob: bytes) -> None:
        self.rows[content_hash] = blob

    def destroy(self, content_hash: str) -> bool:
        return self.rows.pop(content_hash, None) is not None


def bench_cipher() -> Any:
    """A real ContentCipher under a throwaway passphrase KEK."""
    import os as _os

    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from security import Argon2Params, ContentCipher, PassphraseKEK, UnsealedKeys

    keys = UnsealedKeys(PassphraseKEK("bench", Argon2Params.fresh()), _os.urandom(32),
                        _os.urandom(32), Ed25519PrivateKey.generate())
    return ContentCipher(keys, MemoryDeks())
