"""Deadlines: keep alive, session expiry, delayed wills, $SYS updates.

The core never reads a clock; callers pass `now`. It remembers when it next needs to be woken up
in a heap of (when, key) entries, and the host calls `Broker.tick(now)` at `next_deadline()`.
Entries are never removed early: when one comes due the broker checks whether it still applies
(the client may have sent a packet since, or reconnected), which keeps this module tiny.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Hashable


class Timers:
    def __init__(self) -> None:
        self._heap: list[tuple[float, int, Hashable]] = []
        self._order = itertools.count()

    def schedule(self, when: float, key: Hashable) -> None:
        heapq.heappush(self._heap, (when, next(self._order), key))

    def next_deadline(self) -> float | None:
        return self._heap[0][0] if self._heap else None

    def pop_due(self, now: float) -> list[Hashable]:
        due = []
        while self._heap and self._heap[0][0] <= now:
            due.append(heapq.heappop(self._heap)[2])
        return due
