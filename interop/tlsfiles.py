"""Certificates for the interop matrix: one trustme CA, a server certificate for 127.0.0.1 / localhost,
a client certificate, and an unrelated CA (for the check that a client verifies the server), written as PEM files into a directory that brokers and clients can read.

    files = make_tls_files(directory)
    files.ca, files.server_cert, files.server_key, files.client_cert, files.client_key
"""

from __future__ import annotations

import datetime
import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class TlsFiles:
    ca: str
    server_cert: str  # the server certificate followed by nothing else (trustme's leaf)
    server_key: str
    client_cert: str
    client_key: str
    other_ca: str  # a CA that signed nothing here: a client given it must refuse the server


def _write_pkcs8(pem: bytes, path: Path) -> None:
    """Keys as PKCS#8 ("BEGIN PRIVATE KEY"): every TLS stack of the matrix reads that form, Java's
    KeyFactory included (it cannot read the SEC1 "BEGIN EC PRIVATE KEY" form trustme writes)."""
    from cryptography.hazmat.primitives import serialization

    key = serialization.load_pem_private_key(pem, password=None)
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()))


def make_tls_files(directory: str | os.PathLike) -> TlsFiles:
    """A fresh CA and two leaf certificates; files world-readable (mosquitto drops to its own user)."""
    import trustme

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    ca = trustme.CA()
    # Leaf certificates valid for a year around now: Erlang's TLS (RabbitMQ, ejabberd) reports trustme's
    # default end of validity (the year 3000) as expired.
    now = datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)
    validity = {"not_before": now - datetime.timedelta(days=1), "not_after": now + datetime.timedelta(days=365)}
    server = ca.issue_cert("127.0.0.1", "localhost", **validity)
    client = ca.issue_cert("interop-client@example.org", common_name="interop-client", **validity)
    paths = {
        "ca": directory / "ca.pem",
        "server_cert": directory / "server.pem",
        "server_key": directory / "server.key",
        "client_cert": directory / "client.pem",
        "client_key": directory / "client.key",
        "other_ca": directory / "other-ca.pem",
    }
    ca.cert_pem.write_to_path(str(paths["ca"]))
    trustme.CA().cert_pem.write_to_path(str(paths["other_ca"]))
    server.cert_chain_pems[0].write_to_path(str(paths["server_cert"]))
    _write_pkcs8(server.private_key_pem.bytes(), paths["server_key"])
    client.cert_chain_pems[0].write_to_path(str(paths["client_cert"]))
    _write_pkcs8(client.private_key_pem.bytes(), paths["client_key"])
    for path in paths.values():
        os.chmod(path, 0o644)
    os.chmod(directory, 0o755)
    return TlsFiles(**{name: str(path) for name, path in paths.items()})
