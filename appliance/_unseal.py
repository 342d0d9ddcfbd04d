"""Where the operator's secret comes from: a file, the environment, or a prompt.

Secrets never go in ``greffier.toml``. In order: ``GREFFIER_PASSPHRASE_FILE`` (a file only
root can read, e.g. a systemd credential), ``GREFFIER_PASSPHRASE`` (development), then an
interactive prompt when a terminal is attached. For a PKCS#11 KEK the secret is the token's
user PIN (``GREFFIER_PKCS11_PIN_FILE`` / ``GREFFIER_PKCS11_PIN``).
"""

from __future__ import annotations

import getpass
import os
import sys
from pathlib import Path

from security import KekSource, SealedError

from ._settings import Settings


def _secret(name: str, prompt: str, *, environ: dict[str, str] | None = None) -> str:
    env = os.environ if environ is None else environ
    if env.get(f"{name}_FILE"):
        return Path(env[f"{name}_FILE"]).read_text().rstrip("\n")
    if env.get(name):
        return env[name]
    if sys.stdin.isatty():
        return getpass.getpass(prompt)
    raise SealedError(
        "The appliance is sealed: no passphrase was given.",
        hint=f"Set {name}_FILE to a file holding it (or {name} in development), or run the "
        "command in a terminal to be prompted.")


def kek_source(settings: Settings, *, new: bool = False) -> KekSource:
    """The KEK source for this appliance; ``new`` asks for the next passphrase (rotation)."""
    sec = settings.security
    if sec.kek == "pkcs11":
        pin = _secret("GREFFIER_PKCS11_PIN", "Token PIN: ")
        return KekSource("pkcs11", pin, sec.pkcs11_module, sec.pkcs11_token_label,
                         sec.pkcs11_key_label)
    name = "GREFFIER_NEW_PASSPHRASE" if new else "GREFFIER_PASSPHRASE"
    return KekSource("passphrase", _secret(name, "New passphrase: " if new else "Passphrase: "))
