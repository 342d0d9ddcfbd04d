"""Unsealing, the audit log's opening, and key rotation: the key lifecycle of one data
directory. Every unseal goes through :func:`unseal_keys` (throttled and audited)."""

from __future__ import annotations

import base64
import contextlib
import json
from pathlib import Path
from typing import TYPE_CHECKING

from security import (
    Anchor,
    AuditLog,
    ConfigError,
    GreffierError,
    KekSource,
    Keyring,
    SealedError,
    UnsealedKeys,
    UnsealThrottle,
    WrongSecretError,
    fingerprint,
    make_sinks,
    sign,
    verify,
    write_atomically,
)

from ._datadir import lock_data_dir
from ._metakey import drop_stale_metadata_keys, rewrap_metadata_key
from ._settings import Settings

if TYPE_CHECKING:
    from ._appliance import Appliance


def unseal_keys(settings: Settings, source: KekSource, user: str, *,
                upgrade: bool = False) -> UnsealedKeys:
    """The one way to unseal, for opening and for checks alike (the caller holds the data
    directory's lock): throttled, and every failure is recorded in the audit log (unsigned,
    no secret) and sent to the head sinks at once; the next unseal signs a head over it."""
    data = settings.data_dir
    sec = settings.security
    throttle = UnsealThrottle(data / "keys" / "unseal-failures.json",
                              free_attempts=sec.unseal_free_attempts,
                              base_s=sec.unseal_backoff_s, cap_s=sec.unseal_backoff_cap_s)
    try:
        if source.kind != "derived":
            throttle.check()
        keys = Keyring(data).unseal(source, upgrade=upgrade)
    except SealedError as exc:
        if isinstance(exc, WrongSecretError):
            with contextlib.suppress(OSError):
                throttle.failed()
        if (data / "audit").is_dir():
            with contextlib.suppress(GreffierError, OSError):
                AuditLog(data / "audit", None, None,
                         sinks=make_sinks(settings.audit.head_sinks)).append(
                    "unseal.failed", user, {"kek": sec.kek, "reason": exc.message})
        raise
    throttle.succeeded()
    return keys


def check_keys_and_log(settings: Settings, source: KekSource, user: str) -> UnsealedKeys:
    """For the verify commands when a secret is at hand: unseal (throttled, audited),
    authenticate the keyring, and check the audit log against its anchor and the sinks
    exactly as opening would, without writing anything else. The caller closes the keys."""
    lock = lock_data_dir(settings.data_dir)
    try:
        keys = unseal_keys(settings, source, user)
        try:
            audit_log(settings, keys)
        except Exception:
            keys.close()
            raise
        return keys
    finally:
        lock.close()


def audit_log(settings: Settings, keys: UnsealedKeys) -> AuditLog:
    """The audit log, checked against its KEK-authenticated anchor and every trusted key."""
    folder = settings.data_dir / "audit"
    return AuditLog(folder, keys.audit_keys, keys.signing_key,
                    head_every=settings.audit.head_every,
                    anchor=Anchor(anchor_path(folder, keys), keys.wrapper,
                                  required=not keys.upgraded),
                    sinks=make_sinks(settings.audit.head_sinks),
                    trusted_keys=keys.trusted_keys)


def anchor_path(folder: Path, keys: UnsealedKeys) -> Path:
    """One anchor per KEK generation: a rotation writes the next before the keyring swap."""
    return folder / f"anchor.{keys.kek_id}"


def rotate_kek(app: Appliance, new_source: KekSource) -> int:
    """A new KEK and new signing, audit and index keys (see ``Keyring.rotate``).

    Data keys are re-wrapped, not the data re-encrypted; the sparse index is recomputed under
    the new index key. Crash-safe: the audit anchor for the new KEK is written before the
    keyring is swapped, and an interrupted re-index resumes at the next open.
    """
    if new_source.kind == "pkcs11":
        raise ConfigError(
            "Rotating to a PKCS#11 KEK is not supported yet: the token session is already "
            "open, and the new key would need its own label and the old one destroyed.",
            hint="Rotate to a new passphrase (GREFFIER_NEW_PASSPHRASE_FILE) for now.")
    keyring = Keyring(app.settings.data_dir)
    rows = app.deks.wrapped_deks(app.keys.kek_id)
    app.audit.append("keys.rotate.begin", app.user, {"kek": new_source.kind,
                                                     "data_keys": len(rows)})
    head = app.audit.sign_head()  # everything so far, signed by the old key
    folder = app.settings.data_dir / "audit"

    def rewrap(old: UnsealedKeys, new: UnsealedKeys) -> None:
        app.deks.add_wrapped_deks(
            new.kek_id, [(h, new.wrap_dek(h, old.unwrap_dek(h, blob))) for h, blob in rows])
        Anchor(anchor_path(folder, new), new.wrapper).save(head)
        rewrap_metadata_key(app.settings.data_dir, old, new)
        _resign_certificates(app.settings.data_dir / "certificates", old, new)

    old = app.keys
    app.keys = keyring.rotate(old, new_source, rewrap, audit_from=app.audit.size,
                              last_head=head)
    settle_certificates(app.settings.data_dir / "certificates", app.keys)
    anchor_path(folder, old).unlink(missing_ok=True)
    drop_stale_metadata_keys(app.settings.data_dir, app.keys)
    old.close()
    app.deks.drop_other_wrapped_deks(app.keys.kek_id)
    app.cipher.rekey(app.keys)
    app.audit = audit_log(app.settings, app.keys)
    app.audit.append("keys.rotate.end", app.user, {
        "kek_id": app.keys.kek_id, "signing_key": fingerprint(app.keys.public_key)})
    reindex_pending(app)
    return len(rows)


def _resign_certificates(folder: Path, old: UnsealedKeys, new: UnsealedKeys) -> int:
    """The retired key is trusted for old tree heads only, and certificates carry no tree
    size: before the keyring swap, each certificate this appliance signed gets a copy signed
    by the new key (``<id>.json.next``); :func:`_settle_certificates` puts them in place."""
    count = 0
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        document = json.loads(path.read_text())
        if not verify(document, old.public_key):
            continue  # not ours, or altered: left as it is, and it will not verify
        document["appliance_public_key"] = base64.b64encode(new.public_key).decode()
        write_atomically(path.with_name(path.name + ".next"),
                         json.dumps(sign(document, new.signing_key), indent=2).encode())
        count += 1
    return count


def settle_certificates(folder: Path, keys: UnsealedKeys) -> None:
    """After a rotation (or a crash in one): copies signed by the key now in force replace
    the originals; copies signed by a key that never came into force are dropped."""
    for copy in sorted(folder.glob("*.json.next")) if folder.is_dir() else []:
        if verify(json.loads(copy.read_text()), keys.public_key):
            copy.replace(copy.with_name(copy.name.removesuffix(".next")))
        else:
            copy.unlink()


def reindex_pending(app: Appliance) -> int:
    """Recompute every chunk's sparse vector under the current index key, if a rotation
    left that to do (idempotent: an interrupted run is simply run again)."""
    if not app.keys.reindex_pending:
        return 0
    app.indexer.analyzer.rekey(app.keys.index_key)
    count = 0
    for batch in app.store.iter_passages():
        app.store.set_sparse([(p.chunk_id, app.indexer.analyzer.document_vector(p.text, p.lang))
                              for p in batch])
        count += len(batch)
    app.store.flush()
    app.store.purge()  # the sparse vectors under the old index key leave the disk too
    Keyring(app.settings.data_dir).mark_reindexed(app.keys)
    app.audit.append("keys.reindex", app.user, {"chunks": count})
    return count
