"""QoS flows at their edges: negative acknowledgements (5.0 reason codes 0x80 and above), UNSUBSCRIBE
while a delivery is under way, Receive Maximum overrun, session state while connected, and shared
subscriptions when the chosen member goes away or refuses a message."""

from __future__ import annotations

import time

import pytest

from conformance import known_deviation, not_applicable
from conformance.client import ConformanceFailure, NoPacketReceived
from refbroker.protocol import (
    Disconnect,
    Puback,
    Pubcomp,
    Publish,
    Pubrec,
    Pubrel,
    Unsuback,
    Unsubscribe,
)

from .helpers import QUIET, session_properties

V5 = "5.0"


# --------------------------------------------------------------------- negative acknowledgements (5.0)


@pytest.mark.spec("MQTT-4.4.0-2", version=V5)
def test_negative_acknowledgement_ends_the_delivery(client_factory, version, topic):
    """PUBACK 0x80 to a QoS 1 delivery and PUBREC 0x80 to a QoS 2 delivery acknowledge them: the server
    does not send either PUBLISH again, not even when the session resumes [MQTT-4.4.0-2] ("it MUST NOT
    resend any PUBLISH ... once it has received the corresponding PUBACK, or PUBREC with a Reason Code
    of 0x80 or greater"). A PUBREL after the PUBREC 0x80 is not a resent PUBLISH: the statement does not
    forbid it, so the test accepts it (and answers it)."""
    props = session_properties(version)
    sub = client_factory("subscriber", clean_start=False, properties=props)
    sub.subscribe((f"{topic}/n", 2))
    publisher = client_factory("publisher")
    publisher.publish(f"{topic}/n", b"one", qos=1)
    publisher.publish(f"{topic}/n", b"two", qos=2)
    # each delivery is refused as it arrives (a server may wait for one to be acknowledged before the next)
    received = []
    while len(received) < 2:
        arrived = sub.collect_publishes(3.0, until_count=1, ack=False)
        if not arrived:
            break
        for message in arrived:
            sub.send((Puback if message.qos == 1 else Pubrec)(message.packet_id, 0x80))
        received += arrived
    assert sorted((p.payload, p.qos) for p in received) == [(b"one", 1), (b"two", 2)], received
    for packet in sub.collect(QUIET):
        if isinstance(packet, Pubrel):
            sub.send(Pubcomp(packet.packet_id))
            continue
        raise ConformanceFailure(f"after PUBACK/PUBREC 0x80 the server sent {packet} [MQTT-4.4.0-2]")
    sub.close()
    again = client_factory("subscriber-again", client_id=sub.client_id, clean_start=False, properties=props)
    assert again.connack.session_present
    for packet in again.collect(QUIET):
        if isinstance(packet, Publish):
            raise ConformanceFailure(f"the server resent a message the client had refused with 0x80: {packet} "
                                     "[MQTT-4.4.0-2]")
        if isinstance(packet, Pubrel):
            again.send(Pubcomp(packet.packet_id))


def _overrun(client, topic: str):
    """Send Receive Maximum + 1 QoS 2 PUBLISHes without PUBREL. Returns (last id, answer to the last one)."""
    maximum = client.connack.properties.receive_maximum or 65535
    if maximum > 100:
        not_applicable(f"the server's Receive Maximum is {maximum}: too many messages to overrun it here")
    for packet_id in range(1, maximum + 1):
        client.send(Publish(f"{topic}/o", b"%d" % packet_id, qos=2, packet_id=packet_id))
    for _ in range(maximum):
        client.expect(Pubrec)
    last = maximum + 1
    client.send(Publish(f"{topic}/o", b"over", qos=2, packet_id=last))
    return last, client.answer_or_close(3.0)  # None: closed; silence fails


@pytest.mark.spec("MQTT-3.3.4-7", version=V5)
def test_receive_maximum_overrun_disconnects(client_factory, version, topic):
    """More unacknowledged QoS 2 PUBLISHes than the server's Receive Maximum (a client may not send them
    [MQTT-3.3.4-7]): the server uses DISCONNECT 0x93 (Receive Maximum exceeded) and closes (3.3.4)."""
    client = client_factory()
    last, answer = _overrun(client, topic)
    if isinstance(answer, Pubrec) and answer.packet_id == last:
        known_deviation(8, f"PUBLISH number {last} over Receive Maximum {last - 1} answered with "
                           f"PUBREC reason 0x{answer.reason_code:02X}, connection kept")
    if answer is None:
        return  # closed without DISCONNECT: the DISCONNECT is a SHOULD
    assert isinstance(answer, Disconnect) and answer.reason_code == 0x93, \
        f"expected DISCONNECT 0x93 (Receive Maximum exceeded), got {answer}"
    client.expect_disconnect()


@pytest.mark.spec("MQTT-4.3.3-9", version=V5)
def test_packet_id_after_failed_pubrec_is_a_new_message(client_factory, version, topic):
    """After the server answers a QoS 2 PUBLISH with PUBREC 0x80 or above, a PUBLISH reusing that packet
    id is a new message: it is processed (PUBREC below 0x80) and delivered. The only failure PUBREC a
    default broker can be led to send is for a Receive Maximum overrun, so the test needs a server that
    answers one with PUBREC 0x80+ (mosquitto does, see known deviation 8) rather than DISCONNECT."""
    watcher = client_factory("watcher")
    watcher.subscribe((f"{topic}/o", 2))
    client = client_factory()
    try:
        last, answer = _overrun(client, topic)
    except NoPacketReceived as exc:
        not_applicable(f"the server did not answer the overrun ({exc}); there is no PUBREC 0x80+ to build on")
    if not (isinstance(answer, Pubrec) and answer.reason_code >= 0x80):
        not_applicable(f"the server answered the overrun with {answer} (no PUBREC 0x80+ to build on)")
    for packet_id in range(1, last):  # complete the flows that were accepted
        client.send(Pubrel(packet_id))
        client.expect(Pubcomp, set_aside=(Publish,))
    client.send(Publish(f"{topic}/o", b"new message", qos=2, packet_id=last))
    pubrec = client.expect(Pubrec)
    assert pubrec.packet_id == last and pubrec.reason_code < 0x80, \
        f"a PUBLISH reusing the id of a refused one must be a new message: {pubrec}"
    client.send(Pubrel(last))
    assert client.expect(Pubcomp).packet_id == last
    payloads = [p.payload for p in watcher.collect_publishes(3.0, until_count=last)]
    assert b"new message" in payloads, f"the new message was not delivered: {payloads[-3:]}"
    assert b"over" not in payloads, "the refused message was delivered"


# ------------------------------------------------------------------------ UNSUBSCRIBE while in flight


@pytest.mark.spec("MQTT-3.10.4-3")
def test_unsubscribe_completes_delivery_under_way(client_factory, version, topic):
    """A QoS 2 delivery started before UNSUBSCRIBE is completed afterwards: after the UNSUBACK our PUBREC
    still gets the PUBREL; and nothing new arrives for the removed filter."""
    sub = client_factory("subscriber")
    sub.subscribe((f"{topic}/u", 2))
    publisher = client_factory("publisher")
    publisher.publish(f"{topic}/u", b"under way", qos=2)
    message = sub.expect(Publish)
    sub.send(Unsubscribe(sub.next_packet_id(), [f"{topic}/u"]))
    sub.expect(Unsuback)
    sub.send(Pubrec(message.packet_id))
    pubrel = sub.expect(Pubrel)
    assert pubrel.packet_id == message.packet_id
    sub.send(Pubcomp(message.packet_id))
    publisher.publish(f"{topic}/u", b"after", qos=2)
    sub.expect_nothing(QUIET)


# ------------------------------------------------------------------ session state while connected


@pytest.mark.spec("MQTT-4.1.0-2", version="3.1.1")
@pytest.mark.spec("MQTT-4.1.0-1", version="5.0")
def test_session_state_kept_while_connected(client_factory, version, topic):
    """While the connection is open, its session (subscriptions, a QoS 2 flow half done) stays, even as
    other clients come and go with Clean Start."""
    sub = client_factory("subscriber")
    sub.subscribe((f"{topic}/s", 2))
    publisher = client_factory("publisher")
    publisher.publish(f"{topic}/s", b"first", qos=2)
    message = sub.expect(Publish)
    sub.send(Pubrec(message.packet_id))
    for n in range(2):
        client_factory(f"passer-by{n}").disconnect()
    assert sub.expect(Pubrel).packet_id == message.packet_id
    sub.send(Pubcomp(message.packet_id))
    publisher.publish(f"{topic}/s", b"second", qos=1)
    assert sub.expect_publish().payload == b"second"


# --------------------------------------------------------------------------- shared subscriptions (5.0)


def _members(client_factory, broker, topic: str, qos: int, **connect_kwargs):
    a = client_factory("member-a", **connect_kwargs)
    broker.require("shared_subscriptions", a.connack)
    b = client_factory("member-b", **connect_kwargs)
    for member in (a, b):
        member.subscribe((f"$share/g/{topic}/s", qos))
    return a, b


def _chosen(a, b, count: int = 1):
    """Which member got the message: (chosen, other, the PUBLISH), the PUBLISH not acknowledged."""
    got_a, got_b = [], []
    deadline = time.monotonic() + 3.0
    while len(got_a) + len(got_b) < count and time.monotonic() < deadline:
        got_a += a.collect_publishes(0.02, ack=False)
        got_b += b.collect_publishes(0.02, ack=False)
    if len(got_a) + len(got_b) != count:
        raise ConformanceFailure(f"expected {count} delivery to the share group, got a={got_a} b={got_b}")
    return (a, b, got_a[0]) if got_a else (b, a, got_b[0])


@pytest.mark.spec("MQTT-4.8.2-6", version=V5)
def test_shared_delivery_refused_is_not_sent_elsewhere(client_factory, version, topic, broker):
    """The member chosen for a QoS 1 message answers PUBACK 0x80: the server drops the message and does
    not send it to the other member (nor again to the first)."""
    a, b = _members(client_factory, broker, topic, 1)
    client_factory("publisher").publish(f"{topic}/s", b"refused", qos=1)
    chosen, other, message = _chosen(a, b)
    chosen.send(Puback(message.packet_id, 0x80))
    chosen.expect_nothing(QUIET)  # not resent to the member that refused it
    other.expect_nothing(0.01)  # nor sent to the other one (in the same quiet period)


@pytest.mark.spec("MQTT-4.8.2-4", version=V5)
def test_shared_qos2_delivery_completed_on_reconnect(client_factory, version, topic, broker):
    """The member chosen for a QoS 2 message drops the connection before PUBREC; it has a session that
    outlives the connection. The other member does not get the message; the chosen one gets it again
    (DUP 1) when it reconnects, and the flow completes."""
    props = session_properties(version)
    a, b = _members(client_factory, broker, topic, 2, clean_start=False, properties=props)
    client_factory("publisher").publish(f"{topic}/s", b"exactly once", qos=2)
    chosen, other, message = _chosen(a, b)
    chosen.close()
    other.expect_nothing(QUIET)
    again = client_factory("chosen-again", client_id=chosen.client_id, clean_start=False, properties=props)
    resent = again.expect(Publish)
    assert (resent.payload, resent.packet_id, resent.dup) == (b"exactly once", message.packet_id, True), resent
    again.acknowledge(resent)
    other.expect_nothing(0.0)


@pytest.mark.spec("MQTT-4.8.2-5", version=V5)
def test_shared_qos2_delivery_not_moved_when_session_ends(client_factory, version, topic, broker):
    """The member chosen for a QoS 2 message drops the connection before PUBREC and its session ends with
    the connection (Session Expiry 0): the message is not sent to the other member."""
    a, b = _members(client_factory, broker, topic, 2)
    client_factory("publisher").publish(f"{topic}/s", b"once at most", qos=2)
    chosen, other, _ = _chosen(a, b)
    chosen.close()
    other.expect_nothing(QUIET)
