"""End to end through EmbeddedBroker: real sockets, packets from refbroker.protocol."""

import socket

import pytest

from refbroker.embedded import EmbeddedBroker
from refbroker.protocol import (
    Connack,
    Connect,
    Disconnect,
    Puback,
    Publish,
    StreamDecoder,
    Subscribe,
    Subscription,
)


class RawClient:
    def __init__(self, port, version):
        self.socket = socket.create_connection(("127.0.0.1", port), timeout=5)
        self.decoder = StreamDecoder(version)
        self.version = version
        self.pending = []

    def send(self, packet):
        self.socket.sendall(packet.encode(self.version))

    def receive(self):
        while not self.pending:
            data = self.socket.recv(65536)
            if not data:
                return None
            self.pending += self.decoder.feed(data)
        return self.pending.pop(0)

    def close(self):
        self.socket.close()


@pytest.fixture(scope="module")
def broker():
    with EmbeddedBroker() as running:
        yield running


def test_embedded_api(broker):
    assert broker.port > 0
    assert broker.version.startswith("refbroker ")


@pytest.mark.parametrize("version", [4, 5])
def test_publish_subscribe_over_tcp(broker, version):
    subscriber = RawClient(broker.port, version)
    subscriber.send(Connect(client_id=f"s{version}", protocol_level=version))
    assert isinstance(subscriber.receive(), Connack)
    subscriber.send(Subscribe(1, [Subscription("e2e/#", 1)]))
    assert subscriber.receive().reason_codes == [1]
    publisher = RawClient(broker.port, version)
    publisher.send(Connect(client_id=f"p{version}", protocol_level=version))
    publisher.receive()
    publisher.send(Publish("e2e/x", b"payload", qos=1, packet_id=9))
    assert publisher.receive() == Puback(9)
    delivered = subscriber.receive()
    assert (delivered.topic, delivered.payload, delivered.qos, delivered.packet_id) == ("e2e/x", b"payload", 1, 1)
    subscriber.send(Puback(1))
    publisher.send(Disconnect())
    assert publisher.receive() is None  # the broker closes after DISCONNECT
    subscriber.close()


def test_protocol_error_closes_with_disconnect(broker):
    client = RawClient(broker.port, 5)
    client.send(Connect(client_id="bad", protocol_level=5))
    client.receive()
    client.socket.sendall(b"\x30\x02\x00\x05")
    packet = client.receive()
    assert isinstance(packet, Disconnect) and packet.reason_code == 0x81
    assert client.receive() is None


def test_logs_show_each_packet(broker):
    client = RawClient(broker.port, 4)
    client.send(Connect(client_id="logged"))
    client.receive()
    client.close()
    assert "Sending CONNACK to logged (0, 0)" in broker.logs()


def test_config_mapping_and_timers():
    with EmbeddedBroker(config={"max_keepalive": 1}) as running:
        client = RawClient(running.port, 5)
        client.send(Connect(client_id="k", protocol_level=5, keep_alive=0))
        connack = client.receive()
        assert connack.properties.server_keep_alive == 1
        # closed by the keep alive timer after 1.5 s, without DISCONNECT 0x8D (as mosquitto)
        assert client.receive() is None


def test_port_in_use_is_reported_by_start(broker):
    with pytest.raises(OSError):
        EmbeddedBroker(port=broker.port).start()
