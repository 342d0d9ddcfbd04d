"""Unseal throttling: after a few wrong secrets, each further attempt waits longer.

State is one small file beside the keyring (``keys/unseal-failures.json``): the count of
consecutive failures and the time of the last one. While the wait runs, every attempt is
refused *before* the secret is tried, right or wrong, so guessing gains nothing by speed.
Someone who can edit the data directory can reset the count; the throttle is against
guessing through the CLI or the API, the Argon2id cost against guessing offline.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

from ._errors import UnsealWaitError
from ._witness import write_atomically


class UnsealThrottle:
    def __init__(self, path: Path, *, free_attempts: int = 3, base_s: float = 2.0,
                 cap_s: float = 900.0) -> None:
        self.path = path
        self.free_attempts = free_attempts
        self.base_s = base_s
        self.cap_s = cap_s

    def _state(self) -> tuple[int, float]:
        try:
            data = json.loads(self.path.read_text())
            return int(data["failures"]), float(data["last"])
        except (OSError, ValueError, KeyError, TypeError):
            return 0, 0.0

    def wait_s(self) -> float:
        """Seconds before the next attempt is allowed (0: now)."""
        failures, last = self._state()
        if failures < self.free_attempts:
            return 0.0
        delay = min(self.cap_s, self.base_s * 2 ** (failures - self.free_attempts))
        return float(max(0.0, last + delay - time.time()))

    def check(self) -> None:
        wait = self.wait_s()
        if wait > 0:
            failures, _ = self._state()
            raise UnsealWaitError(
                f"Too many failed unseal attempts ({failures}): the next one is allowed in "
                f"{math.ceil(wait)} s.", retry_after_s=wait, hint="Wait, then try again with "
                "the operator passphrase; every attempt is in the audit log.")

    def failed(self) -> int:
        failures, _ = self._state()
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        write_atomically(self.path, json.dumps({"failures": failures + 1,
                                                "last": time.time()}).encode())
        return failures + 1

    def succeeded(self) -> None:
        self.path.unlink(missing_ok=True)
