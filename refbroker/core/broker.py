"""The broker: bytes in, actions out. Sans-IO: no sockets, no tasks, no clock.

The host (refbroker/server, or a test) calls

    connection_made(conn_id, now, peer, identity)  a client connected (identity: TLS certificate user)
    data_received(conn_id, data, now)        bytes arrived from it
    connection_lost(conn_id, now)            its network connection ended
    tick(now)                                at next_deadline(): keep alive, expiry, wills, $SYS

and each returns the list of `Send` / `Close` actions (actions.py) to carry out, in order. The
broker reads packets with the codec (refbroker.protocol) and hands each to the `on_<packet>`
function of its type (the dispatch table `Broker._handlers`), one module per part of the protocol:

    connect.py         CONNECT: client id, authentication, takeover, session, CONNACK properties
    authentication.py  AUTH: the steps of enhanced authentication and re-authentication (5.0 4.12)
    publish_flow.py    PUBLISH from a client and the QoS 1/2 acknowledgements both ways
    routing.py         Application Messages to the sessions whose subscriptions match
    subscribe.py       SUBSCRIBE and UNSUBSCRIBE
    lifecycle.py       PINGREQ, DISCONNECT, protocol errors, closing, wills, keep alive and expiry

Each handler takes the `Broker` as its first argument: the state they share (connections,
sessions, subscriptions, retained messages, counters, timers) lives here, and so does `_send`,
the one way out for a packet. This module keeps the entry points, the dispatch, sending, and $SYS.

Rules the code enforces carry their normative statement id. Where 3.1.1 and 5.0 number a rule
differently both are given, e.g. [MQTT-3.1.3-8] (3.1.1) / [MQTT-3.1.3-8] (5.0) are different rules.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Callable

from .. import __version__
from ..protocol import (
    MQTT_3_1_1,
    MQTT_5,
    Auth,
    Connack,
    Connect,
    Disconnect,
    MQTTError,
    Packet,
    Pingreq,
    Properties,
    ProtocolError,
    Puback,
    Pubcomp,
    Publish,
    Pubrec,
    Pubrel,
    Subscribe,
    Unsubscribe,
    decode_packet,
)
from . import authentication, connect, lifecycle, packet_log, publish_flow, routing, subscribe
from .actions import Action, ConnectionId, Send
from .connection import AUTHENTICATING, CLOSED, NEW, Connection
from .enhanced_auth import available_methods
from .lifecycle import CONNECT_TIMEOUT
from .messages import Message
from .retained import RetainedStore
from .sessions import Session
from .settings import Settings
from .subscriptions import SubscriptionStore
from .sys_load import LoadAverages
from .sys_topics import Counters, stored_messages, sys_values
from .timers import Timers

Log = Callable[[str, str], None]  # (log type, message), log types as in mosquitto.conf's log_type


def _no_log(kind: str, message: str) -> None:
    pass


def _mosquitto_style_client_id(prefix: str) -> str:
    return prefix + str(uuid.uuid4()).upper()


class Broker:
    def __init__(self, settings: Settings | None = None, *, now: float = 0.0, log: Log | None = None,
                 version: str = f"refbroker version {__version__}",
                 client_id_factory: Callable[[str], str] = _mosquitto_style_client_id):
        self.settings = settings or Settings()
        self.version = version
        self.connections: dict[ConnectionId, Connection] = {}
        self.sessions: dict[str, Session] = {}
        self.subscriptions = SubscriptionStore()
        self.retained = RetainedStore()
        self.counters = Counters()
        self.timers = Timers()
        self.pending_wills: dict[str, tuple[float, Message]] = {}  # client id -> (due, will)
        self.started_at = now
        self._log = log or _no_log
        self._debug = log is not None and getattr(log, "wants_debug", True)
        self._new_client_id = client_id_factory
        self._actions: list[Action] = []
        self._last_publish: tuple | None = None  # the last PUBLISH encoded, see _encode
        self._connected = 0  # connections past CONNACK
        self._connected_max = 0
        self._auth_methods = available_methods(self.settings)
        self.load = LoadAverages(now)
        if self.settings.sys_interval > 0:
            self.timers.schedule(now, ("sys",))

    # ---------------------------------------------------------------------------------- entry points

    def connection_made(self, conn_id: ConnectionId, now: float, peer: str = "", identity: str | None = None
                        ) -> list[Action]:
        """`identity`: the user name the transport has proved already (the Common Name of a TLS
        client certificate on a `use_identity_as_username` listener); None: CONNECT's credentials count."""
        self.connections[conn_id] = Connection(conn_id, peer=peer, last_received=now, identity=identity)
        self.counters.connections_total += 1
        # A connection that never sends CONNECT is closed after a while (3.1.4: "a reasonable amount
        # of time"); like mosquitto, the default keep alive of 60 s times 1.5.
        self.timers.schedule(now + CONNECT_TIMEOUT, ("keepalive", conn_id))
        if peer:
            self._log("notice", f"New connection from {peer}.")
        return []

    def data_received(self, conn_id: ConnectionId, data: bytes, now: float) -> list[Action]:
        conn = self.connections.get(conn_id)
        if conn is None or conn.state == CLOSED:
            return []  # [MQTT-3.1.4-5] (3.1.1), [MQTT-3.1.4-6] (5.0): nothing after a refusal is read
        self.counters.bytes_received += len(data)
        try:
            frame = conn.decoder.next_raw_frame(data)
            while frame is not None and conn.state != CLOSED:
                first_byte, body = frame
                try:
                    packet = decode_packet(first_byte, body, conn.version)
                except MQTTError as error:
                    if conn.state == NEW:
                        connect.refuse_bad_connect(self, conn, body, error, now)
                        break
                    raise
                conn.last_received = now
                self.counters.messages_received += 1
                if self._debug:
                    self._log("debug", packet_log.describe(packet, conn.name, received=True))
                self._dispatch(conn, packet, now)
                frame = conn.decoder.next_raw_frame() if conn.state != CLOSED else None
        except MQTTError as error:
            lifecycle.protocol_violation(self, conn, error, now)
        except Exception as error:  # a bug of ours must cost one connection, never the broker
            self._log("error", f"Internal error handling data from {conn.name}: {error!r}")
            lifecycle.close(self, conn, now, publish_will=True, reason=f"internal error: {error!r}")
        return self._take_actions()

    def connection_lost(self, conn_id: ConnectionId, now: float) -> list[Action]:
        """The network connection ended without us closing it: abnormal unless DISCONNECT came first."""
        conn = self.connections.get(conn_id)
        if conn is not None and conn.state != CLOSED:
            self._log("notice", f"Client {conn.name} closed its connection.")
            # Closed without DISCONNECT: the will is published [MQTT-3.1.2-8]
            lifecycle.close(self, conn, now, publish_will=True, reason="connection lost", send_close=False)
        self.connections.pop(conn_id, None)
        return self._take_actions()

    def tick(self, now: float) -> list[Action]:
        """Run every timer that is due: keep alive, session expiry, delayed wills, $SYS."""
        for key in self.timers.pop_due(now):
            kind = key[0]
            if kind == "keepalive":
                lifecycle.check_keep_alive(self, key[1], now)
            elif kind == "session":
                lifecycle.check_session_expiry(self, key[1], now)
            elif kind == "will":
                lifecycle.check_will(self, key[1], now)
            elif kind == "sys":
                self._publish_sys(now)
                self.timers.schedule(now + self.settings.sys_interval, ("sys",))
        return self._take_actions()

    def next_deadline(self) -> float | None:
        """When `tick` should next be called (None: nothing scheduled)."""
        return self.timers.next_deadline()

    # ------------------------------------------------------------------------------------- plumbing

    def _take_actions(self) -> list[Action]:
        actions, self._actions = self._actions, []
        return actions

    def _send(self, conn: Connection, packet: Packet) -> None:
        if conn.state == CLOSED:
            return
        version = conn.version or MQTT_3_1_1
        if version == MQTT_5 and not conn.problem_information and not isinstance(packet, (Publish, Connack,
                                                                                         Disconnect)):
            # Request Problem Information 0: no Reason String or User Property here [MQTT-3.1.2-29]
            packet = _without_optional_properties(packet)
        new_alias = False
        if conn.outbound_aliases is not None and isinstance(packet, Publish):
            packet, new_alias = conn.outbound_aliases.apply(packet)
        data = self._encode(packet, version)
        limit = conn.maximum_packet_size
        if limit is not None and len(data) > limit:
            if isinstance(packet, Publish):
                if new_alias:
                    conn.outbound_aliases.forget(packet.topic)
                # Too large for the client: dropped as if delivered [MQTT-3.1.2-25]
                if packet.packet_id is not None and conn.session is not None:
                    conn.session.outgoing.acknowledge(packet.packet_id)
                self.counters.publish_dropped += 1
                self._log("notice", f"Dropped PUBLISH to {conn.name}: larger than its Maximum Packet Size.")
                return
            # Reason String and User Properties go first [MQTT-3.2.2-19/20], [MQTT-3.4.2-2/3] ...
            packet = _without_optional_properties(packet)
            data = packet.encode(version)
            if len(data) > limit:
                return  # never send more than the client allows [MQTT-3.1.2-24]
        if self._debug:
            self._log("debug", packet_log.describe(packet, conn.name, received=False))
        self.counters.messages_sent += 1
        self.counters.bytes_sent += len(data)
        if isinstance(packet, Publish):
            self.counters.publish_sent += 1
        self._actions.append(Send(conn.id, packet, data))

    def _encode(self, packet: Packet, version: int) -> bytes:
        """The packet's bytes.

        Performance: a message routed to many subscribers becomes one PUBLISH per subscriber, mostly
        all alike (same topic, payload, flags and properties; sessions that move in step even use the
        same packet identifier). So the bytes of the last PUBLISH are kept, and reused for the next
        one if it is the same in every field (payload and properties: the very same objects).
        """
        if type(packet) is not Publish:
            return packet.encode(version)
        fields = (version, packet.topic, packet.qos, packet.retain, packet.dup, packet.packet_id)
        last = self._last_publish
        if last is not None and last[0] == fields and last[1] is packet.payload and last[2] is packet.properties:
            return last[3]
        data = packet.encode(version)
        self._last_publish = (fields, packet.payload, packet.properties, data)
        return data

    def _reason(self, conn: Connection, text: str) -> Properties:
        """Properties carrying a Reason String, for 5.0 failure answers (mosquitto sends none; we do)."""
        if conn.version == MQTT_5:
            return Properties(reason_string=text)
        return Properties()

    def _dispatch(self, conn: Connection, packet: Packet, now: float) -> None:
        handler = self._handlers.get(type(packet))
        if conn.state != NEW and isinstance(packet, Connect):
            raise ProtocolError("a second CONNECT on one connection", rule="MQTT-3.1.0-2")
        if conn.state == AUTHENTICATING and not isinstance(packet, (Auth, Disconnect)):
            # Only AUTH or DISCONNECT until CONNACK [MQTT-3.1.2-30]
            raise ProtocolError(f"{packet.name} during enhanced authentication", rule="MQTT-3.1.2-30")
        if handler is None:
            # CONNACK, SUBACK, UNSUBACK, PINGRESP only travel from server to client
            raise ProtocolError(f"a client may not send {packet.name}")
        handler(self, conn, packet, now)

    def _is_online(self, client_id: str) -> bool:
        """Whether a client is connected (routing.route asks, to prefer connected members of a share group)."""
        session = self.sessions.get(client_id)
        return session is not None and session.connection is not None

    # One handler per packet type a client may send, each called as handler(broker, conn, packet, now)
    _handlers: dict[type, Callable] = {
        Connect: connect.on_connect,
        Auth: authentication.on_auth,
        Publish: publish_flow.on_publish, Puback: publish_flow.on_puback, Pubrec: publish_flow.on_pubrec,
        Pubrel: publish_flow.on_pubrel, Pubcomp: publish_flow.on_pubcomp,
        Subscribe: subscribe.on_subscribe, Unsubscribe: subscribe.on_unsubscribe,
        Pingreq: lifecycle.on_pingreq, Disconnect: lifecycle.on_disconnect,
    }

    # --------------------------------------------------------------------------------------- $SYS

    def _publish_sys(self, now: float) -> None:
        self.load.update(now, self.counters)
        connected = self._connected
        values = sys_values(version=self.version, uptime=now - self.started_at, connected=connected,
                            disconnected=len(self.sessions) - sum(1 for s in self.sessions.values() if s.online),
                            maximum=self._connected_max, subscriptions=len(self.subscriptions),
                            retained=len(self.retained), counters=self.counters,
                            stored=stored_messages(self.retained, self.sessions.values()), load=self.load.values())
        for topic, payload in values.items():
            routing.publish(self, Message(topic, payload.encode(), 0, True), now)


def _without_optional_properties(packet: Packet) -> Packet:
    """The same acknowledgement without Reason String and User Properties."""
    properties = getattr(packet, "properties", None)
    if not properties or (properties.reason_string is None and not properties.user_properties):
        return packet
    stripped = properties.copy()
    stripped.reason_string = None
    stripped.user_properties = []
    return dataclasses.replace(packet, properties=stripped)
