"""Sources: an admin registers a server folder; syncs (on demand, on schedule) ingest it
and remove what left it."""

from __future__ import annotations

import grp
import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from apiharness import Api, api_settings, bearer
from fastapi.testclient import TestClient

from appliance.service import operator
from appliance.service._sources import due_sources, sync_source

pytestmark = pytest.mark.integration


@pytest.fixture
def api(tmp_path: Path) -> Iterator[Api]:
    api = Api(api_settings(tmp_path))
    api.user("adam", "admin")
    api.user("alice", "reader")
    api.user("bob", "reader")
    api.group("rh", "alice")
    yield api
    api.close()


def _done(client: TestClient, job_id: str, auth: dict[str, str]) -> dict[str, object]:
    for _ in range(600):
        job: dict[str, object] = client.get(f"/v1/jobs/{job_id}", headers=auth).json()
        if job["state"] not in ("queued", "running"):
            return job
        time.sleep(0.1)
    raise AssertionError("the sync did not finish")


def test_admin_registers_and_syncs_a_folder(api: Api, tmp_path: Path) -> None:
    share = tmp_path / "share"
    share.mkdir()
    (share / "a.txt").write_text("Les notes de frais sont remboursées sous trente jours.")
    (share / "b.txt").write_text("The parking is closed on Sundays.")
    admin = bearer(api.token("adam", "admin"))
    reader = bearer(api.token("alice", "read"))
    with api.client() as client:
        created = client.post("/v1/sources", headers=admin,
                              json={"name": "rh", "path": str(share), "groups": ["rh"]})
        assert created.status_code == 201, created.text
        source = created.json()
        assert source["groups"] == ["rh"]
        assert client.post("/v1/sources", headers=admin, json={
            "name": "nope", "path": str(share), "groups": ["no-such-group"]}).status_code == 422
        assert client.post("/v1/sources", headers=reader, json={
            "name": "x", "path": str(share)}).status_code == 403
        for bad in ("relative/path", str(tmp_path / "missing"), f"{share}/../share"):
            assert client.post("/v1/sources", headers=admin, json={
                "name": "bad", "path": bad}).status_code == 422
        job = _done(client, client.post(f"/v1/sources/{source['id']}/sync",
                                        headers=admin).json()["id"], admin)
        assert job["state"] == "done" and job["total"] == 2
        names = {d["name"] for d in client.get("/v1/documents", headers=reader).json()["items"]}
        assert names == {"a.txt", "b.txt"}
        # the folder's group reads it; an account outside it does not even see it listed
        outsider = bearer(api.token("bob", "read"))
        assert client.get("/v1/documents", headers=outsider).json()["items"] == []
        assert client.post("/v1/search", headers=outsider,
                           json={"query": "notes de frais"}).json()["passages"] == []
        # a file gone from the folder leaves the index at the next sync
        (share / "b.txt").unlink()
        job = _done(client, client.post(f"/v1/sources/{source['id']}/sync",
                                        headers=admin).json()["id"], admin)
        statuses = {f["name"]: f["status"] for f in job["files"]}  # type: ignore[union-attr]
        assert statuses.get("b.txt") == "removed"
        names = {d["name"] for d in client.get("/v1/documents", headers=reader).json()["items"]}
        assert names == {"a.txt"}
        listed = client.get("/v1/sources", headers=admin).json()
        assert listed[0]["path"] == str(share) and listed[0]["last_sync_at"]
        assert client.delete(f"/v1/sources/{source['id']}", headers=admin).status_code == 204
        assert client.get("/v1/sources", headers=admin).json() == []
    # the folder's path is sealed in the database
    assert str(share).encode() not in (api.settings.data_dir / "greffier.db").read_bytes()


def test_scheduled_sources_fall_due(api: Api, tmp_path: Path) -> None:
    share = tmp_path / "share"
    share.mkdir()
    (share / "c.txt").write_text("Badge office on floor two.")
    admin = bearer(api.token("adam", "admin"))
    with api.client() as client:
        source = client.post("/v1/sources", headers=admin, json={
            "name": "badges", "path": str(share), "every_minutes": 60}).json()
        client.post("/v1/sources", headers=admin, json={"name": "manual", "path": str(share)})
    assert due_sources(api.rt, time.time()) == [source["id"]]  # never synced: due now
    job = sync_source(api.rt, operator("scheduler"), source["id"])
    assert due_sources(api.rt, time.time()) == []
    assert due_sources(api.rt, time.time() + 3601) == [source["id"]]
    for _ in range(600):
        if job.state not in ("queued", "running"):
            break
        time.sleep(0.1)
    assert job.state == "done"


@pytest.mark.skipif(os.geteuid() != 0, reason="giving files to other groups needs root")
def test_a_source_maps_each_files_owning_group(api: Api, tmp_path: Path) -> None:
    """owning_group: a file owned by the POSIX group `staff` is also readable by the
    Greffier group `staff`; a group without a Greffier namesake adds nobody; a chgrp is
    followed at the next sync (the file's points re-stamped, its content unchanged)."""
    share = tmp_path / "share"
    share.mkdir()
    files = {"staff": "Réunion du personnel le mardi, salle Colbert.",
             "users": "Le wifi invité change de mot de passe chaque lundi.",
             "adm": "Les journaux système sont gardés un an."}
    for group, text in files.items():
        path = share / f"{group}.txt"
        path.write_text(text)
        os.chown(path, 0, grp.getgrnam(group).gr_gid)
    api.user("sam", "reader")
    api.group("staff", "alice")
    api.group("users", "bob")
    admin = bearer(api.token("adam", "admin"))
    readers = {u: bearer(api.token(u, "read")) for u in ("alice", "bob", "sam")}

    def names(client: TestClient, user: str) -> set[str]:
        items = client.get("/v1/documents", headers=readers[user]).json()["items"]
        return {d["name"] for d in items}

    with api.client() as client:
        source = client.post("/v1/sources", headers=admin, json={
            "name": "share", "path": str(share), "groups": ["rh"], "owning_group": True})
        assert source.status_code == 201, source.text
        assert source.json()["owning_group"] is True
        plain = client.post("/v1/sources", headers=admin, json={
            "name": "plain", "path": str(share)}).json()
        assert plain["owning_group"] is False
        job = _done(client, client.post(f"/v1/sources/{source.json()['id']}/sync",
                                        headers=admin).json()["id"], admin)
        assert job["state"] == "done"
        # alice: rh (the source's group, all three) and staff; bob: users only; sam: none
        assert names(client, "alice") == {"staff.txt", "users.txt", "adm.txt"}
        assert names(client, "bob") == {"users.txt"}
        assert names(client, "sam") == set()
        found = client.post("/v1/search", headers=readers["bob"], json={
            "query": "wifi invité mot de passe", "mode": "bm25"}).json()["passages"]
        assert found and all(p["document"] == "users.txt" for p in found)
        assert not client.post("/v1/search", headers=readers["bob"], json={
            "query": "réunion du personnel salle Colbert", "mode": "bm25"}).json()["passages"]
        # the staff file is given to `users`: bob reads it from the next sync, and the
        # audit entry of the sync records the file's new readers
        os.chown(share / "staff.txt", 0, grp.getgrnam("users").gr_gid)
        _done(client, client.post(f"/v1/sources/{source.json()['id']}/sync",
                                  headers=admin).json()["id"], admin)
        assert names(client, "bob") == {"users.txt", "staff.txt"}
        assert client.post("/v1/search", headers=readers["bob"], json={
            "query": "réunion du personnel salle Colbert", "mode": "bm25"}).json()["passages"]
