"""The signed offline bundle: built from hash-locked requirements (a small local wheel
index here, so the test needs no network) and a real model folder; Debian's ``minisign``
verifies its manifest; ``greffier bundle verify`` accepts it and refuses every tampering with
its reason, changing nothing."""

from __future__ import annotations

import base64
import hashlib
import os
import shutil
import subprocess
import sys
import zipfile
from datetime import date, timedelta
from pathlib import Path

import pytest

from appliance._settings import load_settings
from appliance.delivery import (
    MANIFEST,
    SIGNATURE,
    BuildPlan,
    PublicKey,
    SecretKey,
    build,
    verify,
    write_keypair,
)
from appliance.delivery._units import FILES
from embeddings import default_model_dir
from security import BundleError

ROOT = Path(__file__).resolve().parents[1]
MINISIGN = shutil.which("minisign")


def _b64(digest: bytes) -> str:
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def _wheel(folder: Path, name: str, version: str) -> Path:
    """A minimal valid wheel (METADATA, WHEEL, RECORD)."""
    dist = f"{name}-{version}.dist-info"
    files = {f"{name}/__init__.py": b"VALUE = 1\n",
             f"{dist}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
             .encode(),
             f"{dist}/WHEEL": b"Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\n"
             b"Tag: py3-none-any\n"}
    record = [f"{path},sha256={_b64(hashlib.sha256(data).digest())},{len(data)}"
              for path, data in files.items()]
    files[f"{dist}/RECORD"] = ("\n".join([*record, f"{dist}/RECORD,,"]) + "\n").encode()
    path = folder / f"{name}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as zf:
        for arc, data in files.items():
            zf.writestr(arc, data)
    return path


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> tuple[SecretKey, Path]:
    folder = tmp_path_factory.mktemp("keys")
    secret = write_keypair(folder / "bundle.key", folder / "bundle.pub")
    assert oct((folder / "bundle.key").stat().st_mode & 0o777) == "0o600"
    return secret, folder / "bundle.pub"


@pytest.fixture(scope="module")
def index(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A local wheel folder and a lock pinning its wheels by sha256."""
    folder = tmp_path_factory.mktemp("index")
    lines = []
    for name, version in (("greffier_demo_a", "1.0"), ("greffier_demo_b", "2.3")):
        wheel = _wheel(folder, name, version)
        digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
        lines.append(f"{name.replace('_', '-')}=={version} --hash=sha256:{digest}")
    lock = folder / "app.lock"
    lock.write_text("\n".join(lines) + "\n")
    return folder, lock


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory, keys: tuple[SecretKey, Path],
           index: tuple[Path, Path]) -> Path:
    out = tmp_path_factory.mktemp("bundles") / "greffier-7"
    secret, _ = keys
    build(BuildPlan(out=out, secret=secret, release=7, expires=date.today() + timedelta(30),
                    locks={"app": index[1]}, models={"embedder": default_model_dir()},
                    find_links=[index[0]], no_index=True))
    return out


def _copy(bundle: Path, tmp_path: Path) -> Path:
    """A copy sharing the files (hard links): replace a file, never write into it."""
    target = tmp_path / "copy"
    shutil.copytree(bundle, target, copy_function=os.link)
    return target


def _replace(path: Path, data: bytes) -> None:
    path.unlink()
    path.write_bytes(data)


def _flip(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    _replace(path, bytes(data))


def test_the_bundle_holds_what_the_manifest_says(bundle: Path, index: tuple[Path, Path],
                                                 keys: tuple[SecretKey, Path]) -> None:
    manifest = verify(bundle, PublicKey.parse(keys[1].read_text()))
    assert manifest.release == 7
    wheels = sorted(p for p in manifest.files if p.startswith("wheels/app/"))
    assert wheels == ["wheels/app/greffier_demo_a-1.0-py3-none-any.whl",
                      "wheels/app/greffier_demo_b-2.3-py3-none-any.whl"]
    for rel in wheels:  # the bytes the lock pinned
        digest = manifest.files[rel]["sha256"]
        assert f"sha256:{digest}" in index[1].read_text()
    model = default_model_dir()
    for path in model.rglob("*"):
        if path.is_file():
            rel = f"models/embedder/{path.relative_to(model).as_posix()}"
            assert manifest.files[rel]["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert set(FILES) <= set(manifest.files)
    assert manifest.contents["debs"].startswith("not included")


@pytest.mark.skipif(MINISIGN is None, reason="`make deps` installs Debian's minisign")
def test_debians_minisign_verifies_the_manifest(bundle: Path, keys: tuple[SecretKey, Path]
                                                ) -> None:
    done = subprocess.run([str(MINISIGN), "-Vm", str(bundle / MANIFEST), "-p", str(keys[1])],
                          capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert "release:7" in done.stdout
    # and refuses a manifest changed after signing
    tampered = bundle.parent / "tampered.json"
    tampered.write_bytes((bundle / MANIFEST).read_bytes().replace(b'"release": 7', b'"release": 8'))
    shutil.copy(bundle / SIGNATURE, str(tampered) + ".minisig")
    done = subprocess.run([str(MINISIGN), "-Vm", str(tampered), "-p", str(keys[1])],
                          capture_output=True, text=True, check=False)
    assert done.returncode != 0


def test_a_signature_made_by_minisign_is_read_by_greffier(tmp_path: Path) -> None:
    if MINISIGN is None:
        pytest.skip("`make deps` installs Debian's minisign")
    subprocess.run([MINISIGN, "-G", "-W", "-p", str(tmp_path / "m.pub"), "-s",
                    str(tmp_path / "m.key")], check=True, capture_output=True)
    (tmp_path / "f").write_bytes(b"a manifest")
    subprocess.run([MINISIGN, "-S", "-s", str(tmp_path / "m.key"), "-m", str(tmp_path / "f"),
                    "-t", "release:1"], check=True, capture_output=True)
    from appliance.delivery._minisign import verify as check

    public = PublicKey.parse((tmp_path / "m.pub").read_text())
    assert check(public, b"a manifest", (tmp_path / "f.minisig").read_text()) == "release:1"
    with pytest.raises(BundleError, match="invalid"):
        check(public, b"another manifest", (tmp_path / "f.minisig").read_text())


TAMPERING = {
    "a wheel's byte flipped": (
        lambda b: _flip(next((b / "wheels" / "app").glob("*.whl"))), "sha256 differs"),
    "a model file's byte flipped": (
        lambda b: _flip(b / "models" / "embedder" / "model.safetensors"), "sha256 differs"),
    "a unit changed": (
        lambda b: _replace(b / "systemd" / "greffier.service", (b / "systemd" /
                           "greffier.service").read_bytes().replace(b"NoNewPrivileges=yes",
                                                                    b"NoNewPrivileges=no")),
        "greffier.service: size"),
    "an extra file": (lambda b: (b / "wheels" / "app" / "evil-1.0-py3-none-any.whl")
                      .write_bytes(b"x"), "not in the manifest"),
    "a missing file": (lambda b: (b / "config" / "greffier.toml").unlink(), "missing"),
    "a link in the bundle": (lambda b: (b / "config" / "shadow").symlink_to("/etc/shadow"),
                             "not a regular file"),
    "the manifest edited": (lambda b: _replace(b / MANIFEST, (b / MANIFEST).read_bytes()
                                               .replace(b'"release": 7', b'"release": 9')),
                            "signature is invalid"),
    "the signature removed": (lambda b: (b / SIGNATURE).unlink(), "not a bundle"),
}


@pytest.mark.parametrize("case", sorted(TAMPERING))
def test_every_tampering_is_refused_with_its_reason(case: str, bundle: Path, tmp_path: Path,
                                                     keys: tuple[SecretKey, Path]) -> None:
    tamper, reason = TAMPERING[case]
    copy = _copy(bundle, tmp_path)
    tamper(copy)
    before = {p: p.stat().st_mtime_ns for p in copy.rglob("*") if not p.is_symlink()}
    with pytest.raises(BundleError, match=reason):
        verify(copy, PublicKey.parse(keys[1].read_text()))
    assert {p: p.stat().st_mtime_ns for p in copy.rglob("*") if not p.is_symlink()} == before
    verify(bundle, PublicKey.parse(keys[1].read_text()))  # the original is untouched


def test_another_key_an_older_release_and_an_expired_bundle_are_refused(
        bundle: Path, tmp_path: Path, keys: tuple[SecretKey, Path]) -> None:
    public = PublicKey.parse(keys[1].read_text())
    other = write_keypair(tmp_path / "other.key", tmp_path / "other.pub")
    with pytest.raises(BundleError, match="signed by another key"):
        verify(bundle, other.public)
    # a signature swapped for one by another key over the same manifest
    copy = _copy(bundle, tmp_path)
    from appliance.delivery._minisign import sign

    _replace(copy / SIGNATURE, sign(other, (copy / MANIFEST).read_bytes(),
                                    "release:7\texpires:2099-01-01").encode())
    with pytest.raises(BundleError, match="signed by another key"):
        verify(copy, public)
    with pytest.raises(BundleError, match="older than the installed release 8"):
        verify(bundle, public, installed_release=8)
    assert verify(bundle, public, installed_release=7).release == 7  # a re-install
    expires = verify(bundle, public).expires
    with pytest.raises(BundleError, match=f"expired on {expires}"):
        verify(bundle, public, today=expires + timedelta(days=1))


def test_the_cli_verifies_and_refuses_in_one_line_per_reason(
        bundle: Path, tmp_path: Path, keys: tuple[SecretKey, Path]) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-m", "appliance", "bundle", "verify", "--key", str(keys[1]),
               "--installed-release-file", str(tmp_path / "release")]
    ok = subprocess.run([*command, str(bundle)], capture_output=True, text=True, env=env,
                        check=False)
    assert ok.returncode == 0 and "verified: release 7" in ok.stdout, ok.stderr
    (tmp_path / "release").write_text("9\n")
    old = subprocess.run([*command, str(bundle)], capture_output=True, text=True, env=env,
                         check=False)
    assert old.returncode == 2 and "older than the installed release 9" in old.stderr
    (tmp_path / "release").unlink()
    copy = _copy(bundle, tmp_path)
    _flip(next((copy / "wheels" / "app").glob("*.whl")))
    (copy / "config" / "greffier.toml").unlink()
    bad = subprocess.run([*command, str(copy)], capture_output=True, text=True, env=env,
                         check=False)
    assert bad.returncode == 2
    lines = bad.stderr.strip().splitlines()
    assert "2 file(s) do not match" in lines[0]
    assert any("greffier.toml: missing" in line for line in lines)
    assert any(".whl: sha256 differs" in line for line in lines)
    assert "Traceback" not in bad.stderr


def test_build_refuses_what_it_must_not_ship(tmp_path: Path, keys: tuple[SecretKey, Path],
                                             index: tuple[Path, Path]) -> None:
    secret = keys[0]
    later = date.today() + timedelta(30)
    pickled = tmp_path / "pickled"
    pickled.mkdir()
    (pickled / "pytorch_model.bin").write_bytes(b"\x80\x04pickle")
    with pytest.raises(BundleError, match="pickle weights"):
        build(BuildPlan(out=tmp_path / "a", secret=secret, release=1, expires=later,
                        locks={}, models={"bad": pickled}))
    wrong = tmp_path / "wrong.lock"
    pinned = index[1].read_text().split("sha256:")[1][:64]
    wrong.write_text(index[1].read_text().replace(pinned, "0" * 64))
    with pytest.raises(BundleError, match=r"pip could not download wrong\.lock"):
        build(BuildPlan(out=tmp_path / "b", secret=secret, release=1, expires=later,
                        locks={"app": wrong}, find_links=[index[0]], no_index=True))
    (tmp_path / "c").mkdir()
    (tmp_path / "c" / "x").write_text("")
    with pytest.raises(BundleError, match="not empty"):
        build(BuildPlan(out=tmp_path / "c", secret=secret, release=1, expires=later, locks={}))
    with pytest.raises(BundleError, match="not in the future"):
        build(BuildPlan(out=tmp_path / "d", secret=secret, release=1, expires=date.today(),
                        locks={}))


def test_the_shipped_settings_template_is_valid(tmp_path: Path) -> None:
    config = tmp_path / "greffier.toml"
    config.write_text(FILES["config/greffier.toml"])
    settings = load_settings(config)
    assert str(settings.data_dir) == "/var/lib/greffier"
    assert settings.api.host == "0.0.0.0" and settings.api.plain_http is False
    for unit in ("systemd/greffier.service", "systemd/greffier-llm.service"):
        text = FILES[unit]
        for line in ("User=greffier", "NoNewPrivileges=yes", "ProtectSystem=strict",
                     "PrivateTmp=yes", "IPAddressDeny=any", "RestrictAddressFamilies="):
            assert line in text, (unit, line)


def test_a_manifest_naming_a_path_outside_the_bundle_is_refused() -> None:
    from appliance.delivery._manifest import Manifest

    for rel in ("../etc/cron.d/x", "/etc/passwd", "wheels/../../x"):
        data = Manifest(release=1, expires=date.today(), created="now",
                        files={rel: {"sha256": "0" * 64, "size": 1}}).to_bytes()
        with pytest.raises(BundleError, match="outside the bundle"):
            Manifest.parse(data)
