"""CLI: keys, erasure, export, audit log and receipts."""

from __future__ import annotations

import base64
import json
import os
import sys
from pathlib import Path
from typing import Any

import click

from security import (
    ConfigError,
    Keyring,
    chain_keys,
    extends,
    fingerprint,
    heads_in,
    scan_log,
    verify,
    verify_receipt,
)

from ._appliance import Appliance, rotate_kek
from ._cli_common import open_appliance as _open
from ._settings import Settings, load_settings
from ._term import safe
from ._unseal import kek_source


@click.command()
@click.pass_context
def init(ctx: click.Context) -> None:
    """Create the appliance's keys (KEK from the passphrase or the PKCS#11 token)."""
    settings = load_settings(ctx.obj)
    public = Appliance.init(settings, kek_source(settings))
    _echo(f"Initialised {settings.data_dir} ({settings.security.kek} KEK).")
    _echo(f"Appliance signing key (Ed25519, base64): {base64.b64encode(public).decode()}")
    _echo(f"Signing key fingerprint: {fingerprint(public)}")
    _echo("Keep this fingerprint outside the appliance: auditors check heads, receipts and "
               "certificates against it (--fingerprint).")


@click.command()
@click.option("--timeout", "timeout_s", type=click.IntRange(60, 7 * 24 * 3600), default=8 * 3600,
              show_default=True, help="Seconds before the appliance seals itself again.")
@click.pass_context
def unseal(ctx: click.Context, timeout_s: int) -> None:
    """Load the KEK into the kernel keyring (never on disk) for the commands that follow."""
    from ._appliance import current_user
    from ._unseal import unseal_session

    settings = load_settings(ctx.obj)
    unseal_session(settings, timeout_s, current_user())
    _echo(f"Unsealed for {timeout_s} s (`greffier seal` to seal now).")


@click.command()
@click.pass_context
def seal(ctx: click.Context) -> None:
    """Drop the KEK from the kernel keyring: content operations fail until the next unseal."""
    from ._appliance import current_user
    from ._unseal import seal_session

    settings = load_settings(ctx.obj)
    _echo("Sealed." if seal_session(settings, current_user()) else "Already sealed.")


@click.group()
def keys() -> None:
    """Key management."""


@keys.command(name="rotate")
@click.pass_context
def keys_rotate(ctx: click.Context) -> None:
    """Wrap every data key under a new KEK (GREFFIER_NEW_PASSPHRASE[_FILE]); no re-encryption."""
    settings = load_settings(ctx.obj)
    with _open(ctx) as app:
        count = rotate_kek(app, kek_source(settings, new=True))
    _echo(f"Rotated the KEK: {count} data keys re-wrapped.")


@click.command(name="export")
@click.argument("document")
@click.argument("output", type=click.Path(dir_okay=False, path_type=Path))
@click.pass_context
def export_command(ctx: click.Context, document: str, output: Path) -> None:
    """Write a document's original file, decrypted (id, path or content sha256)."""
    from ._erase import find_content

    with _open(ctx) as app:
        size = app.export(find_content(app, document), output)
    _echo(f"wrote {output} ({size} bytes)")


@click.command(name="erase")
@click.argument("documents", nargs=-1, required=True)
@click.option("--by", "erased_by", default=None, help="Who erases (default: $SUDO_USER/$USER).")
@click.pass_context
def erase_command(ctx: click.Context, documents: tuple[str, ...], erased_by: str | None
                  ) -> None:
    """Erase documents for good (crypto-erasure, then the store is rebuilt without them, once
    for all) and print their signed certificates."""
    import getpass as _getpass

    from ._erase import erase_many

    who = erased_by or os.environ.get("SUDO_USER") or _getpass.getuser()
    with _open(ctx) as app:
        certificates = erase_many(app, list(documents), erased_by=who)
    click.echo(json.dumps(certificates[0] if len(certificates) == 1 else certificates,
                          indent=2))
    incomplete = [c for c in certificates if not c.get("complete")]
    for certificate in incomplete:
        _echo(f"erasure of {certificate['content_sha256'][:12]}… incomplete: "
                   f"{_incompleteness(certificate)}", err=True)
    if incomplete:
        sys.exit(1)


def _incompleteness(certificate: dict[str, Any]) -> str:
    """What the certificate says is left, in one line (it states only what was measured)."""
    scan = certificate.get("scan") or {}
    found_in = scan.get("found_in") or []
    if scan.get("found"):
        return (f"{scan['found']} erased patterns still in {', '.join(map(str, found_in))}; "
                "the key is destroyed; those files still hold vectors or ciphertext of "
                "it: remove them")
    if not scan.get("store_files_scanned"):
        return "the vector store's files are not on this machine (Qdrant server): not scanned"
    return f"{certificate.get('destroyed', {}).get('points_remaining')} points remain"


def _trusted_keys(ctx: click.Context, given: str | None, pinned: str | None) -> list[bytes]:
    """The key given on the command line, else this appliance's chain of signing keys (from
    its keyring, from the ``pinned`` fingerprint on). A pinned fingerprint must match."""
    if given:
        try:
            key = base64.b64decode(given, validate=True)
        except ValueError as exc:
            raise ConfigError("--public-key is not base64.",
                              hint="Give the key printed by `greffier init`.") from exc
        if pinned and fingerprint(key) != pinned:
            raise ConfigError(f"--public-key has fingerprint {fingerprint(key)}, not {pinned}.",
                              hint="Use the key printed by `greffier init`.")
        return [key]
    return Keyring(load_settings(ctx.obj).data_dir).trusted_keys(pinned)


_FINGERPRINT = click.option(
    "--fingerprint", "pinned", default=None, metavar="SHA256:…",
    help="Trust only this signing key (printed at init) and the keys it rotated to.")


@click.group()
def audit() -> None:
    """The tamper-evident audit log."""


def _audit_files(bundle: Path | None, data_dir: Path
                 ) -> tuple[list[str], list[str], list[dict[str, Any]], bytes]:
    if bundle is not None:
        try:
            data = json.loads(bundle.read_text())
            return (list(data["log"]), list(data["heads"]), list(data.get("signing_chain", [])),
                    base64.b64decode(data["public_key"]))
        except (ValueError, KeyError, TypeError) as exc:
            raise ConfigError(f"{bundle} is not a Greffier audit bundle.",
                              hint="Give a file written by `greffier audit export`.") from exc
    folder = data_dir / "audit"

    def lines(name: str) -> list[str]:
        path = folder / name
        return path.read_text().splitlines() if path.exists() else []

    keyring = Keyring(data_dir)
    return (lines("log.jsonl"), lines("heads.jsonl"), keyring.signing_chain(),
            keyring.public_key())


@audit.command(name="verify")
@click.option("--bundle", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              default=None, help="Verify an exported bundle instead of this appliance's log.")
@click.option("--since", "since", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              default=None, help="A signed head kept earlier (a head, heads.jsonl or a sink "
              "file: its last head): prove the log only grew since.")
@_FINGERPRINT
@click.pass_context
def audit_verify(ctx: click.Context, bundle: Path | None, since: Path | None,
                 pinned: str | None) -> None:
    """Check every entry and signed tree head; name the first bad entry."""
    settings = load_settings(ctx.obj)
    log, heads, chain, current = _audit_files(bundle, settings.data_dir)
    keys = chain_keys(chain, current, pinned)
    if bundle is None:
        _echo(_keyring_status(settings))
    _echo(f"signing keys: {', '.join(fingerprint(k) for k in keys)}")
    earlier = heads_in(since) if since is not None else []
    report = scan_log(log, heads, keys, extra_sizes=[int(h["tree_size"]) for h in earlier])
    if not report.ok:
        _echo(f"FAILED: {report.problem}", err=True)
        sys.exit(1)
    for head in earlier:  # every head kept outside must be a prefix of the log as it is
        if not any(verify(head, k) for k in keys):
            _echo(f"FAILED: a head in {since} is not signed by a trusted key", err=True)
            sys.exit(1)
        grew, why = extends(report, head)
        if not grew:
            _echo(f"FAILED: {why} (head of {head['tree_size']} entries at "
                       f"{head.get('time')})", err=True)
            sys.exit(1)
    if earlier:
        _echo(f"{why}; all {len(earlier)} heads in {since} are prefixes of this log")
    _echo(f"valid: {report.entries} entries, {report.heads} signed tree heads")
    tail = report.unsigned_events
    if tail:
        counts = ", ".join(f"{event} ×{tail.count(event)}" for event in dict.fromkeys(tail))
        _echo(f"warning: the last {len(tail)} entries are not yet covered by a signed "
                   f"head ({counts}); the next unseal signs them. Until then they could be "
                   "removed unseen here: compare with the head sinks.")


def _keyring_status(settings: Settings) -> str:
    """Authenticate the keyring under the KEK when a secret is at hand without a prompt."""
    from ._unseal import kek_source_if_given

    source = kek_source_if_given(settings)
    if source is None:
        return ("keyring: not authenticated (no KEK at hand); compare the fingerprint below "
                "with the one printed at init, or pass --fingerprint")
    keys = Keyring(settings.data_dir).unseal(source)
    keys.close()
    return "keyring: authenticated under the KEK"


@audit.command(name="export")
@click.argument("output", type=click.Path(dir_okay=False, path_type=Path))
@click.pass_context
def audit_export(ctx: click.Context, output: Path) -> None:
    """Write a self-verifiable bundle (log, signed heads, public key) for an auditor."""
    log, heads, chain, public = _audit_files(None, load_settings(ctx.obj).data_dir)
    output.write_text(json.dumps({
        "format": "greffier-audit-bundle", "version": 1,
        "public_key": base64.b64encode(public).decode(), "signing_chain": chain,
        "log": log, "heads": heads,
        "how_to_verify": "greffier audit verify --bundle FILE, or see security/FORMAT.md: "
                         "leaf = SHA-256(0x00 || entry), node = SHA-256(0x01 || l || r), "
                         "heads signed with Ed25519 over canonical JSON."}, indent=1))
    _echo(f"wrote {output}: {len(log)} entries, {len(heads)} signed heads")


@click.group()
def receipt() -> None:
    """Signed receipts of searches and answers."""


@receipt.command(name="verify")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--public-key", default=None,
              help="Ed25519 public key (base64); default: this appliance's.")
@_FINGERPRINT
@click.pass_context
def receipt_verify(ctx: click.Context, file: Path, public_key: str | None,
                   pinned: str | None) -> None:
    """Verify a receipt offline: signature, signed tree head, inclusion in the audit log."""
    document = _json_file(file, "a receipt")
    ok, why = verify_receipt(document, _trusted_keys(ctx, public_key, pinned))
    if not ok:
        _echo(f"INVALID: {why}", err=True)
        sys.exit(1)
    _echo(f"valid: {document['kind']} by {document['user']} at {document['time']}, "
               f"audit entry {document['audit']['index']}")


@click.command(name="verify-certificate")
@click.argument("certificate", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--public-key", default=None,
              help="Ed25519 public key (base64); default: this appliance's.")
@_FINGERPRINT
@click.pass_context
def verify_certificate(ctx: click.Context, certificate: Path, public_key: str | None,
                       pinned: str | None) -> None:
    """Check an erasure certificate's signature, offline."""
    document = _json_file(certificate, "an erasure certificate")
    if not any(verify(document, k) for k in _trusted_keys(ctx, public_key, pinned)):
        _echo("INVALID: the signature does not match.", err=True)
        sys.exit(1)
    _echo(f"valid: content {document.get('content_sha256')} erased at "
               f"{document.get('erased_at')} by {document.get('erased_by')}")
    if "complete" in document:
        _echo("complete: no erased byte found in the data directory" if
                   document["complete"] else f"INCOMPLETE: {_incompleteness(document)}")


def _echo(text: str, *, err: bool = False) -> None:
    """One line to the terminal, with whatever came from files or arguments made visible
    (control and bidi characters escaped): a log entry or a receipt cannot forge output."""
    click.echo(safe(text, markup=False), err=err)


def _json_file(path: Path, what: str) -> dict[str, Any]:
    try:
        document = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{path} is not {what} (not JSON).",
                          hint=f"Give the file Greffier wrote for {what}.") from exc
    if not isinstance(document, dict):
        raise ConfigError(f"{path} is not {what}.", hint=f"Give the file Greffier wrote for "
                          f"{what}.")
    return document
