"""Network connections as the broker sees them: what each one negotiated, and the table of them all.

A `Connection` holds everything agreed for one network connection: its byte stream, the protocol
version, keep alive, the will, the client's Receive Maximum and Maximum Packet Size, the topic aliases
of both directions, who the client is. Its session (sessions.py) may live on after it.

`Connections` is the one owner of the connections' states (states.py): `transition` is the only way a
state changes, and the table keeps, as it does so, which client id is connected on which connection
and how many clients are connected (now and at most).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from ..protocol import Connect, StreamDecoder
from .actions import ConnectionId
from .auth_methods import Exchange
from .messages import Message
from .sessions import Session
from .settings import Listener, Security
from .states import AWAITING_CONNECT, CLOSED, CONNECTED, ConnectionState, Event, next_state
from .topic_aliases import InboundTopicAliases, OutboundTopicAliases


@dataclass(eq=False, slots=True)
class Connection:
    id: ConnectionId
    peer: str = ""
    decoder: StreamDecoder = field(default_factory=StreamDecoder)
    state: ConnectionState = AWAITING_CONNECT  # changed only by Connections.transition
    version: int | None = None         # protocol level from CONNECT: 3, 4 or 5
    client_id: str | None = None
    session: Session | None = None
    keep_alive: int = 0                # seconds; 0: no keep alive
    last_received: float = 0.0
    checked_at: float = 0.0            # when its ConnectionDue timer comes (lifecycle.watch_deadline owns it)
    will: Message | None = None
    will_delay: int = 0                # 5.0 Will Delay Interval, seconds
    connect_session_expiry: int = 0    # the Session Expiry Interval the CONNECT carried (5.0)
    send_window: int = 65535           # QoS 1/2 PUBLISHes we may have unacknowledged [MQTT-3.3.4-9]
    maximum_packet_size: int | None = None  # the client's limit on what we send [MQTT-3.1.2-24]
    problem_information: bool = True  # 5.0 Request Problem Information
    aliases: InboundTopicAliases | None = None
    outbound_aliases: OutboundTopicAliases | None = None  # ours, when assign_topic_aliases is on
    listener: Listener | None = None    # the listener it came in on (its max_connections, per-listener settings)
    security: Security = field(default_factory=Security)  # that listener's password file and ACL
    identity: str | None = None        # user name the transport proved (TLS certificate), if any
    mount_point: str = ""              # the listener's mount_point: in front of every topic of this client
    username: str | None = None        # who the client is once authenticated (for the ACL's %u)
    # CONNECT's user name and password, kept to check them again when the password file is reloaded
    # (as mosquitto does); None for enhanced authentication
    credentials: tuple[str | None, bytes | None] | None = None
    auth_method: str | None = None     # 5.0 Authentication Method of the CONNECT
    auth_exchange: Exchange | None = None  # enhanced authentication in progress (auth_exchange.py)
    pending_connect: tuple[Connect, str | None] | None = None  # (CONNECT, assigned id) while authenticating
    writable: bool = True              # False while the host's buffer of unwritten bytes is over its mark

    @property
    def name(self) -> str:
        """How logs call this connection: its client id once known, else its address."""
        return self.client_id or self.peer or "<unknown>"


class Connections:
    """Every open connection by id, and the connected one of each client id."""

    def __init__(self) -> None:
        self._by_id: dict[ConnectionId, Connection] = {}
        self._by_client: dict[str, Connection] = {}  # client id -> its CONNECTED connection
        self.connected_max = 0                         # the most clients connected at once
        self._per_listener: dict[int, int] = {}        # id(listener) -> connections open on it

    def open(self, conn_id: ConnectionId, *, peer: str, now: float, identity: str | None,
             listener: Listener | None = None, security: Security | None = None) -> Connection:
        conn = self._by_id[conn_id] = Connection(conn_id, peer=peer, last_received=now, identity=identity,
                                                 listener=listener, security=security or Security())
        self._per_listener[id(listener)] = self._per_listener.get(id(listener), 0) + 1
        return conn

    def on_listener(self, listener: Listener | None) -> int:
        """How many connections the listener has open (whatever their state, until closed)."""
        return self._per_listener.get(id(listener), 0)

    def get(self, conn_id: ConnectionId) -> Connection | None:
        return self._by_id.get(conn_id)

    def of_client(self, client_id: str) -> Connection | None:
        """The connection a client is connected on (past CONNACK 0x00), None while it is offline."""
        return self._by_client.get(client_id)

    def is_online(self, client_id: str) -> bool:
        return client_id in self._by_client

    @property
    def connected(self) -> int:
        """How many clients are connected (past CONNACK 0x00) now."""
        return len(self._by_client)

    def transition(self, conn: Connection, event: Event) -> None:
        """Move `conn` to the state `event` leads to (states.py), keeping the tables in step."""
        before = conn.state
        conn.state = next_state(before, event)
        if conn.state is CONNECTED and before is not CONNECTED:
            # One connection per client id: a takeover closes the older one first [MQTT-3.1.4-2]
            assert conn.client_id not in self._by_client, f"{conn.client_id} is connected twice"
            self._by_client[conn.client_id] = conn
            self.connected_max = max(self.connected_max, len(self._by_client))
        elif conn.state is CLOSED and before is not CLOSED:
            if self._by_id.pop(conn.id, None) is not None:
                self._per_listener[id(conn.listener)] -= 1
            if before is CONNECTED and self._by_client.get(conn.client_id) is conn:
                del self._by_client[conn.client_id]

    def __len__(self) -> int:
        return len(self._by_id)

    def __iter__(self) -> Iterator[Connection]:
        return iter(list(self._by_id.values()))
