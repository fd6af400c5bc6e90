"""PUBLISH from a client, and the acknowledgements of the QoS 1 and QoS 2 flows in both directions.

Inbound: `on_publish` checks the PUBLISH, stores a retained message, hands the Application
Message to the router (router.py) and acknowledges by QoS (PUBACK, or PUBREC then PUBCOMP for a PUBREL).
Outbound: PUBACK, PUBREC and PUBCOMP from a client free a place in its in-flight window (qos.py),
which the router fills again from its queue.
"""

from __future__ import annotations

from ..protocol import (
    MQTT_5,
    Disconnect,
    InvalidTopicName,
    Properties,
    ProtocolError,
    Puback,
    Pubcomp,
    Publish,
    Pubrec,
    Pubrel,
    ReasonCode,
)
from ..protocol.reason_codes import is_failure
from . import packet_log
from .access import may_publish
from .connection import Connection
from .context import Context
from .lifecycle import close
from .messages import Message


def on_publish(ctx: Context, conn: Connection, publish: Publish, now: float) -> None:
    settings = ctx.settings
    v5 = conn.version == MQTT_5
    topic = publish.topic
    if v5:
        topic = conn.aliases.resolve(topic, publish.properties.topic_alias)
        if publish.properties.subscription_identifiers:
            raise ProtocolError("a client PUBLISH carries a Subscription Identifier", rule="MQTT-3.3.4-6")
    depth_limit = settings.compat.topic_depth_limit
    if depth_limit and topic.count("/") > depth_limit:
        # mosquitto's limit, not the specification's: refused as mosquitto refuses it (compat.py)
        raise InvalidTopicName(f"topic name with more than {depth_limit} '/'", kind="topic too deep")
    if publish.qos > settings.max_qos:
        # Above the Maximum QoS we announced: DISCONNECT 0x9B (5.0 3.2.2.3.4) [MQTT-3.2.2-11]
        raise ProtocolError(f"PUBLISH with QoS {publish.qos} above Maximum QoS {settings.max_qos}",
                            reason_code=ReasonCode.QOS_NOT_SUPPORTED)
    if publish.retain and not settings.retain_available:
        # Retain Available 0: DISCONNECT 0x9A (5.0 3.2.2.3.5) [MQTT-3.2.2-14]
        raise ProtocolError("PUBLISH with RETAIN 1 but retained messages are not supported",
                            reason_code=ReasonCode.RETAIN_NOT_SUPPORTED)
    topic = conn.mount_point + topic  # the listener's mount_point (mosquitto's, not the specification's)
    session = conn.session
    ctx.counters.publish_received += 1
    ctx.counters.publish_bytes_received += len(publish.payload)

    if publish.qos == 2 and session.incoming.is_duplicate(publish.packet_id):
        # Already received, not yet released: PUBREC again, no second delivery
        # [MQTT-4.3.3-2] (3.1.1), [MQTT-4.3.3-10] (5.0)
        ctx.outbox.send(conn, Pubrec(publish.packet_id))
        return
    if publish.qos == 2 and v5 and len(session.incoming.awaiting_release) >= settings.receive_maximum:
        # More unacknowledged QoS 2 PUBLISHes than our Receive Maximum [MQTT-3.3.4-7]: DISCONNECT 0x93
        raise ProtocolError("Receive Maximum exceeded", reason_code=ReasonCode.RECEIVE_MAXIMUM_EXCEEDED)

    accepted, answer = True, (0, Properties())
    if not may_publish(conn.security, conn.client_id, conn.username, topic):
        # The ACL forbids it: dropped. 3.1.1 acknowledges as usual [MQTT-3.3.5-2] (3.1.1); 5.0 answers 0x87
        # Not authorized (both as mosquitto 2.0.11)
        why = f"not authorised to publish to {topic!r}"
        accepted, answer = False, (ReasonCode.NOT_AUTHORIZED, ctx.outbox.failure_properties(conn, why))
        # mosquitto's line: "Denied PUBLISH from c1 (d0, q1, r0, m3, 'a/b', ... (5 bytes))"
        ctx.log("notice", "Denied" + packet_log.describe(publish, conn.name, received=True)[len("Received"):])
    elif settings.message_size_limit and len(publish.payload) > settings.message_size_limit:
        # mosquitto drops such messages (and answers 0x95, which PUBACK may not carry; we use 0x97)
        why = "payload above message_size_limit"
        accepted, answer = False, (ReasonCode.QUOTA_EXCEEDED, ctx.outbox.failure_properties(conn, why))
        ctx.counters.publish_dropped += 1
        ctx.log("notice", f"Dropped too large PUBLISH from {conn.name} ({len(publish.payload)} bytes).")
    elif not ctx.router.has_room_for(len(publish.payload)):
        # memory_limit, as mosquitto: the message is dropped and its publisher disconnected (5.0:
        # DISCONNECT 0x97 Quota exceeded first)
        ctx.counters.publish_dropped += 1
        ctx.log("notice", f"Client {conn.name} disconnected: memory_limit reached, its PUBLISH is dropped.")
        if v5:
            ctx.outbox.send(conn, Disconnect(ReasonCode.QUOTA_EXCEEDED,
                                             ctx.outbox.failure_properties(conn, "memory_limit reached")))
        close(ctx, conn, now, publish_will=True, reason="memory_limit reached")
        return
    else:
        message = Message.from_publish(publish, topic, conn.client_id, now, v5)
        if v5:  # the copies' properties in the mosquitto version's order (compat.py)
            message.properties.wire_order = settings.compat.forwarded_order(publish.properties.wire_order)
        if publish.retain:
            ctx.retained.store(message)  # [MQTT-3.3.1-5]
        matched = ctx.router.route(message, now, conn.id)  # conn.id: back-pressure may hold this publisher
        if not matched and publish.qos == 1 and v5 and settings.compat.puback_no_matching_subscribers:
            # No subscription matched: PUBACK 0x10 No matching subscribers, which 5.0 allows instead of
            # 0x00 (3.4.2.1); the mosquitto version's choice (compat.py; its PUBREC says 0x00)
            answer = (ReasonCode.NO_MATCHING_SUBSCRIBERS, Properties())

    # Acknowledge by QoS [MQTT-3.3.4-1]: nothing, PUBACK [MQTT-4.3.2-2] (3.1.1) / [MQTT-4.3.2-4] (5.0),
    # or PUBREC [MQTT-4.3.3-2] (3.1.1) / [MQTT-4.3.3-8] (5.0)
    if publish.qos == 0:
        return
    code, properties = answer if v5 else (0, Properties())
    if publish.qos == 1:
        ctx.outbox.send(conn, Puback(publish.packet_id, code, properties))
    else:
        if accepted:
            session.incoming.received(publish.packet_id)
        # A failed PUBREC ends the flow: a later PUBLISH with this id is new [MQTT-4.3.3-9] (5.0)
        ctx.outbox.send(conn, Pubrec(publish.packet_id, code, properties))


def on_puback(ctx: Context, conn: Connection, puback: Puback, now: float) -> None:
    # QoS 1 delivery done [MQTT-4.3.2-1] (3.1.1), [MQTT-4.3.2-3] (5.0); unknown ids are ignored
    if conn.session.outgoing.acknowledge(puback.packet_id):
        ctx.router.fill_window(conn, now)


def on_pubrec(ctx: Context, conn: Connection, pubrec: Pubrec, now: float) -> None:
    outgoing = conn.session.outgoing
    if conn.version == MQTT_5 and is_failure(pubrec.reason_code):
        # A failed PUBREC acknowledges the message; never sent again [MQTT-4.4.0-2] (5.0)
        if outgoing.acknowledge(pubrec.packet_id):
            ctx.router.fill_window(conn, now)
        return
    if outgoing.release(pubrec.packet_id):
        ctx.outbox.send(conn, Pubrel(pubrec.packet_id))  # [MQTT-4.3.3-1] (3.1.1), [MQTT-4.3.3-4] (5.0)
    else:
        # Not in flight: 5.0 has 0x92 Packet Identifier not found for it; 0x00 is allowed too (compat.py)
        code = ctx.settings.compat.unknown_packet_id_code if conn.version == MQTT_5 else 0
        ctx.outbox.send(conn, Pubrel(pubrec.packet_id, code))


def on_pubrel(ctx: Context, conn: Connection, pubrel: Pubrel, now: float) -> None:
    known = conn.session.incoming.released(pubrel.packet_id)
    # PUBCOMP with the same id [MQTT-4.3.3-2] (3.1.1), [MQTT-4.3.3-11] (5.0). For an id we do not
    # know, 5.0 has 0x92 Packet Identifier not found, and allows 0x00 (the mosquitto version's choice)
    code = 0 if known or conn.version != MQTT_5 else ctx.settings.compat.unknown_packet_id_code
    ctx.outbox.send(conn, Pubcomp(pubrel.packet_id, code))


def on_pubcomp(ctx: Context, conn: Connection, pubcomp: Pubcomp, now: float) -> None:
    if conn.session.outgoing.acknowledge(pubcomp.packet_id):
        ctx.router.fill_window(conn, now)
