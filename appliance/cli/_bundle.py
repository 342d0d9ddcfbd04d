"""``greffier bundle``: make a signing key, build the signed offline bundle, verify one.
None of them needs the appliance, its keys or its data directory."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import click

from .._term import safe
from ..delivery import BuildPlan, PublicKey, SecretKey, build, installed_release, verify
from ..delivery import write_keypair as _write_keypair

ROOT = Path(__file__).resolve().parents[2]
LOCKS = {"app": ROOT / "requirements" / "app.lock", "llm": ROOT / "requirements" / "llm.lock"}
RELEASE_FILE = Path("/var/lib/greffier/bundle-release")


@click.group()
def bundle() -> None:
    """The signed offline bundle for air-gapped installs."""


@bundle.command(name="keygen")
@click.option("--secret", "secret", type=click.Path(path_type=Path), required=True,
              help="Where to write the secret key (0600; keep it offline).")
@click.option("--public", "public", type=click.Path(path_type=Path), required=True,
              help="Where to write the public key (minisign format: give it to IT).")
def keygen(secret: Path, public: Path) -> None:
    """Make a bundle signing key pair."""
    key = _write_keypair(secret, public)
    click.echo(f"key {key.public.id_hex}: secret {safe(secret)}, public {safe(public)}")


@bundle.command(name="build")
@click.option("--out", type=click.Path(path_type=Path), required=True,
              help="A new folder for the bundle.")
@click.option("--key", "key_file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              required=True, help="The secret key from `greffier bundle keygen`.")
@click.option("--release", type=int, required=True, help="Release number (only goes up).")
@click.option("--valid-days", type=click.IntRange(1, 3650), default=180, show_default=True,
              help="The bundle expires after this many days.")
@click.option("--lock", "locks", multiple=True, metavar="NAME=FILE",
              help="Hash-locked requirements to include (default: the app's and the model "
              "server's).")
@click.option("--model", "models", multiple=True, metavar="NAME=FOLDER",
              help="A model folder to include (safetensors only), e.g. embedder=/path.")
@click.option("--find-links", multiple=True, type=click.Path(path_type=Path),
              help="A local wheel folder pip searches first.")
@click.option("--no-index", is_flag=True, help="Only the --find-links folders, no index.")
def build_command(out: Path, key_file: Path, release: int, valid_days: int,
                  locks: tuple[str, ...], models: tuple[str, ...],
                  find_links: tuple[Path, ...], no_index: bool) -> None:
    """Build and sign an offline bundle."""
    plan = BuildPlan(out=out, secret=SecretKey.parse(key_file.read_text()), release=release,
                     expires=date.today() + timedelta(days=valid_days),
                     locks={k: Path(v) for k, v in _pairs(locks)} if locks else LOCKS,
                     models={k: Path(v) for k, v in _pairs(models)},
                     find_links=find_links, no_index=no_index)
    manifest = build(plan)
    click.echo(f"built {safe(out)}: release {manifest.release}, {len(manifest.files)} files, "
               f"expires {manifest.expires}, signed by {plan.secret.public.id_hex}")


@bundle.command(name="verify")
@click.argument("path", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--key", "key_file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              required=True, help="The publisher's public key (minisign format).")
@click.option("--installed-release-file", type=click.Path(path_type=Path),
              default=RELEASE_FILE, show_default=True,
              help="Where the installed release is recorded (absent: first install).")
def verify_command(path: Path, key_file: Path, installed_release_file: Path) -> None:
    """Verify a bundle: signature, every file, no rollback, not expired. Offline."""
    manifest = verify(path, PublicKey.parse(key_file.read_text()),
                      installed_release=installed_release(installed_release_file))
    click.echo(f"verified: release {manifest.release}, {len(manifest.files)} files, "
               f"expires {manifest.expires}")


def _pairs(items: tuple[str, ...]) -> list[tuple[str, str]]:
    pairs = []
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name or not value:
            raise click.BadParameter(f"{item!r}: expected NAME=PATH")
        pairs.append((name, value))
    return pairs
