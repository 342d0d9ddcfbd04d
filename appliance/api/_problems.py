"""Errors as RFC 9457 problem details (``application/problem+json``), never a stack trace."""

from __future__ import annotations

import logging
import math
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from security import (
    DirectoryError,
    GreffierError,
    IngestError,
    RequestError,
    SealedError,
    SsoError,
    ThrottledError,
    UnsealWaitError,
    UnsupportedFormatError,
    WrongSecretError,
)

PROBLEM = "application/problem+json"
_log = logging.getLogger("greffier.api")


def problem(status: int, title: str, detail: str = "", *, code: str = "error",
            hint: str | None = None, headers: dict[str, str] | None = None,
            **extra: Any) -> JSONResponse:
    body: dict[str, Any] = {"type": f"https://greffier.example/problems/{code}",
                            "title": title, "status": status}
    if detail:
        body["detail"] = detail
    if hint:
        body["hint"] = hint
    body.update(extra)
    return JSONResponse(body, status_code=status, media_type=PROBLEM, headers=headers)


def status_of(exc: GreffierError) -> tuple[int, str]:
    if isinstance(exc, WrongSecretError):
        return 401, "wrong-secret"
    if isinstance(exc, UnsealWaitError):
        return 429, "throttled"
    if isinstance(exc, SealedError):
        return 503, "sealed"
    if isinstance(exc, DirectoryError):  # the admin needs its message to fix it
        return 503, "directory-unavailable"
    if isinstance(exc, SsoError):  # the admin needs its message to fix it
        return 503, "sso-unavailable"
    if isinstance(exc, RequestError):
        return exc.status, exc.code
    if isinstance(exc, UnsupportedFormatError):
        return 415, "unsupported-media-type"
    if isinstance(exc, IngestError):
        return 422, "unprocessable-document"
    return 500, "internal"


def install(app: FastAPI) -> None:
    @app.exception_handler(GreffierError)
    async def greffier_error(request: Request, exc: GreffierError) -> JSONResponse:
        status, code = status_of(exc)
        headers = {}
        if isinstance(exc, ThrottledError | UnsealWaitError):
            headers["Retry-After"] = str(max(1, math.ceil(exc.retry_after_s)))
        if status == 401:
            headers["WWW-Authenticate"] = 'Bearer realm="greffier"'
        if status == 503 and "Retry-After" not in headers:
            headers["Retry-After"] = "30"
        if status == 403:
            await _record_denial(request, exc, exc.message)
        elif hidden := getattr(exc, "denied_reason", None):  # a 404 that hides a refusal
            await _record_denial(request, exc, str(hidden))
        if status == 503:
            title = {"directory-unavailable": _DIRECTORY_TITLE,
                     "sso-unavailable": _SSO_TITLE}.get(code, _TITLES[503])
            return problem(status, title, exc.message, code=code, hint=exc.hint,
                           headers=headers)
        if status >= 500:  # the details (paths, internals) stay in the server's log
            _log.error("%s %s failed: %s — %s", request.method, request.url.path,
                       exc.message, exc.hint)
            return problem(status, "The appliance could not complete the request",
                           "The error was logged on the appliance.", code=code,
                           headers=headers)
        return problem(status, _TITLES.get(status, "Request refused"), exc.message,
                       code=code, hint=exc.hint, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [{"loc": [str(p) for p in e.get("loc", ())], "msg": str(e.get("msg", ""))}
                  for e in exc.errors()]
        return problem(422, "The request is invalid", "See errors.", code="invalid-request",
                       errors=errors)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return problem(exc.status_code, _TITLES.get(exc.status_code, "Request refused"),
                       str(exc.detail) if exc.detail else "", code=f"http-{exc.status_code}",
                       headers=dict(exc.headers or {}))

    @app.exception_handler(Exception)
    async def crash(request: Request, exc: Exception) -> JSONResponse:
        _log.exception("%s %s crashed", request.method, request.url.path)
        return problem(500, "Internal error", "The error was logged on the appliance.",
                       code="internal")


async def _record_denial(request: Request, exc: GreffierError, reason: str) -> None:
    import asyncio

    from ..service._denials import record_denial

    who = getattr(request.state, "principal", None)
    name = who.audit_name if who is not None else "(not yet identified)"
    client = str(request.scope.get("state", {}).get("client_ip") or "unknown")
    try:
        await asyncio.to_thread(record_denial, request.app.state.runtime, name,
                                f"{request.method} {request.url.path}", client, reason)
    except GreffierError:
        _log.error("could not record a denial in the audit log")


_DIRECTORY_TITLE = "The directory (LDAP) is unavailable"
_SSO_TITLE = "Single sign-on (the OpenID provider) is unavailable"
_TITLES = {
    400: "Bad request", 401: "Authentication required", 403: "Forbidden", 404: "Not found",
    405: "Method not allowed", 409: "Conflict", 413: "Content too large",
    415: "Unsupported media type", 422: "The request is invalid", 429: "Too many requests",
    503: "The appliance is not ready",
}
