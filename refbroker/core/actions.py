"""What the core asks its host to do: the only way the sans-IO broker reaches the outside world.

Every entry point of `Broker` returns a list of these, in order. The host (refbroker/server, or a
test) performs them: writes the bytes of a `Send`, closes the connection of a `Close`, stops and
starts reading a connection (`PauseReading`, `ResumeReading`) and comes back for packets the core
has not read yet (`ProcessLater`). The packet is kept next to its bytes so tests can look at
packets instead of bytes.

Why the core decides when a connection is read (flow_control.py): fairness (one connection's big
read is worked through a few packets per turn, so the others get their turn in between) and
back-pressure (a publisher whose messages cannot be queued waits, instead of having them dropped).
A host that performs neither still works, only without those two properties.

Actions are plain slotted dataclasses, to be read and not changed: one `Send` is made for every packet
the broker sends, and a frozen dataclass costs about five times as much to make.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass

from ..protocol import Packet

ConnectionId = Hashable


@dataclass(slots=True)
class Send:
    """Write `data` (the encoded `packet`) to the connection."""

    connection: ConnectionId
    packet: Packet
    data: bytes


@dataclass(slots=True)
class Close:
    """Close the network connection. Nothing more will be sent on it."""

    connection: ConnectionId
    reason: str = ""


@dataclass(slots=True)
class PauseReading:
    """Stop reading from the connection until `ResumeReading` (bytes already received stay with the core)."""

    connection: ConnectionId


@dataclass(slots=True)
class ResumeReading:
    """Read from the connection again; and, on a later turn, call `Broker.process_buffered` for it."""

    connection: ConnectionId


@dataclass(slots=True)
class ProcessLater:
    """The core holds packets of this connection it has not read yet: call `Broker.process_buffered`
    for it on a later turn of the event loop, once the other connections have had theirs."""

    connection: ConnectionId


Action = Send | Close | PauseReading | ResumeReading | ProcessLater
