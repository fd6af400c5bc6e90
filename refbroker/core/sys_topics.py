"""$SYS topics: the broker describes itself, like mosquitto(8) lists, every `sys_interval` seconds.

They are published as retained messages, so a new subscriber sees the latest values at once.
A filter starting with a wildcard never matches them [MQTT-4.7.2-1]: "#" does not see "$SYS/...".
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
    connections_total: int = 0


def sys_values(*, version: str, uptime: float, connected: int, disconnected: int, maximum: int,
               subscriptions: int, retained: int, counters: Counters) -> dict[str, str]:
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
    }
    return {base + key: str(value) for key, value in values.items()}
