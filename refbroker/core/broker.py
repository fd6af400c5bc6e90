"""The broker: bytes in, actions out. Sans-IO: no sockets, no tasks, no clock.

The host (refbroker/server, or a test) calls

    connection_made(conn_id, now, peer, identity)  a client connected (identity: TLS certificate user)
    data_received(conn_id, data, now)        bytes arrived from it
    connection_lost(conn_id, now)            its network connection ended
    tick(now)                                at next_deadline(): keep alive, expiry, wills, $SYS

and each returns the list of `Send` / `Close` actions (actions.py) to carry out, in order. The
broker reads packets with the codec (refbroker.protocol), handles each in the `_on_<packet>`
method of its type, and routes Application Messages to the sessions whose subscriptions match.

Rules the code enforces carry their normative statement id. Where 3.1.1 and 5.0 number a rule
differently both are given, e.g. [MQTT-3.1.3-8] (3.1.1) / [MQTT-3.1.3-8] (5.0) are different rules.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Callable

from .. import __version__
from ..protocol import (
    MQTT_3_1,
    MQTT_3_1_1,
    MQTT_5,
    Auth,
    Connack,
    Connect,
    ConnectReturnCode,
    Disconnect,
    InvalidTopicFilter,
    MalformedPacket,
    MQTTError,
    Packet,
    Pingreq,
    Pingresp,
    Properties,
    ProtocolError,
    Puback,
    Pubcomp,
    Publish,
    Pubrec,
    Pubrel,
    ReasonCode,
    Suback,
    Subscribe,
    Unsuback,
    Unsubscribe,
    UnsupportedProtocolVersion,
    decode_packet,
    is_shared_subscription,
    validate_topic_filter,
)
from ..protocol.reason_codes import SUBACK_FAILURE_V3, VALID_REASON_CODES
from . import packet_log
from .actions import Action, Close, ConnectionId, Send
from .auth import authenticate, may_publish, may_receive, may_subscribe
from .connection import AUTHENTICATING, CLOSED, CONNECTED, NEW, Connection
from .enhanced_auth import AuthenticationFailed, available_methods
from .messages import Delivery, Message
from .retained import RetainedStore
from .sessions import NEVER_EXPIRES, Session
from .settings import Settings
from .subscriptions import SubscriptionOptions, SubscriptionStore
from .sys_load import LoadAverages
from .sys_topics import Counters, stored_messages, sys_values
from .timers import Timers
from .topic_aliases import InboundTopicAliases, OutboundTopicAliases

Log = Callable[[str, str], None]  # (log type, message), log types as in mosquitto.conf's log_type

# mosquitto's "p" number in "New client connected ... (p2, c1, k60)"
_MOSQUITTO_PROTOCOL_NUMBER = {MQTT_3_1: 1, MQTT_3_1_1: 2, MQTT_5: 5}


CONNECT_TIMEOUT = 90.0  # seconds a new connection may take to send CONNECT


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
                        self._refuse_bad_connect(conn, body, error, now)
                        break
                    raise
                conn.last_received = now
                self.counters.messages_received += 1
                if self._debug:
                    self._log("debug", packet_log.describe(packet, conn.name, received=True))
                self._dispatch(conn, packet, now)
                frame = conn.decoder.next_raw_frame() if conn.state != CLOSED else None
        except MQTTError as error:
            self._protocol_violation(conn, error, now)
        except Exception as error:  # a bug of ours must cost one connection, never the broker
            self._log("error", f"Internal error handling data from {conn.name}: {error!r}")
            self._close(conn, now, publish_will=True, reason=f"internal error: {error!r}")
        return self._take_actions()

    def connection_lost(self, conn_id: ConnectionId, now: float) -> list[Action]:
        """The network connection ended without us closing it: abnormal unless DISCONNECT came first."""
        conn = self.connections.get(conn_id)
        if conn is not None and conn.state != CLOSED:
            self._log("notice", f"Client {conn.name} closed its connection.")
            # Closed without DISCONNECT: the will is published [MQTT-3.1.2-8]
            self._close(conn, now, publish_will=True, reason="connection lost", send_close=False)
        self.connections.pop(conn_id, None)
        return self._take_actions()

    def tick(self, now: float) -> list[Action]:
        """Run every timer that is due: keep alive, session expiry, delayed wills, $SYS."""
        for key in self.timers.pop_due(now):
            kind = key[0]
            if kind == "keepalive":
                self._check_keep_alive(key[1], now)
            elif kind == "session":
                self._check_session_expiry(key[1], now)
            elif kind == "will":
                self._check_will(key[1], now)
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

    # ------------------------------------------------------------------------------------ CONNECT

    def _refuse_bad_connect(self, conn: Connection, body: bytes, error: MQTTError, now: float) -> None:
        """The first packet could not be read as an acceptable CONNECT."""
        level = _peek_protocol_level(body)
        self._log("notice", f"Bad CONNECT from {conn.name}: {error}")
        if isinstance(error, UnsupportedProtocolVersion):
            # [MQTT-3.1.2-2]: CONNACK return code 0x01 in the 3.1.1 format (what mosquitto 2.0.11 sends
            # too; a level we do not know gives no clue that the client would read a 5.0 CONNACK)
            conn.version = MQTT_3_1_1
            self._send(conn, Connack(ConnectReturnCode.UNACCEPTABLE_PROTOCOL_VERSION))
        elif error.rule == "MQTT-3.1.2-1":
            pass  # not MQTT at all: close without answering [MQTT-3.1.2-1]
        elif level == MQTT_5:
            # 5.0: a CONNACK with the reason code, then close [MQTT-3.1.4-1], 4.13
            conn.version = MQTT_5
            code = error.reason_code if error.reason_code in VALID_REASON_CODES["CONNACK"] else (
                ReasonCode.MALFORMED_PACKET if isinstance(error, MalformedPacket) else ReasonCode.PROTOCOL_ERROR)
            self._send(conn, Connack(code, properties=Properties(reason_string=str(error))))
        # 3.1 / 3.1.1: a malformed CONNECT is closed without CONNACK [MQTT-3.1.4-1] (3.1.1)
        self._close(conn, now, publish_will=False, reason=str(error))

    def _refuse(self, conn: Connection, v3_code: int, v5_code: int, why: str, now: float) -> None:
        """Answer CONNECT with a failure CONNACK (Session Present 0 [MQTT-3.2.2-4] (3.1.1) /
        [MQTT-3.2.2-6] (5.0)) and close [MQTT-3.2.2-5] (3.1.1) / [MQTT-3.2.2-7] (5.0)."""
        self._log("notice", f"Refused connection from {conn.peer or conn.name}: {why}")
        code = v5_code if conn.version == MQTT_5 else v3_code
        self._send(conn, Connack(code, properties=self._reason(conn, why)))
        self._close(conn, now, publish_will=False, reason=why)

    def _on_connect(self, conn: Connection, connect: Connect, now: float) -> None:
        conn.version = conn.decoder.version = connect.protocol_level
        client_id, assigned = self._choose_client_id(conn, connect, now)
        if client_id is None or not self._may_accept(conn, connect, now):
            return  # refused, and closed
        conn.client_id = client_id
        method = connect.properties.authentication_method if conn.version == MQTT_5 else None
        if method is None:
            self._accept(conn, connect, assigned, now)
            return
        # Enhanced authentication (5.0 4.12): the method's exchange decides before any session exists
        factory = self._auth_methods.get(method)
        if factory is None:
            # A method we do not support: CONNACK 0x8C and close [MQTT-4.12.0-1]
            self._refuse(conn, 0, ReasonCode.BAD_AUTHENTICATION_METHOD,
                         f"authentication method {method!r} is not supported", now)
            return
        conn.auth_method, conn.auth_exchange = method, factory()
        conn.pending_connect = (connect, assigned)
        conn.state = AUTHENTICATING
        self._authentication_step(conn, connect.properties.authentication_data, now)

    def _accept(self, conn: Connection, connect: Connect, assigned: str | None, now: float,
                auth: Properties | None = None) -> None:
        """The client is who it says: take over, open the session, negotiate, CONNACK 0x00."""
        client_id = conn.client_id
        self._take_over(client_id, now)
        session, session_present = self._open_session(conn, connect, now)
        connack_properties = self._negotiate(conn, connect, assigned, now)
        if auth is not None:
            # The same Authentication Method in a successful CONNACK [MQTT-4.12.0-5], with the
            # method's final data; never without a method in CONNECT [MQTT-4.12.0-6]
            connack_properties.authentication_method = auth.authentication_method
            connack_properties.authentication_data = auth.authentication_data
        self._log("notice", f"New client connected from {conn.peer} as {client_id} "
                            f"(p{_MOSQUITTO_PROTOCOL_NUMBER[conn.version]}, c{int(connect.clean_start)}, "
                            f"k{connect.keep_alive}" + (f", u'{conn.username}'" if conn.username else "") + ").")
        # Accepted [MQTT-3.1.4-4] (3.1.1), [MQTT-3.1.4-5] (5.0)
        self._send(conn, Connack(ConnectReturnCode.ACCEPTED, session_present, connack_properties))
        self._connected_max = max(self._connected_max, self._connected)
        self.counters.connects += 1
        # A resumed session: first what was in flight, in order [MQTT-4.4.0-1], then the queue
        if session_present:
            for packet in session.outgoing.retransmit(now):
                self._send(conn, packet)
            self._fill_window(conn, now)

    def _choose_client_id(self, conn: Connection, connect: Connect, now: float) -> tuple[str | None, str | None]:
        """(client id, the id we assigned or None); (None, None) if the CONNECT was refused."""
        settings = self.settings
        client_id, version = connect.client_id, conn.version
        if version == MQTT_3_1 and not 1 <= len(client_id) <= 23:
            # MQTT 3.1 (section 3.1): 1 to 23 characters, else return code 2
            self._refuse(conn, ConnectReturnCode.IDENTIFIER_REJECTED, 0, "client id must be 1-23 characters", now)
            return None, None
        if client_id:
            return client_id, None
        if version == MQTT_3_1_1 and not connect.clean_start:
            # Empty client id with Clean Session 0: return code 2 [MQTT-3.1.3-8] (3.1.1)
            self._refuse(conn, ConnectReturnCode.IDENTIFIER_REJECTED, 0, "zero length client id needs clean session",
                         now)
            return None, None
        if not settings.allow_zero_length_clientid:
            # [MQTT-3.1.3-9] (3.1.1), [MQTT-3.1.3-8] (5.0)
            self._refuse(conn, ConnectReturnCode.IDENTIFIER_REJECTED, ReasonCode.CLIENT_IDENTIFIER_NOT_VALID,
                         "zero length client ids are not allowed", now)
            return None, None
        # A unique id of our own [MQTT-3.1.3-6]; 5.0 tells the client [MQTT-3.1.3-7], [MQTT-3.2.2-16]
        client_id = self._new_client_id(settings.auto_id_prefix)
        while client_id in self.sessions:
            client_id = self._new_client_id(settings.auto_id_prefix)
        return client_id, client_id

    def _may_accept(self, conn: Connection, connect: Connect, now: float) -> bool:
        """Authentication, and what the CONNECT asks that the server does not support."""
        settings = self.settings
        v5 = conn.version == MQTT_5
        if settings.server_reference is not None:
            # Server redirection (5.0 4.11): 0x9C Use another server (temporarily) or 0x9D Server moved,
            # with the Server Reference. 3.1/3.1.1 know no redirection: return code 3 Server unavailable.
            # Then close [MQTT-3.2.2-5] (3.1.1), [MQTT-3.2.2-7] (5.0)
            self._log("notice", f"Redirected {conn.peer or conn.name} to {settings.server_reference}.")
            code = ReasonCode.SERVER_MOVED if settings.server_moved else ReasonCode.USE_ANOTHER_SERVER
            properties = Properties(server_reference=settings.server_reference) if v5 else Properties()
            self._send(conn, Connack(code if v5 else ConnectReturnCode.SERVER_UNAVAILABLE, properties=properties))
            self._close(conn, now, publish_will=False, reason="redirected")
            return False
        if not v5 or connect.properties.authentication_method is None:
            accepted, username, why = authenticate(settings, connect, conn.identity)
            if not accepted:
                # Authentication failed: CONNACK 5 / 0x87 (as mosquitto 2.0.11), then close
                # [MQTT-3.2.2-5] (3.1.1), [MQTT-3.1.4-2] (5.0)
                self._refuse(conn, ConnectReturnCode.NOT_AUTHORIZED, ReasonCode.NOT_AUTHORIZED, why, now)
                return False
            conn.username = username
        will = connect.will
        if will is not None and will.qos > settings.max_qos:
            # 5.0: CONNACK 0x9B [MQTT-3.2.2-12]; 3.1.1 has no return code for it: close [MQTT-3.2.2-6]
            if v5:
                self._refuse(conn, 0, ReasonCode.QOS_NOT_SUPPORTED, "will QoS is not supported", now)
            else:
                self._close(conn, now, publish_will=False, reason="will QoS above max_qos")
            return False
        if will is not None and will.retain and not settings.retain_available:
            # 5.0: CONNACK 0x9A [MQTT-3.2.2-13]; 3.1.1: close [MQTT-3.2.2-6]
            if v5:
                self._refuse(conn, 0, ReasonCode.RETAIN_NOT_SUPPORTED, "retained messages are not supported", now)
            else:
                self._close(conn, now, publish_will=False, reason="retained will without retain support")
            return False
        return True

    def _take_over(self, client_id: str, now: float) -> None:
        """A client with this id is connected already: the older connection goes [MQTT-3.1.4-2] (3.1.1);
        5.0 tells it why with DISCONNECT 0x8E [MQTT-3.1.4-3] (mosquitto sends that only from 2.1.0)."""
        existing = self.sessions.get(client_id)
        if existing is None or existing.connection is None:
            return
        old = existing.connection
        self._log("notice", f"Client {client_id} already connected, closing old connection.")
        if old.version == MQTT_5:
            self._send(old, Disconnect(ReasonCode.SESSION_TAKEN_OVER,
                                       self._reason(old, "another connection took over the session")))
        self._close(old, now, publish_will=True, reason="session taken over")

    def _open_session(self, conn: Connection, connect: Connect, now: float) -> tuple[Session, bool]:
        """Clean Start / Clean Session handling [MQTT-3.1.4-3] (3.1.1), [MQTT-3.1.4-4] (5.0):
        the session for this connection, and whether it existed already (Session Present)."""
        client_id = conn.client_id
        existing = self.sessions.get(client_id)
        if existing is not None and existing.expires_at is not None and now >= existing.expires_at:
            self._end_session(existing, now)  # expired, its timer just has not fired yet
            existing = None
        if conn.version == MQTT_5:
            expiry = connect.properties.session_expiry_interval or 0
        else:
            expiry = 0 if connect.clean_start else NEVER_EXPIRES
        if connect.clean_start or existing is None:
            # Clean Start / Clean Session 1: any earlier session is discarded
            # [MQTT-3.1.2-6] (3.1.1), [MQTT-3.1.2-4] (5.0); else a new one [MQTT-3.1.2-6] (5.0).
            # Session Present 0 [MQTT-3.2.2-1/3] (3.1.1), [MQTT-3.2.2-2/3] (5.0)
            if existing is not None:
                self._end_session(existing, now)
            session, present = Session(client_id), False
            self.sessions[client_id] = session
        else:
            # Resume the stored session [MQTT-3.1.2-4] (3.1.1), [MQTT-3.1.2-5] (5.0); Session Present 1
            # [MQTT-3.2.2-2] (3.1.1), [MQTT-3.2.2-3] (5.0)
            session, present = existing, True
            # A new connection before the Will Delay passed: that will is not sent [MQTT-3.1.3-9] (5.0)
            self.pending_wills.pop(client_id, None)
        session.expiry_interval = expiry
        session.expires_at = None
        session.connection = conn
        session.protocol_level = conn.version
        session.username = conn.username
        conn.session = session
        conn.state = CONNECTED
        self._connected += 1
        conn.connect_session_expiry = expiry
        return session, present

    def _negotiate(self, conn: Connection, connect: Connect, assigned: str | None, now: float) -> Properties:
        """Keep alive, limits and will for this connection; returns the CONNACK properties (5.0)."""
        settings = self.settings
        properties = connect.properties
        connack_properties = Properties()
        keep_alive = connect.keep_alive
        client_window = 65535
        if conn.version == MQTT_5:
            if keep_alive > settings.max_keepalive or (keep_alive == 0 and settings.max_keepalive):
                # Server Keep Alive: the client must use ours [MQTT-3.1.2-21]. Like mosquitto 2.0.11,
                # also sent (as max_keepalive) when the client asked for no keep alive at all.
                keep_alive = settings.max_keepalive
                connack_properties.server_keep_alive = keep_alive
            if assigned is not None:
                connack_properties.assigned_client_identifier = assigned
            connack_properties.receive_maximum = settings.receive_maximum
            if settings.max_topic_alias:
                connack_properties.topic_alias_maximum = settings.max_topic_alias
            if settings.max_qos < 2:
                connack_properties.maximum_qos = settings.max_qos  # [MQTT-3.2.2-9]
            if not settings.retain_available:
                connack_properties.retain_available = 0
            if settings.max_packet_size:
                connack_properties.maximum_packet_size = settings.max_packet_size
            client_window = properties.receive_maximum or 65535
            conn.maximum_packet_size = properties.maximum_packet_size
            conn.problem_information = properties.request_problem_information != 0
            conn.aliases = InboundTopicAliases(settings.max_topic_alias)
            if settings.assign_topic_aliases and properties.topic_alias_maximum:
                conn.outbound_aliases = OutboundTopicAliases(properties.topic_alias_maximum)
            if properties.request_response_information and settings.response_information is not None:
                # Only when asked for [MQTT-3.1.2-28]; mosquitto 2.0 never sends it (off by default)
                connack_properties.response_information = settings.response_information.replace(
                    "%c", conn.client_id)
        conn.send_window = min(settings.receive_maximum, client_window)
        conn.keep_alive = keep_alive
        if keep_alive:
            self.timers.schedule(now + keep_alive * 1.5, ("keepalive", conn.id))
        if settings.max_packet_size:
            conn.decoder.max_packet_size = settings.max_packet_size
        if connect.will is not None:
            # Kept until the connection ends [MQTT-3.1.2-8] (3.1.1), [MQTT-3.1.2-7] (5.0)
            conn.will = Message.from_will(connect.will, conn.client_id)
            conn.will_delay = connect.will.properties.will_delay_interval or 0
        return connack_properties

    # ------------------------------------------------------------------------------------ PUBLISH

    def _on_publish(self, conn: Connection, publish: Publish, now: float) -> None:
        settings = self.settings
        v5 = conn.version == MQTT_5
        topic = publish.topic
        if v5:
            topic = conn.aliases.resolve(topic, publish.properties.topic_alias)
            if publish.properties.subscription_identifiers:
                raise ProtocolError("a client PUBLISH carries a Subscription Identifier", rule="MQTT-3.3.4-6")
        if publish.qos > settings.max_qos:
            # Above the Maximum QoS we announced: DISCONNECT 0x9B (5.0 3.2.2.3.4) [MQTT-3.2.2-11]
            raise ProtocolError(f"PUBLISH with QoS {publish.qos} above Maximum QoS {settings.max_qos}",
                                reason_code=ReasonCode.QOS_NOT_SUPPORTED)
        if publish.retain and not settings.retain_available:
            # Retain Available 0: DISCONNECT 0x9A (5.0 3.2.2.3.5) [MQTT-3.2.2-14]
            raise ProtocolError("PUBLISH with RETAIN 1 but retained messages are not supported",
                                reason_code=ReasonCode.RETAIN_NOT_SUPPORTED)
        session = conn.session
        self.counters.publish_received += 1

        if publish.qos == 2 and session.incoming.is_duplicate(publish.packet_id):
            # Already received, not yet released: PUBREC again, no second delivery
            # [MQTT-4.3.3-2] (3.1.1), [MQTT-4.3.3-10] (5.0)
            self._send(conn, Pubrec(publish.packet_id))
            return
        if publish.qos == 2 and v5 and len(session.incoming.awaiting_release) >= settings.receive_maximum:
            # More unacknowledged QoS 2 PUBLISHes than our Receive Maximum [MQTT-3.3.4-7]: DISCONNECT 0x93
            raise ProtocolError("Receive Maximum exceeded", reason_code=ReasonCode.RECEIVE_MAXIMUM_EXCEEDED)

        accepted, refusal = True, (0, Properties())
        if not may_publish(settings, conn.client_id, conn.username, topic):
            # The ACL forbids it: dropped. 3.1.1 acknowledges as usual [MQTT-3.3.5-2] (3.1.1); 5.0 answers 0x87
            # Not authorized (both as mosquitto 2.0.11)
            why = f"not authorised to publish to {topic!r}"
            accepted, refusal = False, (ReasonCode.NOT_AUTHORIZED, self._reason(conn, why))
            # mosquitto's line: "Denied PUBLISH from c1 (d0, q1, r0, m3, 'a/b', ... (5 bytes))"
            self._log("notice", "Denied" + packet_log.describe(publish, conn.name, received=True)[len("Received"):])
        elif settings.message_size_limit and len(publish.payload) > settings.message_size_limit:
            # mosquitto drops such messages (and answers 0x95, which PUBACK may not carry; we use 0x97)
            why = "payload above message_size_limit"
            accepted, refusal = False, (ReasonCode.QUOTA_EXCEEDED, self._reason(conn, why))
            self.counters.publish_dropped += 1
            self._log("notice", f"Dropped too large PUBLISH from {conn.name} ({len(publish.payload)} bytes).")
        else:
            message = Message.from_publish(publish, topic, conn.client_id, now, v5)
            if publish.retain:
                self.retained.store(message)  # [MQTT-3.3.1-5]
            self._route(message, now)

        # Acknowledge by QoS [MQTT-3.3.4-1]: nothing, PUBACK [MQTT-4.3.2-2] (3.1.1) / [MQTT-4.3.2-4] (5.0),
        # or PUBREC [MQTT-4.3.3-2] (3.1.1) / [MQTT-4.3.3-8] (5.0)
        if publish.qos == 0:
            return
        code, properties = refusal if v5 else (0, Properties())
        if publish.qos == 1:
            self._send(conn, Puback(publish.packet_id, code, properties))
        else:
            if accepted:
                session.incoming.received(publish.packet_id)
            # A failed PUBREC ends the flow: a later PUBLISH with this id is new [MQTT-4.3.3-9] (5.0)
            self._send(conn, Pubrec(publish.packet_id, code, properties))

    def _on_pubrel(self, conn: Connection, pubrel: Pubrel, now: float) -> None:
        known = conn.session.incoming.released(pubrel.packet_id)
        # PUBCOMP with the same id [MQTT-4.3.3-2] (3.1.1), [MQTT-4.3.3-11] (5.0). For an id we do not
        # know, 5.0 has 0x92 Packet Identifier not found (mosquitto answers 0x00 there).
        code = 0 if known or conn.version != MQTT_5 else ReasonCode.PACKET_IDENTIFIER_NOT_FOUND
        self._send(conn, Pubcomp(pubrel.packet_id, code))

    def _on_puback(self, conn: Connection, puback: Puback, now: float) -> None:
        # QoS 1 delivery done [MQTT-4.3.2-1] (3.1.1), [MQTT-4.3.2-3] (5.0); unknown ids are ignored
        if conn.session.outgoing.acknowledge(puback.packet_id):
            self._fill_window(conn, now)

    def _on_pubrec(self, conn: Connection, pubrec: Pubrec, now: float) -> None:
        outgoing = conn.session.outgoing
        if conn.version == MQTT_5 and pubrec.reason_code >= 0x80:
            # A failed PUBREC acknowledges the message; never sent again [MQTT-4.4.0-2] (5.0)
            if outgoing.acknowledge(pubrec.packet_id):
                self._fill_window(conn, now)
            return
        if outgoing.release(pubrec.packet_id):
            self._send(conn, Pubrel(pubrec.packet_id))  # [MQTT-4.3.3-1] (3.1.1), [MQTT-4.3.3-4] (5.0)
        else:
            code = ReasonCode.PACKET_IDENTIFIER_NOT_FOUND if conn.version == MQTT_5 else 0
            self._send(conn, Pubrel(pubrec.packet_id, code))

    def _on_pubcomp(self, conn: Connection, pubcomp: Pubcomp, now: float) -> None:
        if conn.session.outgoing.acknowledge(pubcomp.packet_id):
            self._fill_window(conn, now)

    # ------------------------------------------------------------------------------------ routing

    def _route(self, message: Message, now: float) -> None:
        """Give `message` to every session with a matching subscription [MQTT-4.5.0-1].

        3.1/3.1.1 clients get one copy at the highest QoS of their matching subscriptions
        [MQTT-3.3.5-1] (3.1.1). 5.0 clients get one copy per matching subscription, each with its own
        QoS and Subscription Identifier, as mosquitto does since 1.6.3 [MQTT-3.3.4-2], [MQTT-3.3.4-5].
        """
        sessions = self.sessions
        acl = self.settings.acl is not None
        v3_copies: dict[str, Delivery] = {}
        for match in self.subscriptions.match(message.topic, self._is_online):
            session = sessions.get(match.client_id)
            if session is None:
                continue
            options = match.options
            if options.no_local and message.sender == match.client_id:
                continue  # No Local [MQTT-3.8.3-3] (5.0)
            if acl and not may_receive(self.settings, session.client_id, session.username, message.topic):
                continue  # the ACL does not let this client read this topic
            qos = min(message.qos, options.qos)  # [MQTT-3.8.4-6] (3.1.1), [MQTT-3.8.4-8] (5.0)
            if session.protocol_level == MQTT_5:
                # RETAIN as published only with Retain As Published [MQTT-3.3.1-12/13] (5.0)
                retain = message.retain and options.retain_as_published
                ids = (options.identifier,) if options.identifier is not None else ()
                self._deliver(session, Delivery(message, qos, retain, ids), now)
            else:
                # RETAIN is 0 for established subscriptions [MQTT-3.3.1-9] (3.1.1)
                earlier = v3_copies.get(match.client_id)
                if earlier is None or earlier.qos < qos:
                    v3_copies[match.client_id] = Delivery(message, qos, False)
        for client_id, delivery in v3_copies.items():
            self._deliver(sessions[client_id], delivery, now)

    def _is_online(self, client_id: str) -> bool:
        session = self.sessions.get(client_id)
        return session is not None and session.connection is not None

    def _deliver(self, session: Session, delivery: Delivery, now: float) -> None:
        conn = session.connection
        if conn is not None and conn.state == CONNECTED:
            publish = session.outgoing.send_or_queue(delivery, now, conn.send_window,
                                                     self.settings.max_queued_messages)
            if publish is not None:
                self._send(conn, publish)
            return
        # Offline: keep QoS 1/2 for the session [MQTT-3.1.2-5] (3.1.1); QoS 0 only with queue_qos0_messages
        if delivery.qos == 0 and not self.settings.queue_qos0_messages:
            return
        if not session.outgoing.enqueue(delivery, self.settings.max_queued_messages):
            self.counters.publish_dropped += 1

    def _fill_window(self, conn: Connection, now: float) -> None:
        for publish in conn.session.outgoing.fill_window(now, conn.send_window):
            self._send(conn, publish)

    # ---------------------------------------------------------------------------------- SUBSCRIBE

    def _on_subscribe(self, conn: Connection, subscribe: Subscribe, now: float) -> None:
        session = conn.session
        v5 = conn.version == MQTT_5
        identifier = subscribe.properties.subscription_identifiers[0] if subscribe.properties.subscription_identifiers \
            else None
        codes: list[int] = []
        retained_to_send: list[tuple[str, SubscriptionOptions]] = []
        for subscription in subscribe.subscriptions:
            topic_filter = subscription.topic_filter
            try:
                # Like mosquitto, "$share/" is a shared subscription for every protocol version
                validate_topic_filter(topic_filter)
            except InvalidTopicFilter as error:
                # A refused filter: 0x80 [MQTT-3.9.3-2] (3.1.1), 0x8F Topic Filter invalid (5.0).
                # (mosquitto drops the connection instead: deviation 23.)
                self._log("notice", f"Refused subscription {topic_filter!r} of {conn.name}: {error}")
                codes.append(ReasonCode.TOPIC_FILTER_INVALID if v5 else SUBACK_FAILURE_V3)
                continue
            shared = is_shared_subscription(topic_filter)
            if shared and subscription.no_local:
                raise ProtocolError("No Local on a shared subscription", rule="MQTT-3.8.3-4")
            inner_filter = topic_filter.split("/", 2)[2] if shared else topic_filter
            if not may_subscribe(self.settings, conn.client_id, conn.username, inner_filter):
                # The ACL lets this client read nothing the filter matches: 0x80 [MQTT-3.9.3-2] (3.1.1),
                # 0x87 Not authorized (5.0). (mosquitto 2.0.11 grants it and filters every message.)
                self._log("notice", f"Denied subscription {topic_filter!r} of {conn.name}.")
                codes.append(ReasonCode.NOT_AUTHORIZED if v5 else SUBACK_FAILURE_V3)
                continue
            granted = min(subscription.qos, self.settings.max_qos)  # [MQTT-3.2.2-10] (5.0)
            options = SubscriptionOptions(granted, subscription.no_local, subscription.retain_as_published,
                                          subscription.retain_handling, identifier,
                                          topic_filter.split("/", 2)[1] if shared else None)
            # The same filter again replaces the subscription [MQTT-3.8.4-3] (both versions)
            is_new = topic_filter not in session.subscriptions
            session.subscriptions[topic_filter] = options
            self.subscriptions.add(session.client_id, topic_filter, options)
            codes.append(granted)  # [MQTT-3.8.4-5] (3.1.1), [MQTT-3.8.4-7] (5.0)
            # Retained messages: Retain Handling 0 always, 1 only for a new subscription, 2 never
            # [MQTT-3.3.1-9/10/11] (5.0); none for shared subscriptions (as mosquitto >= 2.0.13)
            if not shared and (options.retain_handling == 0 or (options.retain_handling == 1 and is_new)):
                retained_to_send.append((topic_filter, options))
        # One SUBACK, same packet id, one code per filter in order [MQTT-3.8.4-1/2/4], [MQTT-3.9.3-1]
        failed = [code for code in codes if code >= 0x80]
        why = "not authorised" if ReasonCode.NOT_AUTHORIZED in failed else "invalid topic filter"
        self._send(conn, Suback(subscribe.packet_id, codes, self._reason(conn, why) if failed else Properties()))
        for topic_filter, options in retained_to_send:
            ids = (options.identifier,) if options.identifier is not None else ()
            for message in self.retained.matching(topic_filter, now):
                if not may_receive(self.settings, conn.client_id, conn.username, message.topic):
                    continue
                # Sent because of a new subscription: RETAIN 1 [MQTT-3.3.1-8] (3.1.1)
                self._deliver(session, Delivery(message, min(message.qos, options.qos), True, ids), now)

    def _on_unsubscribe(self, conn: Connection, unsubscribe: Unsubscribe, now: float) -> None:
        session = conn.session
        codes = []
        for topic_filter in unsubscribe.topic_filters:
            # Exact, character by character comparison [MQTT-3.10.4-1]
            if session.subscriptions.pop(topic_filter, None) is not None:
                self.subscriptions.remove(session.client_id, topic_filter)
                codes.append(ReasonCode.SUCCESS)
            else:
                codes.append(ReasonCode.NO_SUBSCRIPTION_EXISTED)
        # Always an UNSUBACK with the same id [MQTT-3.10.4-4/5] (3.1.1), [MQTT-3.10.4-4/5] (5.0)
        self._send(conn, Unsuback(unsubscribe.packet_id, codes if conn.version == MQTT_5 else []))

    # ----------------------------------------------------------------------- PINGREQ, DISCONNECT, AUTH

    def _on_pingreq(self, conn: Connection, pingreq: Pingreq, now: float) -> None:
        self._send(conn, Pingresp())  # [MQTT-3.12.4-1]

    def _on_disconnect(self, conn: Connection, disconnect: Disconnect, now: float) -> None:
        if conn.state == AUTHENTICATING:
            # The client gives up during enhanced authentication (5.0 4.12): no session was opened
            self._close(conn, now, publish_will=False, reason="DISCONNECT during authentication")
            return
        session = conn.session
        publish_will = False
        if conn.version == MQTT_5:
            expiry = disconnect.properties.session_expiry_interval
            if expiry is not None:
                if conn.connect_session_expiry == 0 and expiry != 0:
                    # 5.0 3.14.2.2.2: zero in CONNECT, non-zero in DISCONNECT is a Protocol Error
                    raise ProtocolError("DISCONNECT sets a Session Expiry Interval after CONNECT set 0")
                session.expiry_interval = expiry
            # 0x04 Disconnect with Will Message: the will is published (5.0 3.14.2.1)
            publish_will = disconnect.reason_code == ReasonCode.DISCONNECT_WITH_WILL_MESSAGE
        # Otherwise the will is deleted unpublished [MQTT-3.14.4-3] (3.1.1), [MQTT-3.14.4-3] (5.0)
        self._log("notice", f"Client {conn.name} disconnected.")
        self._close(conn, now, publish_will=publish_will, reason="DISCONNECT")

    def _on_auth(self, conn: Connection, auth: Auth, now: float) -> None:
        """AUTH from the client: the next step of an authentication, or the start of a re-authentication."""
        if conn.auth_method is None:
            # No Authentication Method in CONNECT, so no AUTH may follow [MQTT-4.12.0-7]
            raise ProtocolError("AUTH without an authentication method in CONNECT", rule="MQTT-4.12.0-7")
        if auth.properties.authentication_method != conn.auth_method:
            # The method of CONNECT, always [MQTT-4.12.0-5], also to re-authenticate [MQTT-4.12.1-1]
            raise ProtocolError(f"AUTH with method {auth.properties.authentication_method!r}, not "
                                f"{conn.auth_method!r}", rule="MQTT-4.12.0-5")
        if auth.reason_code == ReasonCode.CONTINUE_AUTHENTICATION:
            if conn.auth_exchange is None:
                # 0x18 only answers our AUTH 0x18 [MQTT-4.12.0-3]
                raise ProtocolError("AUTH 0x18 but no authentication is in progress", rule="MQTT-4.12.0-3")
        elif auth.reason_code == ReasonCode.RE_AUTHENTICATE:
            if conn.state != CONNECTED or conn.auth_exchange is not None:
                # Re-authentication starts after CONNACK, and not in the middle of another (4.12.1)
                raise ProtocolError("AUTH 0x19 while an authentication is in progress")
            conn.auth_exchange = self._auth_methods[conn.auth_method]()
        else:
            raise ProtocolError(f"a client sends AUTH 0x18 or 0x19, not 0x{auth.reason_code:02X}")
        self._authentication_step(conn, auth.properties.authentication_data, now)

    def _authentication_step(self, conn: Connection, data: bytes | None, now: float) -> None:
        """Give the client's Authentication Data to the exchange and answer what it says."""
        method = conn.auth_method
        try:
            step = conn.auth_exchange.step(data)
        except AuthenticationFailed as error:
            conn.auth_exchange = None
            if conn.state == AUTHENTICATING:
                # Failed: CONNACK 0x87 Not authorized, then close [MQTT-4.12.0-4]
                conn.pending_connect = None
                self._refuse(conn, 0, ReasonCode.NOT_AUTHORIZED, str(error), now)
            else:
                # Failed re-authentication: DISCONNECT 0x87, then close [MQTT-4.12.1-2]
                self._log("notice", f"Client {conn.name} failed to re-authenticate: {error}")
                self._send(conn, Disconnect(ReasonCode.NOT_AUTHORIZED, self._reason(conn, str(error))))
                self._close(conn, now, publish_will=True, reason="re-authentication failed")
            return
        properties = Properties(authentication_method=method, authentication_data=step.data)
        if not step.done:
            # More is needed: AUTH 0x18 [MQTT-4.12.0-2], with the same method [MQTT-4.12.0-5]
            self._send(conn, Auth(ReasonCode.CONTINUE_AUTHENTICATION, properties))
            return
        conn.auth_exchange = None
        if conn.state == AUTHENTICATING:
            connect, assigned = conn.pending_connect
            conn.pending_connect = None
            conn.username = step.username
            self._accept(conn, connect, assigned, now, properties)
        elif step.username != conn.username:
            # Re-authentication may not change who the client is (a choice 4.12.1 allows)
            self._send(conn, Disconnect(ReasonCode.NOT_AUTHORIZED,
                                        self._reason(conn, "re-authentication as another user")))
            self._close(conn, now, publish_will=True, reason="re-authentication as another user")
        else:
            self._send(conn, Auth(ReasonCode.SUCCESS, properties))  # re-authentication done (4.12.1)

    _handlers: dict[type, Callable] = {
        Connect: _on_connect, Publish: _on_publish, Puback: _on_puback, Pubrec: _on_pubrec, Pubrel: _on_pubrel,
        Pubcomp: _on_pubcomp, Subscribe: _on_subscribe, Unsubscribe: _on_unsubscribe, Pingreq: _on_pingreq,
        Disconnect: _on_disconnect, Auth: _on_auth,
    }

    # ------------------------------------------------------------------------- errors and closing

    def _protocol_violation(self, conn: Connection, error: MQTTError, now: float) -> None:
        """A malformed packet or a protocol error: close the connection [MQTT-4.8.0-1] (3.1.1),
        [MQTT-4.13.1-1] (5.0); 5.0 first says why with a DISCONNECT reason code."""
        kind = "malformed packet" if isinstance(error, MalformedPacket) else "protocol error"
        self._log("notice", f"Client {conn.name} disconnected due to {kind}: {error}")
        if conn.version == MQTT_5 and conn.state == CONNECTED:
            code = error.reason_code
            if code not in VALID_REASON_CODES["DISCONNECT"]:
                code = ReasonCode.MALFORMED_PACKET if isinstance(error, MalformedPacket) else ReasonCode.PROTOCOL_ERROR
            self._send(conn, Disconnect(code, self._reason(conn, str(error))))
        elif conn.state == AUTHENTICATING:
            # Before CONNACK the answer is a CONNACK with the reason code (5.0 4.13.1)
            code = ReasonCode.MALFORMED_PACKET if isinstance(error, MalformedPacket) else ReasonCode.PROTOCOL_ERROR
            self._send(conn, Connack(code, properties=self._reason(conn, str(error))))
        self._close(conn, now, publish_will=True, reason=str(error))

    def _close(self, conn: Connection, now: float, *, publish_will: bool, reason: str,
               send_close: bool = True) -> None:
        """End a connection. The session stays (and expires later) or ends now; the will is
        published (or delayed) when `publish_will` and there is one."""
        if conn.state == CLOSED:
            return
        was_connected = conn.state == CONNECTED
        conn.state = CLOSED
        if send_close:
            self._actions.append(Close(conn.id, reason))
        self.connections.pop(conn.id, None)
        if not was_connected:
            return
        self._connected -= 1
        session = conn.session
        session.connection = None
        will, conn.will = conn.will, None
        if will is not None and publish_will:
            if may_publish(self.settings, conn.client_id, conn.username, will.topic):
                self._start_will(conn.client_id, will, conn.will_delay, now)
            else:
                self._log("notice", f"Denied will of {conn.name} to '{will.topic}'.")
        deadline = session.expiry_deadline(now, self.settings.persistent_client_expiration
                                           if session.expiry_interval else None)
        if session.expiry_interval == 0:
            self._end_session(session, now)  # [MQTT-3.1.2-6] (3.1.1): lasts as long as the connection
        else:
            session.expires_at = deadline
            if deadline is not None:
                self.timers.schedule(deadline, ("session", session.client_id))

    def _end_session(self, session: Session, now: float) -> None:
        """The session ends: its subscriptions and queued messages go; a delayed will is due now
        (published when the delay passes or the session ends, whichever comes first [MQTT-3.1.2-8] (5.0))."""
        pending = self.pending_wills.pop(session.client_id, None)
        if pending is not None:
            self._publish(pending[1], now)
        for topic_filter in session.subscriptions:
            self.subscriptions.remove(session.client_id, topic_filter)
        session.subscriptions.clear()
        if self.sessions.get(session.client_id) is session:
            del self.sessions[session.client_id]

    # ------------------------------------------------------------------------------------- wills

    def _start_will(self, client_id: str, will: Message, delay: int, now: float) -> None:
        expiry = will.properties.message_expiry_interval
        if expiry is not None:
            # The will's Message Expiry Interval counts from when it is published (5.0 3.1.3.2.4)
            will.properties = will.properties.copy()
            will.properties.message_expiry_interval = None
            will.expires_at = now + delay + expiry
        if delay <= 0:
            self._publish(will, now)
            return
        # Will Delay Interval (5.0 3.1.3.2.2): wait, unless the client comes back first
        self.pending_wills[client_id] = (now + delay, will)
        self.timers.schedule(now + delay, ("will", client_id))

    def _publish(self, message: Message, now: float) -> None:
        """Publish a message that did not come in a PUBLISH: a will, a $SYS value."""
        if message.retain:
            if not self.settings.retain_available:
                message.retain = False
            else:
                # Will Retain 1: published as retained [MQTT-3.1.2-17] (3.1.1), [MQTT-3.1.2-15] (5.0)
                self.retained.store(message)
        self._route(message, now)

    # ------------------------------------------------------------------------------------- timers

    def _check_keep_alive(self, conn_id: ConnectionId, now: float) -> None:
        conn = self.connections.get(conn_id)
        if conn is not None and conn.state in (NEW, AUTHENTICATING):
            if now < conn.last_received + CONNECT_TIMEOUT:
                self.timers.schedule(conn.last_received + CONNECT_TIMEOUT, ("keepalive", conn_id))
                return
            self._log("notice", f"Client {conn.name} did not complete CONNECT, disconnecting.")
            self._close(conn, now, publish_will=False, reason="no CONNECT")
            return
        if conn is None or conn.state != CONNECTED or not conn.keep_alive:
            return
        deadline = conn.last_received + conn.keep_alive * 1.5
        if now < deadline:
            self.timers.schedule(deadline, ("keepalive", conn_id))
            return
        # Nothing for 1.5 x Keep Alive: closed as if the network failed, so the will is published
        # [MQTT-3.1.2-24] (3.1.1), [MQTT-3.1.2-22] (5.0); 5.0 may first say 0x8D Keep Alive timeout.
        self._log("notice", f"Client {conn.name} has exceeded timeout, disconnecting.")
        if conn.version == MQTT_5:
            self._send(conn, Disconnect(ReasonCode.KEEP_ALIVE_TIMEOUT, self._reason(conn, "keep alive timeout")))
        self._close(conn, now, publish_will=True, reason="keep alive timeout")

    def _check_session_expiry(self, client_id: str, now: float) -> None:
        session = self.sessions.get(client_id)
        if session is None or session.online or session.expires_at is None or now < session.expires_at:
            return
        self._log("notice", f"Session of {client_id} expired.")
        self._end_session(session, now)  # [MQTT-4.1.0-2] (5.0)

    def _check_will(self, client_id: str, now: float) -> None:
        pending = self.pending_wills.get(client_id)
        if pending is not None and now >= pending[0]:
            del self.pending_wills[client_id]
            self._publish(pending[1], now)

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
            self._publish(Message(topic, payload.encode(), 0, True), now)


def _peek_protocol_level(body: bytes) -> int | None:
    """The protocol level byte of a CONNECT body we could not decode (it follows the protocol name)."""
    if len(body) < 2:
        return None
    name_length = (body[0] << 8) | body[1]
    index = 2 + name_length
    return body[index] if index < len(body) else None


def _without_optional_properties(packet: Packet) -> Packet:
    """The same acknowledgement without Reason String and User Properties."""
    properties = getattr(packet, "properties", None)
    if not properties or (properties.reason_string is None and not properties.user_properties):
        return packet
    stripped = properties.copy()
    stripped.reason_string = None
    stripped.user_properties = []
    return dataclasses.replace(packet, properties=stripped)
