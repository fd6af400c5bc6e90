"""What the core asks its host to do: the only way the sans-IO broker reaches the outside world.

Every entry point of `Broker` returns a list of these, in order. The host (refbroker/server, or a
test) performs them: writes the bytes of a `Send`, closes the connection of a `Close`. The packet
is kept next to its bytes so tests can look at packets instead of bytes.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass

from ..protocol import Packet

ConnectionId = Hashable


@dataclass(slots=True, frozen=True)
class Send:
    """Write `data` (the encoded `packet`) to the connection."""

    connection: ConnectionId
    packet: Packet
    data: bytes


@dataclass(slots=True, frozen=True)
class Close:
    """Close the network connection. Nothing more will be sent on it."""

    connection: ConnectionId
    reason: str = ""


Action = Send | Close
