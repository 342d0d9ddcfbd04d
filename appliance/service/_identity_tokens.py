"""Personal API tokens: for scripts and OpenAI-compatible clients. Scoped, expiring,
revocable, stored as hashes; every use is audited."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from security import (
    AuthError,
    ConflictError,
    ForbiddenError,
    InvalidRequestError,
    NotFoundError,
    new_api_token,
    parse_api_token,
    token_matches,
)

from ..db import ApiTokenRow, User
from ._identity_common import Core, join, split
from ._identity_models import TokenOut, when
from ._principal import SCOPES, Principal, Scope

TOUCH_S = 15.0  # last_used_at is written at most this often
# ``token.use`` is audited at a token's first use, then at most once an hour per token (and
# again after a restart): every action is audited anyway under the token's name
# ("alice (token …)"), so one entry per request would only double the log.
USE_AUDIT_S = 3600.0


class Tokens(Core):
    """Create, list, revoke and authenticate API tokens."""

    def create_token(self, by: Principal, name: str, scopes: set[str] | frozenset[str] | list[str],
                     expires_in_days: int, *, user: str | None = None) -> tuple[str, TokenOut]:
        """A new token for the caller's account (or, for an admin, ``user``'s). Returns the
        plaintext, shown this once, and the token's description."""
        if by.via == "token":
            raise ForbiddenError("A token cannot create tokens.",
                                 hint="Log in with your password to create one.")
        name = name.strip()
        if not 1 <= len(name) <= 64 or not name.isprintable():
            raise InvalidRequestError("A token's name is 1 to 64 printable characters.",
                                      hint="Name it after what uses it, e.g. 'nightly-report'.")
        wanted = frozenset(scopes)
        if not wanted or wanted - set(SCOPES):
            raise InvalidRequestError(f"Unknown or missing scopes: {sorted(wanted - set(SCOPES))}.",
                                      hint=f"Choose among {', '.join(SCOPES)}.")
        if not 1 <= expires_in_days <= self.policy.token_max_days:
            raise InvalidRequestError(
                f"A token lasts 1 to {self.policy.token_max_days} days.",
                hint="Create a new token when this one expires.")
        now = self.clock()
        with self.db.session() as s:
            owner = self._owner(s, by, user)
            useless = sorted(scope for scope in wanted if not Principal(
                owner.id, owner.name, split(owner.roles), scopes=split(scope)).permissions())
            if useless:
                raise InvalidRequestError(
                    f"{owner.name}'s roles give nothing through the scope(s) {useless}.",
                    hint="Leave them out; a token never exceeds its owner's roles.")
            issued = new_api_token()
            row = ApiTokenRow(id=issued.id, user_id=owner.id, name=name,
                              secret_hash=issued.secret_hash, scopes=join(wanted),
                              created_at=now, expires_at=now + expires_in_days * 86400.0)
            s.add(row)
            self.audit("token.create", by.audit_name,
                       {"token_id": row.id, "owner": owner.name, "name": name,
                        "scopes": sorted(wanted), "expires_at": row.expires_at})
            return issued.plaintext, _out(row, owner.name)

    def _owner(self, s: Session, by: Principal, user: str | None) -> User:
        if user is None or (user == by.name and by.via == "session"):
            return self.own_account(s, by)
        if by.via not in ("socket", "local"):
            # An admin minting a reader's token could read as that reader: only the owner
            # (signed in) or the operator on the box makes a token for an account.
            raise ForbiddenError(
                "A token is created by its owner.",
                hint="The account's owner signs in and creates it; on the appliance, the "
                "operator can run `greffier tokens create --user NAME`.")
        by.require("users")
        owner = self.account(s, user)
        if owner.disabled:
            raise ConflictError(f"The account {user!r} is disabled.",
                                hint="A disabled account gets no tokens.")
        return owner

    def list_tokens(self, by: Principal) -> list[TokenOut]:
        """The caller's tokens; an admin's list holds everybody's. Never the secrets."""
        with self.db.session() as s:
            query = (select(ApiTokenRow, User.name).join(User, User.id == ApiTokenRow.user_id)
                     .order_by(ApiTokenRow.created_at, ApiTokenRow.id))
            if not by.can("users"):
                query = query.where(ApiTokenRow.user_id == by.user_id)
            return [_out(row, owner) for row, owner in s.execute(query)]

    def revoke_token(self, by: Principal, token_id: str) -> TokenOut:
        """Revoke one of the caller's tokens (an admin: anybody's). Idempotent."""
        with self.db.session() as s:
            row = s.get(ApiTokenRow, token_id, with_for_update=True)
            if row is None or (row.user_id != by.user_id and not by.can("users")):
                raise NotFoundError(f"No token {token_id!r}.",
                                    hint="List your tokens to see their ids.")
            owner = s.get(User, row.user_id)
            assert owner is not None
            if row.revoked_at is None:
                row.revoked_at = self.clock()
                self.audit("token.revoke", by.audit_name,
                           {"token_id": row.id, "owner": owner.name})
            return _out(row, owner.name)

    def authenticate_token(self, plaintext: str) -> Principal:
        """The principal of a ``gfr_…`` token; AuthError for an unknown, expired or
        revoked one, or one whose owner is disabled. Its use is audited (``USE_AUDIT_S``)."""
        parsed = parse_api_token(plaintext.strip())
        now = self.clock()
        principal: Principal | None = None
        with self.db.session() as s:
            row = None if parsed is None else s.get(ApiTokenRow, parsed[0])
            if row is not None and parsed is not None and token_matches(parsed[1],
                                                                        row.secret_hash):
                owner = s.get(User, row.user_id)
                assert owner is not None
                reason = ("revoked" if row.revoked_at is not None else
                          "expired" if now >= row.expires_at else
                          "owner disabled" if owner.disabled else None)
                if reason is not None:
                    self.audit("token.failure", owner.name, {"token_id": row.id,
                                                             "reason": reason})
                else:
                    if row.last_used_at is None or now - row.last_used_at >= TOUCH_S:
                        row.last_used_at = now
                    principal = self.principal(s, owner, via="token", token_id=row.id,
                                               scopes=split(row.scopes))
                    seen = self.use_audited.get(row.id)
                    if seen is None or now - seen >= USE_AUDIT_S:
                        self.audit("token.use", principal.audit_name, {"token_id": row.id})
                        self.use_audited[row.id] = now
            elif parsed is not None:  # an id that is not ours, or a wrong secret for it
                self.audit("token.failure", "(unknown)", {
                    "token_id": parsed[0], "reason": "unknown" if row is None else "secret"})
            else:
                self.audit("token.failure", "(unknown)", {"reason": "malformed"})
        if principal is None:
            raise AuthError("The API token is unknown, expired or revoked.",
                            hint="Create a new token (POST /v1/tokens) and use it as "
                            "'Authorization: Bearer gfr_…'.")
        return principal


def _out(row: ApiTokenRow, owner: str) -> TokenOut:
    scopes: list[Scope] = sorted(split(row.scopes))
    return TokenOut(id=row.id, name=row.name, user=owner, scopes=scopes,
                    created_at=when(row.created_at), expires_at=when(row.expires_at),
                    revoked_at=when(row.revoked_at), last_used_at=when(row.last_used_at))
