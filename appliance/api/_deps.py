"""Request dependencies: the runtime, and who is calling (API token, browser session with
its CSRF token, or the local operator on the Unix socket)."""

from __future__ import annotations

import re
from typing import Annotated

from fastapi import Depends, Request

from security import AuthError, ThrottledError

from ..service import Principal, Runtime, operator
from ._limits import RateLimiter

SESSION_COOKIE = "__Host-greffier-session"
_OPERATOR = re.compile(r"[a-z_][a-z0-9_.-]{0,31}")  # a login name, nothing else
CSRF_HEADER = "x-csrf-token"
_SAFE_METHODS = ("GET", "HEAD", "OPTIONS")


def runtime(request: Request) -> Runtime:
    rt: Runtime = request.app.state.runtime
    return rt


def client_ip(request: Request) -> str:
    return str(request.scope.get("state", {}).get("client_ip") or "unknown")


def caller(request: Request) -> Principal:
    """Authenticate the request; rate-limit per user (429) once known."""
    rt = runtime(request)
    rt.appliance()  # sealed: 503 before anything else (no account can be checked)
    state = request.app.state
    if state.local_socket:
        name = request.headers.get("x-greffier-operator", "root")
        who = operator(name if _OPERATOR.fullmatch(name) else "root", via="socket")
    else:
        who = _authenticate(rt, request)
    limiter: RateLimiter = state.per_user
    wait = limiter.take(who.user_id)
    if wait > 0:
        raise ThrottledError("Too many requests for this account.", retry_after_s=wait,
                             hint="Slow down, or ask an admin to raise api.rate_per_user.")
    request.state.principal = who
    return who


def _authenticate(rt: Runtime, request: Request) -> Principal:
    auth = request.headers.get("authorization", "")
    scheme, _, credential = auth.partition(" ")
    if scheme.lower() == "bearer" and credential.strip():
        who: Principal = rt.identity.authenticate_token(credential.strip())
        return who
    cookie = request.cookies.get(SESSION_COOKIE)
    if not cookie:
        raise AuthError("Authentication required.",
                        hint="Send an API token (Authorization: Bearer gfr_…) or sign in "
                        "with POST /v1/auth/login.")
    who = rt.identity.session(cookie)
    if request.method not in _SAFE_METHODS:
        rt.identity.check_csrf(cookie, request.headers.get(CSRF_HEADER, ""))
    return who


Caller = Annotated[Principal, Depends(caller)]
Rt = Annotated[Runtime, Depends(runtime)]
