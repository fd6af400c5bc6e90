"""SUBSCRIBE / SUBACK, UNSUBSCRIBE / UNSUBACK, topic filters and wildcards, overlapping subscriptions."""

from __future__ import annotations

import pytest

from conformance import check, not_applicable, statement
from conformance.client import ConformanceFailure, ConnectionClosed
from refbroker.protocol import MQTT_5, Suback, Subscribe, Subscription, Unsuback, Unsubscribe
from refbroker.protocol.reason_codes import VALID_REASON_CODES

from .helpers import QUIET, expect_close_for_bad_packet, receive_publishes


@pytest.mark.spec("MQTT-3.8.4-1", "MQTT-3.8.4-2", "MQTT-2.3.1-7", "MQTT-3.8.4-4", "MQTT-3.8.4-5", "MQTT-3.9.3-1",
                  "MQTT-3.9.3-2", version="3.1.1")
@pytest.mark.spec("MQTT-3.8.4-1", "MQTT-3.8.4-2", "MQTT-2.2.1-6", "MQTT-3.8.4-5", "MQTT-3.8.4-6", "MQTT-3.8.4-7",
                  "MQTT-3.9.3-1", "MQTT-3.9.3-2", version="5.0")
def test_suback_grants_requested_qos_in_order(client_factory, version, topic, broker):
    """One SUBACK for a multi-filter SUBSCRIBE: same packet id, one code per filter, in order."""
    client = client_factory()
    filters = [(f"{topic}/q2", 2), (f"{topic}/q0", 0), (f"{topic}/q1", 1), (f"{topic}/+/q2", 2)]
    client.send(Subscribe(0x4321, [Subscription(f, q) for f, q in filters]))
    suback = client.expect(Suback)  # [MQTT-3.8.4-1] one SUBACK
    check("MQTT-3.8.4-2", suback.packet_id == 0x4321, f"SUBACK for SUBSCRIBE 0x4321 carries {suback.packet_id}")
    check("MQTT-2.3.1-7" if version != MQTT_5 else "MQTT-2.2.1-6", suback.packet_id == 0x4321,
          f"SUBACK for SUBSCRIBE 0x4321 carries {suback.packet_id}")
    check("MQTT-3.8.4-5" if version != MQTT_5 else "MQTT-3.8.4-6", len(suback.reason_codes) == len(filters),
          f"{len(suback.reason_codes)} codes for {len(filters)} filters: {suback}")
    check("MQTT-3.9.3-2", all(code in ((0, 1, 2, 0x80) if version != MQTT_5 else VALID_REASON_CODES["SUBACK"])
                              for code in suback.reason_codes), f"SUBACK codes outside the table: {suback}")
    max_qos = 2
    if version == MQTT_5 and client.connack.properties.maximum_qos is not None:
        max_qos = client.connack.properties.maximum_qos
    for (topic_filter, qos), code in zip(filters, suback.reason_codes):
        # A server may grant a lower QoS than requested, but the codes are in the request order; only a
        # v5 Maximum QoS forces the granted value, below it the server may still grant less.
        check("MQTT-3.9.3-1", code <= qos or code >= 0x80,
              f"{topic_filter}: granted 0x{code:02X} for requested QoS {qos} (codes out of order?): {suback}")
        check("MQTT-3.8.4-5" if version != MQTT_5 else "MQTT-3.8.4-7", code <= min(qos, max_qos) or code >= 0x80,
              f"{topic_filter}: granted 0x{code:02X} above the broker's Maximum QoS {max_qos}")


@pytest.mark.spec("MQTT-3.8.4-6", version="3.1.1")
@pytest.mark.spec("MQTT-3.8.4-8", version="5.0")
@pytest.mark.parametrize("sub_qos,pub_qos", [(0, 2), (1, 2), (0, 1), (2, 1), (1, 0)])
def test_delivered_qos_is_minimum(client_factory, version, topic, sub_qos, pub_qos):
    """A message is delivered at the lower of its QoS and the subscription's granted QoS."""
    sub = client_factory("subscriber")
    granted = sub.subscribe((f"{topic}/m", sub_qos), lower_grant_ok=True).reason_codes[0]
    publisher = client_factory("publisher")
    publisher.publish(f"{topic}/m", b"qos", qos=pub_qos)
    message = sub.expect_publish()
    assert message.qos == min(granted, pub_qos), f"delivered at QoS {message.qos}, expected {min(granted, pub_qos)}"


@pytest.mark.spec("MQTT-3.8.4-3")
def test_resubscribe_replaces_subscription(client_factory, version, topic):
    """Subscribing again to an identical filter replaces the old subscription (new QoS, one copy)."""
    sub = client_factory("subscriber")
    sub.subscribe((f"{topic}/s", 0))
    sub.subscribe((f"{topic}/s", 2))
    publisher = client_factory("publisher")
    publisher.publish(f"{topic}/s", b"one copy", qos=2)
    received = receive_publishes(sub, 1)
    assert [(p.payload, p.qos) for p in received] == [(b"one copy", 2)], received


WILDCARD_CASES = [
    # (filter, topic name, matches?)
    ("+/b", "a/b", True),
    ("a/+", "a/b", True),
    ("a/+", "a/b/c", False),
    ("a/+", "a", False),
    ("a/+", "a/", True),  # an empty level is a level
    ("a/#", "a", True),  # '#' matches the parent level too
    ("a/#", "a/b/c", True),
    ("#", "a/b", True),
    ("+/+", "/b", True),  # a leading empty level
    ("+", "/b", False),
    ("a/+/c", "a/b/c", True),
    ("a/+/c", "a/b/d", False),
    ("A/b", "a/b", False),  # case-sensitive
    ("a/b ", "a/b", False),  # spaces are significant
]


@pytest.mark.spec("MQTT-3.3.2-3", "MQTT-4.7.3-4", version="3.1.1")
@pytest.mark.spec("MQTT-3.3.2-3", "MQTT-4.7.3-4", version="5.0")
def test_wildcard_matching(client_factory, version, topic, broker):
    """'+' matches exactly one level, '#' the parent level and everything below; matching is exact."""
    client = client_factory()
    broker.require("wildcard_subscriptions", client.connack if version == MQTT_5 else None)
    client.subscribe(*[(f"{topic}/{index}/{topic_filter}", 0) for index, (topic_filter, _, _) in
                       enumerate(WILDCARD_CASES)])
    publisher = client_factory("publisher")
    for index, (_, name, _) in enumerate(WILDCARD_CASES):
        publisher.publish(f"{topic}/{index}/{name}", b"%d" % index, qos=1)
    expected = {f"{topic}/{index}/{name}" for index, (_, name, matches) in enumerate(WILDCARD_CASES) if matches}
    received = receive_publishes(client, len(expected))
    got = [p.topic for p in received]
    for index, (topic_filter, name, matches) in enumerate(WILDCARD_CASES):
        full = f"{topic}/{index}/{name}"
        # case and spaces are compared as they are, without normalising [MQTT-4.7.3-4]; the rest is 4.7.1
        rule = "MQTT-4.7.3-4" if topic_filter in ("A/b", "a/b ") else "MQTT-3.3.2-3"
        if matches:
            check(rule, got.count(full) == 1, f"filter {topic_filter!r} must match {name!r} (once); received {got}")
        else:
            check(rule, full not in got, f"filter {topic_filter!r} must not match {name!r}")
    check("MQTT-3.3.2-3", len(got) == len(expected), f"deliveries for topics no filter matches: {got}")


@pytest.mark.spec("MQTT-4.7.2-1")
def test_wildcards_do_not_match_dollar_topics(client_factory, version, topic, broker):
    """Filters starting with '#' or '+' do not match topic names starting with '$'."""
    dollar = "$" + topic.replace("/", "_")
    wild = client_factory("wild")
    broker.require("wildcard_subscriptions", wild.connack if version == MQTT_5 else None)
    broker.require("dollar_topics")
    wild.subscribe(("#", 0), ("+/x", 0), ("+", 0))
    explicit = client_factory("explicit")
    explicit.subscribe((f"{dollar}/#", 0))
    publisher = client_factory("publisher")
    # A server may refuse a client's PUBLISH to a '$' topic ("Applications cannot use a topic with a leading
    # $ character for their own purposes", 4.7.2): then there is nothing to check here.
    try:
        ack = publisher.publish(f"{dollar}/x", b"dollar", qos=1)
        delivered = explicit.collect_publishes(3.0, until_count=1)
    except ConnectionClosed:
        not_applicable("the broker closed the connection of a client PUBLISH to a '$' topic (the spec allows it)")
    if getattr(ack, "reason_code", 0) >= 0x80 or not delivered:
        not_applicable(f"the broker does not route a client's PUBLISH to a '$' topic (the spec allows it): {ack}")
    assert delivered[0].topic == f"{dollar}/x"
    for packet in wild.collect_publishes(QUIET):  # others' traffic may arrive on '#'; only '$' topics matter
        assert not packet.topic.startswith("$"), f"'#'/'+' matched the $-topic {packet.topic!r}"


@pytest.mark.spec("MQTT-3.3.5-1", version="3.1.1")
@pytest.mark.spec("MQTT-3.3.4-2", version="5.0")
def test_overlapping_subscriptions_respect_maximum_qos(client_factory, version, topic):
    """Overlapping subscriptions: at least one copy arrives at the highest granted QoS (more copies are
    allowed, one per subscription at its own QoS)."""
    sub = client_factory("subscriber")
    sub.subscribe((f"{topic}/o/#", 0), (f"{topic}/o/+", 2))
    publisher = client_factory("publisher")
    publisher.publish(f"{topic}/o/x", b"overlap", qos=2)
    received = receive_publishes(sub, 1)
    copies = [(p.payload, p.qos) for p in received]
    # one copy at QoS 2, or one per subscription, each at its own QoS
    if copies not in ([(b"overlap", 2)], [(b"overlap", 0), (b"overlap", 2)], [(b"overlap", 2), (b"overlap", 0)]):
        raise ConformanceFailure(f"expected one copy at the highest granted QoS 2 (or one per subscription at its "
                                 f"own QoS), got {copies}")


@pytest.mark.spec("MQTT-4.7.1-2", "MQTT-4.7.1-3", version="3.1.1")
@pytest.mark.spec("MQTT-4.7.1-1", "MQTT-4.7.1-2", version="5.0")
@pytest.mark.parametrize("bad_filter", ["a/#/b", "a/b#", "a+/b", "a/+b"])
def test_invalid_topic_filter_refused(client_factory, version, topic, bad_filter):
    """An invalid filter is refused: SUBACK failure (0x80; 5.0: 0x8F or another failure) or the
    connection is closed (the specs allow both: 3.1.1 4.8, 5.0 4.13)."""
    client = client_factory()
    client.send(Subscribe(3, [Subscription(f"{topic}/{bad_filter}", 0)]))
    packet = client.answer_or_close(3.0)
    if packet is None:
        return
    if isinstance(packet, Suback):
        # '#' must be the last character and alone in its level; '+' alone in its level
        statement = ("MQTT-4.7.1-2" if "#" in bad_filter else "MQTT-4.7.1-3") if version == 4 else \
            ("MQTT-4.7.1-1" if "#" in bad_filter else "MQTT-4.7.1-2")
        check(statement, packet.reason_codes[0] >= 0x80, f"invalid filter {bad_filter!r} was granted: {packet}")
        return
    if version == MQTT_5 and packet.packet_type.name == "DISCONNECT":
        # the close is what the spec requires (4.13); the DISCONNECT's code is a SHOULD: any error code of
        # the DISCONNECT table [MQTT-3.14.2-1] is allowed
        if packet.reason_code < 0x80 or packet.reason_code not in VALID_REASON_CODES["DISCONNECT"]:
            raise ConformanceFailure(f"DISCONNECT reason for an invalid filter is not an error code: {packet}")
        client.expect_disconnect()
        return
    raise ConformanceFailure(f"unexpected answer to an invalid filter: {packet}")


@pytest.mark.spec("MQTT-3.10.4-1", "MQTT-3.10.4-2", "MQTT-3.10.4-4", "MQTT-2.3.1-7", version="3.1.1")
@pytest.mark.spec("MQTT-3.10.4-1", "MQTT-3.10.4-2", "MQTT-3.10.4-4", "MQTT-3.10.4-5", "MQTT-2.2.1-6",
                  "MQTT-3.11.3-2", version="5.0")
def test_unsubscribe_stops_delivery(client_factory, version, topic):
    """UNSUBSCRIBE deletes the subscription: UNSUBACK with the same id, then no more messages."""
    sub = client_factory("subscriber")
    sub.subscribe((f"{topic}/u", 1))
    publisher = client_factory("publisher")
    publisher.publish(f"{topic}/u", b"before", qos=1)
    before = sub.expect_publish()
    if before.payload != b"before":
        raise ConformanceFailure(f"the subscription got {before}")
    sub.send(Unsubscribe(0x0A0B, [f"{topic}/u"]))
    with statement("MQTT-3.10.4-4"):
        unsuback = sub.expect(Unsuback)
    check("MQTT-3.10.4-4" if version != MQTT_5 else "MQTT-3.10.4-5", unsuback.packet_id == 0x0A0B,
          f"UNSUBACK for UNSUBSCRIBE 0x0A0B carries {unsuback.packet_id}")
    check("MQTT-2.3.1-7" if version != MQTT_5 else "MQTT-2.2.1-6", unsuback.packet_id == 0x0A0B,
          f"UNSUBACK for UNSUBSCRIBE 0x0A0B carries {unsuback.packet_id}")
    if version == MQTT_5:
        check("MQTT-3.11.3-2", len(unsuback.reason_codes) == 1 and unsuback.reason_codes[0] in
              VALID_REASON_CODES["UNSUBACK"], f"UNSUBACK codes: {unsuback}")
        check("MQTT-3.10.4-1", unsuback.reason_codes == [0x00], f"unsubscribing an existing subscription: {unsuback}")
    publisher.publish(f"{topic}/u", b"after", qos=1)
    with statement("MQTT-3.10.4-2"):
        sub.expect_nothing(QUIET)


@pytest.mark.spec("MQTT-3.10.4-5", version="3.1.1")
@pytest.mark.spec("MQTT-3.10.4-5", "MQTT-3.11.3-2", version="5.0")
def test_unsuback_even_without_subscription(client_factory, version, topic):
    """UNSUBACK comes even when no subscription matched (5.0: reason 0x11 No subscription existed)."""
    client = client_factory()
    unsuback = client.unsubscribe(f"{topic}/never")
    if version == MQTT_5:
        # the table's 0x11 (No subscription existed) describes this case; 0x00 is a code of the table too,
        # and no sentence requires 0x11, so both are accepted
        check("MQTT-3.11.3-2", len(unsuback.reason_codes) == 1 and unsuback.reason_codes[0] in (0x00, 0x11),
              f"expected one code, 0x11 (No subscription existed) or 0x00, got {unsuback}")


@pytest.mark.spec("MQTT-3.10.4-6", "MQTT-3.10.4-1", version="3.1.1")
@pytest.mark.spec("MQTT-3.10.4-6", "MQTT-3.11.3-1", "MQTT-3.11.3-2", "MQTT-3.10.4-1", version="5.0")
def test_multi_filter_unsubscribe(client_factory, version, topic):
    """One UNSUBACK for several filters (5.0: codes in order); filters compare character by character,
    so unsubscribing 'x/+' does not remove 'x/a'."""
    sub = client_factory("subscriber")
    sub.subscribe((f"{topic}/a", 0), (f"{topic}/b", 0), (f"{topic}/c", 0))
    unsuback = sub.unsubscribe(f"{topic}/a", f"{topic}/+", f"{topic}/c")  # one UNSUBACK [MQTT-3.10.4-6]
    if version == MQTT_5:
        check("MQTT-3.11.3-2", len(unsuback.reason_codes) == 3 and all(
            code in VALID_REASON_CODES["UNSUBACK"] for code in unsuback.reason_codes), f"UNSUBACK codes: {unsuback}")
        # in order: a and c existed (0x00), 'x/+' did not (0x11, or 0x00 which no sentence rules out)
        check("MQTT-3.11.3-1", unsuback.reason_codes[0] == 0x00 and unsuback.reason_codes[2] == 0x00
              and unsuback.reason_codes[1] in (0x00, 0x11), f"codes out of order: {unsuback}")
    publisher = client_factory("publisher")
    for leaf in "abc":
        publisher.publish(f"{topic}/{leaf}", leaf.encode())
    publisher.ping()
    received = receive_publishes(sub, 1)
    payloads = [p.payload for p in received]
    check("MQTT-3.10.4-1", b"b" in payloads, f"unsubscribing 'x/+' removed the subscription 'x/b': {payloads}")
    check("MQTT-3.10.4-6", payloads == [b"b"], f"'a' and 'c' were unsubscribed in one UNSUBSCRIBE: {payloads}")


@pytest.mark.spec("MQTT-3-8.3-4", version="3.1.1")
@pytest.mark.spec("MQTT-3.8.3-5", "MQTT-4.13.1-1", version="5.0")
def test_subscription_options_reserved_bits_close(client_factory, version, topic):
    """Reserved bits set in the subscription options byte: the packet is malformed, the server closes."""
    client = client_factory()
    good = Subscribe(2, [Subscription(f"{topic}/r", 0)]).encode(version)
    bad = good[:-1] + bytes((good[-1] | (0x04 if version != MQTT_5 else 0x40),))
    client.send_raw(bad, note="SUBSCRIBE with a reserved subscription option bit set")
    expect_close_for_bad_packet(client)


@pytest.mark.spec("MQTT-3-8.3-4", version="3.1.1")
@pytest.mark.spec("PE-3.8.3.1-a", "MQTT-4.13.1-1", version="5.0")
def test_subscribe_qos3_closes(client_factory, version, topic):
    """Requested QoS 3 is malformed (3.1.1) / a Protocol Error (5.0): the server closes."""
    client = client_factory()
    client.send_raw(Subscribe(2, [Subscription(f"{topic}/q3", 3)]).encode(version), note="SUBSCRIBE with QoS 3")
    expect_close_for_bad_packet(client)


@pytest.mark.spec("MQTT-3.8.3-3", "MQTT-4.8.0-1", version="3.1.1")
@pytest.mark.spec("PE-3.8.3-a", "MQTT-4.13.1-1", version="5.0")
def test_subscribe_without_filters_closes(client_factory, version):
    """A SUBSCRIBE with no topic filter is a protocol violation: the server closes."""
    client = client_factory()
    body = b"\x00\x05" + (b"\x00" if version == MQTT_5 else b"")
    client.send_raw(bytes((0x82, len(body))) + body, note="SUBSCRIBE without payload")
    expect_close_for_bad_packet(client)


@pytest.mark.spec("MQTT-3.10.3-2", "MQTT-4.8.0-1", version="3.1.1")
@pytest.mark.spec("PE-3.10.3-a", "MQTT-4.13.1-1", version="5.0")
def test_unsubscribe_without_filters_closes(client_factory, version):
    """An UNSUBSCRIBE with no topic filter is a protocol violation: the server closes."""
    client = client_factory()
    body = b"\x00\x05" + (b"\x00" if version == MQTT_5 else b"")
    client.send_raw(bytes((0xA2, len(body))) + body, note="UNSUBSCRIBE without payload")
    expect_close_for_bad_packet(client)
