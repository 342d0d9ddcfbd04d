"""Running the ``greffier`` command as a user does: a subprocess with its own environment."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

GREFFIER = [sys.executable, "-m", "appliance"]


def _env(data: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GREFFIER_")}
    env["GREFFIER_DATA_DIR"] = str(data)
    secret = data.parent / f"{data.name}.passphrase"
    secret.write_text("operator passphrase for the tests\n")
    secret.chmod(0o600)  # a secret others can read is refused
    env["GREFFIER_PASSPHRASE_FILE"] = str(secret)
    return env


def _init(data: Path) -> None:
    subprocess.run([*GREFFIER, "init"], env=_env(data), capture_output=True, text=True,
                   timeout=300, check=True)


def _run(args: list[str], data: Path, *, prefix: tuple[str, ...] = (),
         check: bool = True, env: dict[str, str] | None = None
         ) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*prefix, *GREFFIER, *args], env=env or _env(data),
                          capture_output=True, text=True, timeout=900, check=check)
