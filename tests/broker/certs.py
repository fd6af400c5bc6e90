"""Real certificates for the TLS tests, made by `trustme`: a test CA, a server certificate for
127.0.0.1 and localhost, a client certificate whose Common Name is "alice", and one from another CA."""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from pathlib import Path

import trustme


@dataclass
class Certificates:
    ca_file: Path
    server_cert: Path
    server_key: Path
    ca: trustme.CA
    client: trustme.LeafCert
    stranger: trustme.LeafCert  # signed by another CA

    def client_context(self, with_certificate: trustme.LeafCert | None = None, **settings) -> ssl.SSLContext:
        context = ssl.create_default_context()
        self.ca.configure_trust(context)
        if with_certificate is not None:
            with_certificate.configure_cert(context)
        for name, value in settings.items():
            setattr(context, name, value)
        return context


def make_certificates(directory: Path) -> Certificates:
    ca = trustme.CA()
    server = ca.issue_cert("127.0.0.1", "localhost")
    client = ca.issue_cert("alice@example.test", common_name="alice")
    stranger = trustme.CA().issue_cert("mallory@example.test", common_name="alice")
    ca_file, server_cert, server_key = directory / "ca.pem", directory / "server.pem", directory / "server.key"
    ca.cert_pem.write_to_path(str(ca_file))
    server.cert_chain_pems[0].write_to_path(str(server_cert))
    server.private_key_pem.write_to_path(str(server_key))
    return Certificates(ca_file, server_cert, server_key, ca, client, stranger)
