"""The identity policy, from settings."""

from __future__ import annotations

from .._settings import Settings
from ._identity import IdentityPolicy


def identity_policy(settings: Settings) -> IdentityPolicy:
    ident = settings.identity
    return IdentityPolicy(
        lockout_after=ident.lockout_after, lockout_s=ident.lockout_minutes * 60,
        session_idle_s=ident.session_idle_minutes * 60,
        session_absolute_s=ident.session_hours * 3600,
        token_max_days=ident.token_max_days, password_min_length=ident.password_min_length)
