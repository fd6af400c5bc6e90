"""One log line per packet, worded like mosquitto's debug log, so a learner can watch the protocol.

    Received PUBLISH from c1 (d0, q1, r0, m3, 'a/b', ... (5 bytes))
    Sending CONNACK to c1 (0, 0)
"""

from __future__ import annotations

from ..protocol import (
    Connack,
    Disconnect,
    Packet,
    Puback,
    Pubcomp,
    Publish,
    Pubrec,
    Pubrel,
    Subscribe,
    Unsubscribe,
)


def _details(packet: Packet, received: bool) -> str:
    if isinstance(packet, Publish):
        return (f" (d{int(packet.dup)}, q{packet.qos}, r{int(packet.retain)}, m{packet.packet_id or 0},"
                f" '{packet.topic}', ... ({len(packet.payload)} bytes))")
    if isinstance(packet, Connack):
        return f" ({int(packet.session_present)}, {packet.reason_code})"
    if isinstance(packet, (Puback, Pubrec, Pubrel, Pubcomp)):
        if received:
            return f" (Mid: {packet.packet_id}, RC:{packet.reason_code})"
        if isinstance(packet, (Puback, Pubrec)):
            return f" (m{packet.packet_id}, rc{packet.reason_code})"
        return f" (m{packet.packet_id})"
    if isinstance(packet, Disconnect) and packet.reason_code:
        return f" ({packet.reason_code})"
    return ""


def describe(packet: Packet, client: str, received: bool) -> str:
    direction = "Received {} from {}" if received else "Sending {} to {}"
    line = direction.format(packet.name, client) + _details(packet, received)
    if received and isinstance(packet, Subscribe):
        for subscription in packet.subscriptions:
            line += f"\n\t{subscription.topic_filter} (QoS {subscription.qos})"
    if received and isinstance(packet, Unsubscribe):
        for topic_filter in packet.topic_filters:
            line += f"\n\t{topic_filter}"
    return line
