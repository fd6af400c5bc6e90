"""Deadlines, as typed events: a connection's CONNECT or keep alive is due, a session may expire, a
delayed will may be due, a congested subscriber has had its time to drain, $SYS values are due.

The core never reads a clock; callers pass `now`. It remembers when it next needs to be woken up in a
heap of (when, event) entries, and the host calls `Broker.tick(now)` at `next_deadline()`; `tick`
hands each due event to the function that handles its type. Entries are never removed early: when one
comes due its handler checks whether it still applies (the client may have sent a packet since, or
reconnected), which keeps this module tiny.
"""

from __future__ import annotations

import heapq
import itertools
from dataclasses import dataclass
from typing import Any

from .actions import ConnectionId


@dataclass(frozen=True, slots=True)
class ConnectionDue:
    """The connection's deadline may have come: the time it has to complete CONNECT (and finish
    authenticating), then, once connected, 1.5 x its Keep Alive without a packet. One event per
    connection at a time (lifecycle.py), not one per deadline: a server holds thousands."""

    connection: ConnectionId


@dataclass(frozen=True, slots=True)
class SessionExpiryDue:
    """An offline session's expiry may have come."""

    client_id: str


@dataclass(frozen=True, slots=True)
class WillDue:
    """A will's Will Delay Interval may have passed (5.0 3.1.3.2.2)."""

    client_id: str


@dataclass(frozen=True, slots=True)
class CongestionDue:
    """A subscriber's queue reached its high-water mark a while ago: has it drained since? (flow_control.py)"""

    client_id: str


@dataclass(frozen=True, slots=True)
class SysDue:
    """Time to publish the $SYS values again (`first`: the first time, with the values published once)."""

    first: bool = False


@dataclass(frozen=True, eq=False)
class SubscriptionDue:
    """A subscription with a lifetime (root_wildcard_lifetime) may have lived it. `options` is the
    SubscriptionOptions object it was made with: a newer subscription to the same filter is another one."""

    client_id: str
    topic_filter: str
    options: Any


TimerEvent = ConnectionDue | SessionExpiryDue | WillDue | CongestionDue | SysDue | SubscriptionDue


class Timers:
    def __init__(self) -> None:
        self._heap: list[tuple[float, int, TimerEvent]] = []
        self._order = itertools.count()  # keeps events of the same time in the order they were scheduled

    def schedule(self, when: float, event: TimerEvent) -> None:
        heapq.heappush(self._heap, (when, next(self._order), event))

    def next_deadline(self) -> float | None:
        return self._heap[0][0] if self._heap else None

    def __len__(self) -> int:
        """How many events are waiting (including ones that will find they no longer apply)."""
        return len(self._heap)

    def pop_due(self, now: float) -> list[TimerEvent]:
        due = []
        while self._heap and self._heap[0][0] <= now:
            due.append(heapq.heappop(self._heap)[2])
        return due
