"""refbroker's bytes next to a real mosquitto's, for the choices of core/compat.py the corpus does not show.

The reference corpus (pcap/captures/) is recorded with a default configuration and the suite's own
encoder, so it cannot show the order of CONNACK properties that only limits bring (Maximum QoS,
Retain Available, Maximum Packet Size, Server Keep Alive), nor how a forwarded PUBLISH orders the
publisher's properties, a Subscription Identifier and the Message Expiry Interval, nor mosquitto's limit
on topic depth. One conversation
that does is run against mosquitto and against refbroker in that version's mode
(`mosquitto_compat`), and the broker's packets must be the same bytes (the Assigned Client
Identifier's UUID aside): mosquitto 2.0.11 is Debian's binary; 2.0.21 and 2.1.2 are the Docker images
of `python -m interop images build`. A second conversation shows a departure (refbroker/departures.py):
2.0.21 and 2.1.2 refuse a 3.1.1 client whose Keep Alive is 0 or above max_keepalive with return code 2,
which does not apply to it; refbroker closes without CONNACK [MQTT-3.2.2-6] (3.1.1).
"""

from __future__ import annotations

import re
import socket
import time

import pytest

from refbroker.embedded import EmbeddedBroker
from refbroker.protocol import Connect, Properties, Publish, Pubrec, Pubrel, StreamDecoder, Subscribe, Subscription
from refbroker.protocol.primitives import encode_utf8, encode_variable_byte_integer

from ..docker_support import engine_with_every_image
from .processes import BrokerProcess

LIMITS = {"max_qos": 1, "retain_available": "false", "max_packet_size": 100000, "max_keepalive": 100}
UUID = re.compile(rb"auto-[0-9A-F]{8}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{12}")


class _Raw:
    """A client on a socket that keeps the broker's packets as bytes."""

    def __init__(self, port: int):
        self.socket = socket.create_connection(("127.0.0.1", port), timeout=3)
        self.decoder = StreamDecoder(5)

    def send(self, data: bytes) -> None:
        self.socket.sendall(data)

    def packets(self, count: int) -> list[bytes]:
        found: list[bytes] = []
        deadline = time.monotonic() + 3
        while len(found) < count and time.monotonic() < deadline:
            data = self.socket.recv(65536)
            if not data:
                break
            self.decoder.append(data)
            while (frame := self.decoder.next_raw_frame()) is not None:
                first, body = frame
                found.append(bytes((first,)) + encode_variable_byte_integer(len(body)) + body)
        return found


def conversation(port: int) -> list[bytes]:
    """The broker's packets, in order, of one conversation with three clients (5.0)."""
    answers = []
    assigned = _Raw(port)  # no client id, Keep Alive above max_keepalive: Assigned Client Identifier, Server Keep Alive
    assigned.send(Connect(client_id="", protocol_level=5, keep_alive=1000).encode(5))
    answers += assigned.packets(1)
    idle = _Raw(port)  # Keep Alive 0: mosquitto 2.0.11 sends Server Keep Alive, later versions do not
    idle.send(Connect(client_id="idle", protocol_level=5, keep_alive=0).encode(5))
    answers += idle.packets(1)
    subscriber = _Raw(port)
    subscriber.send(Connect(client_id="sub", protocol_level=5).encode(5))
    answers += subscriber.packets(1)
    subscriber.send(Subscribe(1, [Subscription("t/#", 1)], Properties(subscription_identifiers=[7])).encode(5))
    answers += subscriber.packets(1)
    publisher = _Raw(port)
    publisher.send(Connect(client_id="pub", protocol_level=5).encode(5))
    answers += publisher.packets(1)
    # A PUBLISH whose properties are not in the table's order: User Property, Message Expiry Interval,
    # Content Type, Payload Format Indicator, Correlation Data, Response Topic
    properties = (b"\x26" + encode_utf8("k") + encode_utf8("v") + b"\x02\x00\x00\x00\x64" + b"\x03" + encode_utf8("ct")
                  + b"\x01\x01" + b"\x09\x00\x01A" + b"\x08" + encode_utf8("r/x"))
    body = encode_utf8("t/a") + b"\x00\x01" + encode_variable_byte_integer(len(properties)) + properties + b"hi"
    publisher.send(b"\x32" + encode_variable_byte_integer(len(body)) + body)
    answers += publisher.packets(1)
    answers += subscriber.packets(1)  # the copy: the properties in the version's order
    publisher.send(Publish("nobody/x", b"x", qos=1, packet_id=2).encode(5))  # PUBACK 0x10
    publisher.send(Pubrel(99).encode(5))  # not in flight: PUBCOMP 0x00
    publisher.send(Pubrec(98).encode(5))  # not in flight: PUBREL 0x00
    answers += publisher.packets(3)
    for client in (assigned, idle, subscriber, publisher):
        client.socket.close()
    return [UUID.sub(b"auto-" + b"U" * 36, packet) for packet in answers]


def v3_keep_alive_answers(port: int) -> list[bytes]:
    """What 3.1.1 clients with Keep Alive 0, 50 and 1000 get (max_keepalive 100): CONNACK, or b"" (closed)."""
    answers = []
    for keep_alive in (0, 50, 1000):
        client = _Raw(port)
        client.send(Connect(client_id=f"k{keep_alive}", keep_alive=keep_alive).encode(4))
        answers += client.packets(1) or [b""]
        client.socket.close()
    return answers


def depth_answers(port: int) -> list[bytes]:
    """mosquitto's limit on topic depth: a PUBLISH and a SUBSCRIBE with 200 and 201 '/' (3.1.1 and 5.0);
    the answer, or b"" (closed)."""
    answers = []
    for version in (4, 5):
        for separators in (200, 201):
            topic = "/".join(["a"] * (separators + 1))
            for packet in (Publish(topic, b"x", qos=1, packet_id=1), Subscribe(1, [Subscription(topic, 1)])):
                client = _Raw(port)
                client.send(Connect(client_id=f"d{version}{separators}", protocol_level=version).encode(version))
                client.packets(1)
                client.send(packet.encode(version))
                answers += client.packets(1) or [b""]
                client.socket.close()
    return answers


def refbroker_answers(version: str) -> tuple[list[bytes], list[bytes], list[bytes]]:
    with EmbeddedBroker(config={**LIMITS, "mosquitto_compat": version}) as broker:
        return conversation(broker.port), v3_keep_alive_answers(broker.port), depth_answers(broker.port)


def test_mosquitto_2_0_11_and_refbroker_send_the_same_bytes(tmp_path):
    config = "listener {port} 127.0.0.1\nallow_anonymous true\n" + "".join(f"{k} {v}\n" for k, v in LIMITS.items())
    with BrokerProcess("mosquitto", tmp_path, config) as mosquitto:
        expected = conversation(mosquitto.port), v3_keep_alive_answers(mosquitto.port), depth_answers(mosquitto.port)
    assert len(expected[0]) == 10
    assert expected[1] == [b"\x20\x02\x00\x00"] * 3  # 3.1.1 clients keep their Keep Alive
    assert expected[2][:2] == [b"\x40\x02\x00\x01", b"\x90\x03\x00\x01\x01"] and expected[2][2:4] == [b"", b""]
    assert refbroker_answers("2.0.11") == expected


@pytest.fixture(scope="module")
def docker_engine():
    return engine_with_every_image()


@pytest.mark.docker
@pytest.mark.parametrize("version", ["2.0.21", "2.1.2"])
def test_later_mosquittos_and_refbroker_in_their_mode_send_the_same_bytes(docker_engine, version):
    from interop.docker_target import DockerMosquittoTarget
    from interop.images import spec_for

    # only the plain listener (max_qos is a listener's setting in mosquitto: the limits follow it)
    target = DockerMosquittoTarget(spec_for(version).tag, extra_config="".join(f"{k} {v}\n" for k, v in LIMITS.items()))
    target.suite_listeners = False
    target.start()
    try:
        port = target.address[1]
        expected = conversation(port), v3_keep_alive_answers(port), depth_answers(port)
    finally:
        target.stop()  # and removes the container
    answers, v3_answers, depth = refbroker_answers(version)
    assert len(expected[0]) == 10
    assert answers == expected[0]
    assert depth == expected[2]
    # the departure: mosquitto's return code 2 (identifier rejected) for Keep Alive 0 and 1000; refbroker closes
    assert expected[1] == [b"\x20\x02\x00\x02", b"\x20\x02\x00\x00", b"\x20\x02\x00\x02"]
    assert v3_answers == [b"", b"\x20\x02\x00\x00", b""]
