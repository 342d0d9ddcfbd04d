"""The first-use TLS certificate: self-signed, made by ``greffier init`` (or the first
``greffier serve``) until an admin installs the company's own (api.tls_cert / api.tls_key)."""

from __future__ import annotations

import datetime
import ipaddress
import os
import socket
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from security import write_atomically


def default_paths(data_dir: Path) -> tuple[Path, Path]:
    return data_dir / "tls" / "cert.pem", data_dir / "tls" / "key.pem"


def ensure_self_signed(data_dir: Path, *, days: int = 397) -> tuple[Path, Path, bool]:
    """The default certificate and key, made if missing. Returns (cert, key, made)."""
    cert_path, key_path = default_paths(data_dir)
    if cert_path.exists() and key_path.exists():
        return cert_path, key_path, False
    cert_path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    key = ec.generate_private_key(ec.SECP256R1())
    host = socket.gethostname()
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host),
                      x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Greffier (self-signed)")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=days))
            .add_extension(x509.SubjectAlternativeName([
                x509.DNSName(host), x509.DNSName("localhost"),
                x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                x509.IPAddress(ipaddress.ip_address("::1"))]), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]),
                           critical=False)
            .sign(key, hashes.SHA256()))
    old = os.umask(0o077)
    try:
        write_atomically(key_path, key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption()))
        write_atomically(cert_path, cert.public_bytes(serialization.Encoding.PEM))
    finally:
        os.umask(old)
    return cert_path, key_path, True


def fingerprint_sha256(cert_path: Path) -> str:
    cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    return cert.fingerprint(hashes.SHA256()).hex(":")
