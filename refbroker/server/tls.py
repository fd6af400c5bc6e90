"""TLS for listeners, with the standard library's ssl module: the mosquitto.conf keys
certfile, keyfile, cafile, capath, require_certificate, tls_version and ciphers become an
`ssl.SSLContext`, and a client certificate's Common Name becomes the user name when the listener
has `use_identity_as_username`.

asyncio does the handshake before the connection reaches the broker: a client that fails it
(untrusted certificate, no certificate where one is required, a TLS version below `tls_version`)
never sends the core a byte.
"""

from __future__ import annotations

import ssl

from ..core.settings import TlsOptions

_MINIMUM_VERSIONS = {
    "tlsv1.3": ssl.TLSVersion.TLSv1_3,
    "tlsv1.2": ssl.TLSVersion.TLSv1_2,
    "tlsv1.1": ssl.TLSVersion.TLSv1_1,
}


def server_context(tls: TlsOptions) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    if tls.tls_version is not None:
        context.minimum_version = _MINIMUM_VERSIONS[tls.tls_version]
    context.load_cert_chain(tls.certfile, tls.keyfile)
    if tls.cafile or tls.capath:
        context.load_verify_locations(cafile=tls.cafile, capath=tls.capath)
    # Without require_certificate no client certificate is asked for (as mosquitto)
    context.verify_mode = ssl.CERT_REQUIRED if tls.require_certificate else ssl.CERT_NONE
    if tls.ciphers:
        context.set_ciphers(tls.ciphers)
    return context


def certificate_common_name(ssl_object: ssl.SSLObject | ssl.SSLSocket | None) -> str | None:
    """The subject's Common Name of the verified client certificate, or None."""
    certificate = ssl_object.getpeercert() if ssl_object is not None else None
    for relative_name in (certificate or {}).get("subject", ()):
        for key, value in relative_name:
            if key == "commonName":
                return value
    return None
