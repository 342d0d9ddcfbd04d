"""Air-gapped delivery: the signed offline bundle (build, verify)."""

from ._build import BuildPlan, build
from ._manifest import MANIFEST, SIGNATURE, Manifest
from ._minisign import PublicKey, SecretKey, write_keypair
from ._verify import installed_release, verify

__all__ = ["MANIFEST", "SIGNATURE", "BuildPlan", "Manifest", "PublicKey", "SecretKey",
           "build", "installed_release", "verify", "write_keypair"]
