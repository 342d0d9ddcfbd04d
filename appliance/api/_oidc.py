"""Single sign-on (OpenID Connect) routes and the public list of sign-in methods."""

from __future__ import annotations

import html
from typing import Any

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from pydantic import BaseModel, Field

from ..service._oidc import STATE_TTL_S, begin_login, finish_login, logout_url, methods
from ._deps import SESSION_COOKIE, Caller, Rt, client_ip
from ._system import _login_limit

router = APIRouter(prefix="/v1/auth", tags=["identity"])
BROWSER_COOKIE = "__Host-greffier-oidc"  # binds a pending sign-in's state to this browser
CSRF_COOKIE = "__Host-greffier-csrf"  # the page's script reads it into X-CSRF-Token


class MethodsOut(BaseModel):
    password: bool = Field(description="Sign-in with an account name and password.")
    sso: bool = Field(description="Single sign-on through the OpenID provider.")
    sso_login: str | None = Field(description="Where the browser goes to sign in with it.")


class LogoutOut(BaseModel):
    end_session_url: str | None = Field(
        description="The provider's logout page (RP-initiated logout), if it has one: "
        "send the browser there to end the provider's session too.")


@router.get("/methods", response_model=MethodsOut, summary="Sign-in methods offered (public)")
def auth_methods(rt: Rt) -> MethodsOut:
    return MethodsOut(**methods(rt))


@router.get("/oidc/login", status_code=302, dependencies=[Depends(_login_limit)],
            response_class=RedirectResponse,
            summary="Single sign-on: redirects to the OpenID provider")
def oidc_login(rt: Rt, next: str | None = Query(None, max_length=512,
                                                 description="A path here to land on.")
               ) -> Response:
    url, binding = begin_login(rt, next)
    response = RedirectResponse(url, status_code=302)
    # Lax: the provider's redirect back is a cross-site top-level GET, which Lax allows.
    response.set_cookie(BROWSER_COOKIE, binding, max_age=int(STATE_TTL_S), path="/",
                        secure=True, httponly=True, samesite="lax")
    return response


@router.get("/oidc/callback", response_class=HTMLResponse,
            dependencies=[Depends(_login_limit)],
            summary="Single sign-on: the provider's answer; opens a session")
def oidc_callback(request: Request, rt: Rt, state: str | None = Query(None, max_length=256),
                  code: str | None = Query(None, max_length=2048),
                  error: str | None = Query(None, max_length=256)) -> Response:
    result, target = finish_login(rt, state=state, code=code, error=error,
                                  binding=request.cookies.get(BROWSER_COOKIE),
                                  client=client_ip(request))
    # A page that moves on by itself: a navigation started here is same-site, so the
    # browser sends the SameSite=Strict session cookie with it (a redirect chain that began
    # at the provider would not).
    page = (f'<!doctype html><meta http-equiv="refresh" content="0;url={html.escape(target)}">'
            f'<a href="{html.escape(target)}">Continue</a>')
    response = HTMLResponse(page, status_code=200)
    max_age = int(rt.settings.identity.session_hours * 3600)
    response.set_cookie(SESSION_COOKIE, result.session_token, max_age=max_age, path="/",
                        secure=True, httponly=True, samesite="strict")
    response.set_cookie(CSRF_COOKIE, result.csrf_token, max_age=max_age, path="/",
                        secure=True, httponly=False, samesite="strict")
    response.delete_cookie(BROWSER_COOKIE, path="/", secure=True, httponly=True,
                           samesite="lax")
    return response


@router.post("/oidc/logout", response_model=LogoutOut,
             summary="End this session; returns the provider's logout URL, if any")
def oidc_logout(request: Request, rt: Rt, who: Caller) -> Any:
    cookie = request.cookies.get(SESSION_COOKIE)
    if cookie:
        rt.identity.logout(cookie)
    response = Response(LogoutOut(end_session_url=logout_url(rt)).model_dump_json(),
                        media_type="application/json")
    for name, httponly in ((SESSION_COOKIE, True), (CSRF_COOKIE, False)):
        response.delete_cookie(name, path="/", secure=True, httponly=httponly,
                               samesite="strict")
    return response
