"""PUBLISH in both directions: QoS flows, packet ids, windows, queues, redelivery, v5 properties."""

import pytest

from refbroker.protocol import (
    Disconnect,
    Properties,
    Puback,
    Pubcomp,
    Publish,
    Pubrec,
    Pubrel,
    Subscribe,
    Subscription,
)

from .harness import Harness


def publishes(packets):
    return [p for p in packets if isinstance(p, Publish)]


@pytest.mark.parametrize("version", [3, 4, 5])
@pytest.mark.parametrize("qos", [0, 1, 2])
def test_publish_reaches_a_subscriber_with_the_right_acknowledgement(version, qos):
    h = Harness()
    subscriber, _ = h.connect("sub", version)
    subscriber.subscribe(("a/b", 2))
    publisher, _ = h.connect("pub", version)
    answer = publisher.send(Publish("a/b", b"hi", qos=qos, packet_id=7 if qos else None))
    expected = {0: [], 1: [Puback(7)], 2: [Pubrec(7)]}[qos]  # [MQTT-3.3.4-1]
    assert answer == expected
    if qos == 2:
        assert publisher.send(Pubrel(7)) == [Pubcomp(7)]
    [delivered] = subscriber.take()
    assert (delivered.topic, delivered.payload, delivered.qos, delivered.dup, delivered.retain) == (
        "a/b", b"hi", qos, False, False)
    assert delivered.packet_id == (1 if qos else None)  # mosquitto numbers from 1 per client


def test_outgoing_packet_ids_count_up_per_client():
    h = Harness()
    subscriber, _ = h.connect("sub")
    subscriber.subscribe(("t", 1))
    publisher, _ = h.connect("pub")
    for n in range(3):
        publisher.send(Publish("t", b"x", qos=1, packet_id=100 + n))
    assert [p.packet_id for p in subscriber.take()] == [1, 2, 3]


def test_qos_is_downgraded_to_the_granted_qos():
    h = Harness()
    subscriber, _ = h.connect("sub")
    subscriber.subscribe(("t", 0))
    publisher, _ = h.connect("pub")
    publisher.send(Publish("t", b"x", qos=2, packet_id=1))
    assert [p.qos for p in subscriber.take()] == [0]  # [MQTT-3.8.4-6]


def test_subscriber_qos_2_flow_with_pubrec_pubrel_pubcomp():
    h = Harness()
    subscriber, _ = h.connect("sub")
    subscriber.subscribe(("t", 2))
    publisher, _ = h.connect("pub")
    publisher.send(Publish("t", b"x", qos=2, packet_id=1))
    [delivered] = subscriber.take()
    assert subscriber.send(Pubrec(delivered.packet_id)) == [Pubrel(delivered.packet_id)]
    assert subscriber.send(Pubcomp(delivered.packet_id)) == []
    assert h.broker.sessions["sub"].outgoing.inflight == {}


def test_qos_2_duplicate_before_pubrel_is_not_delivered_twice():
    h = Harness()
    subscriber, _ = h.connect("sub")
    subscriber.subscribe(("t", 2))
    publisher, _ = h.connect("pub")
    assert publisher.send(Publish("t", b"once", qos=2, packet_id=9)) == [Pubrec(9)]
    assert publisher.send(Publish("t", b"once", qos=2, packet_id=9, dup=True)) == [Pubrec(9)]
    assert publisher.send(Publish("t", b"once", qos=2, packet_id=9, dup=True)) == [Pubrec(9)]
    assert len(subscriber.take()) == 1  # [MQTT-4.3.3-2]
    assert publisher.send(Pubrel(9)) == [Pubcomp(9)]
    publisher.send(Publish("t", b"again", qos=2, packet_id=9))  # after PUBCOMP the id is new
    assert [p.payload for p in subscriber.take()] == [b"again"]


def test_qos_2_state_survives_a_reconnect_of_the_publisher():
    h = Harness()
    subscriber, _ = h.connect("sub")
    subscriber.subscribe(("t", 2))
    publisher, _ = h.connect("pub", clean_start=False)
    publisher.send(Publish("t", b"once", qos=2, packet_id=9))
    publisher.drop()
    publisher, _ = h.connect("pub", clean_start=False)
    assert publisher.send(Publish("t", b"once", qos=2, packet_id=9, dup=True)) == [Pubrec(9)]
    assert len(subscriber.take()) == 1


@pytest.mark.parametrize("version, compat", [(4, "2.0.11"), (5, "2.0.11"), (5, "2.0.21"), (5, "2.1.2")])
def test_pubrel_for_an_unknown_packet_id(version, compat):
    """PUBCOMP all the same [MQTT-4.3.3-11] (5.0); 5.0 allows 0x92 Packet Identifier not found or 0x00,
    and every mosquitto version answers 0x00."""
    h = Harness(mosquitto_compat=compat)
    client, _ = h.connect("c", version)
    assert client.send(Pubrel(77)) == [Pubcomp(77, 0)]


def test_in_flight_window_holds_back_the_rest_in_order():
    h = Harness(max_inflight_messages=2)
    subscriber, _ = h.connect("sub")
    subscriber.subscribe(("t", 1))
    publisher, _ = h.connect("pub")
    for n in range(5):
        publisher.send(Publish("t", str(n).encode(), qos=1, packet_id=n + 1))
    first = subscriber.take()
    assert [p.payload for p in first] == [b"0", b"1"]
    assert [p.payload for p in subscriber.send(Puback(first[0].packet_id))] == [b"2"]
    assert [p.payload for p in subscriber.send(Puback(first[1].packet_id))] == [b"3"]


def test_v5_client_receive_maximum_limits_what_is_in_flight():
    h = Harness()
    subscriber, _ = h.connect("sub", 5, properties=Properties(receive_maximum=1))
    subscriber.subscribe(("t", 2))
    publisher, _ = h.connect("pub", 5)
    for n in range(3):
        publisher.send(Publish("t", b"x", qos=2, packet_id=n + 1))
        publisher.send(Pubrel(n + 1))
    [first] = subscriber.take()  # [MQTT-3.3.4-9]
    assert subscriber.send(Pubrec(first.packet_id)) == [Pubrel(first.packet_id)]  # PUBREL is not held back
    assert len(subscriber.send(Pubcomp(first.packet_id))) == 1


def test_qos_0_is_not_held_back_by_a_full_window():
    h = Harness(max_inflight_messages=1)
    subscriber, _ = h.connect("sub")
    subscriber.subscribe(("t", 1))
    publisher, _ = h.connect("pub")
    publisher.send(Publish("t", b"1", qos=1, packet_id=1))
    publisher.send(Publish("t", b"2", qos=1, packet_id=2))
    publisher.send(Publish("t", b"3", qos=0))
    assert [(p.payload, p.qos) for p in subscriber.take()] == [(b"1", 1), (b"3", 0)]


def test_offline_persistent_session_queues_qos_1_and_2_not_qos_0():
    h = Harness()
    subscriber, _ = h.connect("sub", 4, clean_start=False)
    subscriber.subscribe(("t", 2))
    subscriber.send(Disconnect())
    publisher, _ = h.connect("pub")
    publisher.send(Publish("t", b"q0", qos=0))
    publisher.send(Publish("t", b"q1", qos=1, packet_id=1))
    publisher.send(Publish("t", b"q2", qos=2, packet_id=2))
    subscriber, connack = h.connect("sub", 4, clean_start=False)
    assert connack.session_present
    assert [(p.payload, p.qos, p.dup) for p in subscriber.take()] == [(b"q1", 1, False), (b"q2", 2, False)]


def test_queue_is_bounded_by_max_queued_messages():
    h = Harness(max_queued_messages=2)
    subscriber, _ = h.connect("sub", 4, clean_start=False)
    subscriber.subscribe(("t", 1))
    subscriber.drop()
    publisher, _ = h.connect("pub")
    for n in range(5):
        publisher.send(Publish("t", str(n).encode(), qos=1, packet_id=n + 1))
    subscriber, _ = h.connect("sub", 4, clean_start=False)
    assert [p.payload for p in subscriber.take()] == [b"0", b"1"]


def test_unacknowledged_messages_are_sent_again_with_dup_on_reconnect():
    h = Harness()
    subscriber, _ = h.connect("sub", 4, clean_start=False)
    subscriber.subscribe(("t", 2))
    publisher, _ = h.connect("pub")
    publisher.send(Publish("t", b"one", qos=1, packet_id=1))
    publisher.send(Publish("t", b"two", qos=2, packet_id=2))
    publisher.send(Publish("t", b"three", qos=2, packet_id=3))
    first = subscriber.take()
    subscriber.send(Pubrec(first[2].packet_id))  # the third got as far as PUBREL
    subscriber.drop()
    subscriber, _ = h.connect("sub", 4, clean_start=False)
    again = subscriber.take()  # [MQTT-4.4.0-1]: same ids, same order
    assert [(type(p).__name__, p.packet_id) for p in again] == [("Publish", 1), ("Publish", 2), ("Pubrel", 3)]
    assert all(p.dup for p in again[:2])  # [MQTT-3.3.1-1]


def test_clean_session_reconnect_does_not_resend():
    h = Harness()
    subscriber, _ = h.connect("sub", 5, properties=Properties(session_expiry_interval=100))
    subscriber.subscribe(("t", 1))
    publisher, _ = h.connect("pub")
    publisher.send(Publish("t", b"one", qos=1, packet_id=1))
    subscriber.drop()
    subscriber, connack = h.connect("sub", 5, clean_start=True)
    assert not connack.session_present and subscriber.take() == []


def test_messages_from_one_publisher_keep_their_order():
    h = Harness(max_inflight_messages=3)
    subscriber, _ = h.connect("sub")
    subscriber.subscribe(("t", 1))
    publisher, _ = h.connect("pub")
    received, unacknowledged = [], []
    for n in range(20):
        publisher.send(Publish("t", str(n).encode(), qos=1, packet_id=n + 1))
        new = subscriber.take()
        received += new
        unacknowledged += new
        if n % 4 == 3 or n == 19:
            while unacknowledged:
                more = subscriber.send(Puback(unacknowledged.pop(0).packet_id))
                received += more
                unacknowledged += more
    assert [int(p.payload) for p in received] == list(range(20))  # [MQTT-4.6.0-6]


def test_v311_overlapping_subscriptions_give_one_copy_at_the_highest_qos():
    h = Harness()
    subscriber, _ = h.connect("sub", 4)
    subscriber.subscribe(("a/+", 1), ("a/#", 2), ("a/b", 0))
    publisher, _ = h.connect("pub", 4)
    publisher.send(Publish("a/b", b"x", qos=2, packet_id=1))
    assert [p.qos for p in subscriber.take()] == [2]  # [MQTT-3.3.5-1]


def test_v5_overlapping_subscriptions_give_one_copy_per_subscription_with_its_identifier():
    h = Harness()
    subscriber, _ = h.connect("sub", 5)
    subscriber.subscribe(("a/+", 1), subscription_identifiers=[7])
    subscriber.subscribe(("a/#", 2), packet_id=2)
    publisher, _ = h.connect("pub", 5)
    publisher.send(Publish("a/b", b"x", qos=2, packet_id=1))
    copies = sorted((p.qos, tuple(p.properties.subscription_identifiers)) for p in subscriber.take())
    assert copies == [(1, (7,)), (2, ())]  # [MQTT-3.3.4-2], [MQTT-3.3.4-5]


def test_v5_no_local():
    h = Harness()
    client, _ = h.connect("me", 5)
    client.send(Subscribe(1, [Subscription("t", 1, no_local=True)]))
    client.send(Publish("t", b"mine", qos=0))
    assert client.take() == []  # [MQTT-3.8.3-3]
    other, _ = h.connect("other", 5)
    other.send(Publish("t", b"theirs", qos=0))
    assert [p.payload for p in client.take()] == [b"theirs"]


def test_v5_publish_properties_are_forwarded_unchanged():
    h = Harness()
    subscriber, _ = h.connect("sub", 5)
    subscriber.subscribe(("t", 1))
    publisher, _ = h.connect("pub", 5)
    sent = Properties(payload_format_indicator=1, content_type="text/plain", response_topic="reply/here",
                      correlation_data=b"\x01\x02", user_properties=[("b", "2"), ("a", "1"), ("b", "3")])
    publisher.send(Publish("t", b"x", qos=1, packet_id=1, properties=sent))
    [delivered] = subscriber.take()
    assert delivered.properties == sent  # [MQTT-3.3.2-4/15/16/17/18/20]


def test_v5_message_expiry_counts_down_and_expired_messages_are_dropped():
    h = Harness()
    subscriber, _ = h.connect("sub", 5, clean_start=False, properties=Properties(session_expiry_interval=1000))
    subscriber.subscribe(("t", 1))
    subscriber.drop()
    publisher, _ = h.connect("pub", 5)
    publisher.send(Publish("t", b"short", qos=1, packet_id=1, properties=Properties(message_expiry_interval=5)))
    publisher.send(Publish("t", b"long", qos=1, packet_id=2, properties=Properties(message_expiry_interval=60)))
    h.advance(10)
    subscriber, _ = h.connect("sub", 5, clean_start=False, properties=Properties(session_expiry_interval=1000))
    [delivered] = subscriber.take()  # [MQTT-3.3.2-5]
    assert delivered.payload == b"long"
    assert delivered.properties.message_expiry_interval == 50  # [MQTT-3.3.2-6]


def test_v5_incoming_receive_maximum_overrun_is_disconnect_0x93():
    h = Harness(max_inflight_messages=2)
    client, _ = h.connect("c", 5)
    client.send(Publish("t", b"x", qos=2, packet_id=1))
    client.send(Publish("t", b"x", qos=2, packet_id=2))
    packets = client.send(Publish("t", b"x", qos=2, packet_id=3))
    assert isinstance(packets[-1], Disconnect) and packets[-1].reason_code == 0x93
    assert client.closed


def test_v5_topic_alias_from_the_client():
    h = Harness()
    subscriber, _ = h.connect("sub", 5)
    subscriber.subscribe(("long/topic/name", 0))
    publisher, _ = h.connect("pub", 5)
    publisher.send(Publish("long/topic/name", b"1", properties=Properties(topic_alias=3)))
    publisher.send(Publish("", b"2", properties=Properties(topic_alias=3)))
    delivered = subscriber.take()
    assert [(p.topic, p.payload) for p in delivered] == [("long/topic/name", b"1"), ("long/topic/name", b"2")]
    assert all(p.properties.topic_alias is None for p in delivered)


@pytest.mark.parametrize("alias, topic, code", [(11, "t", 0x94), (5, "", 0x82)])
def test_v5_invalid_topic_alias(alias, topic, code):
    h = Harness()
    client, _ = h.connect("c", 5)
    packets = client.send(Publish(topic, b"x", properties=Properties(topic_alias=alias)))
    assert [p.reason_code for p in packets] == [code] and client.closed


def test_v5_maximum_qos_and_retain_available_are_enforced():
    h = Harness(max_qos=1, retain_available=False)
    client, _ = h.connect("c", 5)
    assert [p.reason_code for p in client.send(Publish("t", b"x", qos=2, packet_id=1))] == [0x9B]
    client, _ = h.connect("d", 5)
    assert [p.reason_code for p in client.send(Publish("t", b"x", retain=True))] == [0x9A]
    client, _ = h.connect("e", 4)
    assert client.send(Publish("t", b"x", qos=2, packet_id=1)) == [] and client.closed


def test_v5_subscription_identifier_from_a_client_is_a_protocol_error():
    h = Harness()
    client, _ = h.connect("c", 5)
    packets = client.send(Publish("t", b"x", properties=Properties(subscription_identifiers=[3])))
    assert [p.reason_code for p in packets] == [0x82]


def test_publish_larger_than_the_clients_maximum_packet_size_is_dropped():
    h = Harness()
    subscriber, _ = h.connect("sub", 5, properties=Properties(maximum_packet_size=50))
    subscriber.subscribe(("t", 1))
    publisher, _ = h.connect("pub", 5)
    publisher.send(Publish("t", b"x" * 100, qos=1, packet_id=1))
    publisher.send(Publish("t", b"small", qos=1, packet_id=2))
    assert [p.payload for p in subscriber.take()] == [b"small"]  # [MQTT-3.1.2-25]
    assert len(h.broker.sessions["sub"].outgoing.inflight) == 1


def test_message_size_limit_drops_the_message():
    h = Harness(message_size_limit=4)
    subscriber, _ = h.connect("sub", 5)
    subscriber.subscribe(("t", 1))
    publisher, _ = h.connect("pub", 5)
    [puback] = publisher.send(Publish("t", b"too long", qos=1, packet_id=1))
    assert puback.reason_code == 0x97
    assert subscriber.take() == []


@pytest.mark.parametrize("version", [4, 5])
def test_copies_of_many_messages_leave_the_queues_interleaved_with_their_own_ids_and_bytes(version):
    """Many messages, several subscribers with small windows acknowledging in different orders: the
    copies leave the queues interleaved, and each one's bytes (the outbox reuses a message's encoding
    around the packet identifier) decode to that message with that copy's identifier; a resend after a
    reconnect carries DUP 1."""
    h = Harness(max_inflight_messages=2)
    kept = {"clean_start": False} | ({"properties": Properties(session_expiry_interval=60)} if version == 5 else {})
    subscribers = []
    for number in range(3):
        client, _ = h.connect(f"s{number}", version, **kept)
        client.subscribe(("t", 1))
        subscribers.append(client)
    publisher, _ = h.connect("pub", version)
    for number in range(10):
        publisher.send(Publish("t", b"payload %d" % number, qos=1, packet_id=number + 1, retain=number == 9))
    received = {client: [] for client in subscribers}
    unacknowledged = {client: publishes(client.take()) for client in subscribers}
    for round_ in range(12):
        for index, client in enumerate(subscribers):
            copies, unacknowledged[client] = unacknowledged[client], []
            received[client] += copies
            for copy in (copies if (round_ + index) % 2 else reversed(copies)):
                unacknowledged[client] += publishes(client.send(Puback(copy.packet_id)))
    for client in subscribers:
        copies = received[client]
        assert [copy.payload for copy in copies] == [b"payload %d" % number for number in range(10)]
        assert all(copy.qos == 1 and not copy.dup and not copy.retain for copy in copies)
        assert len({copy.packet_id for copy in copies[:2]}) == 2
    # Unacknowledged copies go out again with DUP 1 after a reconnect [MQTT-3.3.1-1]
    publisher.send(Publish("t", b"again", qos=1, packet_id=20))
    first = publishes(subscribers[0].take())
    assert [copy.payload for copy in first] == [b"again"] and not first[0].dup
    subscribers[0].drop()
    again, _ = h.connect("s0", version, **kept)
    resent = publishes(again.inbox)
    assert [(copy.payload, copy.packet_id, copy.dup) for copy in resent] == [(b"again", first[0].packet_id, True)]
