"""When the state is written to disk: the durability policy, stated once.

    persistence true                   the state is saved, restored at start
    autosave_interval N (default 1800) mosquitto's: saved every N seconds (0: only at exit and SIGUSR1)
    autosave_on_changes true           mosquitto's: ... every N changes instead (subscriptions, retained
                                       messages received, messages queued for clients)
    persistence_durable_acks true      refbroker's own: saved after every input that changed the state,
                                       before anything is sent back

With mosquitto's settings refbroker may lose what mosquitto may lose: whatever changed since the last
save when the process is killed (kill -9, a crash, the power). A clean stop (SIGTERM, SIGINT) and
SIGUSR1 save everything.

With `persistence_durable_acks true` the broker writes (and the disk confirms, SQLite's
synchronous=FULL) every change an input caused before it performs any of the actions that input
produced. So a PUBACK or PUBREC leaves only once the message it acknowledges is on disk, queued
for every subscriber whose session is kept; a subscriber's PUBACK is on disk before the next message
takes its place; a QoS 2 PUBLISH's packet id is on disk before its PUBREC (so a repeat after a crash
is still recognised as one [MQTT-4.3.3-10]). After kill -9 no acknowledged message is lost; the price
is one synchronous disk write per batch of input.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..core.settings import Settings


@dataclass(frozen=True)
class Durability:
    strict: bool            # persistence_durable_acks: save before acting on every input
    interval: int           # autosave_interval (seconds, or changes); 0: no autosave
    on_changes: bool        # autosave_on_changes

    @classmethod
    def from_settings(cls, settings: Settings) -> Durability:
        return cls(settings.persistence_durable_acks, settings.autosave_interval, settings.autosave_on_changes)

    def describe(self) -> str:
        if self.strict:
            return "every change is saved before the broker answers (persistence_durable_acks)"
        if self.interval == 0:
            return "saved at exit and on SIGUSR1 only (autosave_interval 0)"
        if self.on_changes:
            return f"saved every {self.interval} changes (autosave_on_changes)"
        return f"saved every {self.interval} s (autosave_interval)"

    def save_after_input(self, changes: int) -> bool:
        """After an input that made `changes` changes since the last save: save now?"""
        if self.strict:
            return True
        return self.on_changes and self.interval > 0 and changes >= self.interval

    def next_save(self, last_save: float) -> float | None:
        """When the next timed save is due (None: not timed)."""
        if self.strict or self.on_changes or self.interval <= 0:
            return None
        return last_save + self.interval
