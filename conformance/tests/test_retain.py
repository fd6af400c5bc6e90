"""Retained messages: stored, replaced, deleted, delivered on subscription with RETAIN 1."""

from __future__ import annotations

import pytest

from refbroker.protocol import MQTT_5

from .helpers import QUIET, receive_publishes


@pytest.fixture
def retain_topic(client_factory, version, topic, broker):
    """A topic for retained messages; its retained message is removed after the test."""
    cleaner = client_factory("cleaner")
    broker.require("retain", cleaner.connack if version == MQTT_5 else None)
    name = f"{topic}/retained"
    yield name
    if not cleaner.peer_closed:
        cleaner.publish(name, b"", retain=True)


@pytest.mark.spec("MQTT-3.3.1-5", "MQTT-3.3.1-6", "MQTT-3.3.1-8", version="3.1.1")
@pytest.mark.spec("MQTT-3.3.1-5", "MQTT-3.3.1-9", version="5.0")
def test_retained_message_delivered_to_new_subscription(client_factory, version, retain_topic):
    publisher = client_factory("publisher")
    publisher.publish(retain_topic, b"kept", qos=1, retain=True)
    sub = client_factory("subscriber")
    sub.subscribe((retain_topic, 1))
    message = sub.expect_publish()
    assert (message.topic, message.payload, message.qos) == (retain_topic, b"kept", 1)
    assert message.retain, "a message sent because of a new subscription must have RETAIN 1"


@pytest.mark.spec("MQTT-3.3.1-5", "MQTT-3.3.1-7", version="3.1.1")
@pytest.mark.spec("MQTT-3.3.1-5", version="5.0")
def test_retained_message_replaced_by_newer(client_factory, version, retain_topic):
    """Only the newest retained message of a topic is kept (a QoS 0 one replaces a QoS 1 one too).

    The server "SHOULD store the new QoS 0 message ... but MAY choose to discard it at any time" (3.3.1.3
    in both versions), so no retained message at all is allowed too; the old one never is."""
    publisher = client_factory("publisher")
    publisher.publish(retain_topic, b"old", qos=1, retain=True)
    publisher.publish(retain_topic, b"new", qos=0, retain=True)
    publisher.ping()  # the QoS 0 publish has been read before we subscribe
    sub = client_factory("subscriber")
    sub.subscribe((retain_topic, 1))
    received = receive_publishes(sub, 1)
    got = [(p.payload, p.qos, p.retain) for p in received]
    assert got in ([(b"new", 0, True)], []), f"expected the QoS 0 retained message (or none), got {got}"


@pytest.mark.spec("MQTT-3.3.1-10", "MQTT-3.3.1-11", version="3.1.1")
@pytest.mark.spec("MQTT-3.3.1-6", "MQTT-3.3.1-7", version="5.0")
def test_empty_retained_message_deletes(client_factory, version, retain_topic):
    """A retained PUBLISH with an empty payload reaches current subscribers and deletes the retained
    message; it is never itself retained."""
    publisher = client_factory("publisher")
    publisher.publish(retain_topic, b"to delete", qos=1, retain=True)
    current = client_factory("current")
    current.subscribe((retain_topic, 1))
    assert current.expect_publish().payload == b"to delete"
    publisher.publish(retain_topic, b"", qos=1, retain=True)
    deletion = current.expect_publish()
    assert deletion.payload == b"", "the empty retained PUBLISH is delivered normally to current subscribers"
    later = client_factory("later")
    later.subscribe((retain_topic, 1))
    later.expect_nothing(QUIET)


@pytest.mark.spec("MQTT-3.3.1-12", version="3.1.1")
@pytest.mark.spec("MQTT-3.3.1-8", version="5.0")
def test_non_retained_publish_leaves_retained_message(client_factory, version, retain_topic):
    """A RETAIN 0 PUBLISH is not stored and does not replace or delete the retained message."""
    publisher = client_factory("publisher")
    publisher.publish(retain_topic, b"retained", qos=1, retain=True)
    publisher.publish(retain_topic, b"not retained", qos=1, retain=False)
    publisher.publish(retain_topic, b"", qos=1, retain=False)  # an empty non-retained payload deletes nothing
    sub = client_factory("subscriber")
    sub.subscribe((retain_topic, 1))
    received = receive_publishes(sub, 1)
    assert [(p.payload, p.retain) for p in received] == [(b"retained", True)], received


@pytest.mark.spec("MQTT-3.3.1-6", "MQTT-3.8.4-6", version="3.1.1")
@pytest.mark.spec("MQTT-3.3.1-9", "MQTT-3.8.4-8", version="5.0")
def test_retained_messages_of_all_matching_topics(client_factory, version, topic, broker):
    """A wildcard subscription gets the retained message of every matching topic, at min(QoS)."""
    publisher = client_factory("publisher")
    broker.require("retain", publisher.connack if version == MQTT_5 else None)
    topics = {f"{topic}/w/a": (b"A", 2), f"{topic}/w/b": (b"B", 1), f"{topic}/w/c/d": (b"D", 0)}
    for name, (payload, qos) in topics.items():
        publisher.publish(name, payload, qos=qos, retain=True)
    publisher.ping()
    try:
        sub = client_factory("subscriber")
        sub.subscribe((f"{topic}/w/+", 1))
        received = receive_publishes(sub, 2)
        got = sorted((p.topic, p.payload, p.qos, p.retain) for p in received)
        assert got == [(f"{topic}/w/a", b"A", 1, True), (f"{topic}/w/b", b"B", 1, True)], got
    finally:
        for name in topics:
            publisher.publish(name, b"", retain=True)


@pytest.mark.spec("MQTT-3.8.4-3", version="3.1.1")
@pytest.mark.spec("MQTT-3.8.4-3", "MQTT-3.8.4-4", version="5.0")
def test_resubscribe_resends_retained(client_factory, version, retain_topic):
    """Subscribing again to the same filter replaces the subscription and resends retained messages."""
    publisher = client_factory("publisher")
    publisher.publish(retain_topic, b"again", qos=1, retain=True)
    sub = client_factory("subscriber")
    sub.subscribe((retain_topic, 0))
    assert sub.expect_publish().payload == b"again"
    sub.subscribe((retain_topic, 1))
    resent = sub.expect_publish()
    assert resent.payload == b"again" and resent.retain and resent.qos == 1
    sub.expect_nothing(QUIET)
    publisher.publish(retain_topic, b"live", qos=1)
    live = receive_publishes(sub, 1)
    assert [(p.payload, p.qos) for p in live] == [(b"live", 1)], "a replaced subscription delivers once"
