"""MQTT 5.0 features: topic aliases, subscription identifiers and options, message properties,
message expiry, flow control, maximum packet size, shared subscriptions, v5-only protocol errors."""

from __future__ import annotations

import time

import pytest

from conformance import check, known_deviation, not_applicable, statement
from conformance.client import ConformanceFailure
from refbroker.protocol import (
    Disconnect,
    Properties,
    Puback,
    Pubcomp,
    Publish,
    Pubrec,
    Pubrel,
    Suback,
    Subscribe,
    Subscription,
    Will,
)

from .helpers import (
    BAD_PACKET_REASONS,
    QUIET,
    check_server_disconnect,
    expect_close_for_bad_packet,
    gather_publishes,
    property_block,
    property_bytes,
    receive_publishes,
    session_properties,
    twice,
    v5_publish,
)

V5 = "5.0"
TOPIC_ALIAS_INVALID = 0x94


def _sub_with_id(client, topic_filter: str, qos: int, identifier: int | None, **options) -> Suback:
    props = Properties(subscription_identifiers=[identifier] if identifier else [])
    suback = client.subscribe(Subscription(topic_filter, qos, **options), properties=props)
    if suback.reason_codes[0] >= 0x80:  # the broker announced the feature: the test's flow needs it
        raise ConformanceFailure(f"subscription to {topic_filter!r} refused: {suback}")
    return suback


# ------------------------------------------------------------------------------------ topic aliases


@pytest.mark.spec("MQTT-3.3.2-12", "MQTT-3.1.2-27", "MQTT-3.3.2-11", version=V5)
def test_topic_alias_from_client_accepted(client_factory, version, topic, broker):
    """Every alias 1..Topic Alias Maximum from CONNACK is accepted; the subscriber (which set no Topic
    Alias Maximum) gets full topic names and never a Topic Alias."""
    sub = client_factory("subscriber")
    sub.subscribe((f"{topic}/#", 0))
    publisher = client_factory("publisher")
    broker.require("topic_alias", publisher.connack)
    maximum = publisher.connack.properties.topic_alias_maximum
    aliases = sorted({1, maximum})
    for alias in aliases:
        publisher.publish(f"{topic}/a{alias}", b"set", properties=Properties(topic_alias=alias))
        publisher.publish("", b"use", properties=Properties(topic_alias=alias))
    publisher.publish(f"{topic}/remapped", b"remap", properties=Properties(topic_alias=aliases[0]))
    publisher.publish("", b"use remapped", properties=Properties(topic_alias=aliases[0]))
    publisher.ping()
    expected = [(f"{topic}/a{alias}", payload) for alias in aliases for payload in (b"set", b"use")]
    expected += [(f"{topic}/remapped", b"remap"), (f"{topic}/remapped", b"use remapped")]
    received = sub.collect_publishes(3.0, until_count=len(expected))
    check("MQTT-3.3.2-12", [(p.topic, p.payload) for p in received] == expected,
          f"messages published with Topic Aliases 1..{maximum} did not arrive as published: {received}")
    for message in received:
        check("MQTT-3.1.2-27", message.properties.topic_alias is None,
              f"the server sent a Topic Alias to a client that allows none: {message}")


@pytest.mark.spec("PE-3.3.4-b", "MQTT-3.3.2-8", "MQTT-4.13.1-1", version=V5)
@pytest.mark.parametrize("which", ["zero", "above maximum"])
def test_invalid_topic_alias_closes(client_factory, version, topic, broker, which):
    """Topic Alias 0, or above the server's Topic Alias Maximum: close (DISCONNECT 0x94 if any)."""
    client = client_factory()
    maximum = client.connack.properties.topic_alias_maximum or 0
    alias = 0 if which == "zero" else maximum + 1
    client.send_raw(Publish(f"{topic}/x", b"x", properties=Properties(topic_alias=alias)).encode(5),
                    note=f"PUBLISH with Topic Alias {alias} (maximum {maximum})")
    expect_close_for_bad_packet(client, reasons=BAD_PACKET_REASONS + (TOPIC_ALIAS_INVALID,))


@pytest.mark.spec("MQTT-3.3.2-7", "PE-3.3.4-c", "MQTT-4.13.1-1", version=V5)
def test_topic_alias_not_carried_to_new_connection(client_factory, version, topic, broker):
    """A mapping set on one connection does not exist on the next one: an empty topic with that alias
    is a Protocol Error there."""
    first = client_factory("first")
    broker.require("topic_alias", first.connack)
    first.publish(f"{topic}/a", b"map", properties=Properties(topic_alias=1))
    first.disconnect()
    second = client_factory("second", client_id=first.client_id)
    second.send(Publish("", b"no mapping", properties=Properties(topic_alias=1)))
    expect_close_for_bad_packet(second, reasons=BAD_PACKET_REASONS + (TOPIC_ALIAS_INVALID,))


# --------------------------------------------------------------------------- subscription identifiers


@pytest.mark.spec("MQTT-3.3.4-3", "MQTT-3.3.4-4", "MQTT-3.3.4-5", version=V5)
def test_subscription_identifiers_on_overlapping_subscriptions(client_factory, version, topic, broker):
    """Two overlapping subscriptions with ids 5 and 9: one copy carries both ids, or each copy carries
    the id of the subscription it matched."""
    sub = client_factory("subscriber")
    broker.require("subscription_identifiers", sub.connack)
    _sub_with_id(sub, f"{topic}/+", 1, 5)
    _sub_with_id(sub, f"{topic}/#", 1, 9)
    publisher = client_factory("publisher")
    publisher.publish(f"{topic}/x", b"overlap", qos=1)
    received = receive_publishes(sub, 2)
    if not received or len(received) > 2:
        raise ConformanceFailure(f"one copy, or one per subscription, expected: {received}")
    if len(received) == 1:
        check("MQTT-3.3.4-4", sorted(received[0].properties.subscription_identifiers) == [5, 9],
              f"a single copy carries the identifiers of both subscriptions: {received[0]}")
    else:
        ids = sorted(tuple(p.properties.subscription_identifiers) for p in received)
        check("MQTT-3.3.4-5", ids == [(5,), (9,)], f"each copy must carry its own subscription's identifier: {ids}")


@pytest.mark.spec("MQTT-3.3.4-3", version=V5)
def test_subscription_identifier_only_where_given(client_factory, version, topic, broker):
    """A message matching a subscription made without an identifier carries none; with an id, it is
    also on retained messages sent for the subscription."""
    sub = client_factory("subscriber")
    broker.require("subscription_identifiers", sub.connack)
    publisher = client_factory("publisher")
    publisher.publish(f"{topic}/ret", b"retained", qos=1, retain=True)
    try:
        _sub_with_id(sub, f"{topic}/plain", 1, None)
        _sub_with_id(sub, f"{topic}/ret", 1, 77)
        retained = sub.expect_publish()
        assert retained.retain and retained.properties.subscription_identifiers == [77], retained
        publisher.publish(f"{topic}/plain", b"no id", qos=1)
        plain = sub.expect_publish()
        assert plain.properties.subscription_identifiers == [], plain
    finally:
        publisher.publish(f"{topic}/ret", b"", retain=True)


@pytest.mark.spec("PE-3.8.2.1.2-a", "MQTT-4.13.1-1", version=V5)
def test_subscription_identifier_zero_closes(client_factory, version, topic):
    client = client_factory()
    client.send(Subscribe(1, [Subscription(f"{topic}/x", 0)], Properties(subscription_identifiers=[0])))
    expect_close_for_bad_packet(client)


# ------------------------------------------------------------------------------ subscription options


@pytest.mark.spec("MQTT-3.8.3-3", version=V5)
def test_no_local(client_factory, version, topic):
    """No Local: the client's own publications are not sent back to it; others' are."""
    client = client_factory("self")
    client.subscribe(Subscription(f"{topic}/n", 1, no_local=True))
    client.publish(f"{topic}/n", b"mine", qos=1)
    client.expect_nothing(QUIET)
    other = client_factory("other")
    other.publish(f"{topic}/n", b"theirs", qos=1)
    assert client.expect_publish().payload == b"theirs"


@pytest.mark.spec("MQTT-3.3.1-13", "MQTT-3.3.1-12", version=V5)
def test_retain_as_published(client_factory, version, topic):
    """Retain As Published 1 keeps the publisher's RETAIN flag on live messages; 0 clears it."""
    keep = client_factory("rap1")
    keep.subscribe(Subscription(f"{topic}/r", 1, retain_as_published=True))
    clear = client_factory("rap0")
    clear.subscribe(Subscription(f"{topic}/r", 1, retain_as_published=False))
    publisher = client_factory("publisher")
    publisher.publish(f"{topic}/r", b"retained", qos=1, retain=True)
    publisher.publish(f"{topic}/r", b"plain", qos=1, retain=False)
    try:
        kept = [(p.payload, p.retain) for p in receive_publishes(keep, 2)]
        check("MQTT-3.3.1-13", kept == [(b"retained", True), (b"plain", False)],
              f"Retain As Published 1 keeps the publisher's RETAIN flag: {kept}")
        cleared = [(p.payload, p.retain) for p in receive_publishes(clear, 2)]
        check("MQTT-3.3.1-12", cleared == [(b"retained", False), (b"plain", False)],
              f"Retain As Published 0 sends RETAIN 0: {cleared}")
    finally:
        publisher.publish(f"{topic}/r", b"", retain=True)


@pytest.mark.spec("MQTT-3.3.1-9", "MQTT-3.3.1-10", "MQTT-3.3.1-11", version=V5)
def test_retain_handling(client_factory, version, topic, broker):
    """Retain Handling 0 sends retained messages on every subscribe, 1 only when the subscription is
    new, 2 never."""
    publisher = client_factory("publisher")
    broker.require("retain", publisher.connack)
    publisher.publish(f"{topic}/rh", b"retained", qos=1, retain=True)
    try:
        counts = {}
        for handling in (0, 1, 2):
            client = client_factory(f"rh{handling}")
            got = []
            for _attempt in range(2):  # subscribe, then subscribe again to the identical filter
                client.subscribe(Subscription(f"{topic}/rh", 1, retain_handling=handling))
                got.append(len(client.collect_publishes(QUIET)))
            counts[handling] = got
        check("MQTT-3.3.1-9", counts[0] == [1, 1],
              f"Retain Handling 0 must send retained messages on each subscribe: {counts[0]}")
        check("MQTT-3.3.1-10", counts[1] == [1, 0], f"Retain Handling 1 sends them only for a new subscription: "
              f"{counts[1]}")
        check("MQTT-3.3.1-11", counts[2] == [0, 0], f"Retain Handling 2 must never send them: {counts[2]}")
    finally:
        publisher.publish(f"{topic}/rh", b"", retain=True)


@pytest.mark.spec("PE-3.8.3.1-b", "MQTT-4.13.1-1", version=V5)
def test_retain_handling_3_closes(client_factory, version, topic):
    client = client_factory()
    client.send_raw(Subscribe(1, [Subscription(f"{topic}/x", 0, retain_handling=3)]).encode(5),
                    note="SUBSCRIBE with Retain Handling 3")
    expect_close_for_bad_packet(client)


# ------------------------------------------------------------------------------- message properties


@pytest.mark.spec("MQTT-3.3.2-17", "MQTT-3.3.2-18", "MQTT-3.3.2-4", "MQTT-3.3.2-20", "MQTT-3.3.2-15",
                  "MQTT-3.3.2-16", version=V5)
def test_message_properties_passed_through(client_factory, version, topic):
    """User Properties (order kept, repeated keys kept), Payload Format Indicator, Content Type,
    Response Topic and Correlation Data reach the subscriber unchanged."""
    sub = client_factory("subscriber")
    sub.subscribe((f"{topic}/p", 1))
    user = [("b", "2"), ("a", "1"), ("b", "1"), ("\u00e9t\u00e9", "\u2603"), ("empty", "")]
    props = Properties(payload_format_indicator=1, content_type="text/plain; charset=utf-8",
                       response_topic=f"{topic}/reply", correlation_data=b"\x00\xffid", user_properties=user)
    publisher = client_factory("publisher")
    publisher.publish(f"{topic}/p", "h\u00e9llo".encode(), qos=1, properties=props)
    got = sub.expect_publish().properties
    check("MQTT-3.3.2-17", sorted(got.user_properties) == sorted(user), f"User Properties changed: {got.user_properties}")
    check("MQTT-3.3.2-18", got.user_properties == user, f"User Properties reordered: {got.user_properties}")
    check("MQTT-3.3.2-4", got.payload_format_indicator == 1, f"Payload Format Indicator {got.payload_format_indicator}")
    check("MQTT-3.3.2-20", got.content_type == "text/plain; charset=utf-8", f"Content Type {got.content_type!r}")
    check("MQTT-3.3.2-15", got.response_topic == f"{topic}/reply", f"Response Topic {got.response_topic!r}")
    check("MQTT-3.3.2-16", got.correlation_data == b"\x00\xffid", f"Correlation Data {got.correlation_data!r}")


@pytest.mark.spec("MQTT-3.3.2-4", version=V5)
def test_payload_format_zero_passed_through(client_factory, version, topic):
    """Payload Format Indicator 0 (unspecified bytes) is forwarded as 0 or left out (absent means 0)."""
    sub = client_factory("subscriber")
    sub.subscribe((f"{topic}/p", 0))
    publisher = client_factory("publisher")
    publisher.publish(f"{topic}/p", b"\xff\xfe", properties=Properties(payload_format_indicator=0))
    got = sub.expect_publish()
    assert got.properties.payload_format_indicator in (None, 0)
    assert got.payload == b"\xff\xfe"


@pytest.mark.spec("MQTT-3.3.2-5", "MQTT-3.3.2-6", "MQTT-4.3.3-7", "MQTT-4.3.3-13", version=V5)
def test_message_expiry(client_factory, version, topic, broker):
    """Messages waiting for an offline session: an expired one is not delivered, a live one arrives
    with its Message Expiry Interval reduced by the waiting time. A retained message expires too.

    The same wait also covers QoS 2 flows that outlive a 1 s expiry: a delivery the server has already
    sent is not expired (our late PUBREC still gets its PUBREL) [MQTT-4.3.3-7], and a message the server
    received (PUBREC sent) still completes when our PUBREL comes after the expiry [MQTT-4.3.3-13]."""
    props = session_properties(5)
    sub = client_factory("subscriber", clean_start=False, properties=props)
    sub.subscribe((f"{topic}/e", 1))
    sub.disconnect()
    # "has not managed to start onward delivery" [MQTT-3.3.2-5] must be certain: a broker that has not yet
    # read the DISCONNECT may still send the message on the old connection, and then owes it to the
    # resumed session (with DUP 1). Half a second lets it see the subscriber go first.
    time.sleep(0.5)
    in_flight = client_factory("in-flight")
    in_flight.subscribe((f"{topic}/q2", 2))
    publisher = client_factory("publisher")
    broker.require("retain", publisher.connack)
    publisher.publish(f"{topic}/e", b"short", qos=1, properties=Properties(message_expiry_interval=1))
    publisher.publish(f"{topic}/e", b"long", qos=1, properties=Properties(message_expiry_interval=60))
    publisher.publish(f"{topic}/ret", b"short retained", qos=1, retain=True,
                      properties=Properties(message_expiry_interval=1))
    publisher.publish(f"{topic}/q2", b"sent before expiry", qos=2, properties=Properties(message_expiry_interval=1))
    sent = in_flight.expect(Publish)  # not acknowledged until after the expiry
    slow = client_factory("slow-publisher")
    slow.send(Publish(f"{topic}/slow", b"released after expiry", qos=2, packet_id=11,
                      properties=Properties(message_expiry_interval=1)))
    pubrec = slow.expect(Pubrec)
    if pubrec.packet_id != 11:
        raise ConformanceFailure(f"PUBREC for packet id 11 carries {pubrec.packet_id} [MQTT-2.2.1-5]")
    try:
        time.sleep(2.2)  # the only way to let 1 s expiries pass; whole-second clocks need the margin
        again = client_factory("subscriber-again", client_id=sub.client_id, clean_start=False, properties=props)
        received = receive_publishes(again, 1)
        payloads = [p.payload for p in received]
        check("MQTT-3.3.2-5", b"short" not in payloads, f"the expired message was delivered: {received}")
        if payloads != [b"long"]:  # the unexpired message of the stored session must come
            raise ConformanceFailure(f"expected only the unexpired message: {received}")
        remaining = received[0].properties.message_expiry_interval
        check("MQTT-3.3.2-6", remaining is not None, "a forwarded message must keep its Message Expiry Interval")
        check("MQTT-3.3.2-6", remaining <= 59, f"Message Expiry Interval not reduced by the time waited: {remaining}")
        late = client_factory("late")
        late.subscribe((f"{topic}/ret", 1))
        with statement("MQTT-3.3.2-5"):  # the expired retained message is not sent
            late.expect_nothing(QUIET)
        in_flight.send(Pubrec(sent.packet_id))
        with statement("MQTT-4.3.3-7"):
            pubrel = in_flight.expect(Pubrel)
            check("MQTT-4.3.3-7", (pubrel.packet_id, pubrel.reason_code) == (sent.packet_id, 0),
                  f"a QoS 2 delivery already sent must not expire: PUBREC after the expiry got {pubrel}")
        in_flight.send(Pubcomp(sent.packet_id))
        slow.send(Pubrel(11))
        with statement("MQTT-4.3.3-13"):
            pubcomp = slow.expect(Pubcomp)
            check("MQTT-4.3.3-13", (pubcomp.packet_id, pubcomp.reason_code) == (11, 0),
                  f"the QoS 2 exchange must complete although the message expired: {pubcomp}")
    finally:
        publisher.publish(f"{topic}/ret", b"", retain=True)


# ---------------------------------------------------------------------------- flow control and size


@pytest.mark.spec("MQTT-3.3.4-9", "MQTT-3.3.4-10", "MQTT-4.9.0-2", "MQTT-4.9.0-3", version=V5)
def test_receive_maximum_respected(client_factory, version, topic):
    """With Receive Maximum 2, at most 2 QoS 1 deliveries are unacknowledged at a time; PINGRESP
    still flows while deliveries wait; PUBACKs let the rest through. (A server may keep fewer in flight than
    the client allows: one at a time passes too.)"""
    sub = client_factory("subscriber", properties=Properties(receive_maximum=2))
    sub.subscribe((f"{topic}/rm", 1))
    publisher = client_factory("publisher")
    for n in range(5):
        publisher.publish(f"{topic}/rm", b"%d" % n, qos=1)
    first = sub.collect_publishes(3.0, until_count=2, ack=False)
    if not first:
        raise ConformanceFailure("5 QoS 1 messages for a subscriber with Receive Maximum 2: none arrived")
    extra = sub.collect_publishes(QUIET, ack=False)
    check("MQTT-3.3.4-9", not extra, f"more than Receive Maximum (2) unacknowledged PUBLISHes: {len(first) + len(extra)}")
    with statement("MQTT-3.3.4-10"):
        sub.ping()  # non-PUBLISH packets are not held back by the full window
    window, delivered = list(first), list(first)
    while len(delivered) < 5:
        acked = window.pop(0)
        sub.send(Puback(acked.packet_id))
        more = sub.collect_publishes(3.0 if not window else 1.0, until_count=1, ack=False)
        if not more and not window:  # nothing in flight and nothing comes: the held messages are not delivered
            raise ConformanceFailure(f"after every delivery was acknowledged, {5 - len(delivered)} of the 5 "
                                     "messages did not arrive within 3 s")
        more += sub.collect_publishes(QUIET, ack=False)
        window += more
        delivered += more
        if len(window) > 2:
            known_deviation(103, f"Receive Maximum 2: one PUBACK (id {acked.packet_id}) released "
                                 f"{len(more)} PUBLISHes, leaving {len(window)} unacknowledged "
                                 f"(ids {[p.packet_id for p in window]})")
    if [p.payload for p in delivered] != [b"0", b"1", b"2", b"3", b"4"]:
        raise ConformanceFailure(f"the 5 messages did not all arrive in order: {delivered}")
    for p in window:
        sub.send(Puback(p.packet_id))
    sub.expect_nothing(QUIET)


@pytest.mark.spec("MQTT-3.1.2-24", "MQTT-3.1.2-25", version=V5)
def test_maximum_packet_size_respected(client_factory, version, topic):
    """A message larger than the client's Maximum Packet Size is not sent to it (and later ones are)."""
    sub = client_factory("subscriber", properties=Properties(maximum_packet_size=128))
    sub.subscribe((f"{topic}/big", 1))
    publisher = client_factory("publisher")
    publisher.publish(f"{topic}/big", b"x" * 300, qos=1)
    publisher.publish(f"{topic}/big", b"small", qos=1)
    received = receive_publishes(sub, 1)
    for entry in sub.trace:
        if entry["dir"] == "in" and "hex" in entry:
            size = len(entry["hex"].split())
            check("MQTT-3.1.2-24", size <= 128,
                  f"the server sent a {size}-byte packet to a client with Maximum Packet Size 128")
    check("MQTT-3.1.2-25", [p.payload for p in received] == [b"small"],
          f"the oversized message must be dropped unsent, and the next one delivered: {received}")


@pytest.mark.spec("MQTT-3.1.2-29", version=V5)
def test_request_problem_information_zero(client_factory, version, topic):
    """Request Problem Information 0: no Reason String or User Property on SUBACK, UNSUBACK, PUBACK."""
    client = client_factory(properties=Properties(request_problem_information=0))
    answers = [
        client.subscribe((f"{topic}/a", 1)),
        client.unsubscribe(f"{topic}/never"),
        client.publish(f"{topic}/nobody", b"x", qos=1),
    ]
    for packet in answers:
        props = packet.properties
        assert props.reason_string is None and not props.user_properties, \
            f"{packet.packet_type.name} carries problem information although the client asked for none: {packet}"


@pytest.mark.spec("PE-3.2.2.3.4-b", version=V5)
def test_publish_above_maximum_qos_closes(client_factory, version, topic):
    """After CONNACK announced Maximum QoS 0 or 1, a PUBLISH above it gets DISCONNECT 0x9B."""
    client = client_factory()
    maximum = client.connack.properties.maximum_qos
    if maximum is None:
        not_applicable("the server supports QoS 2 (no Maximum QoS in CONNACK)")
    client.send(Publish(f"{topic}/q", b"x", qos=2, packet_id=1))
    expect_close_for_bad_packet(client, reasons=BAD_PACKET_REASONS + (0x9B,))


# ------------------------------------------------------------------------------ shared subscriptions


@pytest.mark.spec("MQTT-4.8.2-3", version=V5)
def test_shared_subscription_delivers_each_message_once(client_factory, version, topic, broker):
    """Two members of $share/g/...: every message goes to exactly one member, at most at its QoS."""
    a = client_factory("member-a")
    broker.require("shared_subscriptions", a.connack)
    a.subscribe((f"$share/g/{topic}/s", 1))
    b = client_factory("member-b")
    b.subscribe((f"$share/g/{topic}/s", 0))
    publisher = client_factory("publisher")
    payloads = [b"%d" % n for n in range(10)]
    for payload in payloads:
        publisher.publish(f"{topic}/s", payload, qos=1)
    got_a, got_b = gather_publishes([a, b], len(payloads))
    assert sorted(p.payload for p in got_a + got_b) == sorted(payloads), \
        f"each message exactly once across the group: a={len(got_a)} b={len(got_b)}"
    assert all(p.qos <= 1 for p in got_a) and all(p.qos == 0 for p in got_b)


@pytest.mark.spec("MQTT-4.8.2-2", version=V5)
@pytest.mark.parametrize("bad", ["$share/g+/x", "$share/g#/x"])
def test_invalid_shared_subscription_refused(client_factory, version, broker, bad):
    """A ShareName with a wildcard is refused: SUBACK failure code, or the connection is closed.
    (An empty ShareName: test_shared_subscription_without_share_name_refused.)"""
    client = client_factory()
    broker.require("shared_subscriptions", client.connack)
    client.send(Subscribe(1, [Subscription(bad, 0)]))
    packet = client.answer_or_close(3.0)
    if packet is None:
        return
    if isinstance(packet, Suback):
        assert packet.reason_codes[0] >= 0x80, f"{bad!r} was granted: {packet}"
        return
    if isinstance(packet, Disconnect):
        check_server_disconnect(packet)
        assert packet.reason_code in BAD_PACKET_REASONS + (0x8F,), packet
        client.expect_disconnect()
        return
    raise ConformanceFailure(f"no refusal for the invalid shared subscription {bad!r}: {packet}")


@pytest.mark.spec("MQTT-4.8.2-1", version=V5)
@pytest.mark.parametrize("bad", ["$share//x", "$share/"])
def test_shared_subscription_without_share_name_refused(client_factory, version, broker, bad):
    """A filter starting with "$share/" is a Shared Subscription, whose ShareName must be at least one
    character long [MQTT-4.8.2-1]: an empty ShareName is refused (SUBACK 0x80 or above, e.g. 0x8F, or the
    connection is closed)."""
    client = client_factory()
    broker.require("shared_subscriptions", client.connack)
    client.send(Subscribe(1, [Subscription(bad, 0)]))
    packet = client.answer_or_close(3.0)
    if packet is None:
        return
    if isinstance(packet, Suback):
        if packet.reason_codes[0] < 0x80:
            known_deviation(108, f"SUBSCRIBE to {bad!r} granted: {packet}")
        return
    if isinstance(packet, Disconnect):
        check_server_disconnect(packet)
        assert packet.reason_code in BAD_PACKET_REASONS + (0x8F,), packet
        client.expect_disconnect()
        return
    raise ConformanceFailure(f"no refusal for the shared subscription {bad!r} without a ShareName: {packet}")


# ----------------------------------------------------------------------------- v5 malformed packets


@pytest.mark.spec("MP-2.2.2.2-a", "MQTT-4.13.1-1", version=V5)
def test_property_not_allowed_in_packet_closes(client_factory, version, topic):
    """A PUBLISH carrying Session Expiry Interval (a CONNECT/CONNACK/DISCONNECT property) is malformed."""
    client = client_factory()
    props = property_block(property_bytes(session_expiry_interval=5))
    client.send_raw(v5_publish(f"{topic}/x", b"payload", props=props),
                    note="PUBLISH with a Session Expiry Interval property")
    expect_close_for_bad_packet(client)


@pytest.mark.spec("PE-3.3.2.3.9-a", "MQTT-4.13.1-1", version=V5)
def test_duplicate_publish_property_closes(client_factory, version, topic):
    """A PUBLISH carrying Content Type twice is a Protocol Error."""
    client = client_factory()
    client.send_raw(v5_publish(f"{topic}/x", b"payload", props=twice(content_type="a")),
                    note="PUBLISH with Content Type twice")
    expect_close_for_bad_packet(client)


@pytest.mark.spec("MP-1.5.7-a", "MQTT-1.5.7-1", version=V5)
def test_user_property_with_invalid_utf8_closes(client_factory, version, topic):
    """A User Property whose value is not well-formed UTF-8 makes the packet malformed."""
    client = client_factory()
    pair = b"\x26" + b"\x00\x01k" + b"\x00\x02\xc3\x28"  # User Property "k" = c3 28 (ill-formed UTF-8)
    client.send_raw(v5_publish(f"{topic}/x", b"p", props=property_block(pair)),
                    note="PUBLISH with a User Property value c3 28")
    expect_close_for_bad_packet(client)


@pytest.mark.spec("PE-3.14.2.2.2-b", "MQTT-3.1.2-8", version=V5)
def test_disconnect_setting_session_expiry_after_zero_is_not_normal(client_factory, version, topic):
    """CONNECT with Session Expiry 0, then DISCONNECT with Session Expiry 60: a Protocol Error, not a
    normal disconnection, so the Will is published."""
    watcher = client_factory("watcher")
    watcher.subscribe((f"{topic}/will", 1))
    client = client_factory("offender", will=Will(f"{topic}/will", b"not a normal disconnect", qos=1))
    client.send(Disconnect(0, Properties(session_expiry_interval=60)))
    expect_close_for_bad_packet(client)
    with statement("MQTT-3.1.2-8"):  # not a normal disconnection: the Will is published
        will = watcher.expect_publish(timeout=2.0)
        check("MQTT-3.1.2-8", will.payload == b"not a normal disconnect", f"the watcher got {will}")
