"""The replay diff's normalisation rules, on hand-made recorded/replayed sessions (no network)."""

from __future__ import annotations


from pcap.diff import RULES, diff_sessions
from pcap.session import BROKER, CLIENT, Chunk, Session
from refbroker.protocol import (MQTT_5, Connack, Connect, Disconnect, Properties, Puback, Publish, Pubrel, Suback,
                                Subscribe, Subscription)


def session(*events, closed_by=None) -> Session:
    """events: ('c'|'b', packet) in order, 10 ms apart; closed_by: 'c' or 'b' closes last."""
    chunks = []
    for index, (side, packet) in enumerate(events):
        data = packet if isinstance(packet, bytes) else packet.encode(MQTT_5)
        chunks.append(Chunk(100.0 + index * 0.01, CLIENT if side == "c" else BROKER, data))
    result = Session(1, ("127.0.0.1", 40000), ("127.0.0.1", 1883), chunks, opened=99.99)
    if closed_by:
        end = 100.0 + len(events) * 0.01
        result.closed, result.closed_by = end, CLIENT if closed_by == "c" else BROKER
        result.side_closed = {result.closed_by: end}
    return result


CONNECT = ("c", Connect(client_id="", protocol_level=MQTT_5))
SUBSCRIBE = ("c", Subscribe(1, [Subscription("t/#", 1)]))
SUBACK = ("b", Suback(1, [1]))


def connack(**props):
    return ("b", Connack(0, False, Properties(**props)))


def kinds(recorded, replayed, strict=False):
    return [d.kind for d in diff_sessions(recorded, replayed, strict=strict).differences]


def test_identical_sessions_have_no_difference():
    events = [CONNECT, connack(), SUBSCRIBE, SUBACK]
    assert kinds(session(*events), session(*events)) == []


def test_assigned_client_identifier_is_compared_by_presence():
    a = session(CONNECT, connack(assigned_client_identifier="auto-1"))
    b = session(CONNECT, connack(assigned_client_identifier="auto-2"))
    assert kinds(a, b) == []
    assert kinds(a, session(CONNECT, connack())) == ["CONNACK Assigned Client Identifier (0x12)"]
    assert kinds(a, b, strict=True) == ["CONNACK bytes"]  # --strict: no normalisation


def test_a_real_difference_names_the_field():
    a = session(CONNECT, connack(receive_maximum=20))
    b = session(CONNECT, connack(receive_maximum=100))
    (difference,) = diff_sessions(a, b).differences
    assert difference.kind == "CONNACK Receive Maximum (0x21)"
    assert "Receive Maximum (0x21)=20" in difference.recorded and "Receive Maximum (0x21)=100" in difference.replayed


def test_broker_packet_ids_are_compared_by_order_of_use():
    a = session(CONNECT, connack(), SUBSCRIBE, SUBACK, ("b", Publish("t/1", b"x", 1, False, False, 17)),
                ("c", Puback(17)), ("b", Publish("t/2", b"y", 2, False, False, 18)), ("b", Pubrel(18)))
    b = session(CONNECT, connack(), SUBSCRIBE, SUBACK, ("b", Publish("t/1", b"x", 1, False, False, 1)),
                ("c", Puback(1)), ("b", Publish("t/2", b"y", 2, False, False, 2)), ("b", Pubrel(2)))
    assert kinds(a, b) == []
    swapped = session(CONNECT, connack(), SUBSCRIBE, SUBACK, ("b", Publish("t/1", b"x", 1, False, False, 2)),
                      ("c", Puback(2)), ("b", Publish("t/2", b"y", 2, False, False, 1)), ("b", Pubrel(2)))
    assert kinds(a, swapped) == ["PUBREL Packet Identifier"]  # the PUBREL names the first message's id


def test_broker_topic_aliases_are_resolved():
    a = session(CONNECT, connack(), SUBSCRIBE, SUBACK,
                ("b", Publish("t/1", b"x", 0, properties=Properties(topic_alias=1))),
                ("b", Publish("", b"y", 0, properties=Properties(topic_alias=1))))
    b = session(CONNECT, connack(), SUBSCRIBE, SUBACK, ("b", Publish("t/1", b"x", 0)), ("b", Publish("t/1", b"y", 0)))
    assert kinds(a, b) == []
    c = session(CONNECT, connack(), SUBSCRIBE, SUBACK, ("b", Publish("t/1", b"x", 0)), ("b", Publish("t/2", b"y", 0)))
    assert kinds(a, c) == ["PUBLISH Topic Name"]


def test_sys_values_and_message_expiry():
    sys_a = session(CONNECT, connack(), ("b", Publish("$SYS/broker/uptime", b"12 seconds", 0)))
    sys_b = session(CONNECT, connack(), ("b", Publish("$SYS/broker/uptime", b"13 seconds", 0)))
    assert kinds(sys_a, sys_b) == []
    other_a = session(CONNECT, connack(), ("b", Publish("t/uptime", b"12", 0)))
    other_b = session(CONNECT, connack(), ("b", Publish("t/uptime", b"13", 0)))
    assert kinds(other_a, other_b) == ["PUBLISH Payload"]

    def expiring(seconds):
        return session(CONNECT, connack(), ("b", Publish("t", b"x", 0, properties=Properties(
            message_expiry_interval=seconds))))
    assert kinds(expiring(60), expiring(59)) == []  # counts down while the broker holds it: within 2 s
    assert kinds(expiring(60), expiring(50)) == ["PUBLISH Message Expiry Interval (0x02)"]


def test_answers_and_deliveries_interleave_freely_but_each_keeps_its_order():
    ack_first = session(CONNECT, connack(), ("c", Publish("t/a", b"1", 1, False, False, 5)), ("b", Puback(5)),
                        ("b", Publish("t/a", b"1", 0)))
    delivery_first = session(CONNECT, connack(), ("c", Publish("t/a", b"1", 1, False, False, 5)),
                             ("b", Publish("t/a", b"1", 0)), ("b", Puback(5)))
    assert kinds(ack_first, delivery_first) == []
    in_order = session(CONNECT, connack(), ("b", Publish("t/a", b"1", 0)), ("b", Publish("t/a", b"2", 0)))
    reversed_ = session(CONNECT, connack(), ("b", Publish("t/a", b"2", 0)), ("b", Publish("t/a", b"1", 0)))
    assert sorted(kinds(in_order, reversed_)) == ["extra PUBLISH", "missing PUBLISH"]


def test_missing_and_extra_packets():
    a = session(CONNECT, connack(), SUBSCRIBE, SUBACK)
    b = session(CONNECT, connack(), SUBSCRIBE)
    assert kinds(a, b) == ["missing SUBACK"]
    assert kinds(b, a) == ["extra SUBACK"]
    assert kinds(a, session(CONNECT, connack(), SUBSCRIBE, ("b", Disconnect(0x82)))) == ["DISCONNECT instead of SUBACK"]


def test_broker_close_counts_only_before_the_client_is_done():
    closes = session(CONNECT, connack(), SUBSCRIBE, closed_by="b")
    stays = session(CONNECT, connack(), SUBSCRIBE)
    assert kinds(closes, stays) == ["connection close"]
    after_disconnect = session(CONNECT, connack(), ("c", Disconnect()), closed_by="b")
    client_closed = session(CONNECT, connack(), ("c", Disconnect()), closed_by="c")
    assert kinds(after_disconnect, client_closed) == []


def test_undecodable_broker_packets_are_compared_by_bytes():
    a = session(CONNECT, connack(), ("b", b"\x40\x01\x00"))
    b = session(CONNECT, connack(), ("b", b"\x40\x01\x01"))
    assert kinds(a, b) == ["PUBACK bytes"]
    assert kinds(a, session(CONNECT, connack(), ("b", b"\x40\x01\x00"))) == []


def test_the_rules_are_listed():
    names = [name for name, _ in RULES]
    assert names == ["assigned client identifier", "broker packet identifiers", "broker topic aliases",
                     "message expiry", "$SYS values", "timing and interleaving", "close after the client's end"]
    assert all(text for _, text in RULES)


def test_property_order_and_the_short_forms_are_compared():
    """Two encoding choices the fields do not show: a broker imitating another one makes them too."""
    def ordered(*order):
        return session(CONNECT, ("b", Connack(0, False, Properties(receive_maximum=20, topic_alias_maximum=10,
                                                                     wire_order=order))))
    assert kinds(ordered(0x22, 0x21), ordered(0x22, 0x21)) == []
    assert kinds(ordered(0x22, 0x21), ordered(0x21, 0x22)) == ["CONNACK Property order"]
    short = session(CONNECT, connack(), ("b", b"\xe0\x01\x81"))  # DISCONNECT 0x81, Property Length left out
    assert kinds(short, session(CONNECT, connack(), ("b", b"\xe0\x02\x81\x00"))) == ["DISCONNECT Remaining Length"]
    assert kinds(short, session(CONNECT, connack(), ("b", Disconnect(0x81)))) == []  # the codec's short form
