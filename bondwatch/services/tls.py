"""A development certificate authority and the local broker's server certificate.

`bondwatch services up` calls :func:`ensure_dev_pki` once per checkout: it makes, under
``<state_dir>/tls/``, a CA that exists only on this machine and a server certificate for
``127.0.0.1``, ``::1`` and ``localhost`` signed by it. Keys are written with mode 0600 and never
leave the state folder (the broker gets its own copy, owned by its own user). Clients trust
``ca.pem`` only (``mqtts://...?ca=var/tls/ca.pem`` or ``BONDWATCH_MQTT_CA_FILE``), so a client
that verifies against the system's CAs is refused, as it should be.

This is not a production PKI: in production the broker's certificate comes from the operator's
own CA (one per site), see docs/security.md. For a staging host, ``python -m
bondwatch.services.tls DIR --host broker.example`` makes the same three files for another name.
"""

from __future__ import annotations

import argparse
import datetime as dt
import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

LOCAL_HOSTS = ("127.0.0.1", "::1", "localhost")
CA_DAYS = 3650
SERVER_DAYS = 825
# A server certificate closer than this to its end is made again on the next `services up`.
RENEW_BEFORE = dt.timedelta(days=30)


@dataclass(frozen=True)
class DevPki:
    """Paths of the development CA and server certificate (PEM)."""

    folder: Path

    @property
    def ca_cert(self) -> Path:
        return self.folder / "ca.pem"

    @property
    def ca_key(self) -> Path:
        return self.folder / "ca.key"

    @property
    def server_cert(self) -> Path:
        return self.folder / "server.pem"

    @property
    def server_key(self) -> Path:
        return self.folder / "server.key"


def _write(path: Path, data: bytes, mode: int) -> None:
    """Write ``data`` with ``mode`` from the first byte on (a key is never briefly world-readable)."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    with os.fdopen(fd, "wb") as out:
        out.write(data)
    os.chmod(tmp, mode)
    tmp.replace(path)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    encoding, fmt = serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8
    return key.private_bytes(encoding, fmt, serialization.NoEncryption())


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "BondWatch development"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _san(hosts: tuple[str, ...]) -> x509.SubjectAlternativeName:
    names: list[x509.GeneralName] = []
    for host in hosts:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    return x509.SubjectAlternativeName(names)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def make_ca(pki: DevPki, common_name: str = "BondWatch development CA") -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    now = _now()
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(_name(common_name))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=CA_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    _write(pki.ca_key, _key_pem(key), 0o600)
    _write(pki.ca_cert, cert.public_bytes(serialization.Encoding.PEM), 0o644)


def issue(
    pki: DevPki, common_name: str, hosts: tuple[str, ...], cert_path: Path, key_path: Path, *, client: bool = False
) -> None:
    """A leaf certificate signed by the CA: a server's (``hosts`` in its SAN) or, with ``client``, a device's."""
    ca_key = serialization.load_pem_private_key(pki.ca_key.read_bytes(), password=None)
    assert isinstance(ca_key, ec.EllipticCurvePrivateKey)
    ca_cert = x509.load_pem_x509_certificate(pki.ca_cert.read_bytes())
    key = ec.generate_private_key(ec.SECP256R1())
    now = _now()
    usage = ExtendedKeyUsageOID.CLIENT_AUTH if client else ExtendedKeyUsageOID.SERVER_AUTH
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(min(now + dt.timedelta(days=SERVER_DAYS), ca_cert.not_valid_after_utc))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=True,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_cert.public_key()),  # type: ignore[arg-type]
            critical=False,
        )
    )
    if hosts:
        builder = builder.add_extension(_san(hosts), critical=False)
    cert = builder.sign(ca_key, hashes.SHA256())
    _write(key_path, _key_pem(key), 0o600)
    _write(cert_path, cert.public_bytes(serialization.Encoding.PEM), 0o644)


def _server_cert_current(pki: DevPki, hosts: tuple[str, ...]) -> bool:
    if not (pki.server_cert.exists() and pki.server_key.exists()):
        return False
    cert = x509.load_pem_x509_certificate(pki.server_cert.read_bytes())
    ca = x509.load_pem_x509_certificate(pki.ca_cert.read_bytes())
    if cert.issuer != ca.subject or cert.not_valid_after_utc - _now() < RENEW_BEFORE:
        return False
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return False
    return set(san) == set(_san(hosts))


def ensure_dev_pki(folder: Path, hosts: tuple[str, ...] = LOCAL_HOSTS) -> DevPki:
    """The CA (made once) and a current server certificate for ``hosts`` in ``folder``; idempotent."""
    pki = DevPki(folder)
    folder.mkdir(parents=True, exist_ok=True)
    os.chmod(folder, 0o755)  # the CA certificate is public; the keys inside are 0600
    if not (pki.ca_cert.exists() and pki.ca_key.exists()):
        make_ca(pki)
        pki.server_cert.unlink(missing_ok=True)
    if not _server_cert_current(pki, hosts):
        issue(pki, hosts[0], hosts, pki.server_cert, pki.server_key)
    return pki


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Make a development CA and a broker certificate (not for production).")
    parser.add_argument("folder", type=Path)
    parser.add_argument("--host", action="append", help="Name or address in the certificate; repeatable.")
    parser.add_argument("--owner", help="UID:GID to give the files (e.g. the broker's user, 1883:1883).")
    args = parser.parse_args(argv)
    hosts = tuple(args.host) if args.host else LOCAL_HOSTS
    pki = ensure_dev_pki(args.folder, hosts)
    if args.owner:
        uid, _, gid = args.owner.partition(":")
        for path in (pki.folder, pki.ca_cert, pki.ca_key, pki.server_cert, pki.server_key):
            os.chown(path, int(uid), int(gid or uid))
    print(f"CA: {pki.ca_cert}\nserver certificate: {pki.server_cert} ({', '.join(hosts)})\nkey: {pki.server_key}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
