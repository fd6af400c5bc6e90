"""Certificates for the test server and the suite's TLS listeners, made with the `cryptography` library.

    ca = CertificateAuthority.create("refbroker test CA")
    ca.save(directory / "ca.crt", directory / "ca.key")
    server = ca.issue("localhost", hosts=["127.0.0.1", "localhost"])          # a server certificate
    client = ca.issue("alice", client=True)                                   # a client certificate
    expired = ca.issue("localhost", hosts=[...], expired=True)               # valid yesterday, not today
    crl = ca.revocation_list([client])                                        # PEM CRL (crlfile)

Everything is real X.509: the keys are EC P-256, certificates carry the extensions TLS libraries check
(Basic Constraints, Key Usage, Extended Key Usage, Subject Alternative Name), and an "expired"
certificate really lies in the past, so OpenSSL refuses it for the reason a user would meet. The CA can
be saved and loaded again (`CertificateAuthority.load`), so client certificates can be issued later
for a test server that is already running.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

__all__ = ["CertificateAuthority", "Issued"]

VALIDITY = datetime.timedelta(days=825)  # the longest a TLS server certificate may be valid for (CA/B rules)
CA_VALIDITY = datetime.timedelta(days=3650)


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc)


def _new_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _write(path: str | os.PathLike, data: bytes, mode: int = 0o644) -> Path:
    """Written world-readable by default: mosquitto started as root reads its files as user mosquitto."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    os.chmod(path, mode)
    return path


@dataclass(frozen=True)
class Issued:
    """A certificate and its private key, both PEM."""

    certificate: x509.Certificate
    key_pem: bytes

    @property
    def cert_pem(self) -> bytes:
        return self.certificate.public_bytes(serialization.Encoding.PEM)

    def save(self, cert_path: str | os.PathLike, key_path: str | os.PathLike) -> tuple[Path, Path]:
        return _write(cert_path, self.cert_pem), _write(key_path, self.key_pem)


class CertificateAuthority:
    def __init__(self, certificate: x509.Certificate, key: ec.EllipticCurvePrivateKey):
        self.certificate = certificate
        self.key = key

    @classmethod
    def create(cls, common_name: str, organization: str = "refbroker test server") -> CertificateAuthority:
        key = _new_key()
        name = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization),
                          x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
        now = _now()
        certificate = (
            x509.CertificateBuilder()
            .subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1)).not_valid_after(now + CA_VALIDITY)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                                         data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                         crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(key, hashes.SHA256())
        )
        return cls(certificate, key)

    @classmethod
    def load(cls, cert_path: str | os.PathLike, key_path: str | os.PathLike) -> CertificateAuthority:
        certificate = x509.load_pem_x509_certificate(Path(cert_path).read_bytes())
        key = serialization.load_pem_private_key(Path(key_path).read_bytes(), password=None)
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise ValueError(f"{key_path}: not an EC private key made by this module")
        return cls(certificate, key)

    @property
    def cert_pem(self) -> bytes:
        return self.certificate.public_bytes(serialization.Encoding.PEM)

    def save(self, cert_path: str | os.PathLike, key_path: str | os.PathLike) -> tuple[Path, Path]:
        """The CA key is kept readable by its owner only: with it anyone can issue certificates."""
        return _write(cert_path, self.cert_pem), _write(key_path, _key_pem(self.key), 0o600)

    def issue(self, common_name: str, *, hosts: tuple[str, ...] | list[str] = (), client: bool = False,
              expired: bool = False, organization: str | None = None,
              organizational_unit: str | None = None, country: str | None = None) -> Issued:
        """A leaf certificate: for a server (its `hosts`, IP addresses or DNS names, in the Subject
        Alternative Name) or, with `client=True`, for a client (TLS client authentication). `expired`:
        valid from 60 days ago until yesterday."""
        key = _new_key()
        attributes = []
        if country:
            attributes.append(x509.NameAttribute(NameOID.COUNTRY_NAME, country))
        if organization:
            attributes.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization))
        if organizational_unit:
            attributes.append(x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, organizational_unit))
        attributes.append(x509.NameAttribute(NameOID.COMMON_NAME, common_name))
        now = _now()
        if expired:
            not_before, not_after = now - datetime.timedelta(days=60), now - datetime.timedelta(days=1)
        else:
            not_before, not_after = now - datetime.timedelta(days=1), now + VALIDITY
        usage = ExtendedKeyUsageOID.CLIENT_AUTH if client else ExtendedKeyUsageOID.SERVER_AUTH
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name(attributes)).issuer_name(self.certificate.subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(not_before).not_valid_after(not_after)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                                         data_encipherment=False, key_agreement=True, key_cert_sign=False,
                                         crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()), critical=False)
        )
        if hosts:
            builder = builder.add_extension(x509.SubjectAlternativeName([_general_name(h) for h in hosts]),
                                            critical=False)
        return Issued(builder.sign(self.key, hashes.SHA256()), _key_pem(key))

    def revocation_list(self, revoked: list[Issued] | tuple[Issued, ...] = ()) -> bytes:
        """A PEM certificate revocation list (mosquitto's `crlfile`) naming `revoked`, valid for a week."""
        now = _now()
        builder = (x509.CertificateRevocationListBuilder().issuer_name(self.certificate.subject)
                   .last_update(now - datetime.timedelta(minutes=5)).next_update(now + datetime.timedelta(days=7)))
        for issued in revoked:
            builder = builder.add_revoked_certificate(
                x509.RevokedCertificateBuilder().serial_number(issued.certificate.serial_number)
                .revocation_date(now - datetime.timedelta(minutes=5)).build())
        return builder.sign(self.key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM)


def _general_name(host: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(host))
    except ValueError:
        return x509.DNSName(host)
