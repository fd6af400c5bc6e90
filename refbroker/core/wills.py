"""Wills waiting for their Will Delay Interval (5.0 3.1.3.2.2), one per client id.

A will is published when its connection ends without DISCONNECT [MQTT-3.1.2-8] (3.1.1); in 5.0 it
may wait for its Will Delay Interval first. While it waits, the client may come back (the will is then
dropped [MQTT-3.1.3-9] (5.0)) or its session may end (the will is then published at once
[MQTT-3.1.2-8] (5.0)). This module only keeps the waiting wills; lifecycle.py decides when.
"""

from __future__ import annotations

from collections.abc import Iterator

from .changes import Changes
from .messages import Message


class PendingWills:
    """Every change is marked in `changes` (changes.py), for persistence."""

    def __init__(self, changes: Changes | None = None) -> None:
        self._waiting: dict[str, tuple[float, Message]] = {}  # client id -> (due, will)
        self._changes = changes if changes is not None else Changes()

    def delay(self, client_id: str, will: Message, due: float) -> None:
        self._waiting[client_id] = (due, will)
        self._changes.wills()

    def cancel(self, client_id: str) -> None:
        """The client connected again before the delay passed: its will is never sent."""
        if self._waiting.pop(client_id, None) is not None:
            self._changes.wills()

    def take(self, client_id: str) -> Message | None:
        """The client's waiting will, now (its session ends), or None."""
        pending = self._waiting.pop(client_id, None)
        if pending is None:
            return None
        self._changes.wills()
        return pending[1]

    def waiting(self) -> Iterator[tuple[str, float, Message]]:
        """(client id, when it is due, will) of every will that waits."""
        for client_id, (due, will) in list(self._waiting.items()):
            yield client_id, due, will

    def take_if_due(self, client_id: str, now: float) -> Message | None:
        """The client's waiting will if its delay has passed, else None (it stays)."""
        pending = self._waiting.get(client_id)
        if pending is None or now < pending[0]:
            return None
        del self._waiting[client_id]
        self._changes.wills()
        return pending[1]

    def __len__(self) -> int:
        return len(self._waiting)
