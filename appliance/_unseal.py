"""Where the operator's secret comes from, and the unsealed session between commands.

Secrets never go in ``greffier.toml``. In order: ``GREFFIER_PASSPHRASE_FILE`` (a file only
root can read, e.g. a systemd credential), ``GREFFIER_PASSPHRASE`` (development), the
session opened by ``greffier unseal`` (the KEK in the kernel keyring), then an interactive
prompt when a terminal is attached. For a PKCS#11 KEK the secret is the token's user PIN
(``GREFFIER_PKCS11_PIN_FILE`` / ``GREFFIER_PKCS11_PIN``).
"""

from __future__ import annotations

import base64
import getpass
import os
import sys
from pathlib import Path

from security import KekSource, SealedError, drop_secret, held_secret, hold_secret

from ._settings import Settings


def _given(name: str) -> str | None:
    if os.environ.get(f"{name}_FILE"):
        return Path(os.environ[f"{name}_FILE"]).read_text().rstrip("\n")
    return os.environ.get(name) or None


def _secret(name: str, prompt: str) -> str:
    given = _given(name)
    if given is not None:
        return given
    if sys.stdin.isatty():
        return getpass.getpass(prompt)
    raise SealedError(
        "The appliance is sealed.",
        hint=f"Run `greffier unseal`, or set {name}_FILE to a file holding the secret (or "
        f"{name} in development).")


def _pkcs11(settings: Settings, pin: str) -> KekSource:
    sec = settings.security
    return KekSource("pkcs11", pin, sec.pkcs11_module, sec.pkcs11_token_label,
                     sec.pkcs11_key_label)


def kek_source(settings: Settings, *, new: bool = False, session: bool = True) -> KekSource:
    """The KEK source: an explicit secret, else the unsealed session, else a prompt.

    ``new`` asks for the next passphrase (rotation); ``session=False`` ignores the session
    (``greffier unseal`` itself needs the real secret).
    """
    pkcs11 = settings.security.kek == "pkcs11"
    name = ("GREFFIER_PKCS11_PIN" if pkcs11 else
            "GREFFIER_NEW_PASSPHRASE" if new else "GREFFIER_PASSPHRASE")
    given = _given(name)
    if given is None and session and not new:
        held = held_secret(settings.data_dir)
        if held is not None:
            if pkcs11:
                return _pkcs11(settings, held.decode())
            return KekSource("derived", base64.b64encode(held).decode())
    secret = given if given is not None else _secret(
        name, "Token PIN: " if pkcs11 else "New passphrase: " if new else "Passphrase: ")
    return _pkcs11(settings, secret) if pkcs11 else KekSource("passphrase", secret)


def unseal_session(settings: Settings, timeout_s: int, user: str) -> None:
    """Check the secret, then hold the KEK (or the PIN) in the kernel keyring."""
    from ._appliance import Appliance

    source = kek_source(settings, session=False)
    with Appliance.open(settings, source, user=user) as app:
        wrapper = app.keys.wrapper
        held = (source.secret.encode() if source.kind == "pkcs11"
                else wrapper.raw_kek)  # type: ignore[attr-defined]
        hold_secret(settings.data_dir, held, timeout_s)
        app.audit.append("unseal.session", user, {"timeout_s": timeout_s})


def seal_session(settings: Settings, user: str) -> bool:
    """Drop the session's KEK. Recorded in the audit log while the keys are still at hand."""
    from ._appliance import Appliance

    if held_secret(settings.data_dir) is None:
        return False
    with Appliance.open(settings, kek_source(settings), user=user) as app:
        app.audit.append("seal.session", user, {})
    return drop_secret(settings.data_dir)
