"""CLI: the audit log, receipts and erasure certificates, verified as an auditor would.

Trust comes from one of three places, strongest first: the KEK (when a secret is at hand,
the keyring is authenticated by its MAC and the log checked against its anchor and the
sinks, exactly as an unseal would), a pinned fingerprint (``--fingerprint``, printed at
``greffier init``), or the keyring file as it stands, which anyone with the disk can edit:
that last case is said on every run.
"""

from __future__ import annotations

import base64
import json
import sys
from pathlib import Path
from typing import Any

import click

from security import (
    ConfigError,
    Keyring,
    TrustedKeys,
    VerifyReport,
    chain_keys,
    check_witnesses,
    fingerprint,
    read_lines,
    scan_log,
    verify,
    verify_receipt,
    witnessed_in,
)

from .._appliance import check_keys_and_log, current_user
from .._settings import Settings, load_settings
from ._security import _echo, _incompleteness

_FINGERPRINT = click.option(
    "--fingerprint", "pinned", default=None, metavar="SHA256:…",
    help="Trust only this signing key (printed at init) and the keys it rotated to.")
_PUBLIC_KEY = click.option("--public-key", default=None,
                           help="Ed25519 public key (base64); default: this appliance's.")
_UNAUTHENTICATED = ("warning: the signing keys come from keys/keyring.json, not authenticated "
                    "(no KEK at hand): pass --fingerprint with the one printed at init")


def _authenticated(settings: Settings) -> TrustedKeys | None:
    """The appliance's keys authenticated under the KEK (and its log checked), or None when
    no secret is at hand without a prompt. Throttled and audited like any unseal."""
    from .._unseal import kek_source_if_given

    source = kek_source_if_given(settings)
    if source is None:
        return None
    keys = check_keys_and_log(settings, source, current_user())
    try:
        return keys.trusted_keys
    finally:
        keys.close()


def _pin(keys: TrustedKeys, pinned: str | None) -> TrustedKeys:
    if pinned is None:
        return keys
    prints = [fingerprint(k) for k in keys.public_keys]
    if pinned not in prints:
        raise ConfigError(f"The signing key {pinned} is not this appliance's (it has "
                          f"{', '.join(prints)}).",
                          hint="Compare with the fingerprint printed at `greffier init`.")
    return TrustedKeys(keys.keys[prints.index(pinned):])


def _trusted(ctx: click.Context, given: str | None, pinned: str | None) -> TrustedKeys:
    """The key given on the command line, else this appliance's signing keys."""
    if given:
        try:
            key = base64.b64decode(given, validate=True)
        except ValueError as exc:
            raise ConfigError("--public-key is not base64.",
                              hint="Give the key printed by `greffier init`.") from exc
        if pinned and fingerprint(key) != pinned:
            raise ConfigError(f"--public-key has fingerprint {fingerprint(key)}, not {pinned}.",
                              hint="Use the key printed by `greffier init`.")
        return TrustedKeys.of(key)
    settings = load_settings(ctx.obj)
    keys = _authenticated(settings)
    if keys is None:
        keys = Keyring(settings.data_dir).trusted_keys()
        if pinned is None:
            _echo(_UNAUTHENTICATED, err=True)
    return _pin(keys, pinned)


@click.group()
def audit() -> None:
    """The tamper-evident audit log."""


def _bundle(path: Path) -> tuple[list[str], list[str], TrustedKeys]:
    try:
        data = json.loads(path.read_text())
        log, heads = data["log"], data["heads"]
        if not all(isinstance(line, str) for line in [*log, *heads]):
            raise TypeError("lines must be strings")
        keys = chain_keys(list(data.get("signing_chain", [])),
                          base64.b64decode(data["public_key"]))
    except (OSError, ValueError, KeyError, TypeError, RecursionError, ConfigError) as exc:
        raise ConfigError(f"{path} is not a Greffier audit bundle.",
                          hint="Give a file written by `greffier audit export`.") from exc
    return log, heads, keys


@audit.command(name="verify")
@click.option("--bundle", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              default=None, help="Verify an exported bundle (needs --fingerprint).")
@click.option("--since", "since", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              default=None, help="Heads (and entries) kept outside: a head, heads.jsonl or a "
              "sink file. Every one must be a prefix of the log (the log only grew).")
@_FINGERPRINT
@click.pass_context
def audit_verify(ctx: click.Context, bundle: Path | None, since: Path | None,
                 pinned: str | None) -> None:
    """Check every entry and signed tree head; name the first bad entry."""
    settings = load_settings(ctx.obj)
    if bundle is not None:
        if pinned is None:
            raise ConfigError("A bundle carries its own keys: it proves nothing unless you "
                              "pin the appliance's key.",
                              hint="Add --fingerprint with the one printed at `greffier init`.")
        log, heads, keys = _bundle(bundle)
    else:
        folder = settings.data_dir / "audit"
        log, heads = read_lines(folder / "log.jsonl"), read_lines(folder / "heads.jsonl")
        authenticated = _authenticated(settings)
        _echo("keyring: authenticated under the KEK; log checked against its anchor and sinks"
              if authenticated else _UNAUTHENTICATED if pinned is None else
              "keyring: not authenticated (no KEK at hand); keys pinned by --fingerprint")
        keys = authenticated or Keyring(settings.data_dir).trusted_keys()
    keys = _pin(keys, pinned)
    _echo(f"signing keys: {', '.join(fingerprint(k) for k in keys.public_keys)}")
    witnessed = witnessed_in(since) if since is not None else []
    report = scan_log(log, heads, keys, extra_sizes=[
        d["tree_size"] for d in witnessed if d["kind"] == "head"])
    if not report.ok:
        _echo(f"FAILED: {report.problem}", err=True)
        sys.exit(1)
    if witnessed:
        agree, why = check_witnesses(report, witnessed, keys)
        if not agree:
            _echo(f"FAILED: {why}", err=True)
            sys.exit(1)
        _echo(f"the log only grew: {why} ({since})")
    _echo(f"valid: {report.entries} entries, {report.heads} signed tree heads")
    tail = report.unsigned_events
    if tail:
        counts = ", ".join(f"{event} ×{tail.count(event)}" for event in dict.fromkeys(tail))
        _echo(f"warning: the last {len(tail)} entries are not yet covered by a signed head "
              f"({counts}); the next unseal checks and signs them. Compare them with the "
              "copies in the head sinks.")


@audit.command(name="export")
@click.argument("output", type=click.Path(dir_okay=False, path_type=Path))
@click.pass_context
def audit_export(ctx: click.Context, output: Path) -> None:
    """Write a self-verifiable bundle (log, signed heads, public key) for an auditor."""
    data_dir = load_settings(ctx.obj).data_dir
    keyring = Keyring(data_dir)
    log = read_lines(data_dir / "audit" / "log.jsonl")
    heads = read_lines(data_dir / "audit" / "heads.jsonl")
    output.write_text(json.dumps({
        "format": "greffier-audit-bundle", "version": 1,
        "public_key": base64.b64encode(keyring.public_key()).decode(),
        "signing_chain": keyring.signing_chain(), "log": log, "heads": heads,
        "how_to_verify": "greffier audit verify --bundle FILE --fingerprint SHA256:…, or see "
                         "security/FORMAT.md: leaf = SHA-256(0x00 || entry), node = "
                         "SHA-256(0x01 || l || r), heads signed with Ed25519 over canonical "
                         "JSON."}, indent=1))
    _echo(f"wrote {output}: {len(log)} entries, {len(heads)} signed heads")


@click.group()
def receipt() -> None:
    """Signed receipts of searches and answers."""


@receipt.command(name="verify")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@_PUBLIC_KEY
@_FINGERPRINT
@click.pass_context
def receipt_verify(ctx: click.Context, file: Path, public_key: str | None,
                   pinned: str | None) -> None:
    """Verify a receipt offline: signature, signed tree head, inclusion in the audit log;
    and, on the appliance, that its head is the log's own at that size."""
    document = _json_file(file, "a receipt")
    keys = _trusted(ctx, public_key, pinned)
    ok, why = verify_receipt(document, keys)
    if ok and not public_key:
        ok, why = _head_in_local_log(load_settings(ctx.obj), document, keys)
    if not ok:
        _echo(f"INVALID: {why}", err=True)
        sys.exit(1)
    _echo(f"valid: {document.get('kind')} by {document.get('user')} at "
          f"{document.get('time')}, audit entry {document['audit']['index']}")


def _local_report(settings: Settings, keys: TrustedKeys, sizes: list[int] | None = None
                  ) -> VerifyReport:
    folder = settings.data_dir / "audit"
    return scan_log(read_lines(folder / "log.jsonl"), read_lines(folder / "heads.jsonl"), keys,
                    extra_sizes=sizes or [])


def _head_in_local_log(settings: Settings, receipt: dict[str, Any], keys: TrustedKeys
                       ) -> tuple[bool, str]:
    """A receipt's head must be the appliance's own tree at that size: a forger holding an
    old key can sign a tree of his own, not this log's."""
    head = receipt["audit"]["tree_head"]
    report = _local_report(settings, keys, [head["tree_size"]])
    if not report.ok:
        return False, f"this appliance's audit log does not verify: {report.problem}"
    root = report.roots.get(head["tree_size"])
    if root is None or root.hex() != head["root"]:
        return False, "its tree head is not this appliance's audit log at that size"
    return True, "valid"


@click.command(name="verify-certificate")
@click.argument("certificate", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@_PUBLIC_KEY
@_FINGERPRINT
@click.pass_context
def verify_certificate(ctx: click.Context, certificate: Path, public_key: str | None,
                       pinned: str | None) -> None:
    """Check an erasure certificate's signature, offline (the appliance's current key:
    a rotation re-signs the certificates it holds)."""
    document = _json_file(certificate, "an erasure certificate")
    if document.get("format") != "greffier-erasure-certificate":
        _echo("INVALID: this is not an erasure certificate.", err=True)
        sys.exit(1)
    keys = _trusted(ctx, public_key, pinned)
    if keys.signer(document) is None:
        confirmed, why = _retired_but_logged(load_settings(ctx.obj), document, keys)
        if not confirmed:
            _echo(f"INVALID: {why}", err=True)
            sys.exit(1)
        _echo(why)
    _echo(f"valid: content {document.get('content_sha256')} erased at "
          f"{document.get('erased_at')} by {document.get('erased_by')}")
    if "complete" in document:
        _echo("complete: no erased byte found in the data directory" if
              document["complete"] else f"INCOMPLETE: {_incompleteness(document)}")


def _retired_but_logged(settings: Settings, certificate: dict[str, Any], keys: TrustedKeys
                        ) -> tuple[bool, str]:
    """A certificate signed before a key rotation: valid if a retired key of the chain
    signed it *and* this appliance's verified audit log recorded its erasure while that
    key was in force (a kept copy of the old key cannot make the log say so)."""
    bad = "the signature does not match the appliance's current key"
    for key, until in keys.keys:
        if until is None or not verify(certificate, key):
            continue
        report = _local_report(settings, keys)
        if not report.ok:
            return False, f"{bad}, and the audit log does not verify: {report.problem}"
        for entry in report.documents[:until]:
            if (entry.get("event") == "erase.begin" and isinstance(entry.get("details"), dict)
                    and entry["details"].get("certificate_id")
                    == certificate.get("certificate_id")):
                return True, (f"signed by the retired key {fingerprint(key)}, confirmed by "
                              f"audit entry {entry['index']} (before its retirement)")
        return False, f"{bad}, and no erasure in the audit log matches it"
    return False, bad


def _json_file(path: Path, what: str) -> dict[str, Any]:
    try:
        document = json.loads(path.read_text())
    except (OSError, ValueError, RecursionError) as exc:
        raise ConfigError(f"{path} is not {what} (not JSON).",
                          hint=f"Give the file Greffier wrote for {what}.") from exc
    if not isinstance(document, dict):
        raise ConfigError(f"{path} is not {what}.",
                          hint=f"Give the file Greffier wrote for {what}.")
    return document
