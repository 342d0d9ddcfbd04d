"""Sealed metadata survives a key rotation: the metadata key is wrapped under the KEK and
re-wrapped by the rotation (it does not derive from the index key a rotation renews)."""

from __future__ import annotations

from pathlib import Path

import pyotp
import pytest
from apiharness import KEKS, Api, api_settings, bearer

from appliance import Appliance
from appliance._keys import rotate_kek
from appliance.service import Runtime
from security import KekSource

pytestmark = pytest.mark.integration
NEW = KekSource("passphrase", "the next operator passphrase, long enough")


def test_totp_secrets_and_conversations_survive_a_rotation(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.txt").write_text("Security incidents go to the CERT team, extension 4242.")
    settings = api_settings(tmp_path)
    api = Api(settings)
    try:
        with api.rt.using() as app:
            app.ingest([docs])
        api.user("adele", "admin")
        api.user("alice", "reader")
        token = api.token("alice", "ask")
        with api.client() as client:
            asked = client.post("/v1/ask", json={"question": "security incident?"},
                                headers=bearer(token)).json()
        conversation = asked["conversation_id"]
    finally:
        api.close()
    keys_dir = settings.data_dir / "keys"
    assert [p.name for p in keys_dir.glob("metadata.*.key")] == ["metadata.1.key"]

    app = Appliance.open(settings, KEKS)
    try:
        rotate_kek(app, NEW)
    finally:
        app.close()
    assert [p.name for p in keys_dir.glob("metadata.*.key")] == ["metadata.2.key"]

    rt = Runtime(settings)
    try:
        rt.unseal(NEW, user="test")
        code = pyotp.TOTP(api.totp["adele"]).now()
        admin = rt.identity.login("adele", api.passwords["adele"], code, "test").principal
        assert "admin" in admin.roles
        alice = rt.identity.login("alice", api.passwords["alice"], None, "test").principal
        turns = rt.identity.conversation(alice, conversation).messages
        assert turns[0].content == "security incident?"
    finally:
        rt.close()
