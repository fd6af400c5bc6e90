"""Wills (abnormal disconnect, delay, retain) and session lifetime (v5 expiry, persistent 3.1.1)."""

import pytest

from refbroker.protocol import Disconnect, Pingreq, Properties, Will

from .harness import Harness


def watcher(h, topic="w", version=4):
    client, _ = h.connect(f"watch-{topic}", version)
    client.subscribe((topic, 2))
    return client


@pytest.mark.parametrize("version", [3, 4, 5])
def test_will_is_published_when_the_connection_fails(version):
    h = Harness()
    watch = watcher(h)
    client, _ = h.connect("c", version, will=Will("w", b"gone", qos=1))
    client.drop()
    [will] = watch.take()  # [MQTT-3.1.2-8]
    assert (will.topic, will.payload, will.qos, will.retain) == ("w", b"gone", 1, False)


@pytest.mark.parametrize("version", [4, 5])
def test_will_is_not_published_after_disconnect(version):
    h = Harness()
    watch = watcher(h)
    client, _ = h.connect("c", version, will=Will("w", b"gone"))
    client.send(Disconnect())
    client.drop()
    assert watch.take() == []  # [MQTT-3.14.4-3]


def test_v5_disconnect_with_will_message_publishes_it():
    h = Harness()
    watch = watcher(h)
    client, _ = h.connect("c", 5, will=Will("w", b"gone"))
    client.send(Disconnect(0x04))
    assert [p.payload for p in watch.take()] == [b"gone"]


def test_will_on_keep_alive_timeout_and_on_protocol_error():
    h = Harness()
    watch = watcher(h)
    client, _ = h.connect("a", 4, keep_alive=1, will=Will("w", b"timeout"))
    h.advance(2)
    client2, _ = h.connect("b", 4, will=Will("w", b"error"))
    client2.send(b"\xf0\x00")  # AUTH is reserved in 3.1.1: malformed
    assert [p.payload for p in watch.take()] == [b"timeout", b"error"]


def test_retained_will():
    h = Harness()
    client, _ = h.connect("c", 4, will=Will("w", b"gone", retain=True))
    client.drop()
    late, _ = h.connect("late")
    packets = late.subscribe("w")
    assert packets[1].retain and packets[1].payload == b"gone"  # [MQTT-3.1.2-17]


def test_v5_will_properties_are_published():
    h = Harness()
    watch = watcher(h, version=5)
    will_properties = Properties(content_type="text/plain", user_properties=[("k", "1"), ("j", "2")],
                                 message_expiry_interval=30)
    client, _ = h.connect("c", 5, will=Will("w", b"gone", properties=will_properties))
    client.drop()
    [will] = watch.take()
    assert will.properties.content_type == "text/plain"
    assert will.properties.user_properties == [("k", "1"), ("j", "2")]  # [MQTT-3.1.3-10]
    assert will.properties.message_expiry_interval == 30


def test_v5_will_delay():
    h = Harness()
    watch = watcher(h)
    session = Properties(session_expiry_interval=100)
    client, _ = h.connect("c", 5, properties=session, will=Will("w", b"late", properties=Properties(
        will_delay_interval=10)))
    client.drop()
    h.advance(9)
    assert watch.take() == []
    h.advance(1)
    assert [p.payload for p in watch.take()] == [b"late"]


def test_v5_will_delay_is_cancelled_by_reconnecting():
    h = Harness()
    watch = watcher(h)
    session = Properties(session_expiry_interval=100)
    client, _ = h.connect("c", 5, properties=session, will=Will("w", b"late", properties=Properties(
        will_delay_interval=10)))
    client.drop()
    h.advance(5)
    h.connect("c", 5, clean_start=False, properties=session)
    h.advance(10)
    assert watch.take() == []  # [MQTT-3.1.3-9]


def test_v5_will_is_sent_when_the_session_ends_before_the_delay():
    h = Harness()
    watch = watcher(h)
    client, _ = h.connect("c", 5, properties=Properties(session_expiry_interval=3), will=Will(
        "w", b"late", properties=Properties(will_delay_interval=10)))
    client.drop()
    h.advance(3)
    assert [p.payload for p in watch.take()] == [b"late"]  # [MQTT-3.1.2-8]


def test_v5_will_with_delay_and_no_session_expiry_is_sent_at_once():
    h = Harness()
    watch = watcher(h)
    client, _ = h.connect("c", 5, will=Will("w", b"now", properties=Properties(will_delay_interval=10)))
    client.drop()
    assert [p.payload for p in watch.take()] == [b"now"]


def test_v5_session_expiry():
    h = Harness()
    client, _ = h.connect("c", 5, properties=Properties(session_expiry_interval=10))
    client.subscribe("t")
    client.drop()
    h.advance(9)
    client, connack = h.connect("c", 5, clean_start=False, properties=Properties(session_expiry_interval=10))
    assert connack.session_present
    client.drop()
    h.advance(10)
    client, connack = h.connect("c", 5, clean_start=False)
    assert not connack.session_present  # [MQTT-4.1.0-2]
    assert len(h.broker.subscriptions) == 0


def test_v5_session_expiry_0_ends_the_session_with_the_connection():
    h = Harness()
    client, _ = h.connect("c", 5, clean_start=False)
    client.drop()
    _, connack = h.connect("c", 5, clean_start=False)
    assert not connack.session_present


def test_v5_disconnect_can_change_the_session_expiry():
    h = Harness()
    client, _ = h.connect("c", 5, properties=Properties(session_expiry_interval=10))
    client.send(Disconnect(properties=Properties(session_expiry_interval=0)))
    _, connack = h.connect("c", 5, clean_start=False)
    assert not connack.session_present


def test_v5_disconnect_setting_expiry_after_connect_said_0_is_a_protocol_error():
    h = Harness()
    client, _ = h.connect("c", 5)
    packets = client.send(Disconnect(properties=Properties(session_expiry_interval=10)))
    assert [p.reason_code for p in packets] == [0x82]
    assert client.closed


def test_persistent_client_expiration_ends_v311_sessions():
    h = Harness(persistent_client_expiration=60)
    client, _ = h.connect("c", 4, clean_start=False)
    client.drop()
    h.advance(61)
    _, connack = h.connect("c", 4, clean_start=False)
    assert not connack.session_present


def test_persistent_v311_session_never_expires_by_default():
    h = Harness()
    client, _ = h.connect("c", 4, clean_start=False)
    client.drop()
    h.advance(10**8)
    _, connack = h.connect("c", 4, clean_start=False)
    assert connack.session_present


def test_takeover_publishes_the_old_connections_will():
    h = Harness()
    watch = watcher(h)
    h.connect("c", 4, will=Will("w", b"old"))
    h.connect("c", 4)
    assert [p.payload for p in watch.take()] == [b"old"]


def test_connection_lost_after_close_is_harmless():
    h = Harness()
    client, _ = h.connect("c", 5)
    client.send(Disconnect())
    client.drop()
    client.drop()
    assert len(h.broker.connections) == 0
    assert client.send(Pingreq()) == []
