"""Malformed packets and protocol violations: the server closes the connection (5.0: after an
optional DISCONNECT with a fitting reason code)."""

from __future__ import annotations

import pytest

from conformance import check, known_deviation, statement
from conformance.client import ConformanceFailure, UnexpectedPacket
from refbroker.protocol import MQTT_5, Publish, Suback, Subscribe, Subscription, Will

from .helpers import BAD_PACKET_REASONS, QUIET, expect_close_for_bad_packet

TOPIC_NAME_INVALID = 0x90

FLAG_CASES = [
    ("PUBREL flags 0000", b"\x60\x02\x00\x01"),
    ("SUBSCRIBE flags 0000", b"\x80\x08\x00\x01\x00\x03a/b\x00"),
    ("UNSUBSCRIBE flags 0000", b"\xa0\x07\x00\x01\x00\x03a/b"),
    ("PINGREQ flags 0001", b"\xc1\x00"),
    ("DISCONNECT flags 0001", b"\xe1\x00"),
]

BAD_UTF8_CASES = [
    ("UTF-16 surrogate U+D800", b"\xed\xa0\x80"),
    ("invalid byte 0xFF", b"\xff"),
    ("overlong encoding of slash", b"\xc0\xaf"),
    ("truncated sequence", b"\xe2\x82"),
]


@pytest.mark.spec("MQTT-2.2.2-2", "MQTT-3.6.1-1", "MQTT-3.8.1-1", "MQTT-3.10.1-1", "MQTT-3.14.1-1", version="3.1.1")
@pytest.mark.spec("MP-2.1.3-a", "MQTT-3.6.1-1", "MQTT-3.8.1-1", "MQTT-3.10.1-1", "MQTT-3.14.1-1", "MQTT-4.13.1-1",
                  version="5.0")
@pytest.mark.parametrize("name,data", FLAG_CASES, ids=[name for name, _ in FLAG_CASES])
def test_invalid_fixed_header_flags_close(client_factory, version, name, data):
    """Fixed-header flag bits other than the table's values: malformed, the server closes."""
    client = client_factory()
    if version == MQTT_5 and data[0] >> 4 in (8, 10):  # v5 SUBSCRIBE/UNSUBSCRIBE have a Property Length
        data = bytes((data[0], data[1] + 1)) + data[2:4] + b"\x00" + data[4:]
    client.send_raw(data, note=name)
    # each packet's own rule, where it has one ("MUST treat any other value as malformed and close"); the
    # general rule for flags otherwise
    specific = {6: "MQTT-3.6.1-1", 8: "MQTT-3.8.1-1", 10: "MQTT-3.10.1-1", 14: "MQTT-3.14.1-1"}.get(
        data[0] >> 4, "MQTT-2.2.2-2" if version != MQTT_5 else "MP-2.1.3-a")
    try:
        with statement(specific):
            expect_close_for_bad_packet(client)
    except UnexpectedPacket as exc:
        if data == b"\xc1\x00" and exc.packet is not None and exc.packet.packet_type.name == "PINGRESP":
            known_deviation(102, "PINGREQ with flags 0001 (c1 00) was answered with PINGRESP (d0 00)")
        raise


@pytest.mark.spec("MQTT-4.8.0-1", version="3.1.1")
@pytest.mark.spec("MQTT-4.13.1-1", version="5.0")
def test_reserved_packet_type_zero_closes(client_factory, version):
    client = client_factory()
    client.send_raw(b"\x00\x00", note="packet type 0 (reserved)")
    expect_close_for_bad_packet(client, timeout=2.0)


@pytest.mark.spec("MQTT-4.8.0-1", version="3.1.1")
def test_auth_packet_in_3_1_1_closes(client_factory, version):
    """Packet type 15 is reserved in 3.1.1 (it is AUTH in 5.0): the server closes."""
    client = client_factory()
    client.send_raw(b"\xf0\x00", note="packet type 15 (reserved in 3.1.1)")
    expect_close_for_bad_packet(client)


@pytest.mark.spec("PE-3.15-a", "MQTT-4.13.1-1", version="5.0")
def test_v5_unexpected_auth_closes(client_factory, version):
    """AUTH on a connection whose CONNECT had no Authentication Method is a Protocol Error."""
    client = client_factory()
    client.send_raw(b"\xf0\x00", note="AUTH without an authentication method in CONNECT")
    expect_close_for_bad_packet(client)


@pytest.mark.spec("MQTT-3.3.1-4", "MQTT-4.8.0-1", version="3.1.1")
@pytest.mark.spec("MQTT-3.3.1-4", "MP-3.3.1.2-a", "MQTT-4.13.1-1", version="5.0")
def test_publish_qos3_closes(client_factory, version, topic):
    client = client_factory()
    client.send_raw(Publish(f"{topic}/q3", b"x", qos=3, packet_id=1).encode(version), note="PUBLISH with QoS 3")
    expect_close_for_bad_packet(client)


@pytest.mark.spec("MQTT-4.8.0-1", "MQTT-3.3.2-2", "MQTT-4.7.1-1", version="3.1.1")
@pytest.mark.spec("MQTT-4.13.1-1", "MQTT-3.3.2-2", "MQTT-4.7.0-1", version="5.0")
@pytest.mark.parametrize("wildcard", ["+", "#"])
def test_publish_to_wildcard_topic_closes(client_factory, version, topic, wildcard):
    """A topic name with a wildcard character is invalid: the server closes (5.0: 0x81, 0x82 or 0x90)."""
    watcher = client_factory("watcher")
    watcher.subscribe((f"{topic}/#", 0))
    client = client_factory()
    client.send_raw(Publish(f"{topic}/{wildcard}", b"x").encode(version), note=f"PUBLISH to a topic with {wildcard}")
    # the close is the receiver's duty (3.1.1 4.8, 5.0 4.13); the topic rule binds senders, so the server
    # breaks it only by forwarding the PUBLISH
    expect_close_for_bad_packet(client, reasons=BAD_PACKET_REASONS + (TOPIC_NAME_INVALID,))
    with statement("MQTT-3.3.2-2"):
        watcher.expect_nothing(QUIET)


@pytest.mark.spec("MQTT-4.8.0-1", "MQTT-4.7.3-1", version="3.1.1")
@pytest.mark.spec("PE-3.3.2.1-a", "MQTT-4.7.3-1", "MQTT-4.13.1-1", version="5.0")
def test_publish_with_empty_topic_closes(client_factory, version):
    """An empty topic name (5.0: without Topic Alias) is not allowed: the server closes."""
    client = client_factory()
    body = b"\x00\x00" + (b"\x00" if version == MQTT_5 else b"") + b"payload"
    client.send_raw(bytes((0x30, len(body))) + body, note="PUBLISH with an empty topic name")
    expect_close_for_bad_packet(client, reasons=BAD_PACKET_REASONS + (TOPIC_NAME_INVALID,))


@pytest.mark.spec("MQTT-1.5.3-2", "MQTT-4.7.3-2", version="3.1.1")
@pytest.mark.spec("MQTT-1.5.4-2", "MP-1.5.4-b", "MQTT-4.7.3-2", version="5.0")
def test_topic_with_null_character_closes(client_factory, version, topic):
    """A string that encodes U+0000 is malformed: the server closes."""
    watcher = client_factory("watcher")
    watcher.subscribe((f"{topic}/#", 0))
    client = client_factory()
    client.send_raw(Publish(f"{topic}/a\x00b", b"x").encode(version), note="PUBLISH topic containing U+0000")
    expect_close_for_bad_packet(client, reasons=BAD_PACKET_REASONS + (TOPIC_NAME_INVALID,))
    with statement("MQTT-4.7.3-2"):  # not forwarded: topic names never contain U+0000
        watcher.expect_nothing(QUIET)


@pytest.mark.spec("MQTT-1.5.3-1", version="3.1.1")
@pytest.mark.spec("MQTT-1.5.4-1", "MP-1.5.4-a", version="5.0")
@pytest.mark.parametrize("name,bad", BAD_UTF8_CASES, ids=[name for name, _ in BAD_UTF8_CASES])
def test_topic_with_ill_formed_utf8_closes(client_factory, version, name, bad):
    """Ill-formed UTF-8 in a topic name makes the packet malformed: the server closes."""
    client = client_factory()
    topic_bytes = b"t/" + bad + b"/x"
    body = len(topic_bytes).to_bytes(2, "big") + topic_bytes + (b"\x00" if version == MQTT_5 else b"") + b"p"
    client.send_raw(bytes((0x30, len(body))) + body, note=f"PUBLISH topic with {name}")
    expect_close_for_bad_packet(client, reasons=BAD_PACKET_REASONS + (TOPIC_NAME_INVALID,))


@pytest.mark.spec("MQTT-4.7.3-2", version="3.1.1")
@pytest.mark.spec("MQTT-4.7.3-2", version="5.0")
def test_topic_filter_with_null_character_refused(client_factory, version, topic):
    """SUBSCRIBE to a filter containing U+0000: the server closes (or refuses it in the SUBACK)."""
    client = client_factory()
    client.send_raw(Subscribe(4, [Subscription(f"{topic}/a\x00b", 0)]).encode(version),
                    note="SUBSCRIBE filter containing U+0000")
    packet = client.answer_or_close(3.0)
    if packet is None:
        return
    if isinstance(packet, Suback):
        if packet.reason_codes[0] < 0x80:
            raise ConformanceFailure(f"a filter containing U+0000 was granted: {packet}")
        return
    if version == MQTT_5 and packet.packet_type.name == "DISCONNECT":
        assert packet.reason_code in BAD_PACKET_REASONS + (0x8F,), packet
        client.expect_disconnect()
        return
    raise ConformanceFailure(f"unexpected answer to a filter containing U+0000: {packet}")


@pytest.mark.spec("MQTT-4.8.0-1", version="3.1.1")
@pytest.mark.spec("MQTT-4.13.1-1", version="5.0")
def test_remaining_length_of_five_bytes_closes(client_factory, version):
    """A Remaining Length with a fifth continuation byte is malformed: the server closes."""
    client = client_factory()
    client.send_raw(b"\x30\xff\xff\xff\xff\x01", note="PUBLISH with a 5-byte Remaining Length")
    expect_close_for_bad_packet(client)


@pytest.mark.spec("MQTT-3.14.1-1", "MQTT-3.1.2-8", version="3.1.1")
@pytest.mark.spec("MQTT-3.14.1-1", "MQTT-4.13.1-1", "MQTT-3.1.2-8", version="5.0")
def test_disconnect_with_reserved_flags_is_not_a_clean_disconnect(client_factory, version, topic):
    """DISCONNECT with flag bits set is malformed: the server closes, and does not treat it as a
    normal DISCONNECT, so the Will is published."""
    watcher = client_factory("watcher")
    watcher.subscribe((f"{topic}/will", 0))
    client = client_factory("offender", will=Will(f"{topic}/will", b"malformed disconnect"))
    client.send_raw(b"\xe2\x00", note="DISCONNECT with flags 0010")
    expect_close_for_bad_packet(client)
    with statement("MQTT-3.1.2-8"):  # not a normal DISCONNECT: the Will is published
        message = watcher.expect_publish(timeout=2.0)
        check("MQTT-3.1.2-8", message.payload == b"malformed disconnect", f"the watcher got {message}")


@pytest.mark.spec("MQTT-4.8.0-1", "MQTT-2.3.1-1", version="3.1.1")
@pytest.mark.spec("MQTT-4.13.1-1", version="5.0")
def test_subscribe_with_packet_id_zero_closes(client_factory, version, topic):
    client = client_factory()
    client.send_raw(Subscribe(0, [Subscription(f"{topic}/z", 0)]).encode(version), note="SUBSCRIBE with packet id 0")
    expect_close_for_bad_packet(client)
