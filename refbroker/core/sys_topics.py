"""$SYS topics: the broker describes itself, like mosquitto(8) lists, every `sys_interval` seconds.

They are published as retained messages, so a new subscriber sees the latest values at once.
A filter starting with a wildcard never matches them [MQTT-4.7.2-1]: "#" does not see "$SYS/...".
The load averages (load/...) come from sys_load.py. mosquitto's heap/current and heap/maximum are
not published: Python manages its own memory and has no meaningful equivalent.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Counters:
    messages_received: int = 0    # every packet received, like mosquitto's messages/received
    messages_sent: int = 0
    publish_received: int = 0     # PUBLISH packets only
    publish_sent: int = 0
    publish_dropped: int = 0
    bytes_received: int = 0
    bytes_sent: int = 0
    connections_total: int = 0   # sockets accepted
    connects: int = 0             # CONNECTs accepted (CONNACK 0x00)


def sys_values(*, version: str, uptime: float, connected: int, disconnected: int, maximum: int,
               subscriptions: int, retained: int, counters: Counters, stored: tuple[int, int] = (0, 0),
               load: dict[str, str] | None = None) -> dict[str, str]:
    """topic -> payload of the $SYS messages to publish now."""
    base = "$SYS/broker/"
    values = {
        "version": version,
        "uptime": f"{int(uptime)} seconds",
        "clients/connected": connected,
        "clients/active": connected,
        "clients/disconnected": disconnected,
        "clients/inactive": disconnected,
        "clients/total": connected + disconnected,
        "clients/maximum": maximum,
        "messages/received": counters.messages_received,
        "messages/sent": counters.messages_sent,
        "publish/messages/received": counters.publish_received,
        "publish/messages/sent": counters.publish_sent,
        "publish/messages/dropped": counters.publish_dropped,
        "bytes/received": counters.bytes_received,
        "bytes/sent": counters.bytes_sent,
        "subscriptions/count": subscriptions,
        "retained messages/count": retained,
        # Messages the broker holds (retained, queued, in flight; each once) and their payload bytes
        "store/messages/count": stored[0],
        "store/messages/bytes": stored[1],
        "messages/stored": stored[0],
        **(load or {}),
    }
    return {base + key: str(value) for key, value in values.items()}


def stored_messages(retained, sessions) -> tuple[int, int]:
    """(count, payload bytes) of the distinct messages held: retained ones and those in sessions."""
    seen: dict[int, int] = {}
    for message in retained:
        seen[id(message)] = len(message.payload)
    for session in sessions:
        outgoing = session.outgoing
        for delivery in [flight.delivery for flight in outgoing.inflight.values()] + list(outgoing.queue):
            seen[id(delivery.message)] = len(delivery.message.payload)
    return len(seen), sum(seen.values())
