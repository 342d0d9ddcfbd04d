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
    fingerprint,
)

from .._appliance import Appliance, rotate_kek
from .._settings import load_settings
from .._term import safe
from .._unseal import kek_source
from ._common import open_appliance as _open


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
    from .._tls import ensure_self_signed, fingerprint_sha256

    cert, _key, _made = ensure_self_signed(settings.data_dir)
    _echo(f"Self-signed TLS certificate for first use: {cert} (SHA-256 "
          f"{fingerprint_sha256(cert)}); install your own with api.tls_cert and api.tls_key.")


@click.command()
@click.option("--timeout", "timeout_s", type=click.IntRange(60, 7 * 24 * 3600), default=8 * 3600,
              show_default=True, help="Seconds before the appliance seals itself again.")
@click.pass_context
def unseal(ctx: click.Context, timeout_s: int) -> None:
    """Load the KEK into the kernel keyring (never on disk) for the commands that follow."""
    from .._appliance import current_user
    from .._unseal import unseal_session

    settings = load_settings(ctx.obj)
    unseal_session(settings, timeout_s, current_user())
    _echo(f"Unsealed for {timeout_s} s (`greffier seal` to seal now).")


@click.command()
@click.pass_context
def seal(ctx: click.Context) -> None:
    """Drop the KEK from the kernel keyring: content operations fail until the next unseal."""
    from .._appliance import current_user
    from .._unseal import seal_session

    settings = load_settings(ctx.obj)
    _echo("Sealed." if seal_session(settings, current_user()) else "Already sealed.")


@click.group()
def keys() -> None:
    """Key management."""


@keys.command(name="rotate")
@click.pass_context
def keys_rotate(ctx: click.Context) -> None:
    """A new KEK (GREFFIER_NEW_PASSPHRASE[_FILE]) and new signing, audit and index keys;
    data keys re-wrapped, no data re-encrypted, the sparse index recomputed."""
    settings = load_settings(ctx.obj)
    with _open(ctx) as app:
        count = rotate_kek(app, kek_source(settings, new=True))
        public = app.keys.public_key
    _echo(f"Rotated the KEK and the keys under it: {count} data keys re-wrapped.")
    _echo(f"New signing key fingerprint: {fingerprint(public)} (vouched for by the previous "
          "key; give it to your auditors with --fingerprint)")


@keys.command(name="upgrade")
@click.pass_context
def keys_upgrade(ctx: click.Context) -> None:
    """Upgrade a version-1 keyring (before its MAC) to version 2, once, on purpose."""
    from .._appliance import Appliance, current_user

    settings = load_settings(ctx.obj)
    with Appliance.open(settings, kek_source(settings), user=current_user(),
                        upgrade=True) as app:
        public = app.keys.public_key
    _echo(f"Keyring upgraded to version 2; signing key fingerprint: {fingerprint(public)}")


@click.command(name="export")
@click.argument("document")
@click.argument("output", type=click.Path(dir_okay=False, path_type=Path))
@click.pass_context
def export_command(ctx: click.Context, document: str, output: Path) -> None:
    """Write a document's original file, decrypted (id, path or content sha256)."""
    from .._erase import find_content

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

    from .._erase import erase_many

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


def _echo(text: str, *, err: bool = False) -> None:
    """One line to the terminal, with whatever came from files or arguments made visible
    (control and bidi characters escaped): a log entry or a receipt cannot forge output."""
    click.echo(safe(text, markup=False), err=err)
