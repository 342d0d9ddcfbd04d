"""A bundle's manifest: every file with its sha256 and size, the release number (it only
goes up), the expiry date, and what the bundle holds. ``manifest.json`` is what is signed
(``manifest.json.minisig``); every other file is checked against it."""

from __future__ import annotations

import json
import os
import stat
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path, PurePosixPath
from typing import Any

from security import BundleError, sha256_file

FORMAT = "greffier-bundle/1"
MANIFEST = "manifest.json"
SIGNATURE = "manifest.json.minisig"


@dataclass(frozen=True)
class Manifest:
    release: int
    expires: date
    created: str
    files: dict[str, dict[str, Any]]  # relative path -> {"sha256", "size"}
    contents: dict[str, Any] = field(default_factory=dict)  # what is in, what is not

    def to_bytes(self) -> bytes:
        return (json.dumps({"format": FORMAT, "release": self.release,
                            "expires": self.expires.isoformat(), "created": self.created,
                            "contents": self.contents, "files": self.files},
                           indent=1, sort_keys=True) + "\n").encode()

    @classmethod
    def parse(cls, data: bytes) -> Manifest:
        try:
            raw = json.loads(data)
            if raw.get("format") != FORMAT:
                raise BundleError(f"Unknown bundle format {raw.get('format')!r}.",
                                  hint="Use the greffier release the bundle was made for.")
            manifest = cls(release=int(raw["release"]),
                           expires=date.fromisoformat(raw["expires"]),
                           created=str(raw["created"]), files=dict(raw["files"]),
                           contents=dict(raw.get("contents", {})))
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise BundleError(f"The manifest is malformed ({exc}).") from None
        for rel in manifest.files:  # signed, but never trusted to write outside the bundle
            parts = PurePosixPath(rel).parts
            if not parts or PurePosixPath(rel).is_absolute() or ".." in parts or "\\" in rel:
                raise BundleError(f"The manifest names a path outside the bundle: {rel!r}.")
        return manifest


def walk(root: Path) -> dict[str, Path]:
    """Every file under ``root`` by its relative path, except the manifest and its
    signature. Anything but folders and regular files is refused (a link could point out of
    the bundle)."""
    out: dict[str, Path] = {}
    for folder, dirs, files in os.walk(root):
        for name in (*dirs, *files):
            path = Path(folder) / name
            mode = path.lstat().st_mode
            rel = path.relative_to(root).as_posix()
            if stat.S_ISLNK(mode) or not (stat.S_ISDIR(mode) or stat.S_ISREG(mode)):
                raise BundleError(f"{rel}: not a regular file or folder (a link?); refused.")
            if stat.S_ISREG(mode) and rel not in (MANIFEST, SIGNATURE):
                out[rel] = path
    return dict(sorted(out.items()))


def describe(root: Path) -> dict[str, dict[str, Any]]:
    return {rel: {"sha256": sha256_file(p), "size": p.stat().st_size}
            for rel, p in walk(root).items()}


def problems(root: Path, manifest: Manifest) -> list[str]:
    """Each difference between the folder and its manifest, one line each."""
    found = walk(root)
    out = [f"{rel}: missing" for rel in manifest.files if rel not in found]
    out += [f"{rel}: not in the manifest (an extra file)" for rel in found
            if rel not in manifest.files]
    for rel, expected in manifest.files.items():
        path = found.get(rel)
        if path is None:
            continue
        if path.stat().st_size != expected.get("size"):
            out.append(f"{rel}: size {path.stat().st_size}, expected {expected.get('size')}")
        elif sha256_file(path) != expected.get("sha256"):
            out.append(f"{rel}: sha256 differs from the manifest (altered)")
    return out
