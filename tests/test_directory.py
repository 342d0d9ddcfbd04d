"""Directory groups against a real OpenLDAP ``slapd`` (tests/slapd.py), through the real
app, on SQLite then on a real PostgreSQL: users, groups and nested memberships synced;
changes in the directory followed (and only those: local accounts, groups and memberships
are never touched); conflicts reported; idempotence; sign-in by an LDAP bind; a directory
that fails changes nothing; and access control end to end, a search by a directory user
before and after the directory takes him out of a group."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyotp
import pytest
from apiharness import ROOT_OP, Api, api_settings, bearer
from fastapi.testclient import TestClient
from slapd import LIMITED_DN, READER_DN, READER_PW, Slapd, Tree, slapd  # noqa: F401
from sqlalchemy import delete, select

from appliance.db import Group, Membership, User
from appliance.directory import LdapDirectory
from appliance.service import _directory as use
from appliance.service._directory_models import SyncOut
from security import ConflictError

pytestmark = pytest.mark.integration
PW = "correct directory password 42"


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def api(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
        slapd: Slapd) -> Iterator[Api]:  # noqa: F811
    database = {}
    if request.param == "postgresql":
        database = {"url": request.getfixturevalue("postgres_server").new_database()}
    ldap = {"url": slapd.url, "bind_dn": READER_DN, "user_base": "ou=none,dc=example,dc=org",
            "group_base": "ou=none,dc=example,dc=org"}
    api = Api(api_settings(tmp_path_factory.mktemp("directory"), database=database, ldap=ldap))
    api.user("root-admin", "admin")  # the break-glass local admin
    api.user("lena", "reader")  # a local reader
    yield api
    api.close()


@pytest.fixture
def tree(api: Api, slapd: Slapd, monkeypatch: pytest.MonkeyPatch) -> Tree:  # noqa: F811
    """A fresh subtree, the appliance pointed at it, no directory account or group left
    from another test."""
    monkeypatch.setenv("GREFFIER_LDAP_PASSWORD", READER_PW)
    tree = slapd.tree()
    api.rt.settings = api.settings  # as configured, whatever the last test changed
    _configure(api, user_base=tree.people, group_base=tree.groups)
    with api.rt.identity.db.session() as s:
        ldap_groups = select(Group.id).where(Group.origin == "ldap")
        s.execute(delete(Membership).where(Membership.group_id.in_(ldap_groups)))
        s.execute(delete(Group).where(Group.origin == "ldap"))
        s.execute(delete(User).where(User.origin == "ldap"))
    return tree


@pytest.fixture
def client(api: Api) -> Iterator[TestClient]:
    with api.client() as c:
        yield c


@pytest.fixture(scope="module")
def admin(api: Api) -> dict[str, str]:
    return bearer(api.token("root-admin", "admin"))


def _configure(api: Api, **ldap: Any) -> None:
    settings = api.rt.settings
    api.rt.settings = settings.model_copy(
        update={"ldap": settings.ldap.model_copy(update=ldap)})


def _sync(client: TestClient, admin: dict[str, str], status: int = 200) -> dict[str, Any]:
    response = client.post("/v1/directory/sync", headers=admin)
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    return body


def _members(client: TestClient, admin: dict[str, str], group: str) -> list[str]:
    response = client.get(f"/v1/groups/{group}", headers=admin)
    assert response.status_code == 200, response.text
    members: list[str] = response.json()["members"]
    return members


def _entries(api: Api, prefix: str) -> list[dict[str, Any]]:
    lines = (api.settings.data_dir / "audit" / "log.jsonl").read_text().splitlines()
    return [e for e in map(json.loads, lines) if e["event"].startswith(prefix)]


def _accounts(api: Api) -> dict[str, User]:
    with api.rt.identity.db.session() as s:
        users = list(s.scalars(select(User)))
        s.expunge_all()
    return {u.name: u for u in users}


def _login(client: TestClient, name: str, password: str) -> Any:
    return client.post("/v1/auth/login", json={"name": name, "password": password})


# -- what is synced --------------------------------------------------------------------------
def test_users_groups_and_nested_memberships_are_synced(
        api: Api, tree: Tree, client: TestClient, admin: dict[str, str]) -> None:
    alice = tree.user("alice", PW, displayName="Alice Martin")
    bob, carol = tree.user("bob", PW), tree.user("carol", PW)
    tree.user("Dave.Roux", PW)  # names are folded to the account-name rule
    a = tree.group("A", alice)
    b = tree.group("B", a)
    tree.group("C", b, bob)  # A ⊂ B ⊂ C
    d = tree.group("D", carol)
    e = tree.group("Équipe Paie", d)
    tree.set_members(d, carol, e)  # a cycle: D ⊂ E ⊂ D
    result = _sync(client, admin)
    assert result["ok"] and result["conflicts"] == []
    assert result["counts"] == {
        "users_created": 4, "users_updated": 0, "users_disabled": 0, "users_enabled": 0,
        "groups_created": 5, "groups_updated": 0, "groups_deleted": 0,
        "memberships_added": 1 + 1 + 2 + 1 + 1, "memberships_removed": 0, "conflicts": 0}
    assert _members(client, admin, "a") == ["alice"]
    assert _members(client, admin, "b") == ["alice"]
    assert _members(client, admin, "c") == ["alice", "bob"]
    assert _members(client, admin, "d") == ["carol"]
    assert _members(client, admin, "equipe-paie") == ["carol"]
    accounts = _accounts(api)
    assert accounts["alice"].origin == "ldap" and accounts["alice"].external_id == alice
    assert accounts["alice"].password_hash == "!" and accounts["alice"].roles == "reader"
    assert "dave.roux" in accounts and accounts["lena"].origin == "local"
    summary = _entries(api, "directory.sync")[-1]
    assert summary["event"] == "directory.sync" and summary["user"].startswith("root-admin")
    assert summary["details"]["counts"]["users_created"] == 4
    added = [x["details"] for x in _entries(api, "group.member.add")]
    assert {"group": "c", "member": "bob", "origin": "ldap"} in added
    assert {"name": "alice", "roles": ["reader"], "totp": False, "disabled": False,
            "origin": "ldap"} in [x["details"] for x in _entries(api, "user.add")]


def test_a_second_sync_changes_nothing_and_writes_no_change_entry(
        api: Api, tree: Tree, client: TestClient, admin: dict[str, str]) -> None:
    tree.group("team", tree.user("zoe", PW), tree.user("yann", PW))
    assert _sync(client, admin)["counts"]["memberships_added"] == 2
    log = (api.settings.data_dir / "audit" / "log.jsonl").read_text().splitlines()
    again = _sync(client, admin)
    assert again["ok"] and not any(again["counts"].values())
    after = (api.settings.data_dir / "audit" / "log.jsonl").read_text().splitlines()
    assert [json.loads(line)["event"] for line in after[len(log):]] == ["directory.sync"]


def test_the_directory_s_changes_are_followed(
        api: Api, tree: Tree, client: TestClient, admin: dict[str, str]) -> None:
    nina, omar = tree.user("nina", PW), tree.user("omar", PW)
    inner = tree.group("inner", nina)
    outer = tree.group("outer", inner, omar)
    gone = tree.group("gone", omar)
    _sync(client, admin)
    assert _members(client, admin, "outer") == ["nina", "omar"]
    with api.client() as session:
        assert _login(session, "omar", PW).status_code == 200
        assert session.get("/v1/me").json()["groups"] == ["gone", "outer"]
        tree.set_members(outer, omar)  # inner leaves outer: nina with it
        tree.delete(gone)
        tree.delete(omar)  # (slapd keeps his DN in outer: it names nobody now)
        counts = _sync(client, admin)["counts"]
        assert (counts["users_disabled"], counts["groups_deleted"]) == (1, 1)
        assert counts["memberships_removed"] == 2 and counts["users_created"] == 0
        assert _members(client, admin, "outer") == []
        assert _members(client, admin, "inner") == ["nina"]
        assert client.get("/v1/groups/gone", headers=admin).status_code == 404
        assert session.get("/v1/me").status_code == 401  # his session ends at once
    assert _accounts(api)["omar"].disabled  # disabled, never deleted
    disabled = _entries(api, "user.disable")[-1]["details"]
    assert disabled["name"] == "omar" and disabled["reason"] == "gone from the directory"
    assert disabled["sessions"] == 1 and disabled["origin"] == "ldap"
    deleted = _entries(api, "group.delete")[-1]["details"]
    assert deleted["group"] == "gone" and deleted["members"] == ["omar"]
    assert _login(client, "omar", PW).status_code == 401
    tree.user("omar", PW)  # back in the directory: enabled again, in outer again
    counts = _sync(client, admin)["counts"]
    assert (counts["users_enabled"], counts["memberships_added"]) == (1, 1)
    assert _login(client, "omar", PW).status_code == 200


def test_a_disabled_user_s_tokens_stop_working(
        api: Api, tree: Tree, client: TestClient, admin: dict[str, str]) -> None:
    paul = tree.user("paul", PW)
    tree.user("quentin", PW)  # (an empty directory is refused: see the next test)
    _sync(client, admin)
    login = _login(client, "paul", PW)
    assert login.status_code == 200, login.text
    created = client.post("/v1/tokens", headers={"X-CSRF-Token": login.json()["csrf_token"]},
                          json={"name": "script", "scopes": ["read"], "expires_in_days": 5})
    assert created.status_code in (200, 201), created.text
    token = bearer(created.json()["token"])
    assert client.get("/v1/me", headers=token).status_code == 200
    tree.delete(paul)
    _sync(client, admin)
    assert client.get("/v1/me", headers=token).status_code == 401
    assert _entries(api, "user.disable")[-1]["details"]["tokens_revoked"]
    tree.delete(f"uid=quentin,{tree.people}")  # nobody left: a misconfiguration, refused
    body = _sync(client, admin, 503)
    assert "returned no users at all" in body["detail"]
    assert not _accounts(api)["quentin"].disabled


def test_conflicts_are_reported_and_local_things_never_touched(
        api: Api, tree: Tree, client: TestClient, admin: dict[str, str]) -> None:
    if "dora" not in _accounts(api):  # (the module's appliance serves several tests)
        api.user("dora", "reader")
        client.post("/v1/groups", headers=admin, json={"name": "finance"})
    client.put("/v1/groups/finance/members/lena", headers=admin)
    tree.user("dora", PW)  # the name of a local account
    eve = tree.user("eve", PW)
    tree.group("finance", eve)  # the name of a local group
    tree.group("Sales Team", eve)  # two directory groups, one name here: neither is taken
    tree.group("sales-team", eve)
    tree.group("sales", eve)
    result = _sync(client, admin)
    reasons = sorted((c["kind"], c["name"], c["reason"]) for c in result["conflicts"])
    assert reasons == [
        ("group", "finance", "the name belongs to a local group"),
        ("group", "sales-team", "another directory group has the same name"),
        ("group", "sales-team", "another directory group has the same name"),
        ("user", "dora", "the name belongs to a local account")]
    assert result["counts"]["conflicts"] == 4
    assert _entries(api, "directory.sync")[-1]["details"]["conflicts"] == result["conflicts"]
    accounts = _accounts(api)
    assert accounts["dora"].origin == "local" and accounts["dora"].password_hash != "!"
    assert _members(client, admin, "finance") == ["lena"]  # local, and left alone
    client.put("/v1/groups/finance/members/eve", headers=admin)  # a local membership
    client.put("/v1/groups/sales/members/lena", headers=admin)  # a local account, added
    result = _sync(client, admin)
    assert _members(client, admin, "finance") == ["eve", "lena"]
    assert _members(client, admin, "sales") == ["eve", "lena"]
    assert result["counts"]["memberships_removed"] == 0
    assert _login(client, "dora", PW).status_code == 401  # never merged: no LDAP sign-in


def test_roles_follow_the_mapping(api: Api, tree: Tree, client: TestClient,
                                  admin: dict[str, str]) -> None:
    _configure(api, roles={"redaction": ["editor"], "it": ["admin"]})
    rita, sam = tree.user("rita", PW), tree.user("sam", PW)
    redaction = tree.group("redaction", rita, sam)
    tree.group("it", sam)  # admin and editor cannot go together: sam is skipped
    result = _sync(client, admin)
    assert [c["name"] for c in result["conflicts"]] == ["sam"]
    assert _accounts(api)["rita"].roles == "editor" and "sam" not in _accounts(api)
    tree.set_members(redaction, sam)
    _sync(client, admin)
    assert _accounts(api)["rita"].roles == "reader"  # the default role again
    changed = _entries(api, "user.roles")[-1]["details"]
    assert (changed["name"], changed["from"], changed["to"]) == ("rita", ["editor"], ["reader"])


# -- sign-in -------------------------------------------------------------------------------
def test_directory_users_sign_in_with_their_directory_password(
        api: Api, tree: Tree, client: TestClient, admin: dict[str, str]) -> None:
    _configure(api, user_filter="(|(objectClass=inetOrgPerson)(objectClass=user))",
               user_name_attribute="sAMAccountName")
    tree.ad_user("Hugo", PW)
    blocked = tree.ad_user("Ines", PW, disabled=True)  # AD: userAccountControl 514
    result = _sync(client, admin)
    accounts = _accounts(api)
    assert not accounts["hugo"].disabled and accounts["ines"].disabled, result
    assert _login(client, "hugo", PW).status_code == 200
    assert _login(client, "ines", PW).status_code == 401
    wrong = _login(client, "hugo", "not the password at all")
    assert wrong.status_code == 401 and "Wrong account name" in wrong.json()["detail"]
    assert _login(client, "hugo", "").status_code in (401, 422)  # never an anonymous bind
    assert _accounts(api)["hugo"].failed_logins >= 1
    for _ in range(6):  # the lockout applies as for local accounts
        _login(client, "hugo", "still not the password")
    assert _login(client, "hugo", PW).status_code == 429
    tree.modify(blocked, userAccountControl="512")  # enabled again in the directory
    assert _sync(client, admin)["counts"]["users_enabled"] == 1
    assert _login(client, "ines", PW).status_code == 200
    assert "user.enable" in [e["event"] for e in _entries(api, "user.")]


# -- failures ------------------------------------------------------------------------------
@pytest.mark.parametrize(("change", "message"), [
    ({"url": "ldap://127.0.0.1:1"}, "cannot be reached"),
    ({"bind_dn": "cn=nobody,dc=example,dc=org"}, "refused the service account"),
    ({"user_base": "ou=missing,dc=example,dc=org"}, "has no entry"),
    ({"bind_dn": LIMITED_DN}, "only part of the entries"),
])
def test_a_failing_directory_changes_nothing(
        api: Api, tree: Tree, client: TestClient, admin: dict[str, str],
        change: dict[str, str], message: str) -> None:
    tree.group("crew", tree.user("ugo", PW), tree.user("vera", PW))
    assert _sync(client, admin)["counts"]["users_created"] == 2
    tree.delete(f"uid=vera,{tree.people}")  # a change the failed sync must not apply
    if change.get("bind_dn") == LIMITED_DN:  # over its 1000-entry limit: a partial read
        conn = tree.conn()
        for n in range(1001):
            conn.add(f"uid=x{n},{tree.people}", ["inetOrgPerson"],
                     {"cn": "x", "sn": "x", "uid": f"x{n}"})
    before = _accounts(api)
    _configure(api, **change)
    body = _sync(client, admin, 503)
    _configure(api, url=api.settings.ldap.url, bind_dn=READER_DN, user_base=tree.people)
    assert message in body["detail"] and body["hint"]
    assert body["title"] == "The directory (LDAP) is unavailable"
    after = _accounts(api)
    assert {n: (u.disabled, u.roles) for n, u in after.items()} == {
        n: (u.disabled, u.roles) for n, u in before.items()}
    failure = _entries(api, "directory.sync.failure")[-1]["details"]
    assert not failure["ok"] and message in failure["error"]
    status = client.get("/v1/directory", headers=admin).json()
    assert status["last"]["ok"] is False and message in status["last"]["error"]
    assert _members(client, admin, "crew") == ["ugo", "vera"]
    assert _sync(client, admin)["counts"]["users_disabled"] == 1  # fixed: it applies


def test_an_unreachable_directory_does_not_stop_local_sign_in(
        api: Api, tree: Tree, client: TestClient, admin: dict[str, str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    tree.user("walt", PW)
    _sync(client, admin)
    closed = api.settings.ldap.model_copy(update={"url": "ldap://127.0.0.1:1", "timeout_s": 2})
    monkeypatch.setattr(api.rt.identity, "directory_login",  # the real client, no server
                        LdapDirectory(closed, None).verify_password)
    refused = _login(client, "walt", PW)
    assert refused.status_code == 503 and "Directory sign-in" in refused.json()["detail"]
    assert _accounts(api)["walt"].failed_logins == 0  # not the user's failure
    assert _login(client, "lena", api.passwords["lena"]).status_code == 200
    code = pyotp.TOTP(api.totp["root-admin"]).at(time.time() + 30)  # this step's is spent
    assert client.post("/v1/auth/login", json={
        "name": "root-admin", "password": api.passwords["root-admin"], "totp": code,
    }).status_code == 200  # the break-glass admin


def test_who_may_sync_and_one_sync_at_a_time(
        api: Api, tree: Tree, client: TestClient, admin: dict[str, str]) -> None:
    reader = bearer(api.token("lena", "read"))
    assert client.post("/v1/directory/sync", headers=reader).status_code == 403
    assert client.get("/v1/directory", headers=reader).status_code == 403
    assert client.post("/v1/directory/sync").status_code == 401
    with api.rt.directory_state.lock:
        with pytest.raises(ConflictError, match="already running"):
            use.sync_directory(api.rt, ROOT_OP)
        assert client.get("/v1/directory", headers=admin).json()["running"] is True
    _configure(api, url=None)
    with pytest.raises(ConflictError, match="No directory is configured"):
        use.sync_directory(api.rt, ROOT_OP)
    assert client.get("/v1/directory", headers=admin).json()["configured"] is False


def test_the_schedule_syncs_when_due(api: Api, tree: Tree) -> None:
    tree.user("xena", PW)
    _configure(api, every_minutes=5)
    an_hour_ago = datetime.now(UTC) - timedelta(hours=1)
    api.rt.directory_state.record(SyncOut(ok=True, started_at=an_hour_ago,
                                          finished_at=an_hour_ago, by="test"))
    stop = threading.Event()
    thread = threading.Thread(target=use.run_schedule, args=(api.rt, ROOT_OP, stop, 0.02))
    before = len(_entries(api, "directory.sync"))
    try:
        thread.start()
        for _ in range(200):
            if "xena" in _accounts(api):
                break
            stop.wait(0.02)
        stop.wait(0.2)  # not due again for 5 minutes: no second sync
    finally:
        stop.set()
        thread.join()
    assert "xena" in _accounts(api)
    assert len(_entries(api, "directory.sync")) == before + 1
    assert not use.due(api.rt, api.rt.directory_state.last(Path("/nonexistent"))
                       .started_at.timestamp() + 60)


# -- access control, end to end --------------------------------------------------------------
def test_a_directory_user_reads_what_his_directory_group_may_and_loses_it(
        api: Api, tree: Tree, client: TestClient, admin: dict[str, str],
        tmp_path: Path) -> None:
    yves, zara = tree.user("yves", PW), tree.user("zara", PW)
    paie = tree.group("paie", yves)
    tree.group("rh", paie)  # yves is in rh through paie
    tree.group("ventes", zara)
    _sync(client, admin)
    ids = {g["name"]: g["id"] for g in client.get("/v1/groups", headers=admin,
                                                  params={"limit": 500}).json()["items"]}
    for name, group, text in (("grille", "rh", "Grille des salaires: code KX-4471."),
                              ("tarifs", "ventes", "Tarifs clients: code KX-9902.")):
        folder = tmp_path / name
        folder.mkdir()
        (folder / f"{name}.txt").write_text(text)
        with api.rt.using() as app:
            app.ingest([folder], acl=(f"g:{ids[group]}",))
    with api.client() as session:
        login = _login(session, "yves", PW)
        assert login.status_code == 200, login.text
        csrf = {"X-CSRF-Token": login.json()["csrf_token"]}

        def found() -> set[str]:
            hits = session.post("/v1/search", headers=csrf,
                                json={"query": "code KX", "mode": "bm25"})
            assert hits.status_code == 200, hits.text
            return {p["document"] for p in hits.json()["passages"]}

        assert found() == {"grille.txt"}
        tree.set_members(paie, zara)  # the directory takes yves out
        assert found() == {"grille.txt"}  # until the next sync
        _sync(client, admin)
        assert found() == set()  # from the next request after it
        assert "rh" not in session.get("/v1/me").json()["groups"]


# -- paging -----------------------------------------------------------------------------------
def test_a_large_directory_is_read_in_pages(api: Api, tree: Tree, client: TestClient,
                                            admin: dict[str, str]) -> None:
    conn = tree.conn()
    dns = []
    for n in range(1200):  # over slapd's 1000-entry size limit: only paging reads them all
        dn = f"uid=p{n},{tree.people}"
        conn.add(dn, ["inetOrgPerson"], {"cn": "p", "sn": "p", "uid": f"p{n}"})
        dns.append(dn)
    tree.group("everyone", *dns)
    result = _sync(client, admin)
    assert result["counts"]["users_created"] == 1200
    assert len(_members(client, admin, "everyone")) == 1200


# -- settings and the CLI ------------------------------------------------------------------
@pytest.mark.unit
@pytest.mark.parametrize(("ldap", "refused"), [
    ({"url": "ldap://dc1.example.org", "user_base": "o=x", "group_base": "o=x"}, "in clear"),
    ({"url": "ldaps://dc1.example.org", "start_tls": True, "user_base": "o=x",
      "group_base": "o=x"}, "start_tls is for ldap://"),
    ({"url": "ldaps://dc1.example.org"}, "needs ldap.user_base"),
    ({"url": "http://dc1.example.org", "user_base": "o=x", "group_base": "o=x"}, "ldaps://"),
])
def test_unsafe_directory_settings_are_refused(tmp_path: Path, ldap: dict[str, Any],
                                               refused: str) -> None:
    from appliance import load_settings
    from security import ConfigError

    with pytest.raises(ConfigError, match=refused):
        load_settings(None, data_dir=str(tmp_path), ldap=ldap)
    fine = {**ldap, "url": "ldap://dc1.example.org", "start_tls": True,
            "user_base": "o=x", "group_base": "o=x"}
    assert load_settings(None, data_dir=str(tmp_path), ldap=fine).ldap.enabled


@pytest.mark.unit
def test_the_service_password_comes_from_an_owner_only_file(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from appliance._directory_settings import LdapSettings, require_password
    from security import ConfigError

    ldap = LdapSettings(url="ldaps://dc1", bind_dn="cn=x", user_base="o=x", group_base="o=x")
    monkeypatch.delenv("GREFFIER_LDAP_PASSWORD", raising=False)
    with pytest.raises(ConfigError, match="its password is not"):
        require_password(ldap)
    secret = tmp_path / "ldap.pw"
    secret.write_text("s3cret\n")
    secret.chmod(0o644)
    monkeypatch.setenv("GREFFIER_LDAP_PASSWORD_FILE", str(secret))
    with pytest.raises(ConfigError, match="can be read by others"):
        require_password(ldap)
    secret.chmod(0o600)
    assert require_password(ldap) == "s3cret"


@pytest.mark.e2e
def test_greffier_directory_commands(tmp_path: Path, slapd: Slapd) -> None:  # noqa: F811
    from clirun import _env, _init, _run

    tree = slapd.tree()
    tree.group("crew", tree.user("ana", PW), tree.user("ben", PW))
    data = tmp_path / "data"
    _init(data)
    env = {**_env(data), "GREFFIER_LDAP__URL": slapd.url, "GREFFIER_LDAP__BIND_DN": READER_DN,
           "GREFFIER_LDAP__USER_BASE": tree.people, "GREFFIER_LDAP__GROUP_BASE": tree.groups,
           "GREFFIER_LDAP_PASSWORD": READER_PW}
    assert "never synced" in _run(["directory", "status"], data, env=env).stdout
    synced = json.loads(_run(["directory", "sync", "--json"], data, env=env).stdout)
    assert synced["ok"] and synced["counts"]["users_created"] == 2
    assert synced["by"].endswith("(local operator)")
    status = _run(["directory", "status"], data, env=env).stdout  # a new process: the log
    assert "users: 2 created" in status and "memberships: +2" in status
    shown = json.loads(_run(["groups", "show", "crew", "--json"], data, env=env).stdout)
    assert shown["members"] == ["ana", "ben"]
    down = _run(["directory", "sync"], data, check=False,
                env={**env, "GREFFIER_LDAP__URL": "ldap://127.0.0.1:1"})
    assert down.returncode != 0 and "cannot be reached" in down.stderr
    assert "Traceback" not in down.stderr
    assert "FAILED" in _run(["directory", "status"], data, env=env).stdout
