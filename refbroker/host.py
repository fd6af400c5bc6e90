"""What a running broker has around its sans-IO core: persistence, log lines published on $SYS topics,
the subscription tree for SIGUSR2, and reloading the configuration on SIGHUP.

`BrokerHost` has the core's entry points (connection_made, data_received, process_buffered,
writing_paused, writing_resumed, connection_lost, tick, next_deadline), so the network front end
(refbroker/server) drives it exactly like a `Broker`. After each input it

1. publishes the lines logged for `log_dest topic` (through the broker, like any message), and
2. gives persistence its chance to save (refbroker/persistence): with `persistence_durable_acks`
   the changes are on disk before the actions are returned, so no acknowledgement leaves before what
   it acknowledges is saved;

and only then returns the actions for the front end to perform. Timed work (autosave) shares the
core's timer: `next_deadline` is the earlier of the two.
"""

from __future__ import annotations

from collections.abc import Callable

from .core import Action, Broker, Close, Listener, Settings
from .logs import LogSink
from .persistence import Persistence, PersistenceError

# Settings a SIGHUP does not change in a running broker (mosquitto: "not reloaded on reload signal");
# the listeners and their TLS files are handled apart (the certificates are reloaded).
NOT_RELOADED = ("listeners", "pid_file", "user", "persistence", "persistence_file", "persistence_location",
                "persistence_durable_acks", "ignored")


class BrokerHost:
    def __init__(self, broker: Broker, log: LogSink, persistence: Persistence | None = None,
                 on_fatal: Callable[[str], None] | None = None):
        self.broker = broker
        self.log = log
        self.persistence = persistence
        self.on_fatal = on_fatal  # called when the broker cannot go on (a strict save failed)
        self._publishing_log = False

    settings = property(lambda self: self.broker.settings)
    version = property(lambda self: self.broker.version)

    # ------------------------------------------------------------------ the core's entry points, and more

    def connection_made(self, conn_id, now: float, peer: str = "", identity: str | None = None,
                        listener: Listener | None = None, mount_point: str = "") -> list[Action]:
        return self._after(self.broker.connection_made(conn_id, now, peer, identity, listener, mount_point), now)

    def data_received(self, conn_id, data: bytes, now: float) -> list[Action]:
        return self._after(self.broker.data_received(conn_id, data, now), now)

    def process_buffered(self, conn_id, now: float) -> list[Action]:
        return self._after(self.broker.process_buffered(conn_id, now), now)

    def writing_paused(self, conn_id, now: float) -> list[Action]:
        return self._after(self.broker.writing_paused(conn_id, now), now)

    def writing_resumed(self, conn_id, now: float) -> list[Action]:
        return self._after(self.broker.writing_resumed(conn_id, now), now)

    def connection_lost(self, conn_id, now: float) -> list[Action]:
        return self._after(self.broker.connection_lost(conn_id, now), now)

    def tick(self, now: float) -> list[Action]:
        actions = self.broker.tick(now)
        if self.persistence is not None:
            try:
                self.persistence.on_deadline(self.broker, now)
            except PersistenceError as error:
                self.log("error", f"Error saving in-memory database: {error}")
        return self._after(actions, now)

    def next_deadline(self) -> float | None:
        deadlines = [self.broker.next_deadline()]
        if self.persistence is not None:
            deadlines.append(self.persistence.next_deadline())
        deadlines = [deadline for deadline in deadlines if deadline is not None]
        return min(deadlines) if deadlines else None

    def _after(self, actions: list[Action], now: float) -> list[Action]:
        if self.log.publishes and not self._publishing_log:
            # Lines logged while these are published are not published in turn (no endless echo)
            self._publishing_log = True
            try:
                for topic, line in self.log.take_topic_lines():
                    actions += self.broker.publish(topic, line.encode(), now)
            finally:
                self._publishing_log = False
            self.log.take_topic_lines()
        if self.persistence is not None:
            try:
                self.persistence.after_input(self.broker, now)
            except PersistenceError as error:
                # The promise of persistence_durable_acks cannot be kept: nothing of this input is
                # acknowledged, and the broker stops.
                self.log("error", f"Error: {error} Stopping, since acknowledgements could no longer be kept.")
                if self.on_fatal is not None:
                    self.on_fatal(str(error))
                return [action for action in actions if isinstance(action, Close)]
        return actions

    # ------------------------------------------------------------------------------------- signals

    def save(self, now: float) -> None:
        """SIGUSR1: save now (nothing to do without persistence)."""
        if self.persistence is None:
            self.log("notice", "SIGUSR1: persistence is off, nothing to save.")
            return
        try:
            self.persistence.save(self.broker, now)
        except PersistenceError as error:
            self.log("error", f"Error saving in-memory database: {error}")

    def close(self, now: float) -> None:
        """A clean stop: the last save."""
        if self.persistence is not None:
            try:
                self.persistence.close(self.broker, now)
            except PersistenceError as error:
                self.log("error", f"Error saving in-memory database: {error}")

    def log_subscription_tree(self) -> None:
        """SIGUSR2: the subscriptions, as a tree of topic levels, to the log (type notice)."""
        for line in subscription_tree(self.broker):
            self.log("notice", line)

    def reload(self, new: Settings, now: float) -> list[Action]:
        """SIGHUP: take the reloadable settings of `new` (the config file read again): password file,
        ACL file, SCRAM users, log settings, limits for new connections ... Clients stay connected,
        unless their credentials no longer pass (as mosquitto): the returned actions close those."""
        current = self.broker.settings
        for name, value in vars(new).items():
            if name not in NOT_RELOADED:
                setattr(current, name, value)
        for listener, fresh in zip(current.listeners, new.listeners):
            # per_listener_settings: each listener's password file, ACL and allow_anonymous are reloaded
            # too (mosquitto.conf(5)), for the listener in the same place of the config
            if (listener.port, listener.host, listener.unix_socket) == (fresh.port, fresh.host, fresh.unix_socket):
                listener.security = fresh.security
        self.broker.settings_reloaded()
        for name in ("persistence", "persistence_file", "persistence_location", "persistence_durable_acks"):
            if getattr(new, name) != getattr(current, name):
                self.log("warning", f"Warning: {name} changes take effect at the next start, not on SIGHUP.")
        if self.persistence is not None:
            self.persistence.durability = type(self.persistence.durability).from_settings(current)
            self.persistence.persistent_client_expiration = current.persistent_client_expiration
        return self._after(self.broker.recheck_credentials(now), now)


def subscription_tree(broker: Broker) -> list[str]:
    """Every subscription, one line per topic level, subscribers after their filter:

        Subscription tree (3 subscriptions, 2 sessions):
          sensors
            +
              temperature: c1 (QoS 1), c2 (QoS 0)
          $share/group/jobs: worker (QoS 2)
    """
    by_filter: dict[str, list[str]] = {}
    sessions = 0
    for session in broker.sessions:
        sessions += bool(session.subscriptions)
        for topic_filter, options in session.subscriptions.items():
            by_filter.setdefault(topic_filter, []).append(f"{session.client_id} (QoS {options.qos})")
    lines = [f"Subscription tree ({sum(map(len, by_filter.values()))} subscriptions, {sessions} sessions):"]
    printed: set[tuple[str, ...]] = set()
    for topic_filter in sorted(by_filter):
        shared = topic_filter.startswith("$share/")
        levels = ([topic_filter] if shared else topic_filter.split("/"))
        for depth in range(len(levels)):
            path = tuple(levels[:depth + 1])
            if path in printed:
                continue
            printed.add(path)
            line = "  " * (depth + 1) + (levels[depth] or "''")
            if depth == len(levels) - 1:
                line += ": " + ", ".join(sorted(by_filter[topic_filter]))
            lines.append(line)
    return lines
