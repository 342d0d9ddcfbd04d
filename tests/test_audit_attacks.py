"""Attacks on the audit log and the keyring, each as it was found by the review.

Every test here failed on the code before the hardening: a truncated log with its heads
verified as valid, a log with no head verified as valid, a rewritten log was opened and
signed over, a swapped public key made forged heads verify, unsigned tail entries vanished
unseen, and a rotated appliance's keys were still those of an old keyring copy.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from test_audit import CT_LEAVES

from appliance import Appliance
from appliance._appliance import rotate_kek
from security import (
    AnchorError,
    KekSource,
    Keyring,
    SealedError,
    check_witnesses,
    extends,
    fingerprint,
    last_head,
    scan_log,
    sign,
    verify_log,
    witnessed_in,
)
from security._audit import entry_bytes
from security._merkle import (
    consistency_proof,
    leaf_hash,
    root,
    verify_consistency,
)

from conftest import KEKS, PASSPHRASE, make_settings, open_appliance

CT_CONSISTENCY = [
    (1, 1, []),
    (1, 8, ["96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"]),
    (6, 8, ["0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"]),
    (2, 5, ["5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"]),
]


@pytest.mark.unit
@pytest.mark.parametrize(("old", "new", "expected"), CT_CONSISTENCY)
def test_consistency_proofs_match_certificate_transparency(old: int, new: int,
                                                           expected: list[str]) -> None:
    leaves = [leaf_hash(d) for d in CT_LEAVES]
    proof = consistency_proof(old, leaves[:new])
    assert [h.hex() for h in proof] == expected
    assert verify_consistency(old, new, proof, root(leaves[:old]), root(leaves[:new]))
    if old < new:  # a proof does not vouch for another old tree, nor another new one
        assert not verify_consistency(old, new, proof, leaf_hash(b"another tree"),
                                      root(leaves[:new]))
        assert not verify_consistency(old, new, proof, root(leaves[:old]),
                                      root(leaves[:new - 1]))


@pytest.mark.unit
def test_consistency_between_every_pair_of_sizes() -> None:
    leaves = [leaf_hash(os.urandom(8)) for _ in range(33)]
    for new in range(1, 34):
        for old in range(1, new + 1):
            proof = consistency_proof(old, leaves[:new])
            assert verify_consistency(old, new, proof, root(leaves[:old]), root(leaves[:new]))
            forged = [*leaves[:old - 1], leaf_hash(b"forged"), *leaves[old:new]]
            if old < new:
                assert not verify_consistency(old, new, proof, root(leaves[:old]),
                                              root(forged))


def _files(data: Path) -> tuple[Path, Path]:
    return data / "audit" / "log.jsonl", data / "audit" / "heads.jsonl"


def _lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


def _fill(settings_data: Path, entries: int, **overrides: object) -> Path:
    """An initialised appliance whose log holds ``entries`` more entries, closed."""
    settings = make_settings(settings_data, **overrides)
    app = open_appliance(settings)
    for number in range(entries):
        app.audit.append("test.event", "tester", {"n": number})
    app.close()
    return settings.data_dir


@pytest.mark.integration
def test_truncating_the_log_with_its_heads_is_refused(tmp_path: Path) -> None:
    data = _fill(tmp_path / "data", 150, audit={"head_every": 16})
    log, heads = _files(data)
    keep = 100
    lines = _lines(log)[:keep]
    kept_heads = [h for h in _lines(heads) if json.loads(h)["tree_size"] <= keep]
    log.write_text("\n".join(lines) + "\n")
    heads.write_text("\n".join(kept_heads) + "\n")
    # The attack: on its own, the shortened log is a valid log ...
    assert verify_log(lines, kept_heads, Keyring(data).public_key()).ok
    # ... but the appliance refuses to open (or append to) it.
    with pytest.raises(AnchorError, match="rolled back"):
        Appliance.open(make_settings(data), KEKS)


@pytest.mark.integration
def test_a_rewritten_log_is_refused_and_never_signed_over(tmp_path: Path) -> None:
    data = _fill(tmp_path / "data", 20)
    log, heads = _files(data)
    entries = [json.loads(line) for line in _lines(log)]
    entries[5]["details"] = {"n": "rewritten"}
    previous = ""
    for entry in entries:  # re-chain every entry, as a careful forger would
        entry["prev"] = previous
        previous = leaf_hash(entry_bytes(entry)).hex()
    log.write_text("".join(entry_bytes(e).decode() + "\n" for e in entries))
    heads.write_text("")  # and drop the heads that would betray it
    report = verify_log(_lines(log), [], Keyring(data).public_key())
    assert not report.ok and "no signed tree head" in report.problem
    before = log.read_bytes()
    with pytest.raises(AnchorError, match=r"rewritten|removed|no signed tree head"):
        Appliance.open(make_settings(data), KEKS)
    assert log.read_bytes() == before and heads.read_text() == ""  # nothing signed over it


@pytest.mark.integration
def test_a_missing_or_foreign_anchor_is_refused(tmp_path: Path) -> None:
    data = _fill(tmp_path / "data", 3)
    other = _fill(tmp_path / "other", 3)
    anchor = data / "audit" / "anchor.1"
    saved = anchor.read_bytes()
    anchor.write_bytes((other / "audit" / "anchor.1").read_bytes())
    with pytest.raises(AnchorError, match="fails authentication"):
        Appliance.open(make_settings(data), KEKS)
    anchor.unlink()
    with pytest.raises(AnchorError, match="missing"):
        Appliance.open(make_settings(data), KEKS)
    anchor.write_bytes(saved)
    Appliance.open(make_settings(data), KEKS).close()


@pytest.mark.unit
def test_a_log_with_no_head_does_not_verify() -> None:
    entry = {"index": 0, "time": "t", "event": "e", "user": "u", "details": {}, "prev": ""}
    key = Ed25519PrivateKey.generate().public_key().public_bytes_raw()
    report = verify_log([entry_bytes(entry).decode()], [], key)
    assert not report.ok
    assert "no signed tree head" in report.problem
    assert verify_log([], [], key).ok  # an empty log has nothing to cover


@pytest.mark.integration
def test_a_swapped_public_key_is_caught(tmp_path: Path) -> None:
    data = _fill(tmp_path / "data", 5)
    original = fingerprint(Keyring(data).public_key())
    log, heads = _files(data)
    # The forger: a key of his own, a rewritten log and heads signed with that key.
    forger = Ed25519PrivateKey.generate()
    keyring_path = data / "keys" / "keyring.json"
    keyring = json.loads(keyring_path.read_text())
    keyring["signing_public_key"] = base64.b64encode(
        forger.public_key().public_bytes_raw()).decode()
    keyring_path.write_text(json.dumps(keyring))
    entries = [json.loads(line) for line in _lines(log)]
    entries[1]["user"] = "somebody else"
    previous, leaves = "", []
    for entry in entries:
        entry["prev"] = previous
        leaves.append(leaf_hash(entry_bytes(entry)))
        previous = leaves[-1].hex()
    log.write_text("".join(entry_bytes(e).decode() + "\n" for e in entries))
    head = sign({"tree_size": len(leaves), "root": root(leaves).hex(), "time": "t"}, forger)
    heads.write_text(entry_bytes(head).decode() + "\n")
    # Trusting the keyring file alone, the forgery verifies (that was the attack) ...
    assert verify_log(_lines(log), _lines(heads), Keyring(data).trusted_keys()).ok
    # ... pinned to the fingerprint printed at init, it does not ...
    with pytest.raises(Exception, match="not in this keyring's chain"):
        Keyring(data).trusted_keys(original)
    # ... and the keyring fails authentication under the KEK: the appliance will not open.
    with pytest.raises(SealedError, match="altered"):
        Appliance.open(make_settings(data), KEKS)


def _greffier(data: Path, *args: str, secret: bool = True) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GREFFIER_")}
    env["GREFFIER_DATA_DIR"] = str(data)
    if secret:
        env["GREFFIER_PASSPHRASE"] = PASSPHRASE
    return subprocess.run([sys.executable, "-m", "appliance", *args], env=env,
                          capture_output=True, text=True, timeout=300)


@pytest.mark.e2e
def test_audit_verify_authenticates_the_keyring_and_pins_the_fingerprint(tmp_path: Path
                                                                         ) -> None:
    data = _fill(tmp_path / "data", 3)
    good = _greffier(data, "audit", "verify")
    assert good.returncode == 0, good.stderr
    assert "keyring: authenticated under the KEK" in good.stdout
    original = fingerprint(Keyring(data).public_key())
    assert original in good.stdout
    keyring_path = data / "keys" / "keyring.json"
    keyring = json.loads(keyring_path.read_text())
    keyring["signing_public_key"] = base64.b64encode(
        Ed25519PrivateKey.generate().public_key().public_bytes_raw()).decode()
    keyring_path.write_text(json.dumps(keyring))
    swapped = _greffier(data, "audit", "verify")
    assert swapped.returncode != 0
    assert "altered" in swapped.stderr and "Traceback" not in swapped.stderr
    # An auditor without the passphrase: the keyring file alone names the forger's key ...
    unpinned = _greffier(data, "audit", "verify", secret=False)
    assert "not authenticated" in unpinned.stdout + unpinned.stderr
    # ... and pinned to the fingerprint printed at init, the forgery is refused.
    pinned = _greffier(data, "audit", "verify", "--fingerprint", original, secret=False)
    assert pinned.returncode != 0 and "is not this appliance" in pinned.stderr


@pytest.mark.integration
def test_failed_unseals_are_reported_then_signed_at_the_next_unseal(tmp_path: Path) -> None:
    sink = tmp_path / "sink.jsonl"
    data = _fill(tmp_path / "data", 2, audit={"head_sinks": [f"file:{sink}"]})
    settings = make_settings(data, audit={"head_sinks": [f"file:{sink}"]})
    for _ in range(2):
        with pytest.raises(SealedError, match="Wrong passphrase"):
            Appliance.open(settings, KekSource("passphrase", "a wrong guess"))
    log, heads = _files(data)
    report = verify_log(_lines(log), _lines(heads), Keyring(data).public_key())
    assert report.ok
    assert report.unsigned_events == ("unseal.failed", "unseal.failed")
    sent = [json.loads(line) for line in _lines(sink)]
    assert [d["event"] for d in sent if d["kind"] == "entry"] == ["unseal.failed"] * 2
    Appliance.open(settings, KEKS).close()
    report = verify_log(_lines(log), _lines(heads), Keyring(data).public_key())
    assert report.ok and report.unsigned_events == ()
    assert report.signed_size == report.entries
    # Every head written to the log was sent to the sink as it was made.
    sent = [json.loads(line) for line in _lines(sink)]
    heads_sent = [{k: v for k, v in d.items() if k != "kind"} for d in sent
                  if d["kind"] == "head"]
    assert heads_sent == [json.loads(line) for line in _lines(heads)]


@pytest.mark.integration
def test_unseal_attempts_are_throttled(tmp_path: Path) -> None:
    overrides = {"security": {"unseal_free_attempts": 2, "unseal_backoff_s": 1.5}}
    data = _fill(tmp_path / "data", 0, **overrides)
    settings = make_settings(data, **overrides)
    for _ in range(2):
        with pytest.raises(SealedError, match="Wrong passphrase"):
            Appliance.open(settings, KekSource("passphrase", "guess"))
    # Now even the right passphrase waits: a guesser learns nothing by trying faster.
    with pytest.raises(SealedError, match="Too many failed unseal attempts"):
        Appliance.open(settings, KEKS)
    time.sleep(1.6)
    Appliance.open(settings, KEKS).close()
    with pytest.raises(SealedError, match="Wrong passphrase"):  # the count was reset
        Appliance.open(settings, KekSource("passphrase", "guess"))


@pytest.mark.integration
def test_a_whole_disk_rollback_is_caught_from_the_sink(tmp_path: Path) -> None:
    sink = tmp_path / "elsewhere" / "heads.jsonl"
    sink.parent.mkdir()
    audit = {"head_sinks": [f"file:{sink}"]}
    data = _fill(tmp_path / "data", 10, audit=audit)
    snapshot = tmp_path / "snapshot"
    shutil.copytree(data, snapshot)
    _fill(data, 10, audit=audit)
    shutil.rmtree(data)
    shutil.copytree(snapshot, data)  # the thief restores yesterday's disk, anchor and all
    # Nothing inside the restored disk betrays it, but the sink is read at every unseal:
    with pytest.raises(AnchorError, match=r"head sinks.*rolled back"):
        Appliance.open(make_settings(data, audit=audit), KEKS)
    log, heads = _files(data)
    keys = Keyring(data).trusted_keys()
    kept = witnessed_in(sink)
    report = scan_log(_lines(log), _lines(heads), keys,
                      extra_sizes=[h["tree_size"] for h in kept if h["kind"] == "head"])
    agree, why = check_witnesses(report, kept, keys)
    assert not agree and "rolled back" in why
    cli = _greffier(data, "audit", "verify", "--since", str(sink))
    assert cli.returncode != 0 and "rolled back" in cli.stderr


@pytest.mark.integration
def test_audit_verify_since_proves_the_log_only_grew(tmp_path: Path) -> None:
    data = _fill(tmp_path / "data", 5)
    earlier = tmp_path / "head.json"
    earlier.write_text(_lines(_files(data)[1])[-1])
    _fill(data, 40, audit={"head_every": 7})
    log, heads = _files(data)
    keys = Keyring(data).trusted_keys()
    head = last_head(earlier)
    report = scan_log(_lines(log), _lines(heads), keys, extra_sizes=[head["tree_size"]])
    grew, why = extends(report, head)
    assert grew and "consistency proof" in why
    forged = dict(head, root="00" * 32)
    assert not extends(report, forged)[0]


@pytest.mark.integration
def test_questions_are_keyed_hashes_in_the_log(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "data")
    question = "Quel est le code de la salle serveur ?"
    with open_appliance(settings) as app:
        app.search(question)
        first = app.audit.question_hash(question)
    import hashlib

    text = (settings.data_dir / "audit" / "log.jsonl").read_text()
    assert hashlib.sha256(question.encode()).hexdigest() not in text
    assert question not in text
    assert first in text  # equal questions can still be matched by who holds the key


@pytest.mark.integration
def test_rotation_revokes_an_old_passphrase_with_an_old_keyring(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.txt").write_text("Le code de la salle serveur change chaque trimestre.")
    settings = make_settings(tmp_path / "data")
    new_secret = KekSource("passphrase", "the next operator passphrase")
    with open_appliance(settings) as app:
        app.ingest([docs])
        old_copy = (settings.data_dir / "keys" / "keyring.json").read_bytes()
        old_public = app.keys.public_key
        rotate_kek(app, new_secret)
        new_keys = app.keys
        assert new_keys.public_key != old_public
        hit = app.search("code salle serveur", mode="bm25")[0]
        assert hit.passages and "trimestre" in hit.passages[0].text
        current = (new_keys.index_key, new_keys.audit_key, new_keys.public_key)
    # The insider kept the old passphrase and a copy of the old keyring.
    stolen = tmp_path / "stolen"
    (stolen / "keys").mkdir(parents=True)
    (stolen / "keys" / "keyring.json").write_bytes(old_copy)
    old = Keyring(stolen).unseal(KEKS)
    assert old.index_key != current[0]
    assert old.audit_key != current[1]
    assert old.public_key != current[2]
    # The new key is vouched for by the old one, and the log verifies across the rotation.
    chain = Keyring(settings.data_dir).trusted_keys(fingerprint(old_public))
    assert chain.public_keys == [old_public, current[2]]
    log, heads = _files(settings.data_dir)
    report = verify_log(_lines(log), _lines(heads), chain)
    assert report.ok and len(report.signers) == 2
    assert not verify_log(_lines(log), _lines(heads), [old_public]).ok
    # The old key is retired at the size it last signed: a head it signs beyond that is
    # not accepted, even though the key is in the chain.
    retired_at = chain.keys[0][1]
    assert retired_at is not None and retired_at < report.entries
    with Appliance.open(settings, new_secret) as app:  # earlier sealed entries stay readable
        entries = [json.loads(line) for line in _lines(log)]
        sealed = [e for e in entries if "sealed" in e]
        assert sealed and all(app.audit.open_secret(e) for e in sealed)
        assert app.keys.reindex_pending is False


@pytest.mark.integration
def test_the_data_directory_is_made_private_even_if_it_existed_looser(tmp_path: Path) -> None:
    data = tmp_path / "data"
    (data / "blobs").mkdir(parents=True)
    data.chmod(0o755)
    (data / "blobs").chmod(0o777)
    (data / "notes.txt").write_text("left by an admin")
    (data / "notes.txt").chmod(0o644)
    with open_appliance(make_settings(data)) as app:
        app.audit.append("test.event", "tester", {})
    loose = []
    for path in [data, *data.rglob("*")]:
        if not path.is_symlink() and path.stat().st_mode & 0o077:
            loose.append(f"{path} {path.stat().st_mode & 0o777:o}")
    assert loose == []


@pytest.mark.integration
def test_an_erased_file_name_is_nowhere_in_the_data_directory(tmp_path: Path) -> None:
    from appliance._erase import erase

    docs = tmp_path / "docs"
    docs.mkdir()
    secret_name = "licenciement-dupont-confidentiel"
    (docs / f"{secret_name}.txt").write_text("Entretien préalable fixé au 3 mars.")
    (docs / "kept.txt").write_text("Le restaurant d'entreprise ouvre à midi.")
    settings = make_settings(tmp_path / "data")
    with open_appliance(settings) as app:
        app.ingest([docs])
        erase(app, str(docs / f"{secret_name}.txt"), erased_by="dpo")
        log = (settings.data_dir / "audit" / "log.jsonl").read_text()
        opened = [app.audit.open_secret(json.loads(line)) for line in log.splitlines()
                  if "sealed" in json.loads(line)]
        assert any(secret_name in json.dumps(s) for s in opened)  # sealed, not lost
    leaks = [str(path) for path in settings.data_dir.rglob("*") if path.is_file()
             and (secret_name.encode() in path.read_bytes()
                  or secret_name.encode("utf-16-le") in path.read_bytes())]
    assert leaks == []


def _one_doc(tmp_path: Path) -> Path:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.txt").write_text("Le code de la salle serveur change chaque trimestre.")
    return docs


@pytest.mark.integration
def test_a_rotation_that_dies_before_the_keyring_swap_leaves_the_old_keys(tmp_path: Path
                                                                          ) -> None:
    settings = make_settings(tmp_path / "data")
    new_secret = KekSource("passphrase", "the next operator passphrase")
    with open_appliance(settings) as app:
        app.ingest([_one_doc(tmp_path)])
        keyring = Keyring(settings.data_dir)
        real_write = keyring._write
        Keyring._write = lambda *a, **k: (_ for _ in ()).throw(OSError("power cut"))  # type: ignore[method-assign]
        try:
            with pytest.raises(OSError, match="power cut"):
                rotate_kek(app, new_secret)
        finally:
            Keyring._write = real_write.__func__  # type: ignore[attr-defined, method-assign]
    assert (settings.data_dir / "audit" / "anchor.2").exists()  # written before the swap
    with Appliance.open(settings, KEKS) as app:  # the old passphrase still opens it all
        assert app.keys.kek_id == 1
        assert "trimestre" in app.search("code salle serveur", mode="bm25")[0].passages[0].text
        assert app.deks.wrapped_deks(2) == []
    assert not (settings.data_dir / "audit" / "anchor.2").exists()
    with pytest.raises(SealedError):
        Appliance.open(settings, new_secret)


@pytest.mark.integration
def test_a_rotation_that_dies_during_the_reindex_resumes_at_the_next_open(tmp_path: Path
                                                                          ) -> None:
    settings = make_settings(tmp_path / "data")
    new_secret = KekSource("passphrase", "the next operator passphrase")
    with open_appliance(settings) as app:
        app.ingest([_one_doc(tmp_path)])
        app.store.set_sparse = lambda vectors: (_ for _ in ()).throw(  # type: ignore[method-assign]
            OSError("killed"))
        with pytest.raises(OSError, match="killed"):
            rotate_kek(app, new_secret)
    assert json.loads((settings.data_dir / "keys" / "keyring.json").read_text())[
        "reindex_pending"] is True
    with pytest.raises(SealedError):  # the swap happened: the old passphrase is revoked
        Appliance.open(settings, KEKS)
    with Appliance.open(settings, new_secret) as app:
        assert app.keys.reindex_pending is False
        assert "trimestre" in app.search("code salle serveur", mode="bm25")[0].passages[0].text
        assert app.deks.wrapped_deks(1) == []
    assert sorted(p.name for p in (settings.data_dir / "audit").glob("anchor.*")) == ["anchor.2"]


def _rechain(entries: list[dict]) -> str:  # type: ignore[type-arg]
    previous, out = "", []
    for entry in entries:
        entry["prev"] = previous
        line = entry_bytes(entry)
        previous = leaf_hash(line).hex()
        out.append(line.decode() + "\n")
    return "".join(out)


@pytest.mark.integration
def test_entries_forged_while_sealed_are_refused_not_signed(tmp_path: Path) -> None:
    sink = tmp_path / "sink.jsonl"
    audit = {"head_sinks": [f"file:{sink}"]}
    data = _fill(tmp_path / "data", 3, audit=audit)
    settings = make_settings(data, audit=audit)
    with pytest.raises(SealedError, match="Wrong passphrase"):
        Appliance.open(settings, KekSource("passphrase", "a wrong guess"))
    log, _ = _files(data)
    entries = [json.loads(line) for line in _lines(log)]
    # Root, while sealed, turns the failed unseal into an export by alice.
    forged = dict(entries[-1], event="export", user="alice",
                  details={"content_sha256": "ab" * 32, "output": "/tmp/x"})
    log.write_text(_rechain([*entries[:-1], forged]))
    with pytest.raises(AnchorError, match="not what a sealed appliance writes"):
        Appliance.open(settings, KEKS)
    # Faking a failed unseal of the right shape gets past the shape check, not the sink.
    fake = dict(entries[-1], details={"kek": "passphrase", "reason": "someone else"})
    log.write_text(_rechain([*entries[:-1], fake]))
    with pytest.raises(AnchorError, match="differs from"):
        Appliance.open(settings, KEKS)
    cli = _greffier(data, "audit", "verify", "--since", str(sink), secret=False)
    assert cli.returncode != 0 and "differs from" in cli.stderr


@pytest.mark.integration
def test_entries_left_unsigned_by_a_crash_are_accepted(tmp_path: Path) -> None:
    data = _fill(tmp_path / "data", 2)
    crash = (f"import os, sys; sys.path[:0] = [{str(Path(__file__).parent)!r}]\n"
             "from conftest import make_settings, open_appliance\n"
             f"app = open_appliance(make_settings({str(data)!r}))\n"
             "app.audit.append('ingest.begin', 'tester', {'roots': 1})\n"
             "os._exit(9)  # dies before any head covers the entry\n")
    assert subprocess.run([sys.executable, "-c", crash], timeout=300).returncode == 9
    with open_appliance(make_settings(data)) as again:
        events = [json.loads(line)["event"] for line in _lines(_files(data)[0])]
        assert "ingest.begin" in events and again.audit.size == len(events)


@pytest.mark.integration
def test_a_retired_key_signs_nothing_new(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "data")
    with open_appliance(settings) as app:
        app.audit.append("test.event", "tester", {})
        old_private = app.keys.signing_key
        old_public = app.keys.public_key
        rotate_kek(app, KekSource("passphrase", "the next operator passphrase"))
        _, receipt = app.search("anything")
    keys = Keyring(settings.data_dir).trusted_keys()
    log, heads = _files(settings.data_dir)
    lines, head_lines = _lines(log), _lines(heads)
    # The insider signs a head over today's log with the key he kept: refused.
    leaves = [leaf_hash(line.encode()) for line in lines]
    late = sign({"tree_size": len(leaves), "root": root(leaves).hex(), "time": "t",
                 "key": fingerprint(old_public)}, old_private)
    assert not verify_log(lines, [*head_lines, entry_bytes(late).decode()], keys).ok
    # A receipt he signs over a tree of his own, small enough for the old key's window,
    # passes offline checks but not the appliance's own log.
    forged_leaf = leaf_hash(b"forged")
    small = sign({"tree_size": 1, "root": forged_leaf.hex(), "time": "t"}, old_private)
    forged = sign({**{k: v for k, v in receipt.items() if k != "signature"},
                   "audit": {"index": 0, "leaf_hash": forged_leaf.hex(),
                             "inclusion_proof": [], "tree_head": small}}, old_private)
    path = tmp_path / "forged.json"
    path.write_text(json.dumps(forged))
    cli = _greffier(settings.data_dir, "receipt", "verify", str(path), secret=False)
    assert cli.returncode != 0 and "not this appliance's audit log" in cli.stderr
    genuine = tmp_path / "genuine.json"
    genuine.write_text(json.dumps(receipt))
    ok = _greffier(settings.data_dir, "receipt", "verify", str(genuine), secret=False)
    assert ok.returncode == 0, ok.stderr
    # A certificate signed with the retired key does not verify; the appliance's own
    # certificates were re-signed by the new key.
    certificate = tmp_path / "certificate.json"
    certificate.write_text(json.dumps(sign({"format": "greffier-erasure-certificate",
                                            "content_sha256": "ab" * 32, "complete": True},
                                           old_private)))
    cli = _greffier(settings.data_dir, "verify-certificate", str(certificate), secret=False)
    assert cli.returncode != 0 and "INVALID" in cli.stderr


@pytest.mark.integration
def test_a_version_1_keyring_is_not_upgraded_behind_the_operators_back(tmp_path: Path
                                                                       ) -> None:
    data = _fill(tmp_path / "data", 1)
    path = data / "keys" / "keyring.json"
    keyring = json.loads(path.read_text())
    keyring["version"] = 1
    path.write_text(json.dumps(keyring))
    with pytest.raises(Exception, match="version-1 keyring"):
        Appliance.open(make_settings(data), KEKS)
    cli = _greffier(data, "audit", "verify")
    assert cli.returncode != 0 and "greffier keys upgrade" in cli.stderr


@pytest.mark.e2e
def test_auditor_side_shortcuts_are_refused(tmp_path: Path) -> None:
    data = _fill(tmp_path / "data", 2)
    bundle = tmp_path / "bundle.json"
    assert _greffier(data, "audit", "export", str(bundle)).returncode == 0
    unpinned = _greffier(data, "audit", "verify", "--bundle", str(bundle), secret=False)
    assert unpinned.returncode != 0 and "--fingerprint" in unpinned.stderr
    head = tmp_path / "head.json"
    head.write_text(_lines(_files(data)[1])[-1])
    not_a_certificate = _greffier(data, "verify-certificate", str(head), secret=False)
    assert not_a_certificate.returncode != 0 and "not an erasure certificate" in \
        not_a_certificate.stderr
    # Guessing the passphrase through `audit verify` is throttled and recorded like any
    # other unseal.
    env_guess = {"secret": False}
    for _ in range(4):
        guess = subprocess.run(
            [sys.executable, "-m", "appliance", "audit", "verify"], capture_output=True,
            text=True, timeout=300,
            env={**{k: v for k, v in os.environ.items() if not k.startswith("GREFFIER_")},
                 "GREFFIER_DATA_DIR": str(data), "GREFFIER_PASSPHRASE": "guess"})
        assert guess.returncode != 0
    assert env_guess and "Too many failed unseal attempts" in guess.stderr
    events = [json.loads(line)["event"] for line in _lines(_files(data)[0])]
    assert events.count("unseal.failed") == 4


@pytest.mark.unit
def test_a_line_that_parses_the_same_but_reads_differently_is_refused() -> None:
    key = Ed25519PrivateKey.generate()
    entry = {"index": 0, "time": "t", "event": "search", "user": "bob", "details": {},
             "prev": ""}
    line = entry_bytes(entry).decode()
    head = sign({"tree_size": 1, "root": leaf_hash(line.encode()).hex(), "time": "t"}, key)
    public = key.public_key().public_bytes_raw()
    heads = [entry_bytes(head).decode()]
    assert verify_log([line], heads, public).ok
    doubled = '{"user":"alice",' + line[1:]  # grep sees alice, json.loads keeps bob
    assert not verify_log([doubled], heads, public).ok
    spaced = line.replace(",", ", ")
    assert not verify_log([spaced], heads, public).ok


@pytest.mark.unit
def test_remembered_subtrees_give_the_same_proofs_as_the_log_grows() -> None:
    from security._audit import _Prefix
    from security._merkle import inclusion_proof, verify_inclusion

    leaves = [leaf_hash(os.urandom(8)) for _ in range(300)]
    cache: dict[tuple[int, int], bytes] = {}
    for size in (1, 2, 17, 64, 100, 255, 256, 300):  # the same cache, a growing log
        for index in range(0, size, 7):
            proof = inclusion_proof(index, _Prefix(leaves, size), cache=cache)
            assert proof == inclusion_proof(index, leaves[:size])
            assert verify_inclusion(leaves[index], index, size, proof, root(leaves[:size]))
    assert cache  # it did remember
