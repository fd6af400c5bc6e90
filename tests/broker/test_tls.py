"""TLS listeners end to end, with real certificates from trustme: server authentication, client
certificates (require_certificate), the certificate's Common Name as user name, tls_version."""

import ssl

import pytest

from refbroker.auth import AccessControlList
from refbroker.config import ConfigError, parse_config
from refbroker.embedded import EmbeddedBroker
from refbroker.protocol import Connack, Puback, Publish, Subscribe, Subscription

from .certs import make_certificates
from .harness import Harness
from .net import StreamClient


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    return make_certificates(tmp_path_factory.mktemp("certs"))


def tls_broker(certs, extra: str = "", **options):
    settings = parse_config(f"""listener 0 127.0.0.1
certfile {certs.server_cert}
keyfile {certs.server_key}
{extra}
""")
    for name, value in options.items():
        setattr(settings, name, value)
    return EmbeddedBroker(config=settings)


def test_config_reads_the_tls_keys_of_the_listener_they_follow(certs):
    settings = parse_config(f"""listener 1883
listener 8883 127.0.0.1
certfile {certs.server_cert}
keyfile {certs.server_key}
cafile {certs.ca_file}
require_certificate true
use_identity_as_username true
tls_version tlsv1.3
""")
    plain, secure = settings.listeners
    assert not plain.tls.enabled
    assert secure.tls.enabled and secure.tls.require_certificate and secure.tls.use_identity_as_username
    assert (secure.tls.cafile, secure.tls.tls_version) == (str(certs.ca_file), "tlsv1.3")


@pytest.mark.parametrize("extra, message", [
    ("require_certificate true", "require_certificate needs cafile"),
    ("use_identity_as_username true", "use_identity_as_username needs require_certificate"),
])
def test_inconsistent_tls_options_are_config_errors(certs, extra, message):
    with pytest.raises(ConfigError, match=message):
        parse_config(f"listener 8883\ncertfile {certs.server_cert}\nkeyfile {certs.server_key}\n{extra}\n")


def test_keyfile_without_certfile_is_an_error(certs):
    with pytest.raises(ConfigError, match="both certfile and keyfile"):
        parse_config(f"listener 8883\nkeyfile {certs.server_key}\n")


@pytest.mark.parametrize("version", [4, 5])
def test_mqtt_over_tls(certs, version):
    with tls_broker(certs) as broker:
        client = StreamClient(broker.listener_ports[0], version, certs.client_context())
        assert client.connect("tls-client").reason_code == 0
        client.send(Subscribe(1, [Subscription("secure/#", 1)]))
        assert client.receive().reason_codes == [1]
        client.send(Publish("secure/x", b"over tls", qos=1, packet_id=7))
        packets = [client.receive(), client.receive()]
        assert Puback(7) in packets
        assert any(isinstance(p, Publish) and p.payload == b"over tls" for p in packets)
        assert client.socket.version() in ("TLSv1.2", "TLSv1.3")
        client.close()


def test_a_client_ending_tls_with_close_notify_is_answered_and_the_broker_goes_on(certs):
    """A client that ends TLS (close_notify, no DISCONNECT) gets the broker's close_notify back, and the
    broker goes on serving others. (Python's ssl reports a received close_notify as an empty read, not
    as an error: a read loop that did not stop on it once spun forever, and MQTT.js closes this way.)"""
    with tls_broker(certs) as broker:
        port = broker.listener_ports[0]
        client = StreamClient(port, 4, certs.client_context())
        assert client.connect("tls-leaver").reason_code == 0
        client.socket.settimeout(3)
        client.socket.unwrap()  # sends close_notify and waits for the broker's: a timeout fails the test
        client.socket.close()
        other = StreamClient(port, 4, certs.client_context())
        assert other.connect("tls-next").reason_code == 0
        other.close()


def test_a_client_that_does_not_trust_the_server_fails_the_handshake(certs):
    with tls_broker(certs) as broker, pytest.raises(ssl.SSLCertVerificationError):
        StreamClient(broker.listener_ports[0], 4, ssl.create_default_context())


def test_plain_mqtt_on_a_tls_port_gets_nothing_back(certs):
    with tls_broker(certs) as broker:
        client = StreamClient(broker.listener_ports[0], 4)
        assert client.connect("plain") is None


def test_require_certificate(certs):
    with tls_broker(certs, f"cafile {certs.ca_file}\nrequire_certificate true") as broker:
        port = broker.listener_ports[0]
        with_cert = StreamClient(port, 5, certs.client_context(certs.client))
        assert with_cert.connect("with-cert").reason_code == 0
        for certificate in (None, certs.stranger):  # none, or one from another CA
            try:
                client = StreamClient(port, 5, certs.client_context(certificate))
                assert client.connect("no-cert") is None  # TLS 1.3: the refusal comes after the handshake
            except (ssl.SSLError, ConnectionResetError, BrokenPipeError):
                pass


def test_use_identity_as_username_feeds_the_acl(certs):
    acl = AccessControlList.parse("user alice\ntopic readwrite alice/#\n")
    with tls_broker(certs, f"cafile {certs.ca_file}\nrequire_certificate true\nuse_identity_as_username true",
                    acl=acl, allow_anonymous=False) as broker:
        # The CONNECT's user name and password are ignored: the certificate says "alice"
        client = StreamClient(broker.listener_ports[0], 5, certs.client_context(certs.client))
        assert client.connect("id", username="bob", password=b"wrong").reason_code == 0
        client.send(Publish("alice/x", b"mine", qos=1, packet_id=1))
        assert client.receive() == Puback(1, 0x10)  # accepted; 0x10: nobody subscribed (as mosquitto)
        client.send(Publish("bob/x", b"not mine", qos=1, packet_id=2))
        assert client.receive().reason_code == 0x87
        assert "u'alice'" in broker.logs()


def test_tls_version_is_the_lowest_accepted(certs):
    with tls_broker(certs, "tls_version tlsv1.3") as broker:
        old = certs.client_context(maximum_version=ssl.TLSVersion.TLSv1_2)
        with pytest.raises(ssl.SSLError):
            StreamClient(broker.listener_ports[0], 4, old)
        new = StreamClient(broker.listener_ports[0], 4, certs.client_context())
        assert new.connect("new").reason_code == 0 and new.socket.version() == "TLSv1.3"


def test_core_uses_the_transport_identity_instead_of_the_connect_credentials():
    h = Harness(allow_anonymous=False)
    _, connack = h.connect("c", 5, identity="alice")
    assert connack.reason_code == 0
    assert h.broker.sessions["c"].username == "alice"
    _, refused = h.connect("d", 5, expect_ok=False)
    assert refused == Connack(0x87, properties=refused.properties)
