"""MQTT 5.0 protocol errors the spec states without a number ("It is a Protocol Error to include the X
more than once", forbidden property values, properties a client must not send) and the property
rules of PUBLISH that bind whoever sends the message on (Response Topic, Content Type).

The project's catalogue names the unnumbered ones PE-<section>-<letter>. The packets are built by hand
(conformance/tests/helpers.py): the codec refuses to encode a property twice. For a CONNECT the server
may answer CONNACK 0x81/0x82 before closing [MQTT-3.1.4-1]; after a successful CONNACK it may send
DISCONNECT 0x81/0x82 before closing [MQTT-4.13.1-1]. The close is what every test requires.
"""

from __future__ import annotations

import pytest

from conformance import check, known_deviation, statement
from conformance.client import ConformanceFailure, InvalidServerPacket, UnexpectedPacket, summarize
from refbroker.protocol import Disconnect, Puback, Publish, Pubrec, Pubrel, Will

from .helpers import (
    BAD_PACKET_REASONS,
    QUIET,
    expect_close_for_bad_packet,
    expect_connect_refused,
    property_block,
    property_bytes,
    twice,
    v5_ack,
    v5_connect,
    v5_disconnect,
    v5_publish,
    v5_subscribe,
)

V5 = "5.0"
REFUSED = (0x80, 0x81, 0x82)  # CONNACK codes a server may send before closing for a broken CONNECT


def _refused_connect(client_factory, props: bytes = b"\x00", note: str = "", *, will_props: bytes | None = None,
                     also=(), deviation: int | None = None):
    client = client_factory(connect=False)
    will = ("w/t", b"w", 0) if will_props is not None else None
    client.send_raw(v5_connect(client.client_id, props, will=will, will_props=will_props or b"\x00",
                               credentials=client.credentials), note=note)
    try:
        expect_connect_refused(client, v5_codes=REFUSED + tuple(also))
    except ConformanceFailure as exc:
        if deviation is not None and "accepted a CONNECT" in str(exc):
            known_deviation(deviation, f"{note}: {exc}")
        raise


# ------------------------------------------------------------------------------ CONNECT properties


@pytest.mark.spec("PE-3.1.2.11.4-a", "MQTT-3.1.4-1", version=V5)
def test_connect_maximum_packet_size_twice(client_factory, version):
    _refused_connect(client_factory, twice(maximum_packet_size=1000), "Maximum Packet Size twice")


@pytest.mark.spec("PE-3.1.2.11.4-a", "MQTT-3.1.4-1", version=V5)
def test_connect_maximum_packet_size_zero(client_factory, version):
    _refused_connect(client_factory, property_block(b"\x27\x00\x00\x00\x00"), "Maximum Packet Size 0")


@pytest.mark.spec("PE-3.1.2.11.5-a", "MQTT-3.1.4-1", version=V5)
def test_connect_topic_alias_maximum_twice(client_factory, version):
    _refused_connect(client_factory, twice(topic_alias_maximum=5), "Topic Alias Maximum twice")


@pytest.mark.spec("PE-3.1.2.11.6-a", "MQTT-3.1.4-1", version=V5)
def test_connect_request_response_information_twice(client_factory, version):
    _refused_connect(client_factory, twice(request_response_information=1), "Request Response Information twice")


@pytest.mark.spec("PE-3.1.2.11.6-a", "MQTT-3.1.4-1", version=V5)
def test_connect_request_response_information_two(client_factory, version):
    _refused_connect(client_factory, property_block(b"\x19\x02"), "Request Response Information 2")


@pytest.mark.spec("PE-3.1.2.11.7-a", "MQTT-3.1.4-1", version=V5)
def test_connect_request_problem_information_twice(client_factory, version):
    _refused_connect(client_factory, twice(request_problem_information=1), "Request Problem Information twice")


@pytest.mark.spec("PE-3.1.2.11.7-a", "MQTT-3.1.4-1", version=V5)
def test_connect_request_problem_information_two(client_factory, version):
    _refused_connect(client_factory, property_block(b"\x17\x02"), "Request Problem Information 2")


@pytest.mark.spec("PE-3.1.2.11.9-a", "MQTT-3.1.4-1", version=V5)
def test_connect_authentication_method_twice(client_factory, version):
    """Two Authentication Methods: refused (0x8C Bad authentication method is a fitting refusal as well)."""
    _refused_connect(client_factory, twice(authentication_method="x-conformance"), "Authentication Method twice",
                     also=(0x8C, 0x87))


@pytest.mark.spec("PE-3.1.2.11.10-a", "MQTT-3.1.4-1", version=V5)
def test_connect_authentication_data_without_method(client_factory, version):
    _refused_connect(client_factory, property_block(property_bytes(authentication_data=b"\x01\x02")),
                     "Authentication Data without Authentication Method", deviation=105)


@pytest.mark.spec("PE-3.1.2.11.10-b", "MQTT-3.1.4-1", version=V5)
def test_connect_authentication_data_twice(client_factory, version):
    """Method once, data twice: refused (0x8C is fitting as well: the method is one no broker knows)."""
    data = property_bytes(authentication_data=b"\x01")
    _refused_connect(client_factory, property_block(property_bytes(authentication_method="x-conformance"), data, data),
                     "Authentication Data twice", also=(0x8C, 0x87))


@pytest.mark.spec("PE-3.1.3.2.2-a", "MQTT-3.1.4-1", version=V5)
def test_connect_will_delay_interval_twice(client_factory, version):
    _refused_connect(client_factory, will_props=twice(will_delay_interval=5), note="Will Delay Interval twice")


@pytest.mark.spec("PE-3.1.3.2.3-a", "MQTT-3.1.4-1", version=V5)
def test_connect_will_payload_format_indicator_twice(client_factory, version):
    _refused_connect(client_factory, will_props=twice(payload_format_indicator=0),
                     note="Will Payload Format Indicator twice")


@pytest.mark.spec("PE-3.1.3.2.4-a", "MQTT-3.1.4-1", version=V5)
def test_connect_will_message_expiry_interval_twice(client_factory, version):
    _refused_connect(client_factory, will_props=twice(message_expiry_interval=60),
                     note="Will Message Expiry Interval twice")


@pytest.mark.spec("PE-3.1.3.2.5-a", "MQTT-3.1.4-1", version=V5)
def test_connect_will_content_type_twice(client_factory, version):
    _refused_connect(client_factory, will_props=twice(content_type="text/plain"), note="Will Content Type twice")


@pytest.mark.spec("PE-3.1.3.2.6-a", "MQTT-3.1.4-1", version=V5)
def test_connect_will_response_topic_twice(client_factory, version):
    _refused_connect(client_factory, will_props=twice(response_topic="r/t"), note="Will Response Topic twice")


@pytest.mark.spec("PE-3.1.3.2.7-a", "MQTT-3.1.4-1", version=V5)
def test_connect_will_correlation_data_twice(client_factory, version):
    _refused_connect(client_factory, will_props=twice(correlation_data=b"id"), note="Will Correlation Data twice")


# ------------------------------------------------------------------------------ PUBLISH properties


def _publish_refused(client_factory, topic: str, props: bytes, note: str, reasons=BAD_PACKET_REASONS,
                     deviation: int | None = None):
    """The PUBLISH must make the server close the connection, and must not reach a subscriber."""
    watcher = client_factory("watcher")
    watcher.subscribe((f"{topic}/#", 1))
    client = client_factory("offender")
    client.send_raw(v5_publish(f"{topic}/x", b"must not be delivered", qos=1, packet_id=1, props=props), note=note)
    try:
        expect_close_for_bad_packet(client, reasons=reasons)
    except UnexpectedPacket as exc:
        if deviation is not None and isinstance(exc.packet, Puback) and exc.packet.reason_code < 0x80:
            known_deviation(deviation, f"{note}: acknowledged with {summarize(exc.packet)}, connection kept")
        raise
    watcher.expect_nothing(QUIET)


@pytest.mark.spec("PE-3.3.2.3.4-a", "MQTT-4.13.1-1", version=V5)
def test_publish_topic_alias_twice(client_factory, version, topic, broker):
    client = client_factory("probe")
    broker.require("topic_alias", client.connack)
    _publish_refused(client_factory, topic, twice(topic_alias=1), "PUBLISH with Topic Alias twice",
                     reasons=BAD_PACKET_REASONS + (0x94,))


@pytest.mark.spec("PE-3.3.2.3.5-a", "MQTT-4.13.1-1", version=V5)
def test_publish_response_topic_twice(client_factory, version, topic):
    _publish_refused(client_factory, topic, twice(response_topic=f"{topic}/reply"), "PUBLISH with Response Topic twice")


@pytest.mark.spec("PE-3.3.2.3.6-a", "MQTT-4.13.1-1", version=V5)
def test_publish_correlation_data_twice(client_factory, version, topic):
    _publish_refused(client_factory, topic, twice(correlation_data=b"id"), "PUBLISH with Correlation Data twice")


@pytest.mark.spec("PE-3.3.2.3.8-a", "MQTT-4.13.1-1", version=V5)
def test_publish_subscription_identifier_zero(client_factory, version, topic):
    _publish_refused(client_factory, topic, property_block(b"\x0b\x00"), "PUBLISH with Subscription Identifier 0",
                     deviation=106)


@pytest.mark.spec("PE-3.3.4-a", "MQTT-3.3.4-6", "MQTT-4.13.1-1", version=V5)
def test_publish_from_client_with_subscription_identifier(client_factory, version, topic):
    """A client PUBLISH must not carry a Subscription Identifier [MQTT-3.3.4-6]; the server treats one as a
    Protocol Error (3.3.4: "A PUBLISH packet sent from a Client to a Server MUST NOT contain a Subscription
    Identifier"; 3.3.2.3.8: it is a Protocol Error if it has no matching subscription)."""
    _publish_refused(client_factory, topic, property_block(property_bytes(subscription_identifiers=[5])),
                     "PUBLISH from the client with Subscription Identifier 5", deviation=106)


def _forwarded_or_refused(client_factory, topic: str, props: bytes, note: str, bad,
                          deviation: int | None = None) -> None:
    """A PUBLISH carrying a property the sender must not send: the server may close the connection, or
    refuse the message (v5 PUBACK >= 0x80); it must never forward the bad property itself, since the
    rule binds whoever sends the PUBLISH (actor "both"). Returns after checking the subscriber."""
    watcher = client_factory("watcher")
    watcher.subscribe((f"{topic}/#", 1))
    client = client_factory("offender")
    client.send_raw(v5_publish(f"{topic}/x", b"payload", qos=1, packet_id=1, props=props), note=note)
    answer = client.answer_or_close(3.0)  # a QoS 1 PUBLISH: PUBACK (success or refusal) or a close
    if isinstance(answer, Disconnect):
        if answer.reason_code < 0x80:
            raise ConformanceFailure(f"DISCONNECT for a bad PUBLISH with a success code: {answer}")
        client.expect_disconnect()
    elif isinstance(answer, Puback):
        pass  # accepted or refused: either way the subscriber must not see the bad property
    elif answer is not None:
        raise ConformanceFailure(f"unexpected answer to a PUBLISH with a bad property: {answer}")
    try:
        forwarded = watcher.collect_publishes(QUIET)
    except InvalidServerPacket as exc:
        # What the server sent on breaks the same rule, so our own decoder refuses it: the bad property
        # was forwarded (the raw bytes are the evidence).
        observed = f"{note}: the server forwarded a packet that breaks the rule ({exc.error}): {exc.raw.hex(' ')}"
        if deviation is not None:
            known_deviation(deviation, observed)
        raise ConformanceFailure(observed) from None
    for packet in forwarded:
        if bad(packet):
            observed = f"{note}: the server forwarded it as {summarize(packet)}"
            if deviation is not None:
                known_deviation(deviation, observed)
            raise ConformanceFailure(observed)


@pytest.mark.spec("MQTT-3.3.2-14", version=V5)
@pytest.mark.parametrize("response_topic", ["reply/+", "reply/#"])
def test_response_topic_with_wildcard_not_forwarded(client_factory, version, topic, response_topic):
    """A Response Topic must not contain wildcards [MQTT-3.3.2-14]: the server closes or refuses the
    PUBLISH, or delivers it without that Response Topic; it never sends one on."""
    _forwarded_or_refused(client_factory, topic, property_block(property_bytes(response_topic=response_topic)),
                          f"PUBLISH with Response Topic {response_topic!r}",
                          lambda p: p.properties.response_topic is not None
                          and ("+" in p.properties.response_topic or "#" in p.properties.response_topic),
                          deviation=107)


@pytest.mark.spec("MQTT-3.3.2-13", "MP-1.5.4-a", "MQTT-4.13.1-1", version=V5)
def test_response_topic_with_ill_formed_utf8_closes(client_factory, version, topic):
    """A Response Topic is a UTF-8 Encoded String [MQTT-3.3.2-13]; ill-formed UTF-8 makes the packet
    malformed: the server closes."""
    bad = b"\x08\x00\x03r\xc3\x28"  # Response Topic "r" + c3 28 (an invalid two-byte sequence)
    _publish_refused(client_factory, topic, property_block(bad), "PUBLISH with a Response Topic of ill-formed UTF-8",
                     reasons=BAD_PACKET_REASONS + (0x90,))


@pytest.mark.spec("MQTT-3.3.2-19", "MP-1.5.4-a", "MQTT-4.13.1-1", version=V5)
def test_content_type_with_ill_formed_utf8_closes(client_factory, version, topic):
    """A Content Type is a UTF-8 Encoded String [MQTT-3.3.2-19]; ill-formed UTF-8 makes the packet
    malformed: the server closes."""
    bad = b"\x03\x00\x03t\xed\xa0\x80"  # Content Type "t" + an encoded surrogate U+D800
    _publish_refused(client_factory, topic, property_block(bad), "PUBLISH with a Content Type of ill-formed UTF-8")


# ------------------------------------------------------------------ PUBACK PUBREC PUBREL PUBCOMP


def _reason_string_twice() -> bytes:
    return twice(reason_string="why")


@pytest.mark.spec("PE-3.4.2.2.2-a", "MQTT-4.13.1-1", version=V5)
def test_puback_reason_string_twice(client_factory, version, topic):
    """The client acknowledges a QoS 1 delivery with a PUBACK carrying Reason String twice."""
    sub = client_factory("subscriber")
    sub.subscribe((f"{topic}/q", 1))
    client_factory("publisher").publish(f"{topic}/q", b"x", qos=1)
    message = sub.expect(Publish)
    sub.send_raw(v5_ack(0x40, message.packet_id, 0, _reason_string_twice()), note="PUBACK with Reason String twice")
    expect_close_for_bad_packet(sub)


@pytest.mark.spec("PE-3.5.2.2.2-a", "MQTT-4.13.1-1", version=V5)
def test_pubrec_reason_string_twice(client_factory, version, topic):
    """The client answers a QoS 2 delivery with a PUBREC carrying Reason String twice."""
    sub = client_factory("subscriber")
    sub.subscribe((f"{topic}/q", 2))
    client_factory("publisher").publish(f"{topic}/q", b"x", qos=2)
    message = sub.expect(Publish)
    sub.send_raw(v5_ack(0x50, message.packet_id, 0, _reason_string_twice()), note="PUBREC with Reason String twice")
    expect_close_for_bad_packet(sub)


@pytest.mark.spec("PE-3.6.2.2.2-a", "MQTT-4.13.1-1", version=V5)
def test_pubrel_reason_string_twice(client_factory, version, topic):
    """The client, publishing at QoS 2, sends a PUBREL carrying Reason String twice."""
    client = client_factory()
    client.send(Publish(f"{topic}/q", b"x", qos=2, packet_id=3))
    pubrec = client.expect(Pubrec)
    if pubrec.packet_id != 3:
        raise ConformanceFailure(f"PUBREC for packet id 3 carries {pubrec.packet_id} [MQTT-2.2.1-5]")
    client.send_raw(v5_ack(0x62, 3, 0, _reason_string_twice()), note="PUBREL with Reason String twice")
    expect_close_for_bad_packet(client)


@pytest.mark.spec("PE-3.7.2.2.2-a", "MQTT-4.13.1-1", version=V5)
def test_pubcomp_reason_string_twice(client_factory, version, topic):
    """The client ends a QoS 2 delivery with a PUBCOMP carrying Reason String twice."""
    sub = client_factory("subscriber")
    sub.subscribe((f"{topic}/q", 2))
    client_factory("publisher").publish(f"{topic}/q", b"x", qos=2)
    message = sub.expect(Publish)
    sub.send(Pubrec(message.packet_id))
    pubrel = sub.expect(Pubrel)
    if pubrel.packet_id != message.packet_id:
        raise ConformanceFailure(f"PUBREL for packet id {message.packet_id} carries {pubrel.packet_id} [MQTT-2.2.1-5]")
    sub.send_raw(v5_ack(0x70, message.packet_id, 0, _reason_string_twice()), note="PUBCOMP with Reason String twice")
    expect_close_for_bad_packet(sub)


# ------------------------------------------------------------------------------ SUBSCRIBE, DISCONNECT


@pytest.mark.spec("PE-3.8.2.1.2-b", "MQTT-4.13.1-1", version=V5)
def test_subscribe_subscription_identifier_twice(client_factory, version, topic):
    client = client_factory()
    client.send_raw(v5_subscribe(1, f"{topic}/x", 0, twice(subscription_identifiers=[7])),
                    note="SUBSCRIBE with Subscription Identifier twice")
    expect_close_for_bad_packet(client)


def _disconnect_is_not_normal(client_factory, topic: str, props: bytes, note: str, **connect_kwargs):
    watcher = client_factory("watcher")
    watcher.subscribe((f"{topic}/will", 1))
    client = client_factory("leaving", will=Will(f"{topic}/will", b"not a normal disconnection", qos=1),
                            **connect_kwargs)
    client.send_raw(v5_disconnect(0, props), note=note)
    expect_close_for_bad_packet(client)
    with statement("MQTT-3.1.2-8"):
        will = watcher.expect_publish(timeout=3.0)
        check("MQTT-3.1.2-8", will.payload == b"not a normal disconnection",
              f"a DISCONNECT that is a Protocol Error is not a normal disconnection: the Will must be published; "
              f"the watcher got {will}")


@pytest.mark.spec("PE-3.14.2.2.2-a", "MQTT-3.1.2-8", version=V5)
def test_disconnect_session_expiry_twice_publishes_will(client_factory, version, topic):
    """DISCONNECT with Session Expiry Interval twice is a Protocol Error, not a normal disconnection: the
    Will is published (the connection had a non-zero expiry, so setting one is otherwise allowed)."""
    from refbroker.protocol import Properties

    _disconnect_is_not_normal(client_factory, topic, twice(session_expiry_interval=0),
                              "DISCONNECT with Session Expiry Interval twice",
                              properties=Properties(session_expiry_interval=5))


@pytest.mark.spec("PE-3.14.2.2.3-a", "MQTT-3.1.2-8", version=V5)
def test_disconnect_reason_string_twice_publishes_will(client_factory, version, topic):
    """DISCONNECT with Reason String twice is a Protocol Error, not a normal disconnection: the Will is
    published."""
    _disconnect_is_not_normal(client_factory, topic, _reason_string_twice(), "DISCONNECT with Reason String twice")
