"""Identity: accounts and roles, logins with lockout and TOTP, sessions, CSRF, API tokens,
receipts and sealed conversations, and the audit trail of all of it.

Runs on SQLite and on a real PostgreSQL (``db_url``), with a real signed audit log, a real
sealer and an injected clock."""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyotp
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import select, update

from appliance.db import Base, Conversation, Database, DatabaseError, Message, User
from appliance.service import Principal, operator
from appliance.service._identity import AeadSealer, Identity, IdentityPolicy
from security import (
    AuditLog,
    AuthError,
    ConflictError,
    ForbiddenError,
    InvalidRequestError,
    NotFoundError,
    ThrottledError,
)

ROOT = operator("root")
T0 = 1_900_000_020.0  # the start of a 30-second TOTP step
PASSWORD = "a long enough passphrase"


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class World:
    """An Identity over a fresh database, its audit log, its clock."""

    def __init__(self, db_url: str, folder: Path) -> None:
        self.url = db_url
        self.db = Database(db_url)
        self.db.migrate()
        self.log = AuditLog(folder / "audit", [(0, os.urandom(32))],
                            Ed25519PrivateKey.generate())
        self.clock = Clock()
        self.identity = Identity(self.db, self.audit, AeadSealer(os.urandom(32)),
                                 policy=IdentityPolicy(), clock=self.clock)
        self.totp: dict[str, str] = {}

    def audit(self, event: str, user: str, details: dict[str, Any],
              secret: dict[str, Any] | None = None) -> int:
        return self.log.append(event, user, details, secret=secret)

    def entries(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.log.log_path.read_text().splitlines()]

    def events(self) -> list[str]:
        return [entry["event"] for entry in self.entries()]

    def user(self, name: str, *roles: str) -> None:
        _out, uri = self.identity.add_user(ROOT, name, PASSWORD, set(roles))
        if uri is not None:
            self.totp[name] = pyotp.parse_uri(uri).secret

    def code(self, name: str, offset_s: float = 0) -> str:
        return pyotp.TOTP(self.totp[name]).at(self.clock.now + offset_s)

    def login(self, name: str, code: str | None = None) -> Any:
        if code is None and name in self.totp:
            code = self.code(name)
        return self.identity.login(name, PASSWORD, code, "192.0.2.7")

    def raw(self, query: Any) -> list[Any]:
        with self.db.session() as s:
            return list(s.execute(query).all())

    def db_columns(self, table: str) -> list[Any]:
        return list(Base.metadata.tables[table].columns)

    def sqlite_bytes(self) -> bytes:
        """Every byte SQLite wrote: the database file and its write-ahead log."""
        path = Path(self.url.removeprefix("sqlite:///"))
        return b"".join(p.read_bytes() for p in path.parent.glob(path.name + "*"))


@pytest.fixture
def world(db_url: str, tmp_path: Path) -> Iterator[World]:
    w = World(db_url, tmp_path)
    yield w
    w.db.close()


# -- accounts ---------------------------------------------------------------------------
def test_add_user_checks_names_passwords_and_roles(world: World) -> None:
    ident = world.identity
    for name in ("Alice", "alice\n", "-alice", "a" * 65, "", "al ice", "alice/.."):
        with pytest.raises(InvalidRequestError):
            ident.add_user(ROOT, name, PASSWORD, {"reader"})
    for password in ("short", "alice-the-great-1", "abcabcabcabcabc", "x" * 1025):
        with pytest.raises(InvalidRequestError) as caught:
            ident.add_user(ROOT, "alice", password, {"reader"})
        assert caught.value.hint
    for roles in (set(), {"superuser"}, {"admin", "auditor"}):
        with pytest.raises(InvalidRequestError):
            ident.add_user(ROOT, "alice", PASSWORD, roles)
    out, uri = ident.add_user(ROOT, "alice", PASSWORD, {"reader", "editor"})
    assert out.name == "alice" and out.roles == ["editor", "reader"] and uri is None
    assert not out.totp_enabled
    with pytest.raises(ConflictError):
        ident.add_user(ROOT, "alice", PASSWORD, {"reader"})
    reader = world.login("alice").principal
    with pytest.raises(ForbiddenError):
        ident.add_user(reader, "bob", PASSWORD, {"reader"})
    with pytest.raises(ForbiddenError):
        ident.list_users(reader)
    assert [u.name for u in ident.list_users(ROOT)] == ["alice"]


def test_admin_and_auditor_get_a_second_factor_at_creation(world: World) -> None:
    for name, role in (("adam", "admin"), ("audrey", "auditor")):
        out, uri = world.identity.add_user(ROOT, name, PASSWORD, {role})
        assert out.totp_enabled and uri is not None
        parsed = pyotp.parse_uri(uri)
        assert parsed.issuer == "Greffier" and parsed.name == name
        assert len(parsed.secret) >= 32


def test_bootstrap_admin_only_while_there_is_none(world: World) -> None:
    out, uri = world.identity.bootstrap_admin("first", PASSWORD)
    assert out.roles == ["admin"] and uri.startswith("otpauth://totp/")
    with pytest.raises(ConflictError):
        world.identity.bootstrap_admin("second", PASSWORD)
    assert world.events() == ["user.add"]


def test_two_bootstraps_at_once_make_one_admin(world: World) -> None:
    results: list[object] = []

    def bootstrap(name: str) -> None:
        try:
            results.append(world.identity.bootstrap_admin(name, PASSWORD))
        except ConflictError as exc:
            results.append(exc)

    threads = [threading.Thread(target=bootstrap, args=(f"first{n}",)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(not isinstance(r, ConflictError) for r in results) == 1
    assert len(world.identity.list_users(ROOT)) == 1


def test_separation_of_duties(world: World) -> None:
    world.user("adam", "admin")
    world.user("zoe", "reader")
    with pytest.raises(InvalidRequestError, match="separation of duties"):
        world.identity.set_roles(ROOT, "adam", {"admin", "auditor"})
    admin = world.login("adam").principal
    assert not admin.can("search") and not admin.can("ask") and not admin.can("audit")
    world.user("audrey", "auditor")
    auditor = world.login("audrey").principal
    assert auditor.can("audit") and not auditor.can("search")
    with pytest.raises(ForbiddenError):
        world.identity.add_user(auditor, "eve", PASSWORD, {"reader"})


def test_set_roles_ends_sessions_and_promotion_brings_a_second_factor(world: World) -> None:
    world.user("adam", "admin")
    world.user("zoe", "reader")
    session = world.login("zoe").session_token
    out, uri = world.identity.set_roles(ROOT, "zoe", {"auditor"})
    assert out.roles == ["auditor"] and out.totp_enabled and uri is not None
    with pytest.raises(AuthError):
        world.identity.session(session)  # the old session (no second factor) is over
    world.totp["zoe"] = pyotp.parse_uri(uri).secret
    with pytest.raises(AuthError, match="code"):
        world.identity.login("zoe", PASSWORD, None, "test")
    assert world.login("zoe").principal.roles == {"auditor"}
    with pytest.raises(ConflictError, match="last admin"):
        world.identity.set_roles(ROOT, "adam", {"reader"})
    entry = next(e for e in world.entries() if e["event"] == "user.roles")
    assert entry["details"]["from"] == ["reader"] and entry["details"]["to"] == ["auditor"]


def test_disable_user_ends_sessions_and_tokens(world: World) -> None:
    world.user("adam", "admin")
    world.user("zoe", "reader")
    login = world.login("zoe")
    token, _ = world.identity.create_token(login.principal, "script", {"read"}, 30)
    world.identity.disable_user(ROOT, "zoe")
    with pytest.raises(AuthError):
        world.identity.session(login.session_token)
    with pytest.raises(AuthError):
        world.identity.authenticate_token(token)
    with pytest.raises(AuthError, match="Wrong"):
        world.login("zoe")
    assert [t.revoked_at is not None for t in world.identity.list_tokens(ROOT)] == [True]
    with pytest.raises(ConflictError, match="last admin"):
        world.identity.disable_user(ROOT, "adam")
    with pytest.raises(NotFoundError):
        world.identity.disable_user(ROOT, "ghost")


def test_nothing_half_written_when_the_audit_fails(world: World) -> None:
    def broken(event: str, user: str, details: dict[str, Any],
               secret: dict[str, Any] | None = None) -> int:
        raise OSError("disk full")

    world.identity.audit = broken
    with pytest.raises(OSError):
        world.identity.add_user(ROOT, "zoe", PASSWORD, {"reader"})
    assert world.raw(select(User.name)) == []


# -- logins -----------------------------------------------------------------------------
def test_login_gives_a_session_and_failures_say_nothing_more(world: World) -> None:
    world.user("zoe", "reader")
    result = world.login("zoe")
    assert result.principal.name == "zoe" and result.principal.via == "session"
    assert result.principal.roles == {"reader"} and not result.principal.mfa
    assert world.identity.session(result.session_token) == result.principal
    messages = set()
    for name, password in (("zoe", "wrong password!"), ("ghost", PASSWORD),
                           ("Not A Name\n", PASSWORD)):
        with pytest.raises(AuthError) as caught:
            world.identity.login(name, password, None, "192.0.2.7")
        messages.add(str(caught.value))
    assert len(messages) == 1  # an unknown account reads like a wrong password
    failures = [e for e in world.entries() if e["event"] == "login.failure"]
    assert [f["user"] for f in failures] == ["zoe", "ghost", "(invalid name)"]
    assert all(f["details"]["client"] == "192.0.2.7" for f in failures)


def test_lockout_after_repeated_failures_and_its_expiry(world: World) -> None:
    world.user("zoe", "reader")
    for _ in range(5):
        with pytest.raises(AuthError):
            world.identity.login("zoe", "wrong password!", None, "x")
    with pytest.raises(ThrottledError) as caught:
        world.login("zoe")  # even the right password waits
    assert caught.value.retry_after_s == 15 * 60
    world.clock.advance(14 * 60)
    with pytest.raises(ThrottledError) as caught:
        world.identity.login("zoe", "wrong password!", None, "x")
    assert caught.value.retry_after_s == 60
    world.clock.advance(61)
    world.login("zoe")
    events = world.events()
    assert events.count("login.failure") == 4
    assert events.count("login.lockout") == 1 and events.count("login.locked") == 2
    assert events[-1] == "login"


def test_lockouts_double(world: World) -> None:
    world.user("zoe", "reader")
    for expected in (15 * 60, 30 * 60, 60 * 60):
        for _ in range(5):
            with pytest.raises(AuthError):
                world.identity.login("zoe", "wrong password!", None, "x")
        with pytest.raises(ThrottledError) as caught:
            world.identity.login("zoe", "wrong password!", None, "x")
        assert caught.value.retry_after_s == expected
        world.clock.advance(expected + 1)
    assert world.raw(select(User.lockouts))[0][0] == 3


@pytest.mark.parametrize("role", ["admin", "auditor"])
def test_the_second_factor_is_required_for_admin_and_auditor(world: World, role: str) -> None:
    world.user("boss", role)
    with pytest.raises(AuthError) as caught:
        world.identity.login("boss", PASSWORD, None, "x")
    # a missing code reads like a wrong password: it must not confirm the password
    assert caught.value.message == "Wrong account name, password or code."
    with pytest.raises(AuthError):
        world.identity.login("boss", PASSWORD, "", "x")
    right = world.code("boss")
    wrong = f"{(int(right) + 1) % 1_000_000:06d}"
    with pytest.raises(AuthError):
        world.identity.login("boss", PASSWORD, wrong, "x")
    with pytest.raises(AuthError):
        world.identity.login("boss", "wrong password!", right, "x")
    result = world.identity.login("boss", PASSWORD, right, "x")
    assert result.principal.mfa and result.principal.roles == {role}
    with pytest.raises(AuthError):  # the same step again: replay
        world.identity.login("boss", PASSWORD, right, "x")
    world.clock.advance(60)
    with pytest.raises(AuthError):  # within the window, but the step is spent
        world.identity.login("boss", PASSWORD, world.code("boss", -60), "x")
    world.identity.login("boss", PASSWORD, world.code("boss", -30), "x")  # drift: 1 step late
    world.clock.advance(60)
    with pytest.raises(AuthError):  # two steps ahead is out of the window
        world.identity.login("boss", PASSWORD, world.code("boss", 60), "x")
    world.identity.login("boss", PASSWORD, world.code("boss", 30), "x")  # 1 step early
    with pytest.raises(AuthError):  # and now the current step is older than the last used
        world.identity.login("boss", PASSWORD, world.code("boss"), "x")


def test_a_reader_can_add_a_second_factor(world: World) -> None:
    world.user("zoe", "reader")
    who = world.login("zoe").principal
    uri = world.identity.enroll_totp(who)
    secret = pyotp.parse_uri(uri).secret
    world.login("zoe")  # not yet confirmed: not yet required
    with pytest.raises(InvalidRequestError):
        world.identity.confirm_totp(who, "000000" if pyotp.TOTP(secret).at(T0) != "000000"
                                    else "111111")
    world.identity.confirm_totp(who, pyotp.TOTP(secret).at(world.clock.now))
    with pytest.raises(ConflictError):
        world.identity.enroll_totp(who)
    with pytest.raises(AuthError, match="code"):
        world.identity.login("zoe", PASSWORD, None, "x")
    with pytest.raises(AuthError):  # the confirming code is spent
        world.identity.login("zoe", PASSWORD, pyotp.TOTP(secret).at(world.clock.now), "x")
    world.clock.advance(30)
    assert world.identity.login("zoe", PASSWORD, pyotp.TOTP(secret).at(world.clock.now),
                                "x").principal.mfa
    assert {"totp.enroll", "totp.confirm"} <= set(world.events())
    token, _ = world.identity.create_token(who, "script", {"read"}, 1)
    with pytest.raises(ForbiddenError):
        world.identity.enroll_totp(world.identity.authenticate_token(token))


# -- sessions ---------------------------------------------------------------------------
def test_each_login_is_a_new_session_and_logout_ends_it(world: World) -> None:
    world.user("zoe", "reader")
    first, second = world.login("zoe"), world.login("zoe")
    assert first.session_token != second.session_token
    assert first.csrf_token != second.csrf_token
    world.identity.logout(first.session_token)
    with pytest.raises(AuthError):
        world.identity.session(first.session_token)
    assert world.identity.session(second.session_token).name == "zoe"
    with pytest.raises(AuthError):
        world.identity.session("a cookie planted by someone else")
    world.identity.logout("unknown")  # nothing to end, no error
    stored = repr(world.raw(select(*world.db_columns("sessions"))))
    assert second.session_token not in stored and second.csrf_token not in stored
    assert world.events().count("logout") == 1


def test_idle_and_absolute_timeouts(world: World) -> None:
    world.user("zoe", "reader")
    token = world.login("zoe").session_token
    world.clock.advance(29 * 60)
    world.identity.session(token)
    world.clock.advance(29 * 60)  # active: the idle clock restarted
    world.identity.session(token)
    world.clock.advance(30 * 60 + 1)
    with pytest.raises(AuthError, match="expired"):
        world.identity.session(token)
    token = world.login("zoe").session_token
    for _ in range(24):  # busy all day, never idle
        world.clock.advance(29 * 60)
        world.identity.session(token)
    world.clock.advance(29 * 60)  # 12 h 05 after the login
    with pytest.raises(AuthError):
        world.identity.session(token)


def test_csrf_token_is_checked(world: World) -> None:
    world.user("zoe", "reader")
    world.user("yan", "reader")
    mine, theirs = world.login("zoe"), world.login("yan")
    world.identity.check_csrf(mine.session_token, mine.csrf_token)
    for bad in (None, "", "guess", theirs.csrf_token, mine.session_token):
        with pytest.raises(ForbiddenError):
            world.identity.check_csrf(mine.session_token, bad)
    with pytest.raises(AuthError):
        world.identity.check_csrf("no such session", mine.csrf_token)


# -- tokens -----------------------------------------------------------------------------
def test_token_scopes_and_identity(world: World) -> None:
    world.user("zoe", "reader")
    who = world.login("zoe").principal
    plaintext, info = world.identity.create_token(who, "nightly report", {"read"}, 30)
    assert plaintext.startswith(f"gfr_{info.id}_") and len(plaintext.split("_", 2)[2]) >= 43
    assert info.user == "zoe" and info.scopes == ["read"]
    via = world.identity.authenticate_token(plaintext)
    assert (via.via, via.token_id, via.scopes, via.name) == ("token", info.id, {"read"}, "zoe")
    assert via.can("search") and not via.can("ask")
    assert via.audit_name == f"zoe (token {info.id})"
    with pytest.raises(ForbiddenError):  # a token does not mint tokens
        world.identity.create_token(via, "more", {"read"}, 30)
    for scopes, days in (({"read", "root"}, 30), (set(), 30), ({"read"}, 0), ({"read"}, 366),
                         ({"admin"}, 30)):  # a reader's roles give nothing through "admin"
        with pytest.raises(InvalidRequestError):
            world.identity.create_token(who, "x", scopes, days)
    with pytest.raises(ForbiddenError):  # the local operator has no account of its own
        world.identity.create_token(ROOT, "x", {"read"}, 30)
    plaintext, info = world.identity.create_token(ROOT, "for zoe", {"ask"}, 30, user="zoe")
    assert world.identity.authenticate_token(plaintext).can("ask")


def test_token_expiry_revocation_and_bad_tokens(world: World) -> None:
    world.user("zoe", "reader")
    world.user("yan", "reader")
    zoe, yan = world.login("zoe").principal, world.login("yan").principal
    short, _ = world.identity.create_token(zoe, "short", {"read"}, 1)
    kept, kept_info = world.identity.create_token(zoe, "kept", {"read"}, 30)
    world.clock.advance(86400 + 1)
    with pytest.raises(AuthError):
        world.identity.authenticate_token(short)
    world.identity.authenticate_token(kept)
    with pytest.raises(NotFoundError):  # somebody else's token
        world.identity.revoke_token(yan, kept_info.id)
    world.identity.revoke_token(zoe, kept_info.id)
    world.identity.revoke_token(zoe, kept_info.id)  # idempotent
    with pytest.raises(AuthError):
        world.identity.authenticate_token(kept)
    forged = kept[:-4] + ("AAAA" if not kept.endswith("AAAA") else "BBBB")
    for bad in ("", "gfr_", "Bearer x", forged, f"gfr_{'0' * 16}_{'A' * 43}"):
        with pytest.raises(AuthError):
            world.identity.authenticate_token(bad)
    failures = [e["details"] for e in world.entries() if e["event"] == "token.failure"]
    assert {f["reason"] for f in failures} == {"expired", "revoked", "malformed", "unknown",
                                                "secret"}
    assert world.events().count("token.revoke") == 1


def test_token_listing_is_own_unless_admin(world: World) -> None:
    world.user("adam", "admin")
    world.user("zoe", "reader")
    world.user("yan", "reader")
    zoe, yan, adam = (world.login(n).principal for n in ("zoe", "yan", "adam"))
    zoe_token, _ = world.identity.create_token(zoe, "a", {"read"}, 30)
    world.identity.create_token(yan, "b", {"ask"}, 30)
    admin_token, admin_info = world.identity.create_token(adam, "ops", {"admin"}, 30)
    assert [t.name for t in world.identity.list_tokens(zoe)] == ["a"]
    assert sorted(t.user for t in world.identity.list_tokens(adam)) == ["adam", "yan", "zoe"]
    listed = repr(world.identity.list_tokens(adam))
    assert zoe_token.split("_", 2)[2] not in listed
    via = world.identity.authenticate_token(admin_token)
    assert via.can("users") and len(world.identity.list_tokens(via)) == 3
    mine = world.identity.list_tokens(zoe)[0]
    world.identity.revoke_token(adam, mine.id)  # an admin may revoke anyone's
    with pytest.raises(AuthError):
        world.identity.authenticate_token(zoe_token)
    assert admin_info.scopes == ["admin"]


def test_tokens_are_stored_as_hashes_only(world: World) -> None:
    world.user("zoe", "reader")
    who = world.login("zoe").principal
    plaintext, _ = world.identity.create_token(who, "script", {"read"}, 30)
    secret = plaintext.split("_", 2)[2]
    stored = repr(world.raw(select(*world.db_columns("api_tokens"))))
    assert secret not in stored and plaintext not in stored
    if world.url.startswith("sqlite"):
        assert secret.encode() not in world.sqlite_bytes()


def test_token_use_is_audited_and_remembered(world: World) -> None:
    world.user("zoe", "reader")
    plaintext, info = world.identity.create_token(world.login("zoe").principal, "s", {"read"},
                                                  30)
    world.clock.advance(100)
    world.identity.authenticate_token(plaintext)
    world.clock.advance(60)
    world.identity.authenticate_token(plaintext)  # within the hour: not audited again
    uses = [e for e in world.entries() if e["event"] == "token.use"]
    assert [u["details"]["token_id"] for u in uses] == [info.id]
    assert uses[0]["user"] == f"zoe (token {info.id})"
    world.clock.advance(3600)
    world.identity.authenticate_token(plaintext)
    assert sum(e["event"] == "token.use" for e in world.entries()) == 2
    assert world.identity.list_tokens(ROOT)[0].last_used_at is not None
    with world.db.session() as s:  # the owner disabled behind the identity's back
        s.execute(update(User).values(disabled=True))
    with pytest.raises(AuthError):
        world.identity.authenticate_token(plaintext)


# -- answers, conversations, feedback ---------------------------------------------------
QUESTION = "Quel est le délai de préavis du bail commercial 7731 ?"
ANSWER = "Le délai est de six mois [1]."


def _ask(world: World, who: Principal, conversation: str | None = None,
         question: str = QUESTION) -> tuple[str, str]:
    answer_id = os.urandom(16).hex()
    conv = world.identity.save_answer(who, answer_id, "answer", {"receipt": answer_id},
                                      conversation, question, ANSWER)
    assert conv is not None
    return answer_id, conv


def test_conversations_are_their_owners_only(world: World) -> None:
    world.user("zoe", "reader")
    world.user("yan", "reader")
    world.user("adam", "admin")
    zoe, yan, adam = (world.login(n).principal for n in ("zoe", "yan", "adam"))
    first, conv = _ask(world, zoe)
    second, same = _ask(world, zoe, conv, "Et pour un bail d'habitation ?")
    assert same == conv
    assert world.identity.save_answer(zoe, "s1", "search", {"r": 1}, None, None, None) is None
    got = world.identity.conversation(zoe, conv)
    assert got.title == QUESTION
    assert [(m.role, m.content, m.answer_id) for m in got.messages] == [
        ("user", QUESTION, None), ("assistant", ANSWER, first),
        ("user", "Et pour un bail d'habitation ?", None), ("assistant", ANSWER, second)]
    assert [c.id for c in world.identity.conversations(zoe)] == [conv]
    assert world.identity.conversations(yan) == []
    with pytest.raises(NotFoundError):
        world.identity.conversation(yan, conv)
    with pytest.raises(NotFoundError):  # nor can anybody add to it
        _ask(world, yan, conv)
    with pytest.raises(NotFoundError):
        world.identity.conversation(adam, conv)  # an admin cannot read it
    read_only, _ = world.identity.create_token(zoe, "r", {"read"}, 30)
    with pytest.raises(ForbiddenError):  # nor can the owner's token without "ask"
        world.identity.conversation(world.identity.authenticate_token(read_only), conv)
    with pytest.raises(ForbiddenError):
        world.identity.conversations(adam)
    with pytest.raises(NotFoundError):
        world.identity.conversation(ROOT, conv)  # nor the local operator


def test_receipts_go_to_the_asker_and_to_auditors(world: World) -> None:
    world.user("zoe", "reader")
    world.user("yan", "reader")
    world.user("adam", "admin")
    world.user("audrey", "auditor")
    zoe, yan, adam, audrey = (world.login(n).principal for n in ("zoe", "yan", "adam", "audrey"))
    answer_id, _ = _ask(world, zoe)
    assert world.identity.answer_receipt(zoe, answer_id) == {"receipt": answer_id}
    assert world.identity.answer_receipt(audrey, answer_id) == {"receipt": answer_id}
    for who in (yan, adam):
        with pytest.raises(NotFoundError):
            world.identity.answer_receipt(who, answer_id)
    with pytest.raises(NotFoundError):
        world.identity.answer_receipt(zoe, "missing")
    reads = [e for e in world.entries() if e["event"] == "receipt.read"]
    assert [(r["user"], r["details"]["answer_id"]) for r in reads] == [("audrey", answer_id)]


def test_feedback(world: World) -> None:
    world.user("zoe", "reader")
    world.user("yan", "reader")
    zoe, yan = world.login("zoe").principal, world.login("yan").principal
    answer_id, _ = _ask(world, zoe)
    world.identity.add_feedback(zoe, answer_id, 1, "Très utile, merci pour le bail 7731")
    world.identity.add_feedback(zoe, answer_id, -1, None)  # replaces the first
    for rating in (0, 2):
        with pytest.raises(InvalidRequestError):
            world.identity.add_feedback(zoe, answer_id, rating, None)
    with pytest.raises(InvalidRequestError):
        world.identity.add_feedback(zoe, answer_id, 1, "x" * 2001)
    with pytest.raises(NotFoundError):
        world.identity.add_feedback(yan, answer_id, 1, None)
    assert [e["details"]["rating"] for e in world.entries() if e["event"] == "feedback"] == [
        1, -1]


def test_sealed_columns_never_hold_plaintext(world: World) -> None:
    world.user("zoe", "reader")
    world.user("adam", "admin")
    zoe = world.login("zoe").principal
    answer_id, conv = _ask(world, zoe)
    world.identity.add_feedback(zoe, answer_id, 1, "commentaire confidentiel 5521")
    secret = world.totp["adam"]
    for table in ("conversations", "messages", "feedback", "users"):
        stored = repr(world.raw(select(*world.db_columns(table))))
        for clear in ("7731", "préavis", "six mois", "confidentiel", secret):
            assert clear not in stored, (table, clear)
    if world.url.startswith("sqlite"):
        raw = world.sqlite_bytes()
        for clear in (QUESTION, "préavis", "six mois", "commentaire confidentiel", secret):
            assert clear.encode() not in raw, clear
    assert world.identity.conversation(zoe, conv).messages[0].content == QUESTION


def test_a_sealed_field_moved_to_another_row_does_not_open(world: World) -> None:
    world.user("zoe", "reader")
    zoe = world.login("zoe").principal
    _, conv = _ask(world, zoe)
    with world.db.session() as s:
        user_msg, answer_msg = s.scalars(select(Message).order_by(Message.seq)).all()
        user_msg.content_sealed = answer_msg.content_sealed
    with pytest.raises(DatabaseError, match="cannot be opened"):
        world.identity.conversation(zoe, conv)


def test_concurrent_turns_of_one_conversation(world: World) -> None:
    world.user("zoe", "reader")
    zoe = world.login("zoe").principal
    _, conv = _ask(world, zoe)
    errors: list[BaseException] = []

    def turns() -> None:
        try:
            for _ in range(5):
                _ask(world, zoe, conv)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=turns) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    seqs = [row[0] for row in world.raw(select(Message.seq).order_by(Message.seq))]
    assert seqs == list(range(1, 2 + 2 * 6 * 5 + 1))
    assert len(world.raw(select(Conversation.id))) == 1


# -- the audit trail --------------------------------------------------------------------
def test_every_identity_event_is_audited_without_secrets(world: World) -> None:
    world.user("adam", "admin")
    world.user("zoe", "reader")
    adam = world.login("adam")
    zoe = world.login("zoe")
    with pytest.raises(AuthError):
        world.identity.login("zoe", "not the password", None, "x")
    token, info = world.identity.create_token(zoe.principal, "script", {"read"}, 30)
    world.identity.authenticate_token(token)
    world.identity.revoke_token(zoe.principal, info.id)
    world.identity.set_roles(adam.principal, "zoe", {"reader", "editor"})
    world.identity.disable_user(adam.principal, "zoe")
    world.identity.logout(adam.session_token)
    events = world.events()
    assert events == ["user.add", "user.add", "login", "login", "login.failure", "token.create",
                      "token.use", "token.revoke", "user.roles", "user.disable", "logout"]
    actors = [e["user"] for e in world.entries()]
    assert actors[:2] == ["root (local operator)"] * 2 and actors[8] == "adam"
    log = world.log.log_path.read_text()
    for secret in (PASSWORD, "not the password", token, token.split("_", 2)[2],
                   world.totp["adam"], adam.session_token, adam.csrf_token,
                   zoe.session_token):
        assert secret not in log
    assert world.log.size >= len(events)  # signed: the real log took them all


@pytest.mark.unit
def test_the_policy_takes_the_identity_settings_as_they_are() -> None:
    from appliance._settings import IdentitySettings

    assert IdentityPolicy(**IdentitySettings().model_dump()) == IdentityPolicy()


def test_a_stricter_policy_is_applied(db_url: str, tmp_path: Path) -> None:
    world = World(db_url, tmp_path)
    world.identity.policy = IdentityPolicy(password_min_length=20, lockout_after=2,
                                           lockout_minutes=1, session_idle_minutes=5,
                                           token_max_days=7)
    with pytest.raises(InvalidRequestError, match="20 to 1024"):
        world.identity.add_user(ROOT, "zoe", "nineteen characters", {"reader"})
    world.identity.add_user(ROOT, "zoe", PASSWORD + " and more", {"reader"})
    for _ in range(2):
        with pytest.raises(AuthError):
            world.identity.login("zoe", "wrong password!", None, "x")
    with pytest.raises(ThrottledError) as caught:
        world.identity.login("zoe", "wrong password!", None, "x")
    assert caught.value.retry_after_s == 60
    world.clock.advance(61)
    login = world.identity.login("zoe", PASSWORD + " and more", None, "x")
    with pytest.raises(InvalidRequestError):
        world.identity.create_token(login.principal, "x", {"read"}, 8)
    world.clock.advance(5 * 60)
    with pytest.raises(AuthError):
        world.identity.session(login.session_token)
    world.db.close()
