"""What every packet handler receives: the broker's collaborators, each the one owner of its state.

    settings       Settings: the configuration (read only)
    connections    Connections: every connection, its state, who is connected where (connection.py)
    sessions       Sessions: the sessions by client id (sessions.py)
    subscriptions  SubscriptionStore: who is subscribed to what (subscriptions.py)
    retained       RetainedStore: the retained messages (retained.py)
    router         Router: messages to subscribers, the in-flight windows (router.py)
    outbox         Outbox: packets out, connections closed (outbox.py)
    holds          ReadHolds: which connections are not read, and why (flow_control.py)
    back_pressure  BackPressure: congested subscribers and the publishers held for them (flow_control.py)
    timers         Timers: deadlines as typed events (timers.py)
    wills          PendingWills: wills waiting for their delay (wills.py)
    counters       Counters: totals for $SYS (counters.py)
    changes        Changes: what persistence must save next (changes.py)
    log            log(type, text), with mosquitto's log types

Handlers (connect.py, publish_flow.py, subscribe.py, lifecycle.py, auth_exchange.py) are functions
`on_<packet>(ctx, conn, packet, now)`; they change state only through these objects' public methods.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from .auth_methods import Exchange
from .changes import Changes
from .connection import Connections
from .counters import Counters
from .flow_control import BackPressure, ReadHolds
from .outbox import Outbox
from .retained import RetainedStore
from .router import Router
from .sessions import Sessions
from .settings import Settings
from .subscriptions import SubscriptionStore
from .sys_load import LoadAverages
from .timers import Timers
from .wills import PendingWills

Log = Callable[[str, str], None]  # (log type, message), log types as in mosquitto.conf's log_type


@dataclass(eq=False)
class Context:
    settings: Settings
    version: str                        # what $SYS/broker/version says
    started_at: float
    connections: Connections
    sessions: Sessions
    subscriptions: SubscriptionStore
    retained: RetainedStore
    router: Router
    outbox: Outbox
    holds: ReadHolds
    back_pressure: BackPressure
    timers: Timers
    wills: PendingWills
    counters: Counters
    changes: Changes
    load: LoadAverages
    log: Log
    auth_methods: dict[str, Callable[[], Exchange]]  # enhanced authentication (auth_methods.py)
    new_client_id: Callable[[str], str]               # an id for a client that sent none, from a prefix
    # (current, maximum) bytes of memory the process uses, for $SYS heap/*; None: not published.
    # The host measures it (the core does no I/O).
    memory_usage: Callable[[], tuple[int, int]] | None = None
