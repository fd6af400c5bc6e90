"""MQTT 5.0 limits the client sets (Maximum Packet Size, Receive Maximum, Topic Alias Maximum) and the
ones the server announces or lacks (its own Maximum Packet Size, Retain / Wildcard / Subscription
Identifier / Shared Subscription Available, Maximum QoS).

Maximum Packet Size: "The Server MUST NOT send packets exceeding Maximum Packet Size to the Client"
[MQTT-3.1.2-24]; a Reason String or User Property is optional, and "The Server MUST NOT send this
property if it would increase the size of the CONNACK packet beyond the Maximum Packet Size specified
by the Client" [MQTT-3.2.2-19] (and the same for every packet that carries them). The tests give the
client the smallest Maximum Packet Size that the packets the server cannot do without still fit in (its
CONNACK as it sends it to a client without a limit, the PUBLISHes the test sends), then provoke each
acknowledgement and check that nothing bigger arrives: a Reason String or User Property that does not
fit has to be left out.

Features a broker may lack are read from its CONNACK (or the target profile); where the broker has the
feature, the test of what it must do without it is not applicable.
"""

from __future__ import annotations

import pytest

from conformance import check, not_applicable
from conformance.client import ConformanceFailure, ConnectionClosed, NoPacketReceived, RawClient
from refbroker.protocol import (
    Connack,
    Connect,
    Disconnect,
    Properties,
    Pubcomp,
    Publish,
    Pubrel,
    Suback,
    Subscribe,
    Subscription,
    Will,
)

from .helpers import BAD_PACKET_REASONS, QUIET, expect_close_for_bad_packet, expect_connect_refused

V5 = "5.0"


# ---------------------------------------------------------------------- the client's Maximum Packet Size


def _connack_size(client_factory) -> int:
    probe = client_factory("probe")
    return max(len(e["hex"].split()) for e in probe.trace if e["dir"] == "in" and e["type"] == "CONNACK")


def _limited(client_factory, name: str, limit: int, **kwargs) -> RawClient:
    props = kwargs.pop("properties", None) or Properties()
    props.maximum_packet_size = limit
    return client_factory(name, properties=props, **kwargs)


#: per packet type, the statements that make the server leave out its Reason String and its User Properties
#: when they would take the packet over the client's Maximum Packet Size
OMIT_TO_FIT = {
    "CONNACK": ("MQTT-3.2.2-19", "MQTT-3.2.2-20"),
    "PUBACK": ("MQTT-3.4.2-2", "MQTT-3.4.2-3"),
    "PUBREC": ("MQTT-3.5.2-2", "MQTT-3.5.2-3"),
    "PUBREL": ("MQTT-3.6.2-2", "MQTT-3.6.2-3"),
    "PUBCOMP": ("MQTT-3.7.2-2", "MQTT-3.7.2-3"),
    "SUBACK": ("MQTT-3.9.2-1", "MQTT-3.9.2-2"),
    "UNSUBACK": ("MQTT-3.11.2-1", "MQTT-3.11.2-2"),
    "DISCONNECT": ("MQTT-3.14.2-3", "MQTT-3.14.2-4"),
}


def _check_sizes(client: RawClient, limit: int) -> None:
    """No packet the client received is bigger than its Maximum Packet Size.

    A packet over the limit that carries a Reason String fails the statement that has the server leave it
    out; one that carries only User Properties the one for those; anything else over the limit fails
    [MQTT-3.1.2-24] (no packet larger than the client's Maximum Packet Size)."""
    for entry in client.trace:
        if entry["dir"] != "in" or "hex" not in entry:
            continue
        size = entry.get("hex_truncated") or len(entry["hex"].split())
        if size <= limit:
            continue
        message = (f"the server sent a {size}-byte {entry['type']} ({entry['summary']}) to a client whose Maximum "
                   f"Packet Size is {limit}")
        statement_id = "MQTT-3.1.2-24"
        if entry["type"] in OMIT_TO_FIT and not entry.get("hex_truncated"):
            properties = getattr(client.decode_raw(bytes.fromhex(entry["hex"].replace(" ", ""))), "properties", None)
            reason_string, user_properties = OMIT_TO_FIT[entry["type"]]
            if properties is not None and properties.reason_string is not None:
                statement_id, message = reason_string, message + "; its Reason String must be left out"
            elif properties is not None and properties.user_properties:
                statement_id, message = user_properties, message + "; its User Properties must be left out"
        check(statement_id, False, message)


def _publish_size(topic: str, payload: bytes, qos: int) -> int:
    body = 2 + len(topic.encode()) + (2 if qos else 0) + 1 + len(payload)
    return 1 + (1 if body < 128 else 2) + body


@pytest.mark.spec("MQTT-3.2.2-19", "MQTT-3.2.2-20", "MQTT-3.1.2-24", version=V5)
def test_connack_fits_client_maximum_packet_size(client_factory, version):
    """A CONNACK, success or failure, stays within the client's Maximum Packet Size: the success CONNACK
    within the size the server gives clients without a limit, a refusal (unknown Authentication Method)
    within the 5 bytes of a CONNACK without properties."""
    limit = _connack_size(client_factory)
    client = _limited(client_factory, "small", limit)
    _check_sizes(client, limit)
    refused = client_factory("refused", connect=False)
    refused.send(Connect(client_id=refused.client_id, protocol_level=5, properties=Properties(
        maximum_packet_size=5, authentication_method="x-conformance-unknown")))
    try:
        refused.expect(Connack)
    except ConnectionClosed:
        return  # closed without a CONNACK: allowed [MQTT-4.12.0-1]
    except NoPacketReceived:
        # nothing sent is nothing too large; that the server must close is another test's verdict
        # (test_unsupported_authentication_method_refused)
        not_applicable("the server neither answered nor closed a CONNECT with an unknown Authentication Method "
                       "from a client whose Maximum Packet Size is 5: no CONNACK whose size to check")
    _check_sizes(refused, 5)


@pytest.mark.spec("MQTT-3.9.2-1", "MQTT-3.9.2-2", "MQTT-3.11.2-1", "MQTT-3.11.2-2", "MQTT-3.1.2-24", version=V5)
def test_suback_and_unsuback_fit_client_maximum_packet_size(client_factory, version, topic):
    """SUBACK (granted and refused) and UNSUBACK (0x00 and 0x11 No subscription existed) stay within the
    client's Maximum Packet Size."""
    limit = max(_connack_size(client_factory), 6)
    client = _limited(client_factory, "small", limit)
    client.subscribe((f"{topic}/a", 1))
    client.unsubscribe(f"{topic}/a")
    client.unsubscribe(f"{topic}/never")
    client.send(Subscribe(client.next_packet_id(), [Subscription("$share/g+/x", 0)]))  # invalid ShareName
    try:
        client.receive(3.0)  # a SUBACK failure, or DISCONNECT / close (both allowed)
    except ConnectionClosed:
        pass
    _check_sizes(client, limit)


@pytest.mark.spec("MQTT-3.4.2-2", "MQTT-3.4.2-3", "MQTT-3.5.2-2", "MQTT-3.5.2-3", "MQTT-3.7.2-2", "MQTT-3.7.2-3",
                  "MQTT-3.1.2-24", version=V5)
def test_publish_acknowledgements_fit_client_maximum_packet_size(client_factory, version, topic):
    """PUBACK and PUBREC (0x10 No matching subscribers is likely: nobody subscribes) and PUBCOMP (also
    0x92 for a PUBREL with an unknown packet id) stay within the client's Maximum Packet Size."""
    limit = max(_connack_size(client_factory), 5)
    client = _limited(client_factory, "small", limit)
    client.publish(f"{topic}/nobody", b"1", qos=1)
    client.publish(f"{topic}/nobody", b"2", qos=2)
    client.send(Pubrel(0x7777))  # no such QoS 2 flow: PUBCOMP, perhaps 0x92 with a Reason String
    pubcomp = client.expect(Pubcomp)
    if pubcomp.packet_id != 0x7777:
        raise ConformanceFailure(f"PUBCOMP for PUBREL 0x7777 carries {pubcomp.packet_id} [MQTT-2.2.1-5]")
    _check_sizes(client, limit)


@pytest.mark.spec("MQTT-3.6.2-2", "MQTT-3.6.2-3", "MQTT-3.1.2-24", version=V5)
def test_pubrel_fits_client_maximum_packet_size(client_factory, version, topic):
    """The server's PUBREL (QoS 2 delivery to the client) stays within the client's Maximum Packet Size,
    which is just big enough for the PUBLISH itself."""
    name, payload = f"{topic}/q2", b"x"
    limit = max(_connack_size(client_factory), _publish_size(name, payload, 2), 4)
    client = _limited(client_factory, "small", limit)
    client.subscribe((name, 2))
    client_factory("publisher").publish(name, payload, qos=2)
    message = client.expect_publish()  # PUBREC, PUBREL, PUBCOMP
    if message.payload != payload:
        raise ConformanceFailure(f"the subscriber got {message}")
    _check_sizes(client, limit)


@pytest.mark.spec("MQTT-3.14.2-3", "MQTT-3.14.2-4", "MQTT-3.1.2-24", version=V5)
def test_disconnect_fits_client_maximum_packet_size(client_factory, version, topic):
    """A DISCONNECT the server sends for a Protocol Error stays within the client's Maximum Packet Size
    (4 bytes: reason code and an empty property length), so a Reason String must be left out."""
    limit = max(_connack_size(client_factory), 4)
    client = _limited(client_factory, "small", limit)
    client.send_raw(Publish(f"{topic}/x", b"x", properties=Properties(topic_alias=0)).encode(5),
                    note="PUBLISH with Topic Alias 0 (a Protocol Error)")
    try:
        expect_close_for_bad_packet(client, reasons=BAD_PACKET_REASONS + (0x94,))
    except ConformanceFailure:
        pass  # a reason code or a close the server owes is test_invalid_topic_alias_closes' verdict, not this one's
    _check_sizes(client, limit)
    if not any(entry["dir"] == "in" and entry["type"] == "DISCONNECT" for entry in client.trace):
        not_applicable("the server sent no DISCONNECT for the Protocol Error, so there is none whose size to check")


# --------------------------------------------------------------------- Receive Maximum: initial quota


@pytest.mark.spec("MQTT-4.9.0-1", "MQTT-3.3.4-9", version=V5)
def test_initial_send_quota_is_within_receive_maximum(client_factory, version, topic):
    """With Receive Maximum 3 and five QoS 1 and 2 messages waiting, the server starts sending (its quota
    is not zero) and sends at most 3 before the client acknowledges anything."""
    sub = client_factory("subscriber", properties=Properties(receive_maximum=3))
    sub.subscribe((f"{topic}/rm", 2))
    publisher = client_factory("publisher")
    for n in range(5):
        publisher.publish(f"{topic}/rm", b"%d" % n, qos=1 + n % 2)
    first = sub.collect_publishes(3.0, until_count=1, ack=False)
    check("MQTT-4.9.0-1", first, "no PUBLISH at all: the initial send quota must not be zero")
    more = sub.collect_publishes(QUIET, ack=False)
    window = first + more
    check("MQTT-3.3.4-9", len(window) <= 3, f"{len(window)} unacknowledged QoS 1/2 PUBLISHes with Receive Maximum 3")
    check("MQTT-4.9.0-1", len(window) <= 3, f"an initial send quota above the client's Receive Maximum 3: "
          f"{len(window)} unacknowledged QoS 1/2 PUBLISHes")
    for message in window:
        sub.acknowledge(message)


# ------------------------------------------------------------------ Topic Alias Maximum of the client


@pytest.mark.spec("MQTT-3.1.2-26", "MQTT-3.3.2-11", version=V5)
def test_server_topic_aliases_stay_within_client_maximum(client_factory, version, topic):
    """A client that allows 2 Topic Aliases gets none above 2, and every empty topic name it receives
    carries an alias the server mapped before on this connection; the resolved names are the published
    ones. (A server need not use aliases at all.)"""
    sub = client_factory("subscriber", properties=Properties(topic_alias_maximum=2))
    sub.subscribe((f"{topic}/#", 0))
    publisher = client_factory("publisher")
    names = [f"{topic}/{leaf}" for leaf in ("a", "b", "c", "a", "a", "b", "c", "c")]
    for number, name in enumerate(names):
        publisher.publish(name, b"%d" % number)
    publisher.ping()
    received = sub.collect_publishes(3.0, until_count=len(names))
    mapping: dict[int, str] = {}
    resolved = []
    for message in received:
        alias = message.properties.topic_alias
        if alias is not None:
            check("MQTT-3.1.2-26", 1 <= alias <= 2, f"Topic Alias {alias} above the client's Topic Alias Maximum 2")
            check("MQTT-3.3.2-11", 1 <= alias <= 2, f"Topic Alias {alias} above the client's Topic Alias Maximum 2")
            if message.topic:
                mapping[alias] = message.topic
            elif alias not in mapping:
                raise ConformanceFailure(f"empty topic name with Topic Alias {alias}, which was never mapped")
        elif not message.topic:
            raise ConformanceFailure("a PUBLISH with an empty topic name and no Topic Alias")
        resolved.append(message.topic or mapping[alias])
    if resolved != names:
        raise ConformanceFailure(f"topics after resolving aliases: {resolved}, published: {names}")


# ------------------------------------------------------------------- the server's own limits and gaps


@pytest.mark.spec("PE-3.2.2.3.6-b", "MQTT-4.13.1-1", version=V5)
def test_packet_above_server_maximum_packet_size_closes(client_factory, version, topic):
    """A PUBLISH bigger than the Maximum Packet Size the server announced: DISCONNECT 0x95 (Packet too
    large) or a generic code, and close."""
    client = client_factory()
    limit = client.connack.properties.maximum_packet_size
    if limit is None or limit > 1_000_000:
        not_applicable(f"the server announces no usable Maximum Packet Size (CONNACK: {limit})")
    client.send(Publish(f"{topic}/big", b"x" * limit))
    expect_close_for_bad_packet(client, reasons=BAD_PACKET_REASONS + (0x95,))


def _refusal(client: RawClient, specific: int, suback_allowed: bool = True) -> None:
    """The server refuses with a SUBACK carrying `specific`, or closes (DISCONNECT `specific`/generic)."""
    packet = client.answer_or_close(3.0)
    if packet is None:
        return
    if isinstance(packet, Suback) and suback_allowed:
        if not (packet.reason_codes == [specific] or packet.reason_codes[0] >= 0x80):
            raise ConformanceFailure(f"expected a refusal (0x{specific:02X} or another failure code), got {packet}")
        return
    if isinstance(packet, Disconnect):
        if packet.reason_code not in BAD_PACKET_REASONS + (specific,):
            raise ConformanceFailure(f"expected a refusal (0x{specific:02X} or 0x81/0x82), got {packet}")
        client.expect_disconnect()
        return
    raise ConformanceFailure(f"expected a refusal (0x{specific:02X}), got {packet}")


def _require_unavailable(client, broker, connack_property: str, feature: str, what: str) -> None:
    """Not applicable unless the broker's CONNACK sets `connack_property` to 0 or its target profile says
    `feature` is missing: these tests check how a broker WITHOUT the feature refuses its use."""
    if getattr(client.connack.properties, connack_property) != 0 and broker.profile.feature(feature) is not False:
        not_applicable(f"the broker supports {what}")


@pytest.mark.spec("PE-3.2.2.3.11-b", version=V5)
def test_wildcard_subscription_without_support_refused(client_factory, version, topic, broker):
    client = client_factory()
    _require_unavailable(client, broker, "wildcard_subscription_available", "wildcard_subscriptions",
                         "wildcard subscriptions")
    client.send(Subscribe(1, [Subscription(f"{topic}/+", 0)]))
    _refusal(client, 0xA2)


@pytest.mark.spec("MQTT-3.8.3-2", version="3.1.1")
def test_wildcard_subscription_without_support_refused_v3(client_factory, version, topic, broker):
    """3.1.1: a server without wildcard support rejects a wildcard filter (SUBACK 0x80)."""
    if broker.profile.feature("wildcard_subscriptions") is not False:
        not_applicable("the target profile does not say the broker lacks wildcard subscriptions")
    client = client_factory()
    suback = client.subscribe((f"{topic}/#", 0))
    assert suback.reason_codes == [0x80], f"a wildcard filter was accepted: {suback}"


@pytest.mark.spec("PE-3.2.2.3.12-b", version=V5)
def test_subscription_identifier_without_support_refused(client_factory, version, topic, broker):
    client = client_factory()
    _require_unavailable(client, broker, "subscription_identifier_available", "subscription_identifiers",
                         "Subscription Identifiers")
    client.send(Subscribe(1, [Subscription(f"{topic}/x", 0)], Properties(subscription_identifiers=[3])))
    _refusal(client, 0xA1)


@pytest.mark.spec("PE-3.2.2.3.13-b", version=V5)
def test_shared_subscription_without_support_refused(client_factory, version, topic, broker):
    client = client_factory()
    _require_unavailable(client, broker, "shared_subscription_available", "shared_subscriptions",
                         "shared subscriptions")
    client.send(Subscribe(1, [Subscription(f"$share/g/{topic}/x", 0)]))
    _refusal(client, 0x9E)


def _retain_unavailable(client, broker) -> None:
    _require_unavailable(client, broker, "retain_available", "retain", "retained messages")


@pytest.mark.spec("PE-3.2.2.3.5-b", version=V5)
def test_retained_publish_without_support_closes(client_factory, version, topic, broker):
    client = client_factory()
    _retain_unavailable(client, broker)
    client.send(Publish(f"{topic}/r", b"x", retain=True))
    expect_close_for_bad_packet(client, reasons=BAD_PACKET_REASONS + (0x9A,))


@pytest.mark.spec("MQTT-3.2.2-13", version=V5)
def test_will_retain_without_support_refused(client_factory, version, topic, broker):
    _retain_unavailable(client_factory("probe"), broker)
    client = client_factory(connect=False)
    client.send(Connect(client_id=client.client_id, protocol_level=5, will=Will(f"{topic}/w", b"x", 0, True)))
    expect_connect_refused(client, v5_codes=(0x9A, 0x80, 0x81, 0x82, 0x83))


def _maximum_qos(client, broker) -> int:
    maximum = client.connack.properties.maximum_qos
    if maximum is None:
        if broker.profile.feature("qos2") is False:
            raise ConformanceFailure("the profile says the broker lacks QoS 2, but its CONNACK has no Maximum QoS "
                                     "[MQTT-3.2.2-9]")
        not_applicable("the broker supports QoS 2 (no Maximum QoS in CONNACK)")
    return maximum


@pytest.mark.spec("MQTT-3.2.2-9", version=V5)
def test_maximum_qos_announced_when_qos_is_limited(client_factory, version, broker):
    """A server without QoS 1 or QoS 2 announces its highest QoS as Maximum QoS."""
    client = client_factory()
    maximum = _maximum_qos(client, broker)
    if broker.profile.feature("qos1") is False:
        assert maximum == 0, f"the profile says QoS 1 is not supported, but Maximum QoS is {maximum}"


@pytest.mark.spec("MQTT-3.2.2-10", version=V5)
def test_reduced_maximum_qos_still_accepts_subscriptions(client_factory, version, topic, broker):
    """A server with Maximum QoS 0 or 1 still accepts SUBSCRIBEs asking for QoS 0, 1 or 2 (it grants at most
    its maximum)."""
    client = client_factory()
    maximum = _maximum_qos(client, broker)
    suback = client.subscribe((f"{topic}/0", 0), (f"{topic}/1", 1), (f"{topic}/2", 2), lower_grant_ok=True)
    assert all(code <= maximum for code in suback.reason_codes), suback


@pytest.mark.spec("MQTT-3.2.2-12", version=V5)
def test_will_qos_above_maximum_refused(client_factory, version, topic, broker):
    maximum = _maximum_qos(client_factory("probe"), broker)
    client = client_factory(connect=False)
    client.send(Connect(client_id=client.client_id, protocol_level=5, will=Will(f"{topic}/w", b"x", maximum + 1)))
    expect_connect_refused(client, v5_codes=(0x9B, 0x80, 0x81, 0x82, 0x83))
