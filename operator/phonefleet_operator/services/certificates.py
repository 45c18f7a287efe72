"""Certificates of the admission webhook: a self-signed CA kept in a Secret, and serving certs."""

from __future__ import annotations

import base64
import datetime
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

__all__ = ["CertificateAuthority", "ServingFiles"]

_CA_VALIDITY = datetime.timedelta(days=3650)
_SERVING_VALIDITY = datetime.timedelta(days=90)


@dataclass(frozen=True)
class ServingFiles:
    """Where the webhook server's certificate, key and CA bundle were written."""

    certfile: Path
    pkeyfile: Path
    cafile: Path


def _pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _builder(
    subject: x509.Name,
    issuer: x509.Name,
    key: ec.EllipticCurvePrivateKey,
    now: datetime.datetime,
    validity: datetime.timedelta,
) -> x509.CertificateBuilder:
    """A certificate for ``key`` valid from five minutes before ``now`` (clocks differ a little
    between the operator and the API server) for ``validity``; the caller adds its extensions."""
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + validity)
    )


class CertificateAuthority:
    """The operator's own CA: created once, stored in a Secret, reused across restarts."""

    def __init__(self, cert: x509.Certificate, key: ec.EllipticCurvePrivateKey) -> None:
        self._cert = cert
        self._key = key

    @classmethod
    def create(cls, now: datetime.datetime) -> CertificateAuthority:
        """A new CA valid for ten years."""
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "phonefleet-webhook-ca")])
        cert = (
            _builder(name, name, key, now, _CA_VALIDITY)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .sign(key, hashes.SHA256())
        )
        return cls(cert, key)

    @classmethod
    def from_secret_data(cls, data: dict[str, str]) -> CertificateAuthority:
        """The CA from a Secret's base64 ``data`` (keys ca.crt, ca.key)."""
        cert = x509.load_pem_x509_certificate(base64.b64decode(data["ca.crt"]))
        key = serialization.load_pem_private_key(base64.b64decode(data["ca.key"]), password=None)
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise ValueError("the webhook CA key is not an EC key")
        return cls(cert, key)

    def secret_string_data(self) -> dict[str, str]:
        """The CA as a Secret's ``stringData``."""
        return {
            "ca.crt": self._cert.public_bytes(serialization.Encoding.PEM).decode(),
            "ca.key": _pem(self._key).decode(),
        }

    def issue_serving(
        self, hosts: list[str], directory: Path, now: datetime.datetime
    ) -> ServingFiles:
        """Write a serving certificate for ``hosts`` (valid 90 days), its key and the CA bundle."""
        key = ec.generate_private_key(ec.SECP256R1())
        names: list[x509.GeneralName] = []
        for host in hosts:
            try:
                names.append(x509.IPAddress(ipaddress.ip_address(host)))
            except ValueError:
                names.append(x509.DNSName(host))
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hosts[0])])
        cert = (
            _builder(subject, self._cert.subject, key, now, _SERVING_VALIDITY)
            .add_extension(x509.SubjectAlternativeName(names), critical=False)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .sign(self._key, hashes.SHA256())
        )
        directory.mkdir(parents=True, exist_ok=True)
        files = ServingFiles(directory / "tls.crt", directory / "tls.key", directory / "ca.crt")
        files.certfile.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        files.pkeyfile.write_bytes(_pem(key))
        files.pkeyfile.chmod(0o600)
        files.cafile.write_bytes(self._cert.public_bytes(serialization.Encoding.PEM))
        return files
