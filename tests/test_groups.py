"""Groups through the real app, on SQLite then on a real PostgreSQL: every route and every
role, the error shapes, the audit trail, idempotent member changes that hold from the
member's very next request; and ``greffier groups`` as a user runs it."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from apiharness import ROOT_OP, Api, api_settings, bearer
from clirun import _init, _run
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
)

from appliance.service import _groups as use
from security import ConflictError, InvalidRequestError, NotFoundError

pytestmark = pytest.mark.integration

ROUTES = [("GET", "/v1/groups", None), ("POST", "/v1/groups", {"name": "intruders"}),
          ("GET", "/v1/groups/staff", None), ("DELETE", "/v1/groups/staff", None),
          ("PUT", "/v1/groups/staff/members/bob", None),
          ("DELETE", "/v1/groups/staff/members/alice", None)]


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def api(request: pytest.FixtureRequest,
        tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    root = tmp_path_factory.mktemp("groups")
    database = {}
    if request.param == "postgresql":
        database = {"url": request.getfixturevalue("postgres_server").new_database()}
    api = Api(api_settings(root, database=database))
    for name, role in (("alice", "reader"), ("bob", "reader"), ("carol", "reader"),
                       ("edith", "editor"), ("adam", "admin"), ("audrey", "auditor")):
        api.user(name, role)
    api.group("staff", "alice")
    yield api
    api.close()


@pytest.fixture(scope="module")
def tokens(api: Api) -> dict[str, str]:
    return {"alice": api.token("alice", "read"), "bob": api.token("bob", "read"),
            "carol": api.token("carol", "read"), "edith": api.token("edith", "read", "ingest"),
            "adam": api.token("adam", "admin"), "audrey": api.token("audrey", "audit")}


@pytest.fixture
def client(api: Api) -> Iterator[TestClient]:
    with api.client() as c:
        yield c


@pytest.fixture
def admin(tokens: dict[str, str]) -> dict[str, str]:
    return bearer(tokens["adam"])


def _problem(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    assert body["status"] == status and body["title"] and "Traceback" not in response.text
    return body


def _entries(api: Api, event: str) -> list[dict[str, Any]]:
    lines = (api.settings.data_dir / "audit" / "log.jsonl").read_text().splitlines()
    return [e for e in map(json.loads, lines) if e["event"] == event]


def _me(client: TestClient, headers: dict[str, str] | None = None) -> list[str]:
    response = client.get("/v1/me", headers=headers or {})
    assert response.status_code == 200, response.text
    groups: list[str] = response.json()["groups"]
    return groups


# -- the routes, by an admin ---------------------------------------------------------------
def test_an_admin_creates_shows_lists_and_deletes_a_group(
        api: Api, client: TestClient, admin: dict[str, str]) -> None:
    created = client.post("/v1/groups", headers=admin, json={"name": "legal"})
    assert created.status_code == 201, created.text
    group = created.json()
    assert group["name"] == "legal" and group["members"] == [] and len(group["id"]) == 32
    assert client.put("/v1/groups/legal/members/bob", headers=admin).status_code == 200
    shown = client.get("/v1/groups/legal", headers=admin).json()
    assert shown == {**group, "members": ["bob"]}
    listed = client.get("/v1/groups", headers=admin).json()
    assert {"id": group["id"], "name": "legal", "members": 1,
            "created_at": group["created_at"]} in listed["items"]
    deleted = client.delete("/v1/groups/legal", headers=admin)
    assert deleted.status_code == 200 and deleted.json()["members"] == ["bob"]
    _problem(client.get("/v1/groups/legal", headers=admin), 404)
    _problem(client.delete("/v1/groups/legal", headers=admin), 404)
    assert "legal" not in [g["name"] for g in client.get("/v1/groups", headers=admin)
                           .json()["items"]]
    actor = _entries(api, "group.create")[-1]["user"]
    assert actor.startswith("adam (token ")
    assert {"group": "legal", "group_id": group["id"]} in [
        e["details"] for e in _entries(api, "group.create")]
    assert {"group": "legal", "group_id": group["id"], "members": ["bob"]} in [
        e["details"] for e in _entries(api, "group.delete") if e["user"] == actor]


def test_group_names_follow_the_rule_of_account_names(
        api: Api, client: TestClient, admin: dict[str, str]) -> None:
    for bad in ("Legal", "-legal", "le gal", "légal", "legal\n", "a" * 65):
        body = _problem(client.post("/v1/groups", headers=admin, json={"name": bad}), 422)
        assert "group name" in body["detail"] or body.get("errors"), body
    body = _problem(client.post("/v1/groups", headers=admin, json={"name": "Legal"}), 422)
    assert body["detail"] == "'Legal' is not a valid group name." and "lower-case" in body["hint"]
    _problem(client.post("/v1/groups", headers=admin, json={"name": "x", "extra": 1}), 422)
    _problem(client.post("/v1/groups", headers=admin, json={}), 422)
    for name in ("a", "a" * 64, "rh.paie_2024-b"):
        assert client.post("/v1/groups", headers=admin, json={"name": name}).status_code == 201
    with pytest.raises(InvalidRequestError):
        use.create_group(api.rt, ROOT_OP, "NOPE")  # the use case checks, whoever calls


def test_duplicates_and_unknown_names_are_clear_problems(
        client: TestClient, admin: dict[str, str]) -> None:
    assert client.post("/v1/groups", headers=admin, json={"name": "finance"}).status_code == 201
    body = _problem(client.post("/v1/groups", headers=admin, json={"name": "finance"}), 409)
    assert body["detail"] == "The group name 'finance' is taken." and body["hint"]
    body = _problem(client.get("/v1/groups/nowhere", headers=admin), 404)
    assert body["detail"] == "No group named 'nowhere'." and "groups list" in body["hint"]
    _problem(client.get("/v1/groups/NOT-A-NAME", headers=admin), 404)
    for method in ("PUT", "DELETE"):
        body = _problem(client.request(method, "/v1/groups/nowhere/members/bob",
                                       headers=admin), 404)
        assert "No group named" in body["detail"]
        body = _problem(client.request(method, "/v1/groups/finance/members/nobody",
                                       headers=admin), 404)
        assert body["detail"] == "No account named 'nobody'." and "users list" in body["hint"]


def test_the_list_is_paginated(client: TestClient, admin: dict[str, str]) -> None:
    for n in range(7):
        client.post("/v1/groups", headers=admin, json={"name": f"page-{n}"})
    client.put("/v1/groups/page-3/members/bob", headers=admin)
    client.put("/v1/groups/page-3/members/carol", headers=admin)
    seen: list[dict[str, Any]] = []
    offset: int | None = 0
    while offset is not None:
        page = client.get("/v1/groups", headers=admin, params={"offset": offset, "limit": 3})
        assert page.status_code == 200, page.text
        body = page.json()
        assert body["offset"] == offset and body["limit"] == 3 and len(body["items"]) <= 3
        seen += body["items"]
        offset = body["next_offset"]
    names = [g["name"] for g in seen]
    assert names == sorted(names) and len(names) == body["total"] == len(set(names))
    assert {f"page-{n}" for n in range(7)} <= set(names)
    counts = {g["name"]: g["members"] for g in seen}
    assert counts["page-3"] == 2 and counts["page-0"] == 0 and counts["staff"] >= 1
    _problem(client.get("/v1/groups", headers=admin, params={"limit": 0}), 422)
    _problem(client.get("/v1/groups", headers=admin, params={"offset": -1}), 422)


# -- who may ---------------------------------------------------------------------------------
@pytest.mark.parametrize("who", ["alice", "edith", "audrey"])
@pytest.mark.parametrize(("method", "path", "body"), ROUTES)
def test_readers_editors_and_auditors_are_refused_and_the_refusal_audited(
        api: Api, client: TestClient, tokens: dict[str, str], admin: dict[str, str],
        who: str, method: str, path: str, body: dict[str, str] | None) -> None:
    before = len(_entries(api, "denied"))
    problem = _problem(client.request(method, path, headers=bearer(tokens[who]), json=body),
                       403)
    assert problem["detail"] == f"{who} may not do this (groups)."
    denied = _entries(api, "denied")
    assert len(denied) == before + 1
    assert denied[-1]["user"].startswith(f"{who} (token ")
    assert denied[-1]["details"]["request"] == f"{method} {path}"
    assert client.get("/v1/groups/staff", headers=admin).json()["members"] == ["alice"]


@pytest.mark.parametrize(("method", "path", "body"), ROUTES)
def test_anonymous_callers_are_refused(client: TestClient, method: str, path: str,
                                       body: dict[str, str] | None) -> None:
    problem = _problem(client.request(method, path, json=body), 401)
    assert "token" in problem["hint"].lower()


def test_a_user_sees_his_own_groups_and_nobody_elses(
        client: TestClient, tokens: dict[str, str]) -> None:
    assert _me(client, bearer(tokens["alice"])) == ["staff"]
    _problem(client.get("/v1/groups/staff", headers=bearer(tokens["alice"])), 403)


# -- members -------------------------------------------------------------------------------
def test_member_changes_are_idempotent_and_audited_once(
        api: Api, client: TestClient, admin: dict[str, str]) -> None:
    client.post("/v1/groups", headers=admin, json={"name": "audit-me"})
    adds, removes = len(_entries(api, "group.member.add")), len(
        _entries(api, "group.member.remove"))
    first = client.put("/v1/groups/audit-me/members/carol", headers=admin).json()
    again = client.put("/v1/groups/audit-me/members/carol", headers=admin).json()
    assert first == {"group": "audit-me", "member": "carol", "member_of": True, "changed": True}
    assert again == {**first, "changed": False}
    assert client.get("/v1/groups/audit-me", headers=admin).json()["members"] == ["carol"]
    gone = client.delete("/v1/groups/audit-me/members/carol", headers=admin).json()
    still = client.delete("/v1/groups/audit-me/members/carol", headers=admin).json()
    assert gone == {"group": "audit-me", "member": "carol", "member_of": False,
                    "changed": True}
    assert still == {**gone, "changed": False}
    added, removed = _entries(api, "group.member.add"), _entries(api, "group.member.remove")
    assert len(added) == adds + 1 and len(removed) == removes + 1
    for entry in (added[-1], removed[-1]):
        assert entry["details"] == {"group": "audit-me", "member": "carol"}
        assert entry["user"].startswith("adam (token ")


def test_membership_changes_hold_from_the_next_request_for_sessions_and_tokens(
        api: Api, tmp_path: Path, admin: dict[str, str], tokens: dict[str, str]) -> None:
    with api.client() as admin_client:
        group = admin_client.post("/v1/groups", headers=admin, json={"name": "paie"}).json()
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "salaires.txt").write_text("Grille des salaires 2024: échelon 7, code ZX-81.")
    with api.rt.using() as app:
        app.ingest([docs], acl=(f"g:{group['id']}",))
    token = bearer(tokens["bob"])
    with api.client() as session, api.client() as adm:
        api.login(session, "bob")

        def visible() -> list[tuple[list[str], list[str], bool]]:
            seen = []
            for headers in ({}, token):  # the session, then the token
                listed = session.get("/v1/documents", headers=headers).json()["items"]
                seen.append((_me(session, headers), [d["name"] for d in listed],
                             "paie" in _me(session, headers)))
            return seen

        assert all(not member and names == [] for _, names, member in visible())
        adm.put("/v1/groups/paie/members/bob", headers=admin)
        assert all(member and names == ["salaires.txt"] for _, names, member in visible())
        adm.delete("/v1/groups/paie/members/bob", headers=admin)
        assert all(not member and names == [] for _, names, member in visible())
        adm.put("/v1/groups/paie/members/bob", headers=admin)
        assert all(member for *_, member in visible())
        adm.delete("/v1/groups/paie", headers=admin)  # deleting it takes it from its members
        assert all(not member and names == [] for _, names, member in visible())
        # the same name again is another group: the old grant does not come back
        adm.post("/v1/groups", headers=admin, json={"name": "paie"})
        adm.put("/v1/groups/paie/members/bob", headers=admin)
        assert all(member and names == [] for _, names, member in visible())


def test_deleting_a_group_takes_it_from_every_member(
        api: Api, client: TestClient, admin: dict[str, str], tokens: dict[str, str]) -> None:
    client.post("/v1/groups", headers=admin, json={"name": "project-x"})
    for user in ("alice", "carol"):
        client.put(f"/v1/groups/project-x/members/{user}", headers=admin)
    assert "project-x" in _me(client, bearer(tokens["alice"]))
    assert "project-x" in _me(client, bearer(tokens["carol"]))
    assert client.delete("/v1/groups/project-x", headers=admin).json()["members"] == [
        "alice", "carol"]
    assert "project-x" not in _me(client, bearer(tokens["alice"]))
    assert "project-x" not in _me(client, bearer(tokens["carol"]))
    assert _me(client, bearer(tokens["alice"])) == ["staff"]  # her other groups stay
    users = {u["name"]: u for u in client.get("/v1/users", headers=admin).json()}
    assert "project-x" not in users["alice"]["groups"] + users["carol"]["groups"]
    deleted = [e for e in _entries(api, "group.delete") if e["details"]["group"] == "project-x"]
    assert deleted[-1]["details"]["members"] == ["alice", "carol"]


def _at_once(action: Any, times: int = 6) -> tuple[list[Any], list[BaseException]]:
    results: list[Any] = []
    errors: list[BaseException] = []
    barrier = threading.Barrier(times)

    def run() -> None:
        barrier.wait()
        try:
            results.append(action())
        except BaseException as exc:  # reported to the caller
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(times)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results, errors


def test_concurrent_changes_make_one_group_one_membership_and_one_entry(api: Api) -> None:
    created, refused = _at_once(lambda: use.create_group(api.rt, ROOT_OP, "twin"))
    assert len(created) == 1 and len(refused) == 5
    assert all(isinstance(e, ConflictError) for e in refused), refused
    assert [e["details"]["group"] for e in _entries(api, "group.create")].count("twin") == 1
    before = len(_entries(api, "group.member.add"))
    added, errors = _at_once(lambda: use.add_member(api.rt, ROOT_OP, "twin", "carol").changed)
    assert not errors and sorted(added) == [False] * 5 + [True]
    assert len(_entries(api, "group.member.add")) == before + 1
    removed, errors = _at_once(
        lambda: use.remove_member(api.rt, ROOT_OP, "twin", "carol").changed)
    assert not errors and sorted(removed) == [False] * 5 + [True]
    with pytest.raises(NotFoundError):
        use.add_member(api.rt, ROOT_OP, "twin", "root")  # the operator is not an account


# -- the description ------------------------------------------------------------------------
def test_generated_requests_by_an_admin(api: Api, tokens: dict[str, str]) -> None:
    """schemathesis on the group routes as an admin (tests/test_api_schema.py sends an
    editor's token, which gets 403 here): no 5xx, responses as described."""
    schema = schemathesis.openapi.from_asgi("/openapi.json", api.app).include(
        path_regex="^/v1/groups")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) == 6
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(max_examples=15, deadline=None, derandomize=True, database=None,
                  suppress_health_check=list(HealthCheck))
        def check(case: schemathesis.Case) -> None:
            case.call_and_validate(headers=bearer(tokens["adam"]), checks=[
                not_a_server_error, response_schema_conformance, content_type_conformance])

        check()


# -- the CLI -------------------------------------------------------------------------------
@pytest.mark.e2e
def test_greffier_groups_commands(tmp_path: Path) -> None:
    data = tmp_path / "data"
    _init(data)
    _run(["users", "add", "alice", "--role", "reader"], data)
    assert _run(["groups", "add", "legal"], data).stdout.strip() == "created group legal"
    assert "added alice to legal" in _run(["groups", "members", "add", "legal", "alice"],
                                          data).stdout
    again = _run(["groups", "members", "add", "legal", "alice"], data).stdout
    assert "already in legal: nothing changed" in again
    listed = json.loads(_run(["groups", "list", "--json"], data).stdout)
    assert [(g["name"], g["members"]) for g in listed] == [("legal", 1)]
    shown = json.loads(_run(["groups", "show", "legal", "--json"], data).stdout)
    assert shown["members"] == ["alice"] and shown["id"] == listed[0]["id"]
    users = json.loads(_run(["users", "list", "--json"], data).stdout)
    assert users[0]["groups"] == ["legal"]
    assert "legal" in _run(["groups", "list"], data).stdout
    missing = _run(["groups", "show", "nope"], data, check=False)
    assert missing.returncode == 2 and "No group named 'nope'" in missing.stderr
    assert len(missing.stderr.strip().splitlines()) == 1 and "Traceback" not in missing.stderr
    bad = _run(["groups", "add", "Bad Name"], data, check=False)
    assert bad.returncode == 2 and "not a valid group name" in bad.stderr
    taken = _run(["groups", "add", "legal"], data, check=False)
    assert taken.returncode == 2 and "is taken" in taken.stderr
    assert "removed alice from legal" in _run(
        ["groups", "members", "remove", "legal", "alice"], data).stdout
    assert "was not in legal" in _run(["groups", "members", "remove", "legal", "alice"],
                                      data).stdout
    _run(["groups", "members", "add", "legal", "alice"], data)
    assert "1 member(s) removed" in _run(["groups", "delete", "legal"], data).stdout
    assert json.loads(_run(["users", "list", "--json"], data).stdout)[0]["groups"] == []
    lines = (data / "audit" / "log.jsonl").read_text().splitlines()
    events = [(e["event"], e["user"]) for e in map(json.loads, lines)
              if e["event"].startswith("group.")]
    operator = events[0][1]
    assert operator.endswith("(local operator)")
    assert events == [("group.create", operator), ("group.member.add", operator),
                      ("group.member.remove", operator), ("group.member.add", operator),
                      ("group.delete", operator)]
