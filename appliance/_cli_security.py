"""CLI: keys, erasure, export, audit log and receipts."""

from __future__ import annotations

import base64
import json
import os
import sys
from pathlib import Path

import click

from security import Keyring, verify, verify_log, verify_receipt

from ._appliance import Appliance, rotate_kek
from ._cli_common import open_appliance as _open
from ._settings import load_settings
from ._unseal import kek_source


@click.command()
@click.pass_context
def init(ctx: click.Context) -> None:
    """Create the appliance's keys (KEK from the passphrase or the PKCS#11 token)."""
    settings = load_settings(ctx.obj)
    public = Appliance.init(settings, kek_source(settings))
    click.echo(f"Initialised {settings.data_dir} ({settings.security.kek} KEK).")
    click.echo(f"Appliance signing key (Ed25519, base64): {base64.b64encode(public).decode()}")


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
    click.echo(f"Unsealed for {timeout_s} s (`greffier seal` to seal now).")


@click.command()
@click.pass_context
def seal(ctx: click.Context) -> None:
    """Drop the KEK from the kernel keyring: content operations fail until the next unseal."""
    from ._appliance import current_user
    from ._unseal import seal_session

    settings = load_settings(ctx.obj)
    click.echo("Sealed." if seal_session(settings, current_user()) else "Already sealed.")


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
    click.echo(f"Rotated the KEK: {count} data keys re-wrapped.")


@click.command(name="export")
@click.argument("document")
@click.argument("output", type=click.Path(dir_okay=False, path_type=Path))
@click.pass_context
def export_command(ctx: click.Context, document: str, output: Path) -> None:
    """Write a document's original file, decrypted (id, path or content sha256)."""
    from ._erase import find_content

    with _open(ctx) as app:
        size = app.export(find_content(app, document), output)
    click.echo(f"wrote {output} ({size} bytes)")


@click.command(name="erase")
@click.argument("document")
@click.option("--by", "erased_by", default=None, help="Who erases (default: $SUDO_USER/$USER).")
@click.pass_context
def erase_command(ctx: click.Context, document: str, erased_by: str | None) -> None:
    """Erase a document for good (crypto-erasure) and print its signed certificate."""
    import getpass as _getpass

    from ._erase import erase

    who = erased_by or os.environ.get("SUDO_USER") or _getpass.getuser()
    with _open(ctx) as app:
        certificate = erase(app, document, erased_by=who)
    click.echo(json.dumps(certificate, indent=2))


def _public_key(ctx: click.Context, given: str | None) -> bytes:
    """The key given on the command line, else this appliance's (from its keyring)."""
    if given:
        return base64.b64decode(given)
    return Keyring(load_settings(ctx.obj).data_dir).public_key()


@click.group()
def audit() -> None:
    """The tamper-evident audit log."""


def _audit_files(bundle: Path | None, data_dir: Path) -> tuple[list[str], list[str], bytes]:
    if bundle is not None:
        data = json.loads(bundle.read_text())
        return data["log"], data["heads"], base64.b64decode(data["public_key"])
    folder = data_dir / "audit"

    def lines(name: str) -> list[str]:
        path = folder / name
        return path.read_text().splitlines() if path.exists() else []

    return lines("log.jsonl"), lines("heads.jsonl"), Keyring(data_dir).public_key()


@audit.command(name="verify")
@click.option("--bundle", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              default=None, help="Verify an exported bundle instead of this appliance's log.")
@click.pass_context
def audit_verify(ctx: click.Context, bundle: Path | None) -> None:
    """Check every entry and signed tree head; name the first bad entry."""
    log, heads, public = _audit_files(bundle, load_settings(ctx.obj).data_dir)
    report = verify_log(log, heads, public)
    if not report.ok:
        click.echo(f"FAILED: {report.problem}", err=True)
        sys.exit(1)
    click.echo(f"valid: {report.entries} entries, {report.heads} signed tree heads")


@audit.command(name="export")
@click.argument("output", type=click.Path(dir_okay=False, path_type=Path))
@click.pass_context
def audit_export(ctx: click.Context, output: Path) -> None:
    """Write a self-verifiable bundle (log, signed heads, public key) for an auditor."""
    log, heads, public = _audit_files(None, load_settings(ctx.obj).data_dir)
    output.write_text(json.dumps({
        "format": "greffier-audit-bundle", "version": 1,
        "public_key": base64.b64encode(public).decode(), "log": log, "heads": heads,
        "how_to_verify": "greffier audit verify --bundle FILE, or see security/FORMAT.md: "
                         "leaf = SHA-256(0x00 || entry), node = SHA-256(0x01 || l || r), "
                         "heads signed with Ed25519 over canonical JSON."}, indent=1))
    click.echo(f"wrote {output}: {len(log)} entries, {len(heads)} signed heads")


@click.group()
def receipt() -> None:
    """Signed receipts of searches and answers."""


@receipt.command(name="verify")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--public-key", default=None,
              help="Ed25519 public key (base64); default: this appliance's.")
@click.pass_context
def receipt_verify(ctx: click.Context, file: Path, public_key: str | None) -> None:
    """Verify a receipt offline: signature, signed tree head, inclusion in the audit log."""
    document = json.loads(file.read_text())
    key = _public_key(ctx, public_key)
    ok, why = verify_receipt(document, key)
    if not ok:
        click.echo(f"INVALID: {why}", err=True)
        sys.exit(1)
    click.echo(f"valid: {document['kind']} by {document['user']} at {document['time']}, "
               f"audit entry {document['audit']['index']}")


@click.command(name="verify-certificate")
@click.argument("certificate", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--public-key", default=None,
              help="Ed25519 public key (base64); default: this appliance's.")
@click.pass_context
def verify_certificate(ctx: click.Context, certificate: Path, public_key: str | None) -> None:
    """Check an erasure certificate's signature, offline."""
    document = json.loads(certificate.read_text())
    key = _public_key(ctx, public_key)
    if not verify(document, key):
        click.echo("INVALID: the signature does not match.", err=True)
        sys.exit(1)
    click.echo(f"valid: content {document['content_sha256']} erased at {document['erased_at']} "
               f"by {document['erased_by']}")
