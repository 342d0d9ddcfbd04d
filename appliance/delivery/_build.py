"""``greffier bundle build``: everything an air-gapped install needs, from the hash-locked
requirements, in one folder whose manifest is signed.

Layout: ``wheels/<lock>/`` (``pip download --require-hashes`` of each lock: the app's and
the model server's), ``models/<name>/`` (model folders, safetensors only, each file
sha256-pinned by the manifest), ``systemd/`` and ``config/`` (hardened units, the settings
template), ``manifest.json`` and its minisign signature. What a bundle leaves out (Debian
packages when built with ``--no-debs``) is written in the manifest's ``contents``."""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path

from security import BundleError

from . import _minisign
from ._manifest import MANIFEST, SIGNATURE, Manifest, describe
from ._units import FILES

_PICKLE = (".bin", ".pt", ".pth", ".pkl", ".ckpt")


@dataclass
class BuildPlan:
    out: Path
    secret: _minisign.SecretKey
    release: int
    expires: date
    locks: dict[str, Path]  # name -> hash-locked requirements file
    models: dict[str, Path] = field(default_factory=dict)  # name -> model folder
    find_links: Sequence[Path] = ()  # local wheel folders searched instead of the index
    no_index: bool = False


def build(plan: BuildPlan) -> Manifest:
    """Build the bundle in ``plan.out`` (new or empty) and sign its manifest."""
    out = plan.out
    if out.exists() and any(out.iterdir()):
        raise BundleError(f"{out} is not empty.", hint="Build into a new folder.")
    if plan.release < 1:
        raise BundleError("The release number starts at 1.")
    if plan.expires <= date.today():
        raise BundleError(f"The expiry date {plan.expires} is not in the future.")
    out.mkdir(parents=True, exist_ok=True)
    for name, lock in plan.locks.items():
        _download(lock, out / "wheels" / name, plan)
    for name, folder in plan.models.items():
        _copy_model(name, folder, out / "models" / name)
    for rel, text in FILES.items():
        target = out / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
    manifest = Manifest(
        release=plan.release, expires=plan.expires,
        created=datetime.now(UTC).isoformat(timespec="seconds"),
        files=describe(out),
        contents={"wheels": sorted(plan.locks), "models": sorted(plan.models),
                  "debs": "not included: install Greffier's Debian packages from a mirror"})
    data = manifest.to_bytes()
    (out / MANIFEST).write_bytes(data)
    (out / SIGNATURE).write_text(_minisign.sign(plan.secret, data, _minisign.timestamp_comment(
        MANIFEST, release=str(plan.release), expires=plan.expires.isoformat())))
    return manifest


def _download(lock: Path, target: Path, plan: BuildPlan) -> None:
    if not lock.is_file():
        raise BundleError(f"No lock file {lock}.")
    target.mkdir(parents=True)
    command = [sys.executable, "-m", "pip", "download", "--quiet", "--disable-pip-version-check",
               "--no-deps", "--require-hashes", "-r", str(lock), "-d", str(target)]
    for folder in plan.find_links:
        command += ["--find-links", str(folder)]
    if plan.no_index:
        command.append("--no-index")
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["(no output)"])[-1]
        raise BundleError(f"pip could not download {lock.name}: {last}",
                          hint="Build on a machine that reaches the package index, or pass "
                          "--find-links with a wheel folder holding every locked file.")


def _copy_model(name: str, source: Path, target: Path) -> None:
    if not source.is_dir():
        raise BundleError(f"Model {name}: {source} is not a folder.")
    pickles = [p.name for p in source.rglob("*") if p.suffix in _PICKLE]
    if pickles:
        raise BundleError(f"Model {name} holds pickle weights ({', '.join(sorted(pickles))}).",
                          hint="Ship safetensors only.")
    shutil.copytree(source, target, symlinks=False)
