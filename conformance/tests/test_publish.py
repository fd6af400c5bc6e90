"""PUBLISH and the QoS 0 / 1 / 2 flows, in both directions, DUP, packet identifiers, ordering."""

from __future__ import annotations

import pytest

from conformance import known_deviation
from conformance.client import ConformanceFailure, ConnectionClosed
from refbroker.protocol import MQTT_5, Puback, Pubcomp, Publish, Pubrec, Pubrel

from .helpers import QUIET, expect_close_for_bad_packet, receive_publishes

#: success codes a v5 PUBACK/PUBREC may carry: 0x00, or 0x10 when nobody matched (3.4.2.1)
ACK_SUCCESS = (0x00, 0x10)


def _check_success_with_subscribers(ack) -> None:
    """A v5 PUBACK/PUBREC for a message that has a matching subscriber: 0x00 (0x10 says there is none)."""
    if ack.reason_code == 0x10:
        known_deviation(19, f"{ack.packet_type.name} reason 0x10 (No matching subscribers) for a message that "
                            "had a matching subscriber")
    assert ack.reason_code == 0x00, f"{ack.packet_type.name} reason 0x{ack.reason_code:02X}"


def _subscriber(client_factory, topic_filter: str, qos: int):
    sub = client_factory("subscriber")
    suback = sub.subscribe((topic_filter, qos))
    assert suback.reason_codes == [qos], f"expected QoS {qos} granted, got {suback.reason_codes}"
    return sub


@pytest.mark.spec("MQTT-3.3.4-1", "MQTT-4.3.1-1", "MQTT-3.3.1-2", "MQTT-2.3.1-5", "MQTT-3.3.2-3", version="3.1.1")
@pytest.mark.spec("MQTT-3.3.4-1", "MQTT-4.3.1-1", "MQTT-3.3.1-2", "MQTT-2.2.1-2", "MQTT-3.3.2-3", version="5.0")
def test_qos0_publish_delivered_without_ack(client_factory, version, topic):
    """QoS 0: the publisher gets nothing back; the subscriber gets QoS 0, DUP 0, no packet id."""
    sub = _subscriber(client_factory, f"{topic}/q0", 0)
    publisher = client_factory("publisher")
    publisher.publish(f"{topic}/q0", b"fire and forget", qos=0)
    message = sub.expect_publish()
    assert (message.topic, message.payload, message.qos, message.dup) == (f"{topic}/q0", b"fire and forget", 0,
                                                                         False)
    assert message.packet_id is None
    publisher.expect_nothing(QUIET)


@pytest.mark.spec("MQTT-3.3.4-1", "MQTT-2.3.1-6", "MQTT-4.3.2-2", version="3.1.1")
@pytest.mark.spec("MQTT-3.3.4-1", "MQTT-2.2.1-5", "MQTT-4.3.2-4", "MQTT-3.4.2-1", version="5.0")
def test_qos1_publish_gets_puback_with_same_id(client_factory, version, topic):
    """QoS 1: PUBACK carries the PUBLISH's packet id (5.0: reason 0x00, or 0x10 with no subscribers)."""
    publisher = client_factory("publisher")
    for packet_id in (1, 0x1234, 0xFFFF):
        puback = publisher.publish(f"{topic}/q1", b"x", qos=1, packet_id=packet_id)
        assert isinstance(puback, Puback) and puback.packet_id == packet_id
        if version == MQTT_5:
            assert puback.reason_code in ACK_SUCCESS, f"PUBACK reason 0x{puback.reason_code:02X}"


@pytest.mark.spec("MQTT-3.3.4-1", "MQTT-2.3.1-6", "MQTT-4.3.3-2", version="3.1.1")
@pytest.mark.spec("MQTT-3.3.4-1", "MQTT-2.2.1-5", "MQTT-4.3.3-8", "MQTT-4.3.3-11", "MQTT-3.5.2-1", "MQTT-3.7.2-1",
                  version="5.0")
def test_qos2_publish_flow(client_factory, version, topic):
    """QoS 2: PUBREC with the id, then PUBREL -> PUBCOMP with the id; the subscriber gets it once."""
    sub = _subscriber(client_factory, f"{topic}/q2", 2)
    publisher = client_factory("publisher")
    publisher.send(Publish(f"{topic}/q2", b"exactly once", qos=2, packet_id=42))
    pubrec = publisher.expect(Pubrec)
    assert pubrec.packet_id == 42
    if version == MQTT_5:
        _check_success_with_subscribers(pubrec)
    publisher.send(Pubrel(42))
    pubcomp = publisher.expect(Pubcomp)
    assert pubcomp.packet_id == 42 and pubcomp.reason_code == 0
    message = sub.expect_publish()
    assert message.payload == b"exactly once" and message.qos == 2
    sub.expect_nothing(QUIET)


@pytest.mark.spec("MQTT-4.3.3-2", version="3.1.1")
@pytest.mark.spec("MQTT-4.3.3-10", "MQTT-4.3.3-8", version="5.0")
def test_qos2_duplicate_before_pubrel_not_delivered_twice(client_factory, version, topic):
    """A QoS 2 PUBLISH resent (DUP 1) before PUBREL is answered with PUBREC again and delivered once."""
    sub = _subscriber(client_factory, f"{topic}/dup", 2)
    publisher = client_factory("publisher")
    publisher.send(Publish(f"{topic}/dup", b"once", qos=2, packet_id=7))
    assert publisher.expect(Pubrec).packet_id == 7
    publisher.send(Publish(f"{topic}/dup", b"once", qos=2, packet_id=7, dup=True))
    assert publisher.expect(Pubrec).packet_id == 7, "a duplicate before PUBREL must be acknowledged with PUBREC"
    publisher.send(Pubrel(7))
    assert publisher.expect(Pubcomp).packet_id == 7
    received = receive_publishes(sub, 1)
    assert [p.payload for p in received] == [b"once"], f"delivered {len(received)} times: {received}"


@pytest.mark.spec("MQTT-4.3.3-2", version="3.1.1")
@pytest.mark.spec("MQTT-4.3.3-12", version="5.0")
def test_qos2_packet_id_reusable_after_pubcomp(client_factory, version, topic):
    """After PUBCOMP, a PUBLISH with the same packet id is a new message and delivered again."""
    sub = _subscriber(client_factory, f"{topic}/reuse", 2)
    publisher = client_factory("publisher")
    publisher.publish(f"{topic}/reuse", b"first", qos=2, packet_id=9)
    publisher.publish(f"{topic}/reuse", b"second", qos=2, packet_id=9)
    received = receive_publishes(sub, 2)
    assert [p.payload for p in received] == [b"first", b"second"]


@pytest.mark.spec("MQTT-4.3.2-2", version="3.1.1")
@pytest.mark.spec("MQTT-4.3.2-5", "MQTT-4.3.2-4", version="5.0")
def test_qos1_packet_id_reusable_after_puback(client_factory, version, topic):
    """After PUBACK, a PUBLISH with the same id (even with DUP 1) is a new message: delivered again."""
    sub = _subscriber(client_factory, f"{topic}/reuse", 1)
    publisher = client_factory("publisher")
    publisher.publish(f"{topic}/reuse", b"first", qos=1, packet_id=5)
    publisher.publish(f"{topic}/reuse", b"second", qos=1, packet_id=5, dup=True)
    received = receive_publishes(sub, 2)
    assert [p.payload for p in received] == [b"first", b"second"]


@pytest.mark.spec("MQTT-3.3.1-3", "MQTT-4.3.2-1", version="3.1.1")
@pytest.mark.spec("MQTT-3.3.1-3", "MQTT-4.3.2-2", "MQTT-3.4.2-1", version="5.0")
def test_forwarded_dup_flag_is_the_servers_own(client_factory, version, topic):
    """An inbound DUP 1 is not copied: the first delivery to a subscriber has DUP 0."""
    sub = _subscriber(client_factory, f"{topic}/d", 1)
    publisher = client_factory("publisher")
    puback = publisher.publish(f"{topic}/d", b"resent by the publisher", qos=1, dup=True)
    if version == MQTT_5:
        _check_success_with_subscribers(puback)
    message = sub.expect_publish()
    assert message.qos == 1 and message.packet_id
    assert not message.dup, "the server's first delivery must have DUP 0 whatever the publisher's DUP"


@pytest.mark.spec("MQTT-4.3.3-1", "MQTT-2.3.1-6", version="3.1.1")
@pytest.mark.spec("MQTT-4.3.3-1", "MQTT-4.3.3-2", "MQTT-4.3.3-3", "MQTT-4.3.3-4", "MQTT-2.2.1-5", "MQTT-3.6.2-1",
                  version="5.0")
def test_qos2_delivery_to_subscriber(client_factory, version, topic):
    """Server to subscriber at QoS 2: PUBLISH (id, DUP 0) -> our PUBREC -> PUBREL (same id) -> PUBCOMP."""
    sub = _subscriber(client_factory, f"{topic}/in2", 2)
    publisher = client_factory("publisher")
    publisher.publish(f"{topic}/in2", b"to you", qos=2)
    message = sub.expect(Publish)
    assert message.qos == 2 and message.packet_id and not message.dup
    sub.expect_nothing(QUIET)  # it waits for our PUBREC
    sub.send(Pubrec(message.packet_id))
    pubrel = sub.expect(Pubrel)
    assert pubrel.packet_id == message.packet_id
    if version == MQTT_5:
        assert pubrel.reason_code == 0
    sub.send(Pubcomp(message.packet_id))
    sub.expect_nothing(QUIET)


@pytest.mark.spec("MQTT-4.6.0-5", "MQTT-4.6.0-6", version="3.1.1")
@pytest.mark.spec("MQTT-4.6.0-5", "MQTT-4.6.0-6", version="5.0")
@pytest.mark.parametrize("qos", [0, 1, 2])
def test_messages_forwarded_in_publish_order(client_factory, version, topic, qos):
    """Messages of one publisher on one topic reach a subscriber in the order they were published."""
    sub = _subscriber(client_factory, f"{topic}/order", qos)
    publisher = client_factory("publisher")
    expected = [b"%03d" % n for n in range(20)]
    for payload in expected:
        publisher.publish(f"{topic}/order", payload, qos=qos)
    received = sub.collect_publishes(3.0, until_count=len(expected))
    assert [p.payload for p in received] == expected


@pytest.mark.spec("MQTT-3.3.1-9", version="3.1.1")
@pytest.mark.spec("MQTT-3.3.1-12", version="5.0")
def test_retain_flag_cleared_for_established_subscriptions(client_factory, version, topic):
    """A retained PUBLISH reaches an existing subscription with RETAIN 0 (5.0: Retain As Published 0)."""
    sub = _subscriber(client_factory, f"{topic}/r", 1)
    publisher = client_factory("publisher")
    publisher.publish(f"{topic}/r", b"live", qos=1, retain=True)
    message = sub.expect_publish()
    assert message.payload == b"live"
    assert not message.retain, "a message delivered to an existing subscription must have RETAIN 0"
    publisher.publish(f"{topic}/r", b"", retain=True)


@pytest.mark.spec("MQTT-1.5.3-3", "MQTT-4.7.3-4", version="3.1.1")
@pytest.mark.spec("MQTT-1.5.4-3", "MQTT-4.7.3-4", version="5.0")
def test_topic_with_bom_is_kept_and_not_normalised(client_factory, version, topic):
    """U+FEFF inside a topic is kept as it is; topics match character by character, no normalisation."""
    sub = client_factory("subscriber")
    sub.subscribe((f"{topic}/\ufeffx", 0), (f"{topic}/x", 0), (f"{topic}/e\u0301", 0))
    publisher = client_factory("publisher")
    publisher.publish(f"{topic}/\ufeffx", b"bom")
    publisher.publish(f"{topic}/\u00e9", b"precomposed")  # must not match the decomposed e + U+0301
    publisher.publish(f"{topic}/x", b"plain")
    received = receive_publishes(sub, 2)
    got = [(p.topic, p.payload) for p in received]
    assert got == [(f"{topic}/\ufeffx", b"bom"), (f"{topic}/x", b"plain")], got
    sub.expect_nothing(QUIET)


@pytest.mark.spec("MQTT-3.3.2-1", "MQTT-3.3.2-3", "MQTT-4.5.0-1", version="3.1.1")
@pytest.mark.spec("MQTT-3.3.2-1", "MQTT-3.3.2-3", "MQTT-4.5.0-1", version="5.0")
def test_every_matching_subscriber_receives(client_factory, version, topic):
    """A message goes to every client whose subscription matches, with the publisher's topic name."""
    subscribers = []
    for name, topic_filter in (("exact", f"{topic}/a/b"), ("plus", f"{topic}/+/b"), ("hash", f"{topic}/#")):
        client = client_factory(name)
        client.subscribe((topic_filter, 1))
        subscribers.append(client)
    other = client_factory("other")
    other.subscribe((f"{topic}/a/c", 1))
    publisher = client_factory("publisher")
    publisher.publish(f"{topic}/a/b", b"for all", qos=1)
    for client in subscribers:
        message = client.expect_publish()
        assert (message.topic, message.payload) == (f"{topic}/a/b", b"for all")
    other.expect_nothing(QUIET)


@pytest.mark.spec("MQTT-2.3.1-6", version="3.1.1")
@pytest.mark.spec("MQTT-3.4.2-1", "MQTT-2.2.1-5", version="5.0")
def test_publish_without_subscribers_is_acknowledged(client_factory, version, topic):
    """QoS 1 and 2 publishes that match no subscription are still acknowledged normally."""
    publisher = client_factory("publisher")
    puback = publisher.publish(f"{topic}/nobody", b"x", qos=1)
    pubcomp = publisher.publish(f"{topic}/nobody", b"y", qos=2)
    if version == MQTT_5:
        assert puback.reason_code in ACK_SUCCESS and pubcomp.reason_code == 0
    if not isinstance(pubcomp, Pubcomp):
        raise ConformanceFailure(f"QoS 2 flow ended with {pubcomp}")


@pytest.mark.spec("MQTT-2.3.1-1", "MQTT-4.8.0-1", version="3.1.1")
@pytest.mark.spec("MQTT-2.2.1-3", "MQTT-4.13.1-1", version="5.0")
def test_qos1_publish_with_packet_id_zero_closes(client_factory, version, topic):
    """A QoS 1 PUBLISH with packet id 0 breaks the packet-id rule: the server closes the connection."""
    client = client_factory()
    client.send_raw(Publish(f"{topic}/z", b"x", qos=1, packet_id=0).encode(version), note="QoS 1 with packet id 0")
    expect_close_for_bad_packet(client)


@pytest.mark.spec("MQTT-4.3.3-2", version="3.1.1")
@pytest.mark.spec("MQTT-4.3.3-11", "MQTT-3.7.2-1", version="5.0")
def test_pubrel_for_unknown_packet_id_gets_pubcomp(client_factory, version):
    """A PUBREL for an id with no QoS 2 flow still gets a PUBCOMP with that id (5.0: reason 0x00, or
    0x92 Packet Identifier not found, which the spec recommends)."""
    client = client_factory()
    client.send(Pubrel(0x2222))
    pubcomp = client.expect(Pubcomp)
    assert pubcomp.packet_id == 0x2222
    if version == MQTT_5:
        assert pubcomp.reason_code in (0x00, 0x92), f"PUBCOMP reason 0x{pubcomp.reason_code:02X}"


@pytest.mark.spec("MQTT-3.3.5-2", version="3.1.1")
def test_publish_the_server_may_refuse_is_acknowledged_or_closed(client_factory, version):
    """3.1.1 cannot tell a client that a PUBLISH was not authorised, so the server "MUST either make a
    positive acknowledgement, according to the normal QoS rules, or close the Network Connection"
    [MQTT-3.3.5-2]. A client PUBLISH to $SYS/... is one brokers commonly do not authorise (mosquitto
    keeps $SYS for itself); authorised or not, QoS 1 gets its PUBACK and QoS 2 its PUBREC and PUBCOMP,
    unless the connection is closed."""
    client = client_factory()
    for qos in (1, 2):
        try:
            client.publish(f"$SYS/conformance/{client.client_id}", b"may be refused", qos=qos)
        except ConnectionClosed:
            return
