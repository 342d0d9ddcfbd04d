"""A model's identity: its name and the sha256 of its weights.

Recorded with every chunk, so a change of model (or of its weights) is detected and the
affected content is re-embedded instead of silently mixing vector spaces.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from security import ModelError

_BLOCK = 1 << 20


@dataclass(frozen=True)
class ModelIdentity:
    name: str
    weights_sha256: str
    dim: int

    @property
    def id(self) -> str:
        """Short, stable identifier: ``name@sha256[:16]``."""
        return f"{self.name}@{self.weights_sha256[:16]}"


def weights_digest(folder: Path) -> str:
    """sha256 over every ``*.safetensors`` file in the folder (sorted by relative path).

    Only safetensors are accepted: pickle-based weights (``.bin``, ``.pt``) can execute code
    when loaded.
    """
    files = sorted(folder.rglob("*.safetensors"))
    if not files:
        raise ModelError(
            f"No safetensors weights in {folder}.",
            hint="Greffier loads only safetensors; convert the model or pick another folder.",
        )
    pickled = [p for p in folder.rglob("*") if p.suffix in {".bin", ".pt", ".pkl", ".pth"}]
    if pickled:
        raise ModelError(
            f"{folder} holds pickle-based weights ({pickled[0].name}).",
            hint="Remove them: Greffier loads only safetensors, which cannot run code.",
        )
    digest = hashlib.sha256()
    for path in files:
        digest.update(str(path.relative_to(folder)).encode() + b"\0")
        with path.open("rb") as handle:
            while block := handle.read(_BLOCK):
                digest.update(block)
    return digest.hexdigest()
