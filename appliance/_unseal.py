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

from security import ConfigError, KekSource, SealedError, drop_secret, held_secret, hold_secret

from ._settings import Settings


def _given(name: str) -> str | None:
    if os.environ.get(f"{name}_FILE"):
        return _read_secret_file(Path(os.environ[f"{name}_FILE"]), f"{name}_FILE")
    return os.environ.get(name) or None


def _read_secret_file(path: Path, variable: str) -> str:
    """A secret file must exist and be readable by its owner only (mode 0600 or 0400)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError as exc:
        raise ConfigError(f"Cannot read {variable} ({path}): {exc.strerror}.",
                          hint=f"Point {variable} at an existing file, mode 0600.") from exc
    with os.fdopen(fd) as handle:
        mode = os.fstat(handle.fileno()).st_mode
        if mode & 0o077:
            raise ConfigError(
                f"{variable} ({path}) can be read by others (mode {mode & 0o777:o}).",
                hint=f"Run `chmod 600 {path}`.")
        return handle.read().rstrip("\n")


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


def kek_source_if_given(settings: Settings) -> KekSource | None:
    """A KEK source when one is at hand without asking (a secret file or variable, or the
    unsealed session); None otherwise."""
    pkcs11 = settings.security.kek == "pkcs11"
    if _given("GREFFIER_PKCS11_PIN" if pkcs11 else "GREFFIER_PASSPHRASE") is None and \
            held_secret(settings.data_dir) is None:
        return None
    return kek_source(settings)


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
