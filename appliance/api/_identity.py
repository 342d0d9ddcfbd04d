"""Accounts: sign-in and sessions, second factor, API tokens, users (admin), the caller's
own conversations."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from ..service._access import visible_conversation
from ..service._identity_models import (
    ConversationOut,
    ConversationSummary,
    FeedbackIn,
    LoginIn,
    NewTokenOut,
    NewUserOut,
    RolesIn,
    TokenIn,
    TokenOut,
    UserIn,
    UserOut,
)
from ._deps import CSRF_HEADER, SESSION_COOKIE, Caller, Rt, client_ip
from ._system import _login_limit, principal_out

router = APIRouter(prefix="/v1", tags=["identity"])


class LoginOut(BaseModel):
    csrf_token: str = Field(description=f"Send it back in the {CSRF_HEADER} header.")
    user: dict[str, Any]


class TotpIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    code: str = Field(min_length=6, max_length=8, pattern=r"^[0-9]+$")


class TokenForIn(TokenIn):
    user: str | None = Field(None, max_length=64,
                             description="Admin only: the account the token acts for.")


@router.post("/auth/login", response_model=LoginOut, dependencies=[Depends(_login_limit)],
             summary="Sign in: sets the session cookie, returns the CSRF token")
def login(body: LoginIn, request: Request, response: Response, rt: Rt) -> LoginOut:
    result = rt.identity.login(body.name, body.password, body.totp, client_ip(request))
    idle_s = int(rt.settings.identity.session_hours * 3600)
    response.set_cookie(SESSION_COOKIE, result.session_token, max_age=idle_s, path="/",
                        secure=True, httponly=True, samesite="strict")
    return LoginOut(csrf_token=result.csrf_token, user=principal_out(result.principal))


@router.post("/auth/logout", status_code=204, summary="End this session")
def logout(request: Request, rt: Rt, who: Caller) -> Response:
    cookie = request.cookies.get(SESSION_COOKIE)
    if cookie:
        rt.identity.logout(cookie)
    response = Response(status_code=204)
    response.delete_cookie(SESSION_COOKIE, path="/", secure=True, httponly=True,
                           samesite="strict")
    return response


@router.get("/me", summary="Who am I")
def me(who: Caller) -> dict[str, Any]:
    return principal_out(who)


@router.post("/me/totp", summary="Start enrolling a second factor (returns otpauth:// URI)")
def enroll_totp(rt: Rt, who: Caller) -> dict[str, str]:
    return {"otpauth_uri": rt.identity.enroll_totp(who)}


@router.post("/me/totp/confirm", status_code=204, summary="Confirm the second factor")
def confirm_totp(body: TotpIn, rt: Rt, who: Caller) -> Response:
    rt.identity.confirm_totp(who, body.code)
    return Response(status_code=204)


@router.get("/tokens", response_model=list[TokenOut],
            summary="API tokens (own; all for an admin), never their secrets")
def list_tokens(rt: Rt, who: Caller) -> list[TokenOut]:
    return list(rt.identity.list_tokens(who))


@router.post("/tokens", status_code=201, response_model=NewTokenOut,
             summary="Create an API token (shown once)")
def create_token(body: TokenForIn, rt: Rt, who: Caller) -> NewTokenOut:
    plaintext, token = rt.identity.create_token(who, body.name, set(body.scopes),
                                                body.expires_in_days, user=body.user)
    return NewTokenOut(token=plaintext, info=token)


@router.delete("/tokens/{token_id}", status_code=204, summary="Revoke an API token")
def revoke_token(token_id: str, rt: Rt, who: Caller) -> Response:
    rt.identity.revoke_token(who, token_id)
    return Response(status_code=204)


@router.get("/users", response_model=list[UserOut], summary="Accounts (admin)")
def list_users(rt: Rt, who: Caller) -> list[UserOut]:
    return list(rt.identity.list_users(who))


@router.post("/users", status_code=201, response_model=NewUserOut,
             summary="Create an account (admin); admins and auditors get a TOTP secret")
def add_user(body: UserIn, rt: Rt, who: Caller) -> NewUserOut:
    user, uri = rt.identity.add_user(who, body.name, body.password, set(body.roles))
    return NewUserOut(user=user, totp_uri=uri)


@router.put("/users/{name}/roles", response_model=NewUserOut,
            summary="Change an account's roles (admin)")
def set_roles(name: str, body: RolesIn, rt: Rt, who: Caller) -> NewUserOut:
    user, uri = rt.identity.set_roles(who, name, set(body.roles))
    return NewUserOut(user=user, totp_uri=uri)


@router.post("/users/{name}/disable", response_model=UserOut,
             summary="Disable an account (admin): its sessions end, its tokens are revoked")
def disable_user(name: str, rt: Rt, who: Caller) -> UserOut:
    out: UserOut = rt.identity.disable_user(who, name)
    return out


@router.get("/conversations", response_model=list[ConversationSummary],
            summary="The caller's own conversations")
def conversations(rt: Rt, who: Caller) -> list[ConversationSummary]:
    return list(rt.identity.conversations(who))


@router.get("/conversations/{conversation_id}", response_model=ConversationOut,
            summary="One of the caller's own conversations (nobody else's, admin included)")
def conversation(conversation_id: str, rt: Rt, who: Caller) -> ConversationOut:
    out: ConversationOut = rt.identity.conversation(who, conversation_id)
    return visible_conversation(rt, who, out)


@router.post("/answers/{answer_id}/feedback", status_code=204, summary="Rate an answer")
def feedback(answer_id: str, body: FeedbackIn, rt: Rt, who: Caller) -> Response:
    rt.identity.add_feedback(who, answer_id, body.rating, body.comment or "")
    return Response(status_code=204)

