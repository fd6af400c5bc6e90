"""Sessions: Clean Session / Clean Start, Session Present, stored subscriptions and messages, takeover,
Keep Alive, PINGREQ."""

from __future__ import annotations

import time

import pytest

from conformance import known_deviation, not_applicable
from conformance.client import ConformanceFailure
from refbroker.protocol import MQTT_5, Pingreq, Pingresp, Puback, Publish, Pubrec, Pubrel

from .helpers import QUIET, check_server_disconnect, receive_publishes, session_properties


@pytest.mark.spec("MQTT-3.12.4-1")
def test_pingreq_gets_pingresp(client_factory, version):
    client = client_factory()
    for _ in range(3):
        client.send(Pingreq())
        client.expect(Pingresp)


@pytest.mark.spec("MQTT-3.2.2-3", "MQTT-3.2.2-2", "MQTT-3.1.2-4", "MQTT-3.1.3-2", "MQTT-4.1.0-1", version="3.1.1")
@pytest.mark.spec("MQTT-3.2.2-3", "MQTT-3.1.2-5", "MQTT-3.1.2-6", "MQTT-3.1.2-23", "MQTT-3.1.3-2", "MQTT-4.1.0-1",
                  version="5.0")
def test_persistent_session_is_resumed(client_factory, version, topic):
    """Clean Start 0: Session Present 0 the first time, 1 after reconnecting; the subscription survives."""
    props = session_properties(version)
    first = client_factory("subscriber", clean_start=False, properties=props)
    assert not first.connack.session_present, "a brand-new client id cannot have a stored session"
    first.subscribe(f"{topic}/x", qos=1)
    first.disconnect()

    again = client_factory("subscriber-again", client_id=first.client_id, clean_start=False, properties=props)
    assert again.connack.session_present, "Session Present must be 1 when the server resumes a stored session"
    publisher = client_factory("publisher")
    publisher.publish(f"{topic}/x", b"to the resumed subscription", qos=1)
    message = again.expect_publish()
    assert message.payload == b"to the resumed subscription"


@pytest.mark.spec("MQTT-3.1.2-6", "MQTT-3.2.2-1", "MQTT-3.1.4-3", version="3.1.1")
@pytest.mark.spec("MQTT-3.1.2-4", "MQTT-3.2.2-2", "MQTT-3.1.4-4", version="5.0")
def test_clean_start_discards_session(client_factory, version, topic):
    """Clean Start 1 after a stored session: Session Present 0 and the old subscription is gone."""
    props = session_properties(version)
    first = client_factory("subscriber", clean_start=False, properties=props)
    first.subscribe(f"{topic}/x", qos=1)
    first.disconnect()

    clean = client_factory("clean", client_id=first.client_id, clean_start=True)
    assert not clean.connack.session_present, "Clean Start 1 must give Session Present 0"
    publisher = client_factory("publisher")
    publisher.publish(f"{topic}/x", b"nobody subscribed", qos=1)
    clean.expect_nothing(QUIET)


@pytest.mark.spec("MQTT-3.1.2-5", "MQTT-4.1.0-1", "MQTT-4.5.0-1", version="3.1.1")
@pytest.mark.spec("MQTT-3.1.2-23", "MQTT-4.5.0-1", version="5.0")
def test_messages_queued_for_offline_session(client_factory, version, topic):
    """QoS 1 and 2 messages published while a persistent session is offline arrive on reconnection."""
    props = session_properties(version)
    sub = client_factory("subscriber", clean_start=False, properties=props)
    sub.subscribe((f"{topic}/q", 2))
    sub.disconnect()
    publisher = client_factory("publisher")
    publisher.publish(f"{topic}/q", b"one", qos=1)
    publisher.publish(f"{topic}/q", b"two", qos=2)
    again = client_factory("subscriber-again", client_id=sub.client_id, clean_start=False, properties=props)
    assert again.connack.session_present
    received = receive_publishes(again, 2)
    assert [(p.payload, p.qos) for p in received] == [(b"one", 1), (b"two", 2)], received


@pytest.mark.spec("MQTT-4.1.0-2", version="5.0")
def test_v5_session_ends_with_connection_when_expiry_is_zero(client_factory, version, topic):
    """Session Expiry Interval absent (0): Clean Start 0 reconnection finds no session."""
    first = client_factory("subscriber", clean_start=False)
    first.subscribe(f"{topic}/x", qos=1)
    first.disconnect()
    again = client_factory("again", client_id=first.client_id, clean_start=False)
    assert not again.connack.session_present, "the session must end when a 0 Session Expiry connection closes"
    publisher = client_factory("publisher")
    publisher.publish(f"{topic}/x", b"no session", qos=1)
    again.expect_nothing(QUIET)


@pytest.mark.spec("MQTT-4.4.0-1", "MQTT-3.3.1-1", "MQTT-2.3.1-4", version="3.1.1")
@pytest.mark.spec("MQTT-4.4.0-1", "MQTT-3.3.1-1", "MQTT-4.3.2-3", version="5.0")
def test_unacknowledged_qos1_resent_on_reconnect(client_factory, version, topic):
    """An unacknowledged QoS 1 delivery is resent after reconnection, with the same packet id and DUP 1."""
    props = session_properties(version)
    sub = client_factory("subscriber", clean_start=False, properties=props)
    sub.subscribe((f"{topic}/r", 1))
    publisher = client_factory("publisher")
    publisher.publish(f"{topic}/r", b"ack me later", qos=1)
    first = sub.expect_publish(ack=False)
    assert first.qos == 1 and not first.dup and first.packet_id
    sub.close()  # no PUBACK, no DISCONNECT
    again = client_factory("subscriber-again", client_id=sub.client_id, clean_start=False, properties=props)
    assert again.connack.session_present
    resent = again.expect(Publish)
    assert resent.payload == b"ack me later"
    assert resent.packet_id == first.packet_id, "a resent PUBLISH must keep its packet identifier"
    assert resent.dup, "a resent PUBLISH must have DUP set [MQTT-3.3.1-1]"
    again.send(Puback(resent.packet_id))
    again.expect_nothing(QUIET)


@pytest.mark.spec("MQTT-4.4.0-1", "MQTT-4.3.3-1", version="3.1.1")
@pytest.mark.spec("MQTT-4.4.0-1", "MQTT-4.3.3-5", "MQTT-4.3.3-6", version="5.0")
def test_unacknowledged_pubrel_resent_on_reconnect(client_factory, version, topic):
    """QoS 2 to a subscriber that sent PUBREC but not PUBCOMP: after reconnection the PUBREL (not the
    PUBLISH) is resent with the same packet id."""
    props = session_properties(version)
    sub = client_factory("subscriber", clean_start=False, properties=props)
    sub.subscribe((f"{topic}/r2", 2))
    publisher = client_factory("publisher")
    publisher.publish(f"{topic}/r2", b"exactly once", qos=2)
    message = sub.expect_publish(ack=False)
    assert message.qos == 2
    sub.send(Pubrec(message.packet_id))
    pubrel = sub.expect(Pubrel)
    assert pubrel.packet_id == message.packet_id
    sub.close()  # no PUBCOMP
    again = client_factory("subscriber-again", client_id=sub.client_id, clean_start=False, properties=props)
    packet = again.receive(3.0)
    if isinstance(packet, Publish):
        raise ConformanceFailure("the server resent the PUBLISH after it had sent PUBREL; it must resend the "
                                 "PUBREL only [MQTT-4.3.3-1]")
    assert isinstance(packet, Pubrel), f"expected the PUBREL to be resent, got {packet}"
    assert packet.packet_id == message.packet_id


@pytest.mark.spec("MQTT-3.1.4-2", version="3.1.1")
@pytest.mark.spec("MQTT-3.1.4-3", "MQTT-3.14.2-2", "MQTT-3.14.4-2", version="5.0")
def test_client_id_takeover_closes_existing_connection(client_factory, version):
    """A second connection with the same client id makes the server close the first one
    (5.0: after DISCONNECT 0x8E Session taken over)."""
    first = client_factory("first")
    second = client_factory("second", client_id=first.client_id)
    disconnect = first.expect_disconnect(3.0)
    second.ping()
    if version != MQTT_5:
        return
    if disconnect is None:
        known_deviation(13, "the existing v5 connection was closed without DISCONNECT 0x8E (Session taken over)")
    check_server_disconnect(disconnect)
    assert disconnect.reason_code == 0x8E, f"takeover DISCONNECT must use 0x8E, got 0x{disconnect.reason_code:02X}"


def _effective_keep_alive(client, asked: int) -> int:
    if client.version == MQTT_5 and client.connack.properties.server_keep_alive is not None:
        return client.connack.properties.server_keep_alive  # [MQTT-3.2.2-21/-22]
    return asked


@pytest.mark.spec("MQTT-3.1.2-24", "MQTT-3.12.4-1", version="3.1.1")
@pytest.mark.spec("MQTT-3.1.2-22", "MQTT-3.2.2-22", "MQTT-3.12.4-1", version="5.0")
def test_keep_alive_timeout_closes_silent_client(client_factory, version):
    """Keep Alive 1 s: PINGREQs keep the connection; silence makes the server close it within 1.5 x Keep
    Alive (we allow 1 s of scheduling slack) and not before Keep Alive itself."""
    client = client_factory(keep_alive=1)
    keep_alive = _effective_keep_alive(client, 1)
    if keep_alive == 0 or keep_alive > 5:
        not_applicable(f"the server imposes Server Keep Alive {keep_alive} s; too long to wait for")
    for _ in range(3):  # 1.5 s of activity at 0.5 s intervals, longer than 1.5 x Keep Alive
        client.expect_nothing(0.5)
        client.ping()
    silent_since = time.monotonic()
    limit = 1.5 * keep_alive + 1.0
    if client.is_open(within=limit):
        known_deviation(101, f"Keep Alive {keep_alive} s: the connection was still open {limit:g} s after the "
                             "client's last packet (1.5 x Keep Alive plus 1 s of slack)")
    waited = time.monotonic() - silent_since
    disconnect = client.expect_disconnect(timeout=0.1)
    assert waited >= keep_alive - 0.1, (f"the server closed after only {waited:.2f} s of silence, less than the "
                                        f"Keep Alive of {keep_alive} s")
    if disconnect is not None:
        check_server_disconnect(disconnect)
        assert disconnect.reason_code == 0x8D, f"a keep alive DISCONNECT should be 0x8D, got {disconnect}"


@pytest.mark.spec("MQTT-3.2.2-22", version="5.0")
def test_keep_alive_zero_is_never_timed_out(client_factory, version):
    """5.0: without a Server Keep Alive in CONNACK the server applies the client's Keep Alive
    [MQTT-3.2.2-22]; 0 switches the mechanism off, so a silent client stays connected. (In 3.1.1 the
    same behaviour rests on an unnumbered sentence, so the test is not run there.)"""
    client = client_factory(keep_alive=0)
    keep_alive = _effective_keep_alive(client, 0)
    if keep_alive:
        not_applicable(f"the server imposes Server Keep Alive {keep_alive} s")
    client.expect_nothing(1.0)
    client.ping()


@pytest.mark.spec("MQTT-3.1.2.7", version="3.1.1")
@pytest.mark.spec("MQTT-3.3.1-5", version="5.0")
def test_retained_message_outlives_publisher_session(client_factory, version, topic, broker):
    """Retained messages are not session state: they survive the end of the publisher's session."""
    publisher = client_factory("publisher")
    broker.require("retain", publisher.connack)
    publisher.publish(f"{topic}/keep", b"still here", qos=1, retain=True)
    publisher.disconnect()
    late = client_factory("late")
    late.subscribe(f"{topic}/keep", qos=1)
    message = late.expect_publish()
    assert message.payload == b"still here" and message.retain
    late.publish(f"{topic}/keep", b"", retain=True)


@pytest.mark.spec("MQTT-4.3.2-1", "MQTT-2.3.1-4", version="3.1.1")
@pytest.mark.spec("MQTT-2.2.1-4", "MQTT-4.3.2-1", "MQTT-4.3.2-2", version="5.0")
def test_inflight_deliveries_use_distinct_packet_ids(client_factory, version, topic):
    """Several unacknowledged QoS 1 deliveries to one client carry distinct non-zero packet ids."""
    sub = client_factory("subscriber")
    sub.subscribe((f"{topic}/ids", 1))
    publisher = client_factory("publisher")
    for n in range(5):
        publisher.publish(f"{topic}/ids", b"m%d" % n, qos=1)
    received = sub.collect_publishes(2.0, until_count=5, ack=False)
    assert len(received) == 5, received
    ids = [p.packet_id for p in received]
    assert all(ids) and len(set(ids)) == 5, f"packet ids of unacknowledged deliveries must differ: {ids}"
    assert not any(p.dup for p in received), "first deliveries must have DUP 0"
    for p in received:
        sub.send(Puback(p.packet_id))
    sub.ping()
