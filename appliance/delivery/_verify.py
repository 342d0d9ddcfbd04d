"""``greffier bundle verify``: a bundle is installed only if its manifest's signature is
good, every file matches it (none missing, none extra), its release is not older than the
installed one (no rollback) and it has not expired (no frozen old release). Offline."""

from __future__ import annotations

from datetime import date
from pathlib import Path

from security import BundleError

from . import _minisign
from ._manifest import MANIFEST, SIGNATURE, Manifest, problems


def verify(bundle: Path, public: _minisign.PublicKey, *, installed_release: int | None = None,
           today: date | None = None) -> Manifest:
    """The verified manifest, or a :class:`BundleError` whose message has one line per
    reason (the first line is the summary)."""
    try:
        data = (bundle / MANIFEST).read_bytes()
        signature = (bundle / SIGNATURE).read_text()
    except OSError as exc:
        raise BundleError(f"{bundle} is not a bundle: {exc.strerror} ({exc.filename}).") from None
    trusted = _minisign.verify(public, data, signature)
    manifest = Manifest.parse(data)
    fields = dict(item.split(":", 1) for item in trusted.split("\t") if ":" in item)
    if fields.get("release") != str(manifest.release) or \
            fields.get("expires") != manifest.expires.isoformat():
        raise BundleError("The signed comment does not match the manifest.")
    today = today or date.today()
    if manifest.expires < today:
        raise BundleError(f"The bundle expired on {manifest.expires}.",
                          hint="Install a newer release.")
    if installed_release is not None and manifest.release < installed_release:
        raise BundleError(f"Release {manifest.release} is older than the installed release "
                          f"{installed_release} (a rollback).",
                          hint="Install the same or a newer release.")
    found = problems(bundle, manifest)
    if found:
        raise BundleError("\n".join([f"{len(found)} file(s) do not match the signed "
                                     "manifest:", *found]))
    return manifest


def installed_release(path: Path) -> int | None:
    """The release recorded by the last install, if any."""
    try:
        return int(path.read_text().strip())
    except FileNotFoundError:
        return None
    except ValueError:
        raise BundleError(f"{path} does not hold a release number.") from None
