"""Time-based one-time passwords (RFC 6238 TOTP: HMAC-SHA-1, 6 digits, 30-second steps),
the second factor that authenticator apps speak.

A code is accepted in the step it was made for or one step either side (clock drift
between the phone and the server), and each step is used at most once: the caller stores
the step :func:`verify_totp` returns and passes it back next time, so a code seen over a
shoulder or replayed from a log cannot be used again, nor any older one.
"""

from __future__ import annotations

import hmac

import pyotp

TOTP_ISSUER = "Greffier"
TOTP_STEP_S = 30
TOTP_DIGITS = 6
_WINDOW = 1  # steps either side of now


def new_totp_secret() -> str:
    """A fresh secret: 32 base32 characters (160 bits, RFC 4226's recommended length)."""
    return pyotp.random_base32(32)


def totp_uri(secret: str, account: str) -> str:
    """The ``otpauth://`` URI an authenticator app reads (as a QR code or pasted)."""
    return pyotp.TOTP(secret, digits=TOTP_DIGITS, interval=TOTP_STEP_S).provisioning_uri(
        name=account, issuer_name=TOTP_ISSUER)


def totp_step(now: float) -> int:
    """The time step ``now`` falls in."""
    return int(now // TOTP_STEP_S)


def verify_totp(secret: str, code: str, *, now: float, last_step: int | None) -> int | None:
    """The step ``code`` was made for, if it is right for a step within one of ``now`` and
    later than ``last_step`` (the last one used); otherwise None."""
    code = code.replace(" ", "")
    if len(code) != TOTP_DIGITS or not code.isascii() or not code.isdigit():
        return None
    totp = pyotp.TOTP(secret, digits=TOTP_DIGITS, interval=TOTP_STEP_S)
    current = totp_step(now)
    found = None
    for step in range(current - _WINDOW, current + _WINDOW + 1):
        # Every candidate is computed and compared in constant time, whichever matches.
        if hmac.compare_digest(totp.generate_otp(step), code) and found is None:
            found = step
    if found is None or (last_step is not None and found <= last_step):
        return None
    return found
