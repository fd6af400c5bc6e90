"""Session state (3.1.1 section 4.1, 5.0 section 4.1) and how long it lives.

A session outlives its network connection when the client asked for that: Clean Session 0 in
3.1/3.1.1 (until the client connects with Clean Session 1, or `persistent_client_expiration`
passes), a non-zero Session Expiry Interval in 5.0 [MQTT-3.1.2-23]. While it is offline, QoS 1/2
messages for its subscriptions are queued [MQTT-3.1.2-5] (3.1.1).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .qos import Incoming, Outgoing
from .subscriptions import SubscriptionOptions

NEVER_EXPIRES = 0xFFFFFFFF  # Session Expiry Interval meaning "never" (5.0 3.1.2.11.2)


@dataclass(eq=False)
class Session:
    client_id: str
    expiry_interval: int = 0  # seconds after the connection closes; NEVER_EXPIRES for "never"
    subscriptions: dict[str, SubscriptionOptions] = field(default_factory=dict)  # full filter -> options
    outgoing: Outgoing = field(default_factory=Outgoing)
    incoming: Incoming = field(default_factory=Incoming)
    connection: object | None = None  # the Connection while online
    expires_at: float | None = None   # while offline: when the session ends; None: never
    protocol_level: int = 4           # of the last connection: decides how messages are delivered
    username: str | None = None       # of the last connection: decides what it may receive (ACL)

    @property
    def online(self) -> bool:
        return self.connection is not None

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
