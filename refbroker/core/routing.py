"""Routing: an Application Message to every session whose subscriptions match, and delivery.

`route` finds the matching subscriptions (subscriptions.py) and makes the copies each session gets;
`deliver` sends a copy at once if the client is connected and its in-flight window has room, or
queues it (qos.py); `fill_window` sends queued messages when room frees up. `publish` is for
messages that did not come in a PUBLISH: wills and $SYS values.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..protocol import MQTT_5
from .auth import may_receive
from .connection import CONNECTED, Connection
from .messages import Delivery, Message
from .sessions import Session

if TYPE_CHECKING:
    from .broker import Broker


def route(broker: Broker, message: Message, now: float) -> None:
    """Give `message` to every session with a matching subscription [MQTT-4.5.0-1].

    3.1/3.1.1 clients get one copy at the highest QoS of their matching subscriptions
    [MQTT-3.3.5-1] (3.1.1). 5.0 clients get one copy per matching subscription, each with its own
    QoS and Subscription Identifier, as mosquitto does since 1.6.3 [MQTT-3.3.4-2], [MQTT-3.3.4-5].
    """
    sessions = broker.sessions
    acl = broker.settings.acl is not None
    v3_copies: dict[str, Delivery] = {}
    for match in broker.subscriptions.match(message.topic, broker._is_online):
        session = sessions.get(match.client_id)
        if session is None:
            continue
        options = match.options
        if options.no_local and message.sender == match.client_id:
            continue  # No Local [MQTT-3.8.3-3] (5.0)
        if acl and not may_receive(broker.settings, session.client_id, session.username, message.topic):
            continue  # the ACL does not let this client read this topic
        qos = min(message.qos, options.qos)  # [MQTT-3.8.4-6] (3.1.1), [MQTT-3.8.4-8] (5.0)
        if session.protocol_level == MQTT_5:
            # RETAIN as published only with Retain As Published [MQTT-3.3.1-12/13] (5.0)
            retain = message.retain and options.retain_as_published
            ids = (options.identifier,) if options.identifier is not None else ()
            deliver(broker, session, Delivery(message, qos, retain, ids), now)
        else:
            # RETAIN is 0 for established subscriptions [MQTT-3.3.1-9] (3.1.1)
            earlier = v3_copies.get(match.client_id)
            if earlier is None or earlier.qos < qos:
                v3_copies[match.client_id] = Delivery(message, qos, False)
    for client_id, delivery in v3_copies.items():
        deliver(broker, sessions[client_id], delivery, now)


def deliver(broker: Broker, session: Session, delivery: Delivery, now: float) -> None:
    conn = session.connection
    if conn is not None and conn.state == CONNECTED:
        publish = session.outgoing.send_or_queue(delivery, now, conn.send_window,
                                                 broker.settings.max_queued_messages)
        if publish is not None:
            broker._send(conn, publish)
        return
    # Offline: keep QoS 1/2 for the session [MQTT-3.1.2-5] (3.1.1); QoS 0 only with queue_qos0_messages
    if delivery.qos == 0 and not broker.settings.queue_qos0_messages:
        return
    if not session.outgoing.enqueue(delivery, broker.settings.max_queued_messages):
        broker.counters.publish_dropped += 1


def fill_window(broker: Broker, conn: Connection, now: float) -> None:
    for publish in conn.session.outgoing.fill_window(now, conn.send_window):
        broker._send(conn, publish)


def publish(broker: Broker, message: Message, now: float) -> None:
    """Publish a message that did not come in a PUBLISH: a will, a $SYS value."""
    if message.retain:
        if not broker.settings.retain_available:
            message.retain = False
        else:
            # Will Retain 1: published as retained [MQTT-3.1.2-17] (3.1.1), [MQTT-3.1.2-15] (5.0)
            broker.retained.store(message)
    route(broker, message, now)
