"""Retained messages: stored, replaced, deleted, delivered on subscription with RETAIN 1."""

from __future__ import annotations

import pytest

from conformance.checks import check, statement
from refbroker.protocol import MQTT_5

from .helpers import QOS_MIN, QUIET, receive_publishes


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
    with statement("MQTT-3.3.1-6" if version != MQTT_5 else "MQTT-3.3.1-9"):  # sent on a new subscription
        message = sub.expect_publish()
    check("MQTT-3.3.1-5", (message.topic, message.payload, message.qos) == (retain_topic, b"kept", 1),
          f"the retained message and its QoS were not kept: {message}")
    check("MQTT-3.3.1-8" if version != MQTT_5 else "MQTT-3.3.1-9", message.retain,
          f"a message sent because of a new subscription must have RETAIN 1: {message}")


@pytest.mark.spec("MQTT-3.3.1-5", "MQTT-3.3.1-7", "MQTT-3.8.4-6", version="3.1.1")
@pytest.mark.spec("MQTT-3.3.1-5", "MQTT-3.8.4-8", version="5.0")
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
    got = [(p.payload, p.retain) for p in received]
    check("MQTT-3.3.1-7" if version != MQTT_5 else "MQTT-3.3.1-5", got in ([(b"new", True)], []),
          f"expected the QoS 0 retained message (or none), got {received}")
    # stored at QoS 0, sent at min(0, granted 1) = 0
    check(QOS_MIN[version], all(p.qos == 0 for p in received), f"the QoS 0 retained message was sent at QoS "
          f"{[p.qos for p in received]} to a QoS 1 subscription")


@pytest.mark.spec("MQTT-3.3.1-10", "MQTT-3.3.1-11", "MQTT-3.3.1-6", version="3.1.1")
@pytest.mark.spec("MQTT-3.3.1-6", "MQTT-3.3.1-7", "MQTT-3.3.1-9", version="5.0")
def test_empty_retained_message_deletes(client_factory, version, retain_topic):
    """A retained PUBLISH with an empty payload reaches current subscribers and deletes the retained
    message; it is never itself retained."""
    publisher = client_factory("publisher")
    publisher.publish(retain_topic, b"to delete", qos=1, retain=True)
    current = client_factory("current")
    current.subscribe((retain_topic, 1))
    sent_on_subscribe = "MQTT-3.3.1-6" if version != MQTT_5 else "MQTT-3.3.1-9"
    with statement(sent_on_subscribe):
        first = current.expect_publish()
        check(sent_on_subscribe, first.payload == b"to delete", f"the retained message was not sent to a new "
              f"subscription: {first}")
    removed = "MQTT-3.3.1-10" if version != MQTT_5 else "MQTT-3.3.1-6"
    publisher.publish(retain_topic, b"", qos=1, retain=True)
    with statement(removed):
        deletion = current.expect_publish()
        check(removed, deletion.payload == b"",
              f"the empty retained PUBLISH is delivered normally to current subscribers: {deletion}")
    later = client_factory("later")
    later.subscribe((retain_topic, 1))
    with statement("MQTT-3.3.1-11" if version != MQTT_5 else "MQTT-3.3.1-7"):  # nothing stored for `later`
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
        got = sorted((p.topic, p.payload, p.retain) for p in received)
        retained = "MQTT-3.3.1-6" if version == 4 else "MQTT-3.3.1-9"
        check(retained, got == [(f"{topic}/w/a", b"A", True), (f"{topic}/w/b", b"B", True)],
              f"the retained messages of every matching topic must be sent: got {got}")
        qos = sorted((p.topic, p.qos) for p in received)
        check(QOS_MIN[version], qos == [(f"{topic}/w/a", 1), (f"{topic}/w/b", 1)],
              f"each at min(published QoS, granted QoS 1): got {qos}")
    finally:
        for name in topics:
            publisher.publish(name, b"", retain=True)


@pytest.mark.spec("MQTT-3.8.4-3", "MQTT-3.3.1-6", version="3.1.1")
@pytest.mark.spec("MQTT-3.8.4-3", "MQTT-3.8.4-4", "MQTT-3.3.1-9", version="5.0")
def test_resubscribe_resends_retained(client_factory, version, retain_topic):
    """Subscribing again to the same filter replaces the subscription and resends retained messages."""
    publisher = client_factory("publisher")
    publisher.publish(retain_topic, b"again", qos=1, retain=True)
    sub = client_factory("subscriber")
    sub.subscribe((retain_topic, 0))
    sent_on_subscribe = "MQTT-3.3.1-6" if version != MQTT_5 else "MQTT-3.3.1-9"
    with statement(sent_on_subscribe):
        first = sub.expect_publish()
        check(sent_on_subscribe, first.payload == b"again", f"the retained message was not sent to a new "
              f"subscription: {first}")
    resend = "MQTT-3.8.4-3" if version != MQTT_5 else "MQTT-3.8.4-4"
    sub.subscribe((retain_topic, 1))
    with statement(resend):
        resent = sub.expect_publish()
        check(resend, resent.payload == b"again" and resent.retain, f"the retained message was not resent: {resent}")
        sub.expect_nothing(QUIET)
    check("MQTT-3.8.4-3", resent.qos == 1, f"the replacing subscription's QoS 1 does not apply: {resent}")
    publisher.publish(retain_topic, b"live", qos=1)
    live = receive_publishes(sub, 1)
    check("MQTT-3.8.4-3", [(p.payload, p.qos) for p in live] == [(b"live", 1)],
          f"a replaced subscription delivers once, at its new QoS: {live}")
