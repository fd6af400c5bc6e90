"""TLS refusals on refbroker and on mosquitto, with the layout of the test server (refbroker --test-server)
plus one listener that accepts TLS 1.3 only: each is refused for the right reason, and that reason is
visible both in the client's error and in the broker's log.

    pytest tests/security/test_tls_refusals.py -q
"""

from __future__ import annotations

import shutil
import ssl
import tempfile
import time
from pathlib import Path

import pytest

from conformance.transports import Endpoint, open_stream
from refbroker.protocol import MQTT_3_1_1, Connect
from refbroker.testserver import write_test_server
from refbroker.testserver.layout import free_base_port

from .brokers import KINDS, BrokerProcess, free_ports


@pytest.fixture(scope="module", params=KINDS)
def server(request):
    directory = Path(tempfile.mkdtemp(prefix="security-tls-"))
    directory.chmod(0o755)  # mosquitto started as root reads the files as user mosquitto
    try:
        layout = write_test_server(directory / "test-server", base_port=free_base_port())
        (tls13_only,) = free_ports(1)
        config = (layout.mosquitto_conf.read_text() + f"\n# TLS 1.3 only\nlistener {tls13_only} 127.0.0.1\n"
                  f"certfile {layout.file('server.crt')}\nkeyfile {layout.file('server.key')}\n"
                  "tls_version tlsv1.3\nallow_anonymous true\n")
        with BrokerProcess(request.param, config, directory / "run", wait_ports=[*(li.port for li in layout.listeners), tls13_only]) as broker:
            broker.layout = layout
            broker.tls13_only = tls13_only
            yield broker
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def _listener(server, **wanted):
    return next(li for li in server.layout.listeners if all(getattr(li, k) == v for k, v in wanted.items()))


def _log_shows(server, text: str, timeout: float = 3.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if text in server.logs():
            return True
        time.sleep(0.1)
    return False


def _connect_and_read(endpoint: Endpoint, context: ssl.SSLContext | None = None) -> bytes:
    """Handshake, CONNECT, and the first bytes back; raises the ssl error the client meets."""
    with open_stream(endpoint, timeout=5, context=context) as sock:
        sock.sendall(Connect(client_id="security-check").encode(MQTT_3_1_1))
        return sock.recv(4096)


def test_a_server_certificate_of_another_ca_is_refused(server):
    """The client trusts another CA: the handshake fails on the client ("unable to get local issuer
    certificate"), and the broker logs the client's alert "unknown ca"."""
    listener = _listener(server, transport="tls", certificate="main", client_certificate=False, authenticated=False)
    endpoint = Endpoint("tls", "127.0.0.1", listener.port, cafile=str(server.layout.file("second-ca.crt")))
    with pytest.raises(ssl.SSLCertVerificationError) as refused:
        _connect_and_read(endpoint)
    assert refused.value.verify_code == 20, refused.value  # X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY
    assert _log_shows(server, "unknown ca"), server.logs()[-2000:]


def test_an_expired_server_certificate_is_refused(server):
    listener = _listener(server, certificate="expired")
    with pytest.raises(ssl.SSLCertVerificationError) as refused:
        _connect_and_read(Endpoint("tls", "127.0.0.1", listener.port, cafile=str(server.layout.file("ca.crt"))))
    assert refused.value.verify_code == 10 and "expired" in refused.value.verify_message  # X509_V_ERR_CERT_HAS_EXPIRED
    assert _log_shows(server, "certificate expired"), server.logs()[-2000:]


def test_a_missing_client_certificate_is_refused(server):
    """require_certificate: a client without one gets TLS 1.3's "certificate required" alert (at its first
    read: its own side of the handshake was over), and the broker logs "peer did not return a certificate"."""
    listener = _listener(server, client_certificate=True)
    endpoint = Endpoint("tls", "127.0.0.1", listener.port, cafile=str(server.layout.file("ca.crt")))
    with pytest.raises(ssl.SSLError) as refused, open_stream(endpoint, timeout=5) as sock:
        # read first: a client that writes at once may meet the closed connection before the alert
        if not sock.recv(4096):
            raise AssertionError("the connection closed without an alert")
    assert "certificate required" in str(refused.value), refused.value
    assert _log_shows(server, "peer did not return a certificate"), server.logs()[-2000:]
    # ... and with a certificate of the CA the same listener accepts the client
    with_certificate = endpoint.with_client_certificate(str(server.layout.file("client.crt")),
                                                        str(server.layout.file("client.key")))
    assert _connect_and_read(with_certificate)[:4] == b"\x20\x02\x00\x00"


def test_a_tls_version_below_the_minimum_is_refused(server):
    """tls_version tlsv1.3: a client that offers TLS 1.2 at most is refused ("protocol version" alert),
    and the broker logs "unsupported protocol"."""
    endpoint = Endpoint("tls", "127.0.0.1", server.tls13_only, cafile=str(server.layout.file("ca.crt")))
    with pytest.raises(ssl.SSLError) as refused:
        _connect_and_read(endpoint, endpoint.ssl_context(maximum_version=ssl.TLSVersion.TLSv1_2))
    assert "protocol version" in str(refused.value).lower() or "unsupported protocol" in str(refused.value).lower(), \
        refused.value
    assert _log_shows(server, "unsupported protocol"), server.logs()[-2000:]
    assert _connect_and_read(endpoint)[:4] == b"\x20\x02\x00\x00"  # TLS 1.3 is accepted


def test_the_same_listeners_accept_a_client_that_does_everything_right(server):
    listener = _listener(server, transport="tls", certificate="main", client_certificate=False, authenticated=False)
    assert _connect_and_read(Endpoint("tls", "127.0.0.1", listener.port,
                                      cafile=str(server.layout.file("ca.crt"))))[:4] == b"\x20\x02\x00\x00"
