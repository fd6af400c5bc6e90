"""One network connection as the broker sees it: its byte stream and what its CONNECT negotiated.

A connection starts "new" (only CONNECT may come), may spend a while "authenticating" (5.0 enhanced
authentication: only AUTH and DISCONNECT may come), becomes "connected" once CONNACK 0x00 has gone
out, and ends "closed". Its session (sessions.py) may live on after it. Everything agreed for this
one connection lives here: the protocol version, keep alive, the will, the client's Receive
Maximum and Maximum Packet Size, and the topic aliases the client set.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..protocol import Connect, StreamDecoder
from .actions import ConnectionId
from .messages import Message
from .sessions import Session
from .topic_aliases import InboundTopicAliases, OutboundTopicAliases

NEW, AUTHENTICATING, CONNECTED, CLOSED = "new", "authenticating", "connected", "closed"


@dataclass(eq=False)
class Connection:
    id: ConnectionId
    peer: str = ""
    decoder: StreamDecoder = field(default_factory=StreamDecoder)
    state: str = NEW
    version: int | None = None         # protocol level from CONNECT: 3, 4 or 5
    client_id: str | None = None
    session: Session | None = None
    keep_alive: int = 0                # seconds; 0: no keep alive
    last_received: float = 0.0
    will: Message | None = None
    will_delay: int = 0                # 5.0 Will Delay Interval, seconds
    connect_session_expiry: int = 0    # the Session Expiry Interval the CONNECT carried (5.0)
    send_window: int = 65535           # QoS 1/2 PUBLISHes we may have unacknowledged [MQTT-3.3.4-9]
    maximum_packet_size: int | None = None  # the client's limit on what we send [MQTT-3.1.2-24]
    problem_information: bool = True  # 5.0 Request Problem Information
    aliases: InboundTopicAliases | None = None
    outbound_aliases: OutboundTopicAliases | None = None  # ours, when assign_topic_aliases is on
    identity: str | None = None        # user name the transport proved (TLS certificate), if any
    username: str | None = None        # who the client is once authenticated (for the ACL's %u)
    auth_method: str | None = None     # 5.0 Authentication Method of the CONNECT
    auth_exchange: object | None = None  # enhanced authentication in progress (enhanced_auth.Exchange)
    pending_connect: tuple[Connect, str | None] | None = None  # (CONNECT, assigned id) while authenticating

    @property
    def name(self) -> str:
        """How logs call this connection: its client id once known, else its address."""
        return self.client_id or self.peer or "<unknown>"
