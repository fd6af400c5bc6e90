"""PUBLISH and the QoS 0 / 1 / 2 flows, in both directions, DUP, packet identifiers, ordering."""

from __future__ import annotations

import pytest

from conformance import check, known_deviation, not_applicable, statement
from conformance.client import ConformanceFailure, ConnectionClosed
from refbroker.protocol import MQTT_5, Puback, Pubcomp, Publish, Pubrec, Pubrel
from refbroker.protocol.reason_codes import VALID_REASON_CODES

from .helpers import QUIET, expect_close_for_bad_packet, receive_publishes

#: success codes a v5 PUBACK/PUBREC may carry: 0x00, or 0x10 when nobody matched (3.4.2.1)
ACK_SUCCESS = (0x00, 0x10)


#: "The Client or Server sending the PUBACK/PUBREC packet MUST use one of the ... Reason Codes" (5.0)
ACK_TABLE = {Puback: "MQTT-3.4.2-1", Pubrec: "MQTT-3.5.2-1"}


def _check_success_with_subscribers(ack) -> None:
    """A v5 PUBACK/PUBREC for a message that has a matching subscriber: 0x00 (0x10 says there is none).

    A failure code (0x80 and above) is a code of the table, so it does not fail the table's statement: it
    says the broker refused an ordinary message, which fails the flow the test checks (its first statement).
    """
    if ack.reason_code == 0x10:
        known_deviation(19, f"{ack.packet_type.name} reason 0x10 (No matching subscribers) for a message that "
                            "had a matching subscriber")
    check(ACK_TABLE[type(ack)], ack.reason_code in VALID_REASON_CODES[ack.packet_type.name],
          f"{ack.packet_type.name} reason 0x{ack.reason_code:02X} is not in its Reason Code table")
    if ack.reason_code != 0x00:
        raise ConformanceFailure(f"the broker refused an ordinary QoS {1 if isinstance(ack, Puback) else 2} "
                                 f"PUBLISH: {ack.packet_type.name} reason 0x{ack.reason_code:02X}")


def _subscriber(client_factory, topic_filter: str, qos: int):
    sub = client_factory("subscriber")
    suback = sub.subscribe((topic_filter, qos))  # a lower grant makes the test not applicable (client.py)
    if suback.reason_codes[0] != qos:  # a failure code (0x80) fails the subscription the test's flow needs
        raise ConformanceFailure(f"expected QoS {qos} granted, got {suback.reason_codes}")
    return sub


@pytest.mark.spec("MQTT-3.3.4-1", "MQTT-4.3.1-1", "MQTT-3.3.1-2", "MQTT-2.3.1-5", "MQTT-3.3.2-3", version="3.1.1")
@pytest.mark.spec("MQTT-3.3.4-1", "MQTT-4.3.1-1", "MQTT-3.3.1-2", "MQTT-2.2.1-2", "MQTT-3.3.2-3", version="5.0")
def test_qos0_publish_delivered_without_ack(client_factory, version, topic):
    """QoS 0: the publisher gets nothing back; the subscriber gets QoS 0, DUP 0, no packet id."""
    sub = _subscriber(client_factory, f"{topic}/q0", 0)
    publisher = client_factory("publisher")
    publisher.publish(f"{topic}/q0", b"fire and forget", qos=0)
    message = sub.expect_publish()
    check("MQTT-3.3.2-3", message.topic == f"{topic}/q0", f"delivered with topic {message.topic!r}")
    check("MQTT-4.3.1-1", (message.payload, message.qos) == (b"fire and forget", 0), f"delivered {message}")
    check("MQTT-3.3.1-2", not message.dup, f"a QoS 0 PUBLISH with DUP 1: {message}")
    check("MQTT-2.3.1-5" if version != MQTT_5 else "MQTT-2.2.1-2", message.packet_id is None,
          f"a QoS 0 PUBLISH with a packet identifier: {message}")
    publisher.expect_nothing(QUIET)  # [MQTT-3.3.4-1] nothing comes back for QoS 0


@pytest.mark.spec("MQTT-3.3.4-1", "MQTT-2.3.1-6", "MQTT-4.3.2-2", version="3.1.1")
@pytest.mark.spec("MQTT-3.3.4-1", "MQTT-2.2.1-5", "MQTT-4.3.2-4", "MQTT-3.4.2-1", version="5.0")
def test_qos1_publish_gets_puback_with_same_id(client_factory, version, topic):
    """QoS 1: PUBACK carries the PUBLISH's packet id (5.0: reason 0x00, or 0x10 with no subscribers)."""
    publisher = client_factory("publisher")
    echo = "MQTT-2.3.1-6" if version != MQTT_5 else "MQTT-2.2.1-5"
    for packet_id in (1, 0x1234, 0xFFFF):
        publisher.send(Publish(f"{topic}/q1", b"x", qos=1, packet_id=packet_id))
        puback = publisher.expect(Puback)  # [MQTT-3.3.4-1] PUBACK for QoS 1
        check(echo, puback.packet_id == packet_id, f"PUBACK for packet id {packet_id} carries {puback.packet_id}")
        check("MQTT-4.3.2-2" if version != MQTT_5 else "MQTT-4.3.2-4", puback.packet_id == packet_id,
              f"PUBACK for packet id {packet_id} carries {puback.packet_id}")
        if version == MQTT_5:
            check("MQTT-3.4.2-1", puback.reason_code in VALID_REASON_CODES["PUBACK"],
                  f"PUBACK reason 0x{puback.reason_code:02X} is not in its table")
            if puback.reason_code not in ACK_SUCCESS:
                raise ConformanceFailure(f"the broker refused an ordinary QoS 1 PUBLISH: PUBACK reason "
                                         f"0x{puback.reason_code:02X}")


@pytest.mark.spec("MQTT-3.3.4-1", "MQTT-2.3.1-6", "MQTT-4.3.3-2", version="3.1.1")
@pytest.mark.spec("MQTT-3.3.4-1", "MQTT-2.2.1-5", "MQTT-4.3.3-8", "MQTT-4.3.3-11", "MQTT-3.5.2-1", "MQTT-3.7.2-1",
                  version="5.0")
def test_qos2_publish_flow(client_factory, version, topic):
    """QoS 2: PUBREC with the id, then PUBREL -> PUBCOMP with the id; the subscriber gets it once."""
    sub = _subscriber(client_factory, f"{topic}/q2", 2)
    publisher = client_factory("publisher")
    publisher.send(Publish(f"{topic}/q2", b"exactly once", qos=2, packet_id=42))
    pubrec = publisher.expect(Pubrec)  # [MQTT-3.3.4-1] PUBREC for QoS 2
    echo = "MQTT-2.3.1-6" if version != MQTT_5 else "MQTT-2.2.1-5"
    check(echo, pubrec.packet_id == 42, f"PUBREC for packet id 42 carries {pubrec.packet_id}")
    if version == MQTT_5:
        check("MQTT-4.3.3-8", pubrec.packet_id == 42, f"PUBREC for packet id 42 carries {pubrec.packet_id}")
        _check_success_with_subscribers(pubrec)
    receiver_rule = "MQTT-4.3.3-2" if version != MQTT_5 else "MQTT-4.3.3-11"
    with statement(receiver_rule):  # PUBREL -> PUBCOMP with the same id
        publisher.send(Pubrel(42))
        pubcomp = publisher.expect(Pubcomp)
        check(receiver_rule, pubcomp.packet_id == 42, f"PUBCOMP for packet id 42 carries {pubcomp.packet_id}")
    if version == MQTT_5:
        check("MQTT-3.7.2-1", pubcomp.reason_code in VALID_REASON_CODES["PUBCOMP"],
              f"PUBCOMP reason 0x{pubcomp.reason_code:02X} is not in its table")
        check("MQTT-4.3.3-11", pubcomp.reason_code == 0, f"PUBCOMP reason 0x{pubcomp.reason_code:02X} for a "
              "PUBREL of a flow the broker has")
    message = sub.expect_publish()  # [MQTT-3.3.4-1] the message was taken: it is delivered, at QoS 2, once
    if (message.payload, message.qos) != (b"exactly once", 2):
        raise ConformanceFailure(f"delivered {message}")
    sub.expect_nothing(QUIET)


@pytest.mark.spec("MQTT-4.3.3-2", version="3.1.1")
@pytest.mark.spec("MQTT-4.3.3-10", "MQTT-4.3.3-8", version="5.0")
def test_qos2_duplicate_before_pubrel_not_delivered_twice(client_factory, version, topic):
    """A QoS 2 PUBLISH resent (DUP 1) before PUBREL is answered with PUBREC again and delivered once."""
    sub = _subscriber(client_factory, f"{topic}/dup", 2)
    publisher = client_factory("publisher")
    duplicates = "MQTT-4.3.3-2" if version != MQTT_5 else "MQTT-4.3.3-10"
    publisher.send(Publish(f"{topic}/dup", b"once", qos=2, packet_id=7))
    pubrec = publisher.expect(Pubrec)
    check("MQTT-4.3.3-2" if version != MQTT_5 else "MQTT-4.3.3-8", pubrec.packet_id == 7,
          f"PUBREC for packet id 7 carries {pubrec.packet_id}")
    with statement(duplicates):
        publisher.send(Publish(f"{topic}/dup", b"once", qos=2, packet_id=7, dup=True))
        pubrec = publisher.expect(Pubrec)
        check(duplicates, pubrec.packet_id == 7, f"a duplicate before PUBREL must be acknowledged with PUBREC 7: {pubrec}")
        publisher.send(Pubrel(7))
        pubcomp = publisher.expect(Pubcomp)
        check(duplicates, pubcomp.packet_id == 7, f"PUBCOMP for packet id 7 carries {pubcomp.packet_id}")
        received = receive_publishes(sub, 1)
        check(duplicates, [p.payload for p in received] == [b"once"], f"delivered {len(received)} times: {received}")


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
    check("MQTT-4.3.2-2" if version != MQTT_5 else "MQTT-4.3.2-5", [p.payload for p in received] == [b"first", b"second"],
          f"a PUBLISH reusing an acknowledged packet id (DUP 1) is a new message: received {received}")


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
    check("MQTT-3.3.1-3", not message.dup, "the server's first delivery must have DUP 0 whatever the publisher's "
          f"DUP: {message}")
    check("MQTT-4.3.2-1" if version != MQTT_5 else "MQTT-4.3.2-2", message.qos == 1 and message.packet_id
          and not message.dup, f"a new QoS 1 message is sent with a packet id, QoS 1 and DUP 0: {message}")


@pytest.mark.spec("MQTT-4.3.3-1", "MQTT-2.3.1-6", version="3.1.1")
@pytest.mark.spec("MQTT-4.3.3-1", "MQTT-4.3.3-2", "MQTT-4.3.3-3", "MQTT-4.3.3-4", "MQTT-2.2.1-5", "MQTT-3.6.2-1",
                  "MQTT-4.3.3-6", version="5.0")
def test_qos2_delivery_to_subscriber(client_factory, version, topic):
    """Server to subscriber at QoS 2: PUBLISH (id, DUP 0) -> our PUBREC -> PUBREL (same id) -> PUBCOMP."""
    sub = _subscriber(client_factory, f"{topic}/in2", 2)
    publisher = client_factory("publisher")
    publisher.publish(f"{topic}/in2", b"to you", qos=2)
    message = sub.expect(Publish)
    check("MQTT-4.3.3-1", message.packet_id, f"a new QoS 2 message is sent with a non-zero packet id: {message}")
    check("MQTT-4.3.3-1" if version != MQTT_5 else "MQTT-4.3.3-2", message.qos == 2 and not message.dup,
          f"a new QoS 2 message is sent with QoS 2 and DUP 0: {message}")
    with statement("MQTT-4.3.3-1" if version != MQTT_5 else "MQTT-4.3.3-3"):
        sub.expect_nothing(QUIET)  # it waits for our PUBREC
    sub.send(Pubrec(message.packet_id))
    with statement("MQTT-4.3.3-1" if version != MQTT_5 else "MQTT-4.3.3-4"):
        pubrel = sub.expect(Pubrel)
    check("MQTT-2.3.1-6" if version != MQTT_5 else "MQTT-2.2.1-5", pubrel.packet_id == message.packet_id,
          f"PUBREL for packet id {message.packet_id} carries {pubrel.packet_id}")
    if version == MQTT_5:
        check("MQTT-3.6.2-1", pubrel.reason_code in VALID_REASON_CODES["PUBREL"],
              f"PUBREL reason 0x{pubrel.reason_code:02X} is not in its table")
        check("MQTT-4.3.3-4", pubrel.reason_code == 0, f"PUBREL reason 0x{pubrel.reason_code:02X} after our "
              "PUBREC 0x00")
    sub.send(Pubcomp(message.packet_id))
    with statement("MQTT-4.3.3-1" if version != MQTT_5 else "MQTT-4.3.3-6"):  # no PUBLISH again after PUBREL
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
    received = [p.payload for p in sub.collect_publishes(3.0, until_count=len(expected))]
    # 3.1.1: -5 every topic is ordered by default, -6 ordered topics are forwarded in send order;
    # 5.0 numbers them the other way round. A wrong order breaks the forwarding rule.
    ordering = "MQTT-4.6.0-6" if version != MQTT_5 else "MQTT-4.6.0-5"
    if qos == 0:  # QoS 0 is "at most once": messages may be lost, the ones that arrive must be in order
        if len(received) < 2:
            not_applicable(f"only {len(received)} of {len(expected)} QoS 0 messages arrived (QoS 0 may be lost), "
                           "too few to judge their order")
        check(ordering, received == sorted(received) and set(received) <= set(expected),
              f"QoS 0 messages arrived out of order: {received}")
    else:
        check(ordering, received == expected, f"sent {len(expected)} messages in order, received {received}")


@pytest.mark.spec("MQTT-3.3.1-9", version="3.1.1")
@pytest.mark.spec("MQTT-3.3.1-12", version="5.0")
def test_retain_flag_cleared_for_established_subscriptions(client_factory, version, topic):
    """A retained PUBLISH reaches an existing subscription with RETAIN 0 (5.0: Retain As Published 0)."""
    sub = _subscriber(client_factory, f"{topic}/r", 1)
    publisher = client_factory("publisher")
    publisher.publish(f"{topic}/r", b"live", qos=1, retain=True)
    message = sub.expect_publish()
    check("MQTT-3.3.1-9" if version != MQTT_5 else "MQTT-3.3.1-12", not message.retain and message.payload == b"live",
          f"a message delivered to an existing subscription must have RETAIN 0: {message}")
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
    check("MQTT-1.5.3-3" if version != MQTT_5 else "MQTT-1.5.4-3", (f"{topic}/\ufeffx", b"bom") in got,
          f"the topic with U+FEFF did not reach its subscription unchanged: {got}")
    check("MQTT-4.7.3-4", got == [(f"{topic}/\ufeffx", b"bom"), (f"{topic}/x", b"plain")],
          f"topics must match character for character, without normalisation: {got}")


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
        with statement("MQTT-4.5.0-1"):  # each matching subscription gets the message
            message = client.expect_publish()
        check("MQTT-3.3.2-3", message.topic == f"{topic}/a/b", f"{client.name} got topic {message.topic!r}")
        check("MQTT-4.5.0-1", message.payload == b"for all", f"{client.name} got {message}")
    with statement("MQTT-3.3.2-3"):  # a subscription that does not match gets nothing
        other.expect_nothing(QUIET)


@pytest.mark.spec("MQTT-2.3.1-6", version="3.1.1")
@pytest.mark.spec("MQTT-3.4.2-1", "MQTT-2.2.1-5", version="5.0")
def test_publish_without_subscribers_is_acknowledged(client_factory, version, topic):
    """QoS 1 and 2 publishes that match no subscription are still acknowledged normally."""
    publisher = client_factory("publisher")
    puback = publisher.publish(f"{topic}/nobody", b"x", qos=1)
    pubcomp = publisher.publish(f"{topic}/nobody", b"y", qos=2)
    if version == MQTT_5:
        check("MQTT-3.4.2-1", puback.reason_code in VALID_REASON_CODES["PUBACK"],
              f"PUBACK reason 0x{puback.reason_code:02X} is not in its table")
        if puback.reason_code not in ACK_SUCCESS or pubcomp.reason_code != 0:
            raise ConformanceFailure(f"a PUBLISH without subscribers was refused: {puback}, {pubcomp}")


@pytest.mark.spec("MQTT-4.8.0-1", "MQTT-2.3.1-1", version="3.1.1")
@pytest.mark.spec("MQTT-4.13.1-1", "MQTT-2.2.1-3", version="5.0")
def test_qos1_publish_with_packet_id_zero_closes(client_factory, version, topic):
    """A QoS 1 PUBLISH with packet id 0 breaks the packet-id rule: the server closes the connection."""
    client = client_factory()
    client.send_raw(Publish(f"{topic}/z", b"x", qos=1, packet_id=0).encode(version), note="QoS 1 with packet id 0")
    expect_close_for_bad_packet(client)


@pytest.mark.spec("MQTT-4.3.3-2", version="3.1.1")
@pytest.mark.spec("MQTT-4.3.3-11", "MQTT-3.7.2-1", version="5.0")
def test_pubrel_for_unknown_packet_id_gets_pubcomp(client_factory, version, broker):
    """A PUBREL for an id with no QoS 2 flow still gets a PUBCOMP with that id (5.0: reason 0x00, or
    0x92 Packet Identifier not found, which the spec recommends). The rule is the QoS 2 receiver's (4.3.3):
    a server that offers no QoS 2 (v5 Maximum QoS, or the target profile) is never one."""
    client = client_factory()
    broker.require("qos2", client.connack)
    client.send(Pubrel(0x2222))
    pubcomp = client.expect(Pubcomp)
    check("MQTT-4.3.3-2" if version != MQTT_5 else "MQTT-4.3.3-11", pubcomp.packet_id == 0x2222,
          f"PUBCOMP for a PUBREL with id 0x2222 carries {pubcomp.packet_id}")
    if version == MQTT_5:
        check("MQTT-3.7.2-1", pubcomp.reason_code in (0x00, 0x92), f"PUBCOMP reason 0x{pubcomp.reason_code:02X}")


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
