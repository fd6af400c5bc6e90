"""What changed since the host last saved the broker's state: the marks persistence works from.

The core does no I/O, so it never writes anything to disk itself. Instead the collaborators that own
state worth keeping across a restart mark what they change here: a session (by client id), a retained
topic, the delayed wills. The host (refbroker/persistence) takes the marks, compares the marked parts
with what it wrote last time and writes the difference, either after every input that changed
something (strict durability) or now and then (mosquitto's autosave).

A mark may be a false alarm (the host then finds nothing to write); a change without a mark would be
lost, so marks are made generously: the session of every connection that sent bytes, every session a
message was delivered to, every session that was closed.

`count` counts what mosquitto's `autosave_on_changes` counts: subscription changes, retained messages
received and messages queued for clients (plus sessions opened or ended, and delayed wills).

Without persistence nobody takes the marks: a `Changes(keep=False)` makes none, or the sets would grow
by every client id and retained topic the broker ever saw.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class ChangeMarks:
    """The marks taken at once by the host."""

    sessions: set[str] = field(default_factory=set)   # client ids whose session changed (or ended)
    retained: set[str] = field(default_factory=set)   # topics whose retained message changed
    wills: bool = False                               # the delayed wills changed
    count: int = 0                                    # changes in mosquitto's sense (autosave_on_changes)

    def __bool__(self) -> bool:
        return bool(self.sessions or self.retained or self.wills)


class Changes:
    def __init__(self, keep: bool = True) -> None:
        self._keep = keep  # False: no persistence takes the marks, so none are made
        self._marks = ChangeMarks()

    def session(self, client_id: str, *, counts: bool = False) -> None:
        if self._keep:
            self._marks.sessions.add(client_id)
            self._marks.count += counts

    def retained(self, topic: str) -> None:
        if self._keep:
            self._marks.retained.add(topic)
            self._marks.count += 1

    def wills(self) -> None:
        if self._keep:
            self._marks.wills = True
            self._marks.count += 1

    @property
    def count(self) -> int:
        """Changes counted since the last `take`."""
        return self._marks.count

    def take(self) -> ChangeMarks:
        marks, self._marks = self._marks, ChangeMarks()
        return marks
