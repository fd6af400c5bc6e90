"""Bad input never crashes the broker; $SYS topics; the mosquitto-style packet log."""

import random

import pytest

from refbroker.core.packet_log import describe
from refbroker.protocol import Connack, Disconnect, Puback, Publish

from .harness import Harness


@pytest.mark.parametrize("reason_strings", [False, True])
def test_v5_malformed_packet_after_connect_is_disconnect_0x81(reason_strings):
    h = Harness(reason_strings=reason_strings)
    client, _ = h.connect("c", 5)
    packets = client.send(b"\x30\x02\x00\x05")  # topic length runs past the end
    assert [(type(p), p.reason_code) for p in packets] == [(Disconnect, 0x81)]
    # mosquitto does not say why; refbroker does with reason_strings true, and always in the log
    assert bool(packets[0].properties.reason_string) == reason_strings
    assert any("packet ends inside the topic name" in text for _, text in h.logs)
    assert client.closed


def test_v311_malformed_packet_closes_silently():
    h = Harness()
    client, _ = h.connect("c", 4)
    assert client.send(b"\x30\x02\x00\x05") == [] and client.closed


def test_packets_before_a_bad_one_in_the_same_chunk_are_handled():
    h = Harness()
    subscriber, _ = h.connect("sub")
    subscriber.subscribe("t")
    publisher, _ = h.connect("pub")
    publisher.send(Publish("t", b"ok").encode(4) + b"\x30\x02\x00\x05")
    assert [p.payload for p in subscriber.take()] == [b"ok"]


@pytest.mark.parametrize("compat, code", [("2.0.11", 0x82), ("2.0.21", 0x81), ("2.1.2", 0x81)])
def test_wildcard_topic_name_gets_the_mosquitto_versions_reason_code(compat, code):
    """[MQTT-3.3.2-2]: closed; 0x90 Topic Name invalid, 0x82 and 0x81 are all allowed; mosquitto 2.0.11
    says 0x82, later versions 0x81."""
    h = Harness(mosquitto_compat=compat)
    client, _ = h.connect("c", 5)
    packets = client.send(Publish("a/+", b"x"))
    assert [p.reason_code for p in packets] == [code] and client.closed


def test_packet_above_max_packet_size_is_disconnect_0x95():
    h = Harness(max_packet_size=100)
    client, _ = h.connect("c", 5)
    packets = client.send(Publish("t", b"x" * 200))
    assert [p.reason_code for p in packets] == [0x95] and client.closed


def test_server_side_packets_from_a_client_are_protocol_errors():
    h = Harness()
    client, _ = h.connect("c", 5)
    packets = client.send(Connack(0))
    assert [p.reason_code for p in packets] == [0x82] and client.closed


@pytest.mark.parametrize("version", [3, 4, 5])
def test_random_bytes_never_break_the_broker(version):
    rng = random.Random(version)
    h = Harness()
    watch, _ = h.connect("watch", version)
    watch.subscribe(("#", 0))
    for round_ in range(300):
        client, _ = h.connect(f"fuzz{round_}", version)
        useful = Publish("t", b"x", qos=1, packet_id=1).encode(version)
        data = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 40)))
        if rng.random() < 0.5:
            data = useful[: rng.randrange(len(useful))] + data
        client.send(data)
        client.drop()
    # the broker still works
    publisher, _ = h.connect("last", version)
    assert publisher.send(Publish("t/x", b"alive", qos=1, packet_id=5)) == [Puback(5)]
    assert b"alive" in [p.payload for p in watch.take()]
    assert not [text for kind, text in h.logs if "Internal error" in text]


def test_sys_topics_are_published_every_sys_interval_and_retained():
    h = Harness(sys_interval=10)
    h.advance(0)
    client, _ = h.connect("c")
    packets = client.subscribe("$SYS/broker/#")
    topics = {p.topic: p.payload for p in packets[1:]}
    assert topics["$SYS/broker/version"].startswith(b"refbroker version")
    for topic in ("uptime", "clients/connected", "messages/received", "messages/sent", "subscriptions/count",
                  "retained messages/count", "bytes/received", "publish/messages/received"):
        assert f"$SYS/broker/{topic}" in topics
    h.advance(10)
    updated = {p.topic: p.payload for p in client.take()}
    assert updated["$SYS/broker/uptime"] == b"10 seconds"
    assert updated["$SYS/broker/clients/connected"] == b"1"
    assert updated["$SYS/broker/subscriptions/count"] == b"1"


def test_sys_interval_0_publishes_nothing():
    h = Harness(sys_interval=0)
    assert h.broker.next_deadline() is None


def test_packet_log_reads_like_mosquitto():
    publish = Publish("a/b", b"hello", qos=1, packet_id=3)
    assert describe(publish, "c1", received=True) == "Received PUBLISH from c1 (d0, q1, r0, m3, 'a/b', ... (5 bytes))"
    assert describe(Connack(0, False), "c1", received=False) == "Sending CONNACK to c1 (0, 0)"
    assert describe(Puback(3), "c1", received=False) == "Sending PUBACK to c1 (m3, rc0)"


def test_the_core_logs_every_packet_at_debug_level():
    h = Harness()
    client, _ = h.connect("c1")
    client.send(Publish("a/b", b"hello", qos=1, packet_id=3))
    lines = [text for kind, text in h.logs if kind == "debug"]
    assert "Received CONNECT from c1" in lines[0] or "Received CONNECT from" in lines[0]
    assert "Received PUBLISH from c1 (d0, q1, r0, m3, 'a/b', ... (5 bytes))" in lines
    assert "Sending PUBACK to c1 (m3, rc0)" in lines
