"""Flow control: which connections the host reads, and why not. Fairness and back-pressure live here.

Three things stop the broker from reading a connection; the host is told with PauseReading and
ResumeReading actions (actions.py) and does nothing but perform them:

    BACKLOG    fairness. One read may hold hundreds of packets. The broker works through at most
               PACKETS_PER_TURN of them and asks the host to come back on a later turn of its event
               loop (ProcessLater), after the other connections have had theirs: a subscriber's
               PUBACKs are not kept waiting behind a publisher's whole read. Until the backlog is
               worked off, the connection is not read.
    CONGESTED  back-pressure. A copy queued for a subscriber that is connected and keeping up, whose
               queue has reached its high-water mark (half of max_queued_messages, half of
               max_queued_bytes; HIGH_WATER_MESSAGES / HIGH_WATER_BYTES when they are unlimited),
               holds the connection that published it until the queue is down to its low-water mark
               (half the high-water mark). A fast publisher then goes at its subscribers' pace
               instead of having its messages dropped from full queues.
    UNREAD     the client does not read what we send: the host says so (`Broker.writing_paused`) when
               its buffer of unwritten bytes passes its high-water mark. Such a client is not read
               either, so one that never reads its acknowledgements cannot make the broker hold
               answers for it without bound; and no new PUBLISH is written to it (router.py).

A subscriber whose queue stays above the low-water mark for HOLD_SECONDS after reaching the
high-water mark is a slow consumer: publishers stop waiting for it, its queue fills up to
max_queued_messages / max_queued_bytes and further copies are dropped, as mosquitto drops them
(counted in $SYS/broker/publish/messages/dropped and logged by the router). It is an ordinary
subscriber again once its queue is down to the low-water mark. So a consumer that keeps up loses
nothing, and one that does not cannot stall its publishers for more than HOLD_SECONDS.

`ReadHolds` is the one owner of why each connection is not read; `BackPressure` the one owner of
which subscribers are congested or slow and which publishers wait for them.
"""

from __future__ import annotations

from collections.abc import Callable

from .actions import ConnectionId
from .outbox import Outbox
from .qos import Outgoing
from .settings import Settings
from .timers import CongestionDue, Timers

PACKETS_PER_TURN = 64               # packets read from one connection before the others get a turn
HOLD_SECONDS = 2.0                  # how long publishers wait for a congested subscriber at most
HIGH_WATER_MESSAGES = 1000          # queue high-water mark when max_queued_messages is 0 (no limit)
HIGH_WATER_BYTES = 16 * 1024 * 1024  # ... and when max_queued_bytes is 0


class Hold:
    """Why a connection is not read (plain strings: checked for every packet, they must hash fast)."""

    BACKLOG = "backlog"
    CONGESTED = "congested"
    UNREAD = "unread"


class ReadHolds:
    """Why each connection is not read (no entry: it is read). Tells the host through the outbox."""

    def __init__(self, outbox: Outbox):
        self._outbox = outbox
        self._holds: dict[ConnectionId, set[str]] = {}
        self._stopped: set[ConnectionId] = set()  # held for something else than a backlog

    def hold(self, conn_id: ConnectionId, why: str) -> None:
        holds = self._holds.get(conn_id)
        if holds is None:
            self._holds[conn_id] = {why}
            self._outbox.pause_reading(conn_id)
        else:
            holds.add(why)
        if why != Hold.BACKLOG:
            self._stopped.add(conn_id)

    def release(self, conn_id: ConnectionId, why: str) -> None:
        holds = self._holds.get(conn_id)
        if holds is None or why not in holds:
            return
        holds.discard(why)
        if not holds:
            del self._holds[conn_id]
            self._stopped.discard(conn_id)
            self._outbox.resume_reading(conn_id)  # the host comes back for what is buffered too
        elif holds == {Hold.BACKLOG}:
            self._stopped.discard(conn_id)
            self._outbox.process_later(conn_id)   # the backlog may be worked off again

    def stops_processing(self, conn_id: ConnectionId) -> bool:
        """Must the packets this connection sent wait? (A backlog alone does not stop them.)"""
        return conn_id in self._stopped

    def is_held(self, conn_id: ConnectionId, why: str) -> bool:
        holds = self._holds.get(conn_id)
        return holds is not None and why in holds

    def forget(self, conn_id: ConnectionId) -> None:
        self._holds.pop(conn_id, None)
        self._stopped.discard(conn_id)


class BackPressure:
    """Which connected subscribers have congested queues, which of them are slow consumers, and
    which publishing connections are held for them."""

    def __init__(self, settings: Settings, holds: ReadHolds, timers: Timers, log: Callable[[str, str], None]):
        self._settings = settings
        self._holds = holds
        self._timers = timers
        self._log = log
        self._congested: dict[str, float] = {}              # subscriber client id -> since when
        self._slow: set[str] = set()                         # subscribers publishers no longer wait for
        self._held: dict[str, set[ConnectionId]] = {}        # subscriber -> publishers held for it
        self._waits_for: dict[ConnectionId, set[str]] = {}   # publisher -> subscribers it is held for

    def high_water(self) -> tuple[int, int]:
        """(messages, payload bytes) in a queue at which publishers are held."""
        settings = self._settings
        messages = max(1, settings.max_queued_messages // 2) if settings.max_queued_messages else HIGH_WATER_MESSAGES
        size = max(1, settings.max_queued_bytes // 2) if settings.max_queued_bytes else HIGH_WATER_BYTES
        return messages, size

    def queued(self, client_id: str, outgoing: Outgoing, subscriber: ConnectionId, publisher: ConnectionId | None,
               now: float) -> None:
        """A copy was queued for a connected subscriber; `publisher` is the connection it came from
        (None: a will, a $SYS value, a retained message)."""
        if client_id in self._slow:
            return
        messages, size = self.high_water()
        if len(outgoing.queue) < messages and outgoing.queued_bytes < size:
            return
        if client_id not in self._congested:
            self._congested[client_id] = now
            self._timers.schedule(now + HOLD_SECONDS, CongestionDue(client_id))
        if publisher is None or publisher == subscriber:
            return  # a client is never held for its own queue: its acknowledgements drain it
        held = self._held.setdefault(client_id, set())
        if publisher in held:
            return
        held.add(publisher)
        waits_for = self._waits_for.setdefault(publisher, set())
        waits_for.add(client_id)
        self._holds.hold(publisher, Hold.CONGESTED)

    def drained(self, client_id: str, outgoing: Outgoing) -> None:
        """Copies left the queue of a connected subscriber: below the low-water mark, the congestion
        (or the slow consumer) is over and its publishers go on."""
        if client_id not in self._congested and client_id not in self._slow:
            return
        messages, size = self.high_water()
        if len(outgoing.queue) > messages // 2 or outgoing.queued_bytes > size // 2:
            return
        self._congested.pop(client_id, None)
        self._slow.discard(client_id)
        self._release_publishers(client_id)

    def hold_expired(self, client_id: str, now: float) -> None:
        """HOLD_SECONDS since the subscriber's queue reached its high-water mark (timer)."""
        since = self._congested.get(client_id)
        if since is None or now < since + HOLD_SECONDS:
            return  # drained in time (a later congestion has its own timer)
        del self._congested[client_id]
        self._slow.add(client_id)
        self._log("notice", f"Client {client_id} is not keeping up with its messages: publishers no longer wait "
                            f"for it, and its queue may overflow.")
        self._release_publishers(client_id)

    def is_slow(self, client_id: str) -> bool:
        return client_id in self._slow

    def subscriber_gone(self, client_id: str) -> None:
        """The subscriber went offline: an offline queue holds nobody back."""
        self._congested.pop(client_id, None)
        self._slow.discard(client_id)
        self._release_publishers(client_id)

    def publisher_gone(self, conn_id: ConnectionId) -> None:
        for client_id in self._waits_for.pop(conn_id, ()):
            held = self._held.get(client_id)
            if held is not None:
                held.discard(conn_id)
                if not held:
                    del self._held[client_id]

    def _release_publishers(self, client_id: str) -> None:
        for publisher in self._held.pop(client_id, ()):
            waits_for = self._waits_for.get(publisher)
            if waits_for is None:
                continue
            waits_for.discard(client_id)
            if not waits_for:
                del self._waits_for[publisher]
                self._holds.release(publisher, Hold.CONGESTED)
