"""PUBLISH from a client, and the acknowledgements of the QoS 1 and QoS 2 flows in both directions.

Inbound: `on_publish` checks the PUBLISH, stores a retained message, hands the Application
Message to routing.py and acknowledges by QoS (PUBACK, or PUBREC then PUBCOMP for a PUBREL).
Outbound: PUBACK, PUBREC and PUBCOMP from a client free a place in its in-flight window (qos.py),
which is filled again from its queue.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..protocol import (
    MQTT_5,
    Properties,
    ProtocolError,
    Puback,
    Pubcomp,
    Publish,
    Pubrec,
    Pubrel,
    ReasonCode,
)
from . import packet_log
from .auth import may_publish
from .connection import Connection
from .messages import Message
from .routing import fill_window, route

if TYPE_CHECKING:
    from .broker import Broker


def on_publish(broker: Broker, conn: Connection, publish: Publish, now: float) -> None:
    settings = broker.settings
    v5 = conn.version == MQTT_5
    topic = publish.topic
    if v5:
        topic = conn.aliases.resolve(topic, publish.properties.topic_alias)
        if publish.properties.subscription_identifiers:
            raise ProtocolError("a client PUBLISH carries a Subscription Identifier", rule="MQTT-3.3.4-6")
    if publish.qos > settings.max_qos:
        # Above the Maximum QoS we announced: DISCONNECT 0x9B (5.0 3.2.2.3.4) [MQTT-3.2.2-11]
        raise ProtocolError(f"PUBLISH with QoS {publish.qos} above Maximum QoS {settings.max_qos}",
                            reason_code=ReasonCode.QOS_NOT_SUPPORTED)
    if publish.retain and not settings.retain_available:
        # Retain Available 0: DISCONNECT 0x9A (5.0 3.2.2.3.5) [MQTT-3.2.2-14]
        raise ProtocolError("PUBLISH with RETAIN 1 but retained messages are not supported",
                            reason_code=ReasonCode.RETAIN_NOT_SUPPORTED)
    session = conn.session
    broker.counters.publish_received += 1

    if publish.qos == 2 and session.incoming.is_duplicate(publish.packet_id):
        # Already received, not yet released: PUBREC again, no second delivery
        # [MQTT-4.3.3-2] (3.1.1), [MQTT-4.3.3-10] (5.0)
        broker._send(conn, Pubrec(publish.packet_id))
        return
    if publish.qos == 2 and v5 and len(session.incoming.awaiting_release) >= settings.receive_maximum:
        # More unacknowledged QoS 2 PUBLISHes than our Receive Maximum [MQTT-3.3.4-7]: DISCONNECT 0x93
        raise ProtocolError("Receive Maximum exceeded", reason_code=ReasonCode.RECEIVE_MAXIMUM_EXCEEDED)

    accepted, refusal = True, (0, Properties())
    if not may_publish(settings, conn.client_id, conn.username, topic):
        # The ACL forbids it: dropped. 3.1.1 acknowledges as usual [MQTT-3.3.5-2] (3.1.1); 5.0 answers 0x87
        # Not authorized (both as mosquitto 2.0.11)
        why = f"not authorised to publish to {topic!r}"
        accepted, refusal = False, (ReasonCode.NOT_AUTHORIZED, broker._reason(conn, why))
        # mosquitto's line: "Denied PUBLISH from c1 (d0, q1, r0, m3, 'a/b', ... (5 bytes))"
        broker._log("notice", "Denied" + packet_log.describe(publish, conn.name, received=True)[len("Received"):])
    elif settings.message_size_limit and len(publish.payload) > settings.message_size_limit:
        # mosquitto drops such messages (and answers 0x95, which PUBACK may not carry; we use 0x97)
        why = "payload above message_size_limit"
        accepted, refusal = False, (ReasonCode.QUOTA_EXCEEDED, broker._reason(conn, why))
        broker.counters.publish_dropped += 1
        broker._log("notice", f"Dropped too large PUBLISH from {conn.name} ({len(publish.payload)} bytes).")
    else:
        message = Message.from_publish(publish, topic, conn.client_id, now, v5)
        if publish.retain:
            broker.retained.store(message)  # [MQTT-3.3.1-5]
        route(broker, message, now)

    # Acknowledge by QoS [MQTT-3.3.4-1]: nothing, PUBACK [MQTT-4.3.2-2] (3.1.1) / [MQTT-4.3.2-4] (5.0),
    # or PUBREC [MQTT-4.3.3-2] (3.1.1) / [MQTT-4.3.3-8] (5.0)
    if publish.qos == 0:
        return
    code, properties = refusal if v5 else (0, Properties())
    if publish.qos == 1:
        broker._send(conn, Puback(publish.packet_id, code, properties))
    else:
        if accepted:
            session.incoming.received(publish.packet_id)
        # A failed PUBREC ends the flow: a later PUBLISH with this id is new [MQTT-4.3.3-9] (5.0)
        broker._send(conn, Pubrec(publish.packet_id, code, properties))


def on_puback(broker: Broker, conn: Connection, puback: Puback, now: float) -> None:
    # QoS 1 delivery done [MQTT-4.3.2-1] (3.1.1), [MQTT-4.3.2-3] (5.0); unknown ids are ignored
    if conn.session.outgoing.acknowledge(puback.packet_id):
        fill_window(broker, conn, now)


def on_pubrec(broker: Broker, conn: Connection, pubrec: Pubrec, now: float) -> None:
    outgoing = conn.session.outgoing
    if conn.version == MQTT_5 and pubrec.reason_code >= 0x80:
        # A failed PUBREC acknowledges the message; never sent again [MQTT-4.4.0-2] (5.0)
        if outgoing.acknowledge(pubrec.packet_id):
            fill_window(broker, conn, now)
        return
    if outgoing.release(pubrec.packet_id):
        broker._send(conn, Pubrel(pubrec.packet_id))  # [MQTT-4.3.3-1] (3.1.1), [MQTT-4.3.3-4] (5.0)
    else:
        code = ReasonCode.PACKET_IDENTIFIER_NOT_FOUND if conn.version == MQTT_5 else 0
        broker._send(conn, Pubrel(pubrec.packet_id, code))


def on_pubrel(broker: Broker, conn: Connection, pubrel: Pubrel, now: float) -> None:
    known = conn.session.incoming.released(pubrel.packet_id)
    # PUBCOMP with the same id [MQTT-4.3.3-2] (3.1.1), [MQTT-4.3.3-11] (5.0). For an id we do not
    # know, 5.0 has 0x92 Packet Identifier not found (mosquitto answers 0x00 there).
    code = 0 if known or conn.version != MQTT_5 else ReasonCode.PACKET_IDENTIFIER_NOT_FOUND
    broker._send(conn, Pubcomp(pubrel.packet_id, code))


def on_pubcomp(broker: Broker, conn: Connection, pubcomp: Pubcomp, now: float) -> None:
    if conn.session.outgoing.acknowledge(pubcomp.packet_id):
        fill_window(broker, conn, now)
