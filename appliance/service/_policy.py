"""The identity policy, from settings."""

from __future__ import annotations

from .._settings import Settings
from ._identity import IdentityPolicy


def identity_policy(settings: Settings) -> IdentityPolicy:
    return IdentityPolicy(**settings.identity.model_dump())
