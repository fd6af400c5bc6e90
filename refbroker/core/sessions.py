"""Session state (3.1.1 section 4.1, 5.0 section 4.1), how long it lives, and the table of sessions.

A session outlives its network connection when the client asked for that: Clean Session 0 in
3.1/3.1.1 (until the client connects with Clean Session 1, or `persistent_client_expiration`
passes), a non-zero Session Expiry Interval in 5.0 [MQTT-3.1.2-23]. While it is offline, QoS 1/2
messages for its subscriptions are queued [MQTT-3.1.2-5] (3.1.1).

A session does not know its connection: which connection a client is on is the connection table's
business (connection.py, `Connections.of_client`); a session is only what must survive between them.

Memory: a broker may hold thousands of sessions that never subscribe, so a session's subscriptions
are a shared empty, read-only mapping until its first subscription (`subscribe`, `unsubscribe`).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from .changes import Changes
from .qos import Incoming, Outgoing
from .settings import Listener
from .subscriptions import SubscriptionOptions

NEVER_EXPIRES = 0xFFFFFFFF  # Session Expiry Interval meaning "never" (5.0 3.1.2.11.2)
_NO_SUBSCRIPTIONS: Mapping = MappingProxyType({})


@dataclass(eq=False, slots=True)
class Session:
    client_id: str
    expiry_interval: int = 0  # seconds after the connection closes; NEVER_EXPIRES for "never"
    # full filter -> options; read only: changed by subscribe and unsubscribe
    subscriptions: Mapping[str, SubscriptionOptions] = field(default_factory=lambda: _NO_SUBSCRIPTIONS)
    outgoing: Outgoing = field(default_factory=Outgoing)
    incoming: Incoming = field(default_factory=Incoming)
    expires_at: float | None = None   # while offline: when the session ends; None: never
    protocol_level: int = 4           # of the last connection: decides how messages are delivered
    username: str | None = None       # of the last connection: decides what it may receive (ACL) ...
    # ... by the ACL of that connection's listener (Settings.security_for); None: the global settings
    # (also for a session restored from the persistence file, which does not record listeners)
    listener: Listener | None = None

    def subscribe(self, topic_filter: str, options: SubscriptionOptions) -> bool:
        """Keep a subscription, replacing one to the same filter; True if the filter is new here."""
        if self.subscriptions is _NO_SUBSCRIPTIONS:
            self.subscriptions = {}
        is_new = topic_filter not in self.subscriptions
        self.subscriptions[topic_filter] = options
        return is_new

    def unsubscribe(self, topic_filter: str) -> SubscriptionOptions | None:
        """Forget the subscription to exactly this filter; its options, None if there was none."""
        if topic_filter not in self.subscriptions:
            return None
        return self.subscriptions.pop(topic_filter)

    def unsubscribe_all(self) -> list[str]:
        """Forget every subscription; the filters they had."""
        filters = list(self.subscriptions)
        self.subscriptions = _NO_SUBSCRIPTIONS
        return filters

    def expiry_deadline(self, now: float, persistent_client_expiration: float | None) -> float | None:
        """When an offline session ends; None for never."""
        if self.expiry_interval == NEVER_EXPIRES:
            deadline = None
        else:
            deadline = now + self.expiry_interval
        if persistent_client_expiration is not None:
            limit = now + persistent_client_expiration
            deadline = limit if deadline is None else min(deadline, limit)
        return deadline


class Sessions:
    """Every session the broker keeps, by client id (online or not).

    Sessions are what persistence keeps: a session added, removed or `touch`ed is marked in `changes`
    (changes.py) for the host to save.
    """

    def __init__(self, changes: Changes | None = None) -> None:
        self._by_client: dict[str, Session] = {}
        self._changes = changes if changes is not None else Changes()

    def get(self, client_id: str) -> Session | None:
        return self._by_client.get(client_id)

    def add(self, session: Session) -> None:
        self._by_client[session.client_id] = session
        self._changes.session(session.client_id, counts=True)

    def remove(self, session: Session) -> None:
        """Forget `session` (if it is still the one kept for its client id)."""
        if self._by_client.get(session.client_id) is session:
            del self._by_client[session.client_id]
            self._changes.session(session.client_id, counts=True)

    def touch(self, client_id: str, *, counts: bool = False) -> None:
        """The session of `client_id` changed (subscriptions, messages, expiry ...): mark it for saving.
        `counts`: a change autosave_on_changes counts (a subscription, a queued message)."""
        self._changes.session(client_id, counts=counts)

    def __getitem__(self, client_id: str) -> Session:
        return self._by_client[client_id]

    def __contains__(self, client_id: object) -> bool:
        return client_id in self._by_client

    def __len__(self) -> int:
        return len(self._by_client)

    def __iter__(self) -> Iterator[Session]:
        return iter(list(self._by_client.values()))
