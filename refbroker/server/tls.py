"""TLS for listeners, with the standard library's ssl module: the mosquitto.conf keys
certfile, keyfile, cafile, capath, require_certificate, tls_version, ciphers and crlfile become an
`ssl.SSLContext`, and a client certificate's Common Name (`use_identity_as_username`) or whole
subject (`use_subject_as_username`) becomes the user name.

`TlsLink` runs TLS between a plain TCP transport and what is above it (the broker's byte stream, or a
WebSocketLink), on the ssl module's memory BIOs, the way WebSocketLink runs WebSocket: sans-IO bytes
in, bytes out. Doing it here rather than with asyncio's `ssl=` means a failed handshake is ours to
handle: its alert ("unknown ca", "protocol version", "certificate required" ...) reaches the client
before the connection closes, and its reason reaches the broker's log (asyncio drops both). A client
that fails the handshake (untrusted or revoked certificate, no certificate where one is required, a
TLS version below `tls_version`) never sends the core a byte.
"""

from __future__ import annotations

import asyncio
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
    load_certificates(context, tls)
    # Without require_certificate no client certificate is asked for (as mosquitto)
    context.verify_mode = ssl.CERT_REQUIRED if tls.require_certificate else ssl.CERT_NONE
    if tls.ciphers:
        context.set_ciphers(tls.ciphers)
    if tls.dhparamfile:
        context.load_dh_params(tls.dhparamfile)
    # No TLS 1.3 session tickets after the handshake. Nothing here resumes sessions, and a client that
    # reads in one thread while it writes its first request in another (the `websockets` library's
    # synchronous client over wss://) can lose that request when the tickets arrive meanwhile.
    context.num_tickets = 0
    return context


def load_certificates(context: ssl.SSLContext, tls: TlsOptions) -> None:
    """Load the listener's certificate, key and CA files into `context` (at start, and again on SIGHUP:
    a context loaded again serves the new certificate to the handshakes that follow)."""
    context.load_cert_chain(tls.certfile, tls.keyfile)
    if tls.cafile or tls.capath:
        context.load_verify_locations(cafile=tls.cafile, capath=tls.capath)
    if tls.crlfile:
        # A client certificate the CA has revoked fails the handshake (OpenSSL checks the leaf against
        # the CRL; mosquitto sets the same flag)
        context.load_verify_locations(cafile=tls.crlfile)
        context.verify_flags |= ssl.VERIFY_CRL_CHECK_LEAF


# Attribute names as OpenSSL prints them in a subject (RFC 2253 short names where there are some)
_SHORT_NAMES = {"commonName": "CN", "countryName": "C", "localityName": "L", "stateOrProvinceName": "ST",
                "organizationName": "O", "organizationalUnitName": "OU", "streetAddress": "STREET",
                "domainComponent": "DC", "userId": "UID"}


def certificate_identity(ssl_object: ssl.SSLObject | ssl.SSLSocket | None, tls: TlsOptions) -> str | None:
    """The user name a listener takes from the client certificate: its Common Name with
    use_identity_as_username (which wins when both are set, as in mosquitto), its subject with
    use_subject_as_username; None if the listener takes none or there is no certificate."""
    if tls.use_identity_as_username:
        return certificate_common_name(ssl_object)
    if tls.use_subject_as_username:
        return certificate_subject(ssl_object)
    return None


def certificate_subject(ssl_object: ssl.SSLObject | ssl.SSLSocket | None) -> str | None:
    """The verified client certificate's subject in RFC 2253 form, most specific part first, e.g.
    "CN=test client,OU=Production,O=Server,C=GB" (what mosquitto's use_subject_as_username gives)."""
    certificate = ssl_object.getpeercert() if ssl_object is not None else None
    if not certificate:
        return None
    parts = []
    for relative_name in reversed(certificate.get("subject", ())):
        parts.append("+".join(f"{_SHORT_NAMES.get(key, key)}={_escape_rfc2253(value)}" for key, value in relative_name))
    return ",".join(parts)


def _escape_rfc2253(value: str) -> str:
    """RFC 2253 section 2.4: ',', '+', '"', '\\', '<', '>', ';' escaped; '#' at the start and spaces at
    either end too."""
    escaped = "".join("\\" + character if character in ',+"\\<>;' else character for character in value)
    if escaped.startswith("#") or escaped.startswith(" "):
        escaped = "\\" + escaped
    if escaped.endswith(" ") and not escaped.endswith("\\ "):
        escaped = escaped[:-1] + "\\ "
    return escaped


def certificate_common_name(ssl_object: ssl.SSLObject | ssl.SSLSocket | None) -> str | None:
    """The subject's Common Name of the verified client certificate, or None."""
    certificate = ssl_object.getpeercert() if ssl_object is not None else None
    for relative_name in (certificate or {}).get("subject", ()):
        for key, value in relative_name:
            if key == "commonName":
                return value
    return None


def handshake_failure_reason(error: ssl.SSLError) -> str:
    """OpenSSL's words for a failed handshake, e.g. "tlsv1 alert unknown ca" or, for a certificate
    that did not verify, "certificate verify failed: certificate has expired"."""
    message = getattr(error, "verify_message", None)
    text = str(error.args[1]) if len(error.args) > 1 else str(error)
    text = text.split("] ", 1)[-1].split(" (_ssl.c", 1)[0]
    return f"{text}: {message}" if message else text


class TlsLink:
    """TLS over one accepted TCP connection, server side.

    `feed(data)` takes bytes from the network and returns the plaintext they carried (b"" if none yet);
    `handshake_done` turns true when the handshake succeeds, and `failure` holds OpenSSL's reason when
    it fails (the alert has then been sent and the transport closed). `write`, `close` and `abort` are
    what the layer above uses, as it would use the transport.
    """

    def __init__(self, transport: asyncio.Transport, context: ssl.SSLContext):
        self.transport = transport
        self._incoming, self._outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
        self.ssl_object = context.wrap_bio(self._incoming, self._outgoing, server_side=True)
        self.handshake_done = False
        self.failure: str | None = None

    def feed(self, data: bytes) -> bytes:
        self._incoming.write(data)
        plaintext = bytearray()
        try:
            if not self.handshake_done:
                self.ssl_object.do_handshake()
                self.handshake_done = True
            while True:
                chunk = self.ssl_object.read(65536)
                if not chunk:  # the client's close_notify (ssl returns b"" for it): TLS is over, and so
                    self.close()  # is the connection: our close_notify, then the transport closes
                    break
                plaintext += chunk
        except (ssl.SSLWantReadError, ssl.SSLWantWriteError):
            pass  # all there is for now
        except ssl.SSLZeroReturnError:
            self.close()  # the client ended TLS (close_notify) and ssl says so this way: we end too
        except ssl.SSLError as error:
            self.failure = handshake_failure_reason(error)
            self._flush()  # the alert OpenSSL wrote for the client goes out before the connection closes
            self.transport.close()
            return bytes(plaintext)
        self._flush()
        return bytes(plaintext)

    def write(self, data: bytes) -> None:
        if self.transport.is_closing():
            return
        try:
            self.ssl_object.write(data)
        except ssl.SSLError:
            return  # TLS is over (the client sent close_notify or failed): nothing more goes out
        self._flush()

    def send_close_notify(self) -> bool:
        """End TLS (close_notify) and leave the TCP connection to the caller; True if bytes went out."""
        if self.transport.is_closing() or not self.handshake_done:
            return False
        try:
            self.ssl_object.unwrap()
        except ssl.SSLError:
            pass  # SSLWantReadError: we do not wait for the client's close_notify
        data = self._outgoing.read()
        if data:
            self.transport.write(data)
        return bool(data)

    def close(self) -> None:
        """close_notify, then close the transport (what was written is flushed first)."""
        if self.transport.is_closing():
            return
        self.send_close_notify()
        self.transport.close()

    def abort(self) -> None:
        self.transport.abort()

    def is_closing(self) -> bool:
        return self.transport.is_closing()

    def get_extra_info(self, name: str, default=None):
        return self.ssl_object if name == "ssl_object" else self.transport.get_extra_info(name, default)

    def _flush(self) -> None:
        data = self._outgoing.read()
        if data and not self.transport.is_closing():
            self.transport.write(data)
