"""A development certificate authority for `dialtone up --secure` (and tests): a CA kept in a
folder and short-lived certificates it issues, with ``cryptography``.

Every certificate is good for both ends of a TLS connection (serverAuth and clientAuth), so one
file pair is a service's identity as a server and as a client of the next service. Files are
written whole (a temporary file renamed over the old one) so that a running service that reloads
its certificate never reads half of one; keys are readable by their owner only. Nothing here is
for production: a cluster takes its certificates from Secrets or cert-manager.
"""

from __future__ import annotations

import dataclasses
import datetime
import ipaddress
import os
from collections.abc import Iterable
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CA_DAYS = 365
CA_RENEW_DAYS = 30          # a CA closer than this to its end is replaced (and every certificate with it)
LEAF_DAYS = 30


@dataclasses.dataclass(frozen=True)
class Issued:
    cert_file: Path
    key_file: Path


@dataclasses.dataclass(frozen=True)
class DevCa:
    cert_file: Path
    key_file: Path

    def _load(self) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
        cert = x509.load_pem_x509_certificate(self.cert_file.read_bytes())
        key = serialization.load_pem_private_key(self.key_file.read_bytes(), password=None)
        assert isinstance(key, ec.EllipticCurvePrivateKey)
        return cert, key

    def issue(self, folder: Path, name: str, hosts: Iterable[str], days: int = LEAF_DAYS) -> Issued:
        """``name``.crt/.key in ``folder`` for ``hosts`` (IP addresses and DNS names), signed by this CA."""
        ca_cert, ca_key = self._load()
        key = ec.generate_private_key(ec.SECP256R1())
        now = _now()
        names: list[x509.GeneralName] = []
        for host in dict.fromkeys(hosts):
            try:
                names.append(x509.IPAddress(ipaddress.ip_address(host)))
            except ValueError:
                names.append(x509.DNSName(host))
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
            .issuer_name(ca_cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=days))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.SubjectAlternativeName(names), critical=False)
            .add_extension(x509.KeyUsage(digital_signature=True, key_encipherment=False, content_commitment=False,
                                         data_encipherment=False, key_agreement=True, key_cert_sign=False,
                                         crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]),
                           critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256())
        )
        issued = Issued(folder / f"{name}.crt", folder / f"{name}.key")
        _write(issued.key_file, _key_pem(key), private=True)
        _write(issued.cert_file, cert.public_bytes(serialization.Encoding.PEM))
        return issued


def ensure_ca(folder: Path, name: str = "dialtone development CA") -> DevCa:
    """The CA in ``folder`` (ca.crt, ca.key), made when missing or near its end; kept otherwise, so a
    softphone told to trust it keeps trusting it across runs."""
    folder.mkdir(parents=True, exist_ok=True)
    os.chmod(folder, 0o700)
    ca = DevCa(folder / "ca.crt", folder / "ca.key")
    if ca.cert_file.exists() and ca.key_file.exists():
        try:
            cert, _key = ca._load()
            if cert.not_valid_after_utc - _now() > datetime.timedelta(days=CA_RENEW_DAYS):
                return ca
        except (ValueError, AssertionError):
            pass   # unreadable: replaced below
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = _now()
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=CA_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, key_encipherment=False, content_commitment=False,
                                     data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                     crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    _write(ca.key_file, _key_pem(key), private=True)
    _write(ca.cert_file, cert.public_bytes(serialization.Encoding.PEM))
    return ca


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _write(path: Path, data: bytes, private: bool = False) -> None:
    temporary = path.with_name(f".{path.name}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600 if private else 0o644)
    with os.fdopen(fd, "wb") as out:
        out.write(data)
    os.replace(temporary, path)
