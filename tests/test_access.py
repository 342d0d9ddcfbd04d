"""Who may read what, end to end through the real API: the permission matrix.

20 accounts in overlapping groups, 200 documents each holding its own canary, each readable
by some groups (and a few by one account). Nine accounts and four groups come from a real
OpenLDAP directory (tests/slapd.py), one of them nested in another; the directory accounts
are also members of local groups. The whole module runs on SQLite, then on PostgreSQL. More
than 1,000 probes through search, ask and ``/v1/chat/completions`` (the model service is
down: answers degrade to their passages, which is what a leak would show), the document
list, metadata, downloads and receipts: no canary reaches an account outside its document's
readers, and every reader reaches every canary he may read. Then memberships and a
document's access are revoked mid-run, and the probes run again, and the directory takes an
account out of a group."""

from __future__ import annotations

import random
import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from apiharness import ROOT_OP, Api, api_settings, bearer
from fastapi.testclient import TestClient
from slapd import READER_DN, READER_PW, Slapd, Tree, slapd  # noqa: F401
from sqlalchemy import delete, select

from appliance.db import Group, Membership, User
from appliance.service import _directory as directory
from appliance.service._access import WITHHELD

pytestmark = pytest.mark.integration

USERS = [f"user{n:02d}" for n in range(20)]
GROUPS = [f"team{n}" for n in range(8)]
LDAP_USERS = USERS[10:19]  # user10..user18 sign in with their directory password
LOCAL_GROUPS, LDAP_GROUPS = GROUPS[:4], GROUPS[4:]
NESTED = ("team6", "team7")  # the directory's team6 is a member of team7
DOCS = 200
CANARY = re.compile(r"CANARY-\d{3}-[A-Z]{4}")


class World:
    def __init__(self, api: Api, tokens: dict[str, str], members: dict[str, set[str]],
                 acl: dict[int, set[str]], canary: dict[int, str],
                 group_entry: dict[str, str], user_ids: dict[str, str]) -> None:
        self.api, self.tokens, self.members, self.acl = api, tokens, members, acl
        self.canary, self.group_entry, self.user_ids = canary, group_entry, user_ids
        self.doc_ids: dict[int, str] = {}
        self.directory: Directory | None = None

    def may_read(self, user: str, doc: int) -> bool:
        entries = {f"g:{self.group_entry[g]}" for g in self.members[user]}
        entries.add(f"u:{self.user_ids[user]}")
        return bool(entries & self.acl[doc])

    def readable(self, user: str) -> set[str]:
        return {self.canary[d] for d in self.acl if self.may_read(user, d)}


class Directory:
    """The directory's side of the world: its tree, and a sync run as the break-glass
    admin."""

    def __init__(self, api: Api, tree: Tree, dns: dict[str, str],
                 outer_by_name: set[str]) -> None:
        self.api, self.tree, self.dns, self.outer_by_name = api, tree, dns, outer_by_name

    def sync(self) -> None:
        out = directory.sync_directory(self.api.rt, ROOT_OP)
        assert not out.conflicts, out


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def world(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
          slapd: Slapd) -> Iterator[World]:  # noqa: F811
    rng = random.Random(20261122)
    root = tmp_path_factory.mktemp("access")
    database = {}
    if request.param == "postgresql":
        database = {"url": request.getfixturevalue("postgres_server").new_database()}
    tree = slapd.tree()
    api = Api(api_settings(root, database=database, ldap={
        "url": slapd.url, "bind_dn": READER_DN, "user_base": tree.people,
        "group_base": tree.groups, "default_roles": ["reader"]}))
    request.getfixturevalue("monkeypatch_module").setenv("GREFFIER_LDAP_PASSWORD", READER_PW)
    members = {u: set(rng.sample(GROUPS if u in LDAP_USERS else LOCAL_GROUPS,
                                 rng.randint(1, 3))) for u in USERS}
    members["user19"] = set()  # in no group: reads only what is granted to him by name
    for n, name in enumerate(USERS):
        if name not in LDAP_USERS:
            api.user(name, "editor" if n % 5 == 0 else "reader")
    dns = {}
    for name in LDAP_USERS:
        api.passwords[name] = f"directory password of {name}"
        dns[name] = tree.user(name, api.passwords[name])
    group_dns = {}
    for g in (g for g in LDAP_GROUPS if g != NESTED[1]):
        group_dns[g] = tree.group(g, *[dns[u] for u in LDAP_USERS if g in members[u]])
    inner, outer = NESTED
    outer_by_name = {u for u in LDAP_USERS if outer in members[u]}
    group_dns[outer] = tree.group(outer, group_dns[inner], *[dns[u] for u in outer_by_name])
    for u in LDAP_USERS:  # a member of the inner group is one of the outer group
        if inner in members[u]:
            members[u].add(outer)
    ldap = Directory(api, tree, dns, outer_by_name)
    ldap.sync()
    group_entry = {}
    for g in LOCAL_GROUPS:
        entry = api.group(g, *[u for u in USERS if g in members[u]])
        group_entry[g] = entry.removeprefix("g:")
    with api.rt.identity.db.session() as s:
        user_ids = dict(s.execute(select(User.name, User.id)).all())
        group_entry.update(s.execute(select(Group.name, Group.id).where(
            Group.origin == "ldap")).all())
        origins = dict(s.execute(select(User.name, User.origin)).all())
    assert {u for u in USERS if origins[u] == "ldap"} == set(LDAP_USERS)
    acl: dict[int, set[str]] = {}
    canary: dict[int, str] = {}
    folders: dict[tuple[str, ...], Path] = {}
    for d in range(DOCS):
        entries = {f"g:{group_entry[g]}" for g in rng.sample(GROUPS, rng.randint(1, 2))}
        if d % 25 == 0:
            entries = {f"u:{user_ids['user19']}"}  # one account, by name
        acl[d] = entries
        canary[d] = f"CANARY-{d:03d}-{''.join(rng.choices('ABCDEFGHJKLMNPQRSTUVWXYZ', k=4))}"
        key = tuple(sorted(entries))
        folder = folders.setdefault(key, root / "docs" / f"acl{len(folders)}")
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"note-{d:03d}.txt").write_text(
            f"Note de service {d}. Le code du casier numéro {d} est {canary[d]}.\n"
            f"Ce code est strictement personnel.", encoding="utf-8")
    with api.rt.using() as app:
        for key, folder in folders.items():
            app.ingest([folder], acl=key)
    tokens = {u: api.token(u, "read", "ask", *(("ingest",) if u in ("user00",) else ()))
              for u in USERS}
    w = World(api, tokens, members, acl, canary, group_entry, user_ids)
    w.directory = ldap
    with api.rt.using() as app:
        by_name = {Path(doc.path).name: doc.doc_id for doc in app.catalog.documents()}
    w.doc_ids = {d: by_name[f"note-{d:03d}.txt"] for d in range(DOCS)}
    yield w
    api.close()


@pytest.fixture(scope="module")
def monkeypatch_module() -> Iterator[pytest.MonkeyPatch]:
    with pytest.MonkeyPatch.context() as mp:
        yield mp


@pytest.fixture
def client(world: World) -> Iterator[TestClient]:
    with world.api.client() as c:
        yield c


def _seen(payload: object) -> set[str]:
    """Canaries in a response, outside the echo of the caller's own question."""
    if isinstance(payload, dict):
        return set().union(*(_seen(v) for k, v in payload.items()
                             if k not in ("query", "question")), set())
    if isinstance(payload, list):
        return set().union(*(_seen(v) for v in payload), set())
    return set(CANARY.findall(str(payload)))


def _probe(world: World, client: TestClient, rng: random.Random, per_user: int) -> int:
    """Probe every account with search, ask and chat; returns how many probes ran."""
    probes = 0
    for user in USERS:
        auth = bearer(world.tokens[user])
        allowed = world.readable(user)
        docs = rng.sample(range(DOCS), per_user)
        for n, d in enumerate(docs):
            question = f"Quel est le code du casier numéro {d} ? {world.canary[d]}"
            found = client.post("/v1/search", headers=auth,
                                json={"query": question, "k": 5, "mode": "bm25"})
            assert found.status_code == 200, found.text
            seen = _seen(found.json())
            # Every reader reaches the canary he may read (its unique token is searched).
            assert (world.canary[d] in seen) == (world.canary[d] in allowed), (user, d)
            probes += 1
            if n % 5 == 0:
                asked = client.post("/v1/ask", headers=auth, json={"question": question})
                assert asked.status_code == 200, asked.text
                assert _seen(asked.json()) <= allowed, user
                chat = client.post("/v1/chat/completions", headers=auth, json={
                    "model": "greffier", "messages": [{"role": "user", "content": question}]})
                assert chat.status_code == 200, chat.text
                assert _seen(chat.json()) <= allowed, user
                receipt = client.get(f"/v1/answers/{asked.json()['id']}/receipt",
                                     headers=auth)
                assert receipt.status_code == 200 and _seen(receipt.json()) == set()
                other = USERS[(USERS.index(user) + 1) % len(USERS)]
                stolen = client.get(f"/v1/answers/{asked.json()['id']}/receipt",
                                    headers=bearer(world.tokens[other]))
                assert stolen.status_code == 404
                probes += 4
    return probes


def _documents(world: World, client: TestClient, user: str) -> set[str]:
    auth = bearer(world.tokens[user])
    listed = client.get("/v1/documents", headers=auth, params={"limit": 500})
    assert listed.status_code == 200
    return {item["doc_id"] for item in listed.json()["items"]}


def _check_documents(world: World, client: TestClient, rng: random.Random) -> int:
    probes = 0
    for user in USERS:
        auth = bearer(world.tokens[user])
        expected = {world.doc_ids[d] for d in range(DOCS) if world.may_read(user, d)}
        assert _documents(world, client, user) == expected, user
        for d in rng.sample(range(DOCS), 6):
            doc_id = world.doc_ids[d]
            meta = client.get(f"/v1/documents/{doc_id}", headers=auth)
            body = client.get(f"/v1/documents/{doc_id}/content", headers=auth)
            if world.may_read(user, d):
                assert meta.status_code == 200 and world.canary[d] in body.text
            else:  # not found, exactly like a document that does not exist
                assert meta.status_code == 404 and body.status_code == 404
                assert world.canary[d] not in body.text
            probes += 2
    return probes


def test_no_canary_reaches_an_outsider_and_every_reader_reaches_his(
        world: World, client: TestClient) -> None:
    rng = random.Random(1)
    probes = _probe(world, client, rng, per_user=40)
    probes += _check_documents(world, client, rng)
    assert probes >= 1000
    # Mid-run revocations: user03 leaves his groups; document 7 is taken from its groups
    # and granted to user05 alone.
    api = world.api
    with api.rt.identity.db.session() as s:
        s.execute(delete(Membership).where(Membership.user_id == world.user_ids["user03"]))
    world.members["user03"] = set()
    admin_password = api.user("root-admin", "admin")
    assert admin_password
    admin = api.token("root-admin", "admin")
    changed = client.put(f"/v1/documents/{world.doc_ids[7]}/access", headers=bearer(admin),
                         json={"users": ["user05"]})
    assert changed.status_code == 200, changed.text
    assert changed.json()["users"] == ["user05"] and changed.json()["groups"] == []
    world.acl[7] = {f"u:{world.user_ids['user05']}"}
    # The directory takes a directory account out of the nested inner group (and so out of
    # the outer one, unless he is in it by name); the next request follows.
    ldap = world.directory
    assert ldap is not None
    inner, outer = NESTED
    leaver = next(u for u in LDAP_USERS if inner in world.members[u])
    ldap.tree.set_members(f"cn={inner},{ldap.tree.groups}", *[
        ldap.dns[u] for u in LDAP_USERS if inner in world.members[u] and u != leaver])
    ldap.sync()
    world.members[leaver].discard(inner)
    if leaver not in ldap.outer_by_name:
        world.members[leaver].discard(outer)
    with api.rt.identity.db.session() as s:
        now = set(s.scalars(select(Group.name).join(Membership).where(
            Membership.user_id == world.user_ids[leaver])))
    assert now == world.members[leaver]
    probes = _probe(world, client, random.Random(2), per_user=15)
    probes += _check_documents(world, client, random.Random(3))
    assert probes >= 400


def test_a_deduplicated_content_shows_only_the_readable_document(
        world: World, client: TestClient, tmp_path: Path) -> None:
    """The same bytes under two names with different readers: each reader sees the
    passage through his document only."""
    api = world.api
    text = "Procédure confidentielle : le mot de passe du coffre est CANARY-999-DUPL."
    for name, group in (("public", "team0"), ("secret", "team1")):
        folder = tmp_path / name
        folder.mkdir()
        (folder / f"{name}.txt").write_text(text, encoding="utf-8")
        with api.rt.using() as app:
            app.ingest([folder], acl=(f"g:{world.group_entry[group]}",))
    only0 = next(u for u in USERS if world.members[u] >= {"team0"}
                 and "team1" not in world.members[u])
    hits = [h for h in client.post("/v1/search", headers=bearer(world.tokens[only0]), json={
        "query": "CANARY-999-DUPL coffre", "mode": "bm25"}).json()["passages"]
        if "CANARY-999-DUPL" in h["text"]]
    assert hits and {h["document"] for h in hits} == {"public.txt"}
    outsider = next(u for u in USERS if not world.members[u] & {"team0", "team1"})
    hits = client.post("/v1/search", headers=bearer(world.tokens[outsider]), json={
        "query": "CANARY-999-DUPL coffre", "mode": "bm25"}).json()["passages"]
    assert not any("CANARY-999-DUPL" in h["text"] for h in hits)


def test_uploads_grant_only_the_uploaders_groups(world: World, client: TestClient) -> None:
    editor = "user00"
    auth = bearer(world.tokens[editor])
    own = sorted(world.members[editor])[0]
    foreign = next(g for g in GROUPS if g not in world.members[editor])
    refused = client.post("/v1/documents", headers=auth, params={"groups": [foreign]},
                          files={"file": ("x.txt", b"CANARY-998-UPLD", "text/plain")})
    assert refused.status_code == 403
    default = client.post("/v1/documents", headers=auth,
                          files={"file": ("mine.txt", b"Mine: CANARY-997-MINE", "text/plain")})
    assert default.status_code == 202
    shared = client.post("/v1/documents", headers=auth, params={"groups": [own]},
                         files={"file": ("ours.txt", b"Ours: CANARY-996-OURS", "text/plain")})
    assert shared.status_code == 202
    for job in (default.json()["id"], shared.json()["id"]):
        for _ in range(600):
            state = client.get(f"/v1/jobs/{job}", headers=auth).json()["state"]
            if state not in ("queued", "running"):
                break
            time.sleep(0.1)
        assert state == "done"
    mate = next(u for u in USERS if u != editor and own in world.members[u])
    for user, query, visible in ((editor, "CANARY-997-MINE", True),
                                 (mate, "CANARY-997-MINE", False),
                                 (mate, "CANARY-996-OURS", True)):
        found = client.post("/v1/search", headers=bearer(world.tokens[user]),
                            json={"query": query, "mode": "bm25"}).json()["passages"]
        assert any(query in p["text"] for p in found) == visible, (user, query)


def test_a_conversation_withholds_answers_from_documents_no_longer_readable(
        world: World, client: TestClient) -> None:
    api = world.api
    reader = next(u for u in USERS if any(world.may_read(u, d) for d in range(DOCS)))
    doc = next(d for d in range(DOCS) if world.may_read(reader, d) and d != 7)
    auth = bearer(world.tokens[reader])
    asked = client.post("/v1/ask", headers=auth, json={
        "question": f"Quel est le code du casier numéro {doc} ? {world.canary[doc]}"})
    assert asked.status_code == 200 and world.canary[doc] in asked.text
    conv_id = asked.json()["conversation_id"]
    before = client.get(f"/v1/conversations/{conv_id}", headers=auth).json()
    assert before["messages"][1]["content"] != WITHHELD
    admin = api.token("root-admin", "admin") if "root-admin" in api.passwords else None
    if admin is None:
        api.user("root-admin", "admin")
        admin = api.token("root-admin", "admin")
    outsider = next(u for u in USERS if u != reader)
    client.put(f"/v1/documents/{world.doc_ids[doc]}/access", headers=bearer(admin),
               json={"users": [outsider]})
    world.acl[doc] = {f"u:{world.user_ids[outsider]}"}
    after = client.get(f"/v1/conversations/{conv_id}", headers=auth).json()
    assert [m["role"] for m in after["messages"]] == ["user", "assistant"]
    assert after["messages"][1]["content"] == WITHHELD
    assert world.canary[doc] not in str(after["messages"][1])


def test_denials_are_recorded_and_an_auditor_lists_who_read_a_document(
        world: World, client: TestClient) -> None:
    api = world.api
    api.user("audra", "auditor")
    auditor = bearer(api.token("audra", "audit"))
    doc = 42
    reader = next(u for u in USERS if world.may_read(u, doc))
    outsider = next(u for u in USERS if not world.may_read(u, doc))
    client.post("/v1/search", headers=bearer(world.tokens[reader]),
                json={"query": world.canary[doc], "mode": "bm25"})
    client.get(f"/v1/documents/{world.doc_ids[doc]}/content",
               headers=bearer(world.tokens[reader]))
    hidden = client.get(f"/v1/documents/{world.doc_ids[doc]}",
                        headers=bearer(world.tokens[outsider]))
    missing = client.get("/v1/documents/no-such-document",
                         headers=bearer(world.tokens[outsider]))
    assert hidden.status_code == missing.status_code == 404
    assert hidden.json()["detail"].replace(world.doc_ids[doc], "X") == \
        missing.json()["detail"].replace("no-such-document", "X")  # indistinguishable
    reads = client.get("/v1/audit/reads", headers=auditor,
                       params={"doc_id": world.doc_ids[doc]})
    assert reads.status_code == 200, reads.text
    by_event = {(e["event"], e["user"].split(" ")[0]) for e in reads.json()}
    assert ("search", reader) in by_event and ("download", reader) in by_event
    assert not any(user == outsider for _, user in by_event)
    assert client.get("/v1/audit/reads", headers=bearer(world.tokens[reader]),
                      params={"doc_id": world.doc_ids[doc]}).status_code == 403
    log = (api.settings.data_dir / "audit" / "log.jsonl").read_text()
    denials = [line for line in log.splitlines() if '"event":"denied"' in line
               and "document not readable" in line and world.doc_ids[doc] in line]
    assert denials and world.canary[doc] not in "".join(denials)
