"""Refusals are part of the record: a request denied for its role, scope or CSRF token
is audited with who asked, what, and from where."""

from __future__ import annotations

from ._runtime import Runtime


def record_denial(rt: Runtime, who: str, request: str, client: str, reason: str) -> None:
    if rt.sealed:
        return  # no audit key at hand; the refusal itself is all that happens
    with rt.using() as app:
        app.audit.append("denied", who, {"request": request[:200], "client": client,
                                         "reason": reason[:200]})
