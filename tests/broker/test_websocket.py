"""MQTT over WebSocket end to end (section 6), with the `websockets` library as the client."""

import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect as websocket_connect

from refbroker.config import parse_config
from refbroker.embedded import EmbeddedBroker
from refbroker.protocol import Connack, Connect, Pingreq, Pingresp, Puback, Publish, Subscribe, Subscription

from .certs import make_certificates
from .net import StreamClient, WebSocketClient


@pytest.fixture(scope="module")
def broker():
    with EmbeddedBroker(config=parse_config("listener 0 127.0.0.1\nprotocol websockets\n")) as running:
        yield running


def url(broker):
    return f"ws://127.0.0.1:{broker.listener_ports[0]}/mqtt"


def test_protocol_websockets_belongs_to_the_listener_before_it():
    settings = parse_config("listener 1883\nlistener 8080\nprotocol websockets\n")
    assert [listener.protocol for listener in settings.listeners] == ["mqtt", "websockets"]


@pytest.mark.parametrize("version", [4, 5])
def test_publish_subscribe_over_websocket(broker, version):
    client = WebSocketClient(url(broker), version)
    assert client.websocket.subprotocol == "mqtt"  # [MQTT-6.0.0-4]
    assert isinstance(client.connect(f"ws{version}"), Connack)
    client.send(Subscribe(1, [Subscription("ws/#", 1)]))
    assert client.receive().reason_codes == [1]
    # A subscriber on plain TCP gets what the WebSocket client publishes
    tcp = StreamClient(broker.port, version)
    tcp.connect(f"tcp{version}")
    tcp.send(Subscribe(1, [Subscription("ws/#", 0)]))
    tcp.receive()
    client.send(Publish("ws/x", b"framed", qos=1, packet_id=3))
    packets = [client.receive(), client.receive()]
    assert Puback(3) in packets
    assert tcp.receive().payload == b"framed"
    client.close()
    tcp.close()


def test_packets_split_across_frames_and_several_in_one_frame(broker):
    # [MQTT-6.0.0-2]: frames and packets need not line up
    client = WebSocketClient(url(broker), 4)
    connect = Connect(client_id="split").encode(4)
    client.send_bytes(connect[:3])
    client.send_bytes(connect[3:])
    assert isinstance(client.receive(), Connack)
    client.send_bytes(Pingreq().encode(4) * 3)
    assert [client.receive() for _ in range(3)] == [Pingresp()] * 3
    publish = Publish("a", b"x" * 300, qos=1, packet_id=9).encode(4)
    client.send_fragments(publish[:100], publish[100:200], publish[200:])  # one fragmented message
    assert client.receive() == Puback(9)
    client.close()


def test_a_text_frame_closes_the_connection(broker):
    client = WebSocketClient(url(broker), 4)
    assert isinstance(client.connect("texty"), Connack)
    client.websocket.send("\x10\x00")  # [MQTT-6.0.0-1]: only binary frames
    assert client.receive() is None
    assert client.websocket.close_code == 1003


def test_a_handshake_without_the_mqtt_subprotocol_is_refused(broker):
    with pytest.raises(InvalidStatus) as error:
        websocket_connect(url(broker), subprotocols=["chat"], open_timeout=5)
    assert error.value.response.status_code == 400
    with pytest.raises(InvalidStatus):
        websocket_connect(url(broker), open_timeout=5)


def test_the_broker_closing_closes_the_websocket(broker):
    client = WebSocketClient(url(broker), 5)
    client.connect("bye")
    client.send_bytes(b"\x30\x02\x00\x05")  # malformed PUBLISH
    assert client.receive().reason_code == 0x81
    assert client.receive() is None


def test_websocket_over_tls(tmp_path):
    certs = make_certificates(tmp_path)
    settings = parse_config(f"listener 0 127.0.0.1\nprotocol websockets\ncertfile {certs.server_cert}\n"
                            f"keyfile {certs.server_key}\n")
    with EmbeddedBroker(config=settings) as running:
        client = WebSocketClient(f"wss://localhost:{running.listener_ports[0]}/", 5, certs.client_context())
        assert client.connect("wss").reason_code == 0
        client.close()
