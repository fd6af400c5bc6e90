"""The broker's running totals, as mosquitto publishes them under $SYS/broker/ (sys_topics.py).

Whoever sees a thing happen counts it: the broker counts what it reads, the outbox what it sends, the
router what it has to drop. Nothing but $SYS reads them.
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
    publish_bytes_received: int = 0  # payload bytes of PUBLISH packets (publish/bytes/received)
    publish_bytes_sent: int = 0
    bytes_received: int = 0
    bytes_sent: int = 0
    connections_total: int = 0   # sockets accepted
    connects: int = 0             # CONNECTs accepted (CONNACK 0x00)
    sessions_expired: int = 0     # offline sessions that expired (clients/expired)
