"""CONNECT: from the first packet of a connection to CONNACK.

A CONNECT we cannot read is refused (`refuse_bad_connect`). One we can read goes through
`on_connect`: the client id is chosen (or assigned), the client authenticated (with a password, or
through the AUTH exchange of authentication.py), and what it asks checked against what we support.
`accept` then takes over a connection with the same client id, opens or resumes the session,
negotiates keep alive and limits (the CONNACK properties in 5.0) and answers CONNACK 0x00.

Enhanced authentication (5.0 4.12) happens between CONNECT and CONNACK: auth_exchange.py runs the
exchange and returns what came of each step; `_act_on` here answers it (AUTH 0x18, or CONNACK).
"""

from __future__ import annotations

from ..protocol import (
    MQTT_3_1,
    MQTT_3_1_1,
    MQTT_5,
    Auth,
    Connack,
    Connect,
    ConnectReturnCode,
    Disconnect,
    MalformedPacket,
    MQTTError,
    Properties,
    ReasonCode,
    UnsupportedProtocolVersion,
)
from ..protocol.reason_codes import VALID_REASON_CODES
from . import auth_exchange
from .access import authenticate
from .auth_exchange import Accepted, AuthResult, Continue
from .compat import CLOSE, answer_for
from .connection import Connection
from .context import Context
from .lifecycle import close, end_session, watch_deadline
from .messages import Message
from .sessions import NEVER_EXPIRES, Session
from .settings import CONNECTION_MESSAGE
from .states import Event
from .topic_aliases import InboundTopicAliases, OutboundTopicAliases

# mosquitto's "p" number in "New client connected ... (p2, c1, k60)"
_MOSQUITTO_PROTOCOL_NUMBER = {MQTT_3_1: 1, MQTT_3_1_1: 2, MQTT_5: 5}


def refuse_bad_connect(ctx: Context, conn: Connection, body: bytes, error: MQTTError, now: float) -> None:
    """The first packet could not be read as an acceptable CONNECT."""
    level = _peek_protocol_level(body)
    ctx.log("notice", f"Bad CONNECT from {conn.name}: {error}")
    if isinstance(error, UnsupportedProtocolVersion):
        # [MQTT-3.1.2-2]: CONNACK return code 0x01 in the 3.1.1 format (what mosquitto 2.0.11 sends
        # too; a level we do not know gives no clue that the client would read a 5.0 CONNACK)
        conn.version = MQTT_3_1_1
        ctx.outbox.send(conn, Connack(ConnectReturnCode.UNACCEPTABLE_PROTOCOL_VERSION))
    elif error.rule == "MQTT-3.1.2-1":
        pass  # not MQTT at all: close without answering [MQTT-3.1.2-1]
    elif level == MQTT_5:
        # 5.0: close [MQTT-3.1.4-1], after a CONNACK with the reason code if the mosquitto version
        # sends one (the server MAY, 3.1.4 and 4.13.1; compat.py)
        conn.version = MQTT_5
        code = answer_for(ctx.settings.compat.bad_connect, error)
        if code is not CLOSE:
            if code not in VALID_REASON_CODES["CONNACK"]:
                code = ReasonCode.MALFORMED_PACKET if isinstance(error, MalformedPacket) else ReasonCode.PROTOCOL_ERROR
            ctx.outbox.send(conn, Connack(code, properties=ctx.outbox.failure_properties(conn, str(error))))
    # 3.1 / 3.1.1: a malformed CONNECT is closed without CONNACK [MQTT-3.1.4-1] (3.1.1)
    close(ctx, conn, now, publish_will=False, reason=str(error))


def refuse(ctx: Context, conn: Connection, v3_code: int, v5_code: int, why: str, now: float) -> None:
    """Answer CONNECT with a failure CONNACK (Session Present 0 [MQTT-3.2.2-4] (3.1.1) /
    [MQTT-3.2.2-6] (5.0)) and close [MQTT-3.2.2-5] (3.1.1) / [MQTT-3.2.2-7] (5.0)."""
    ctx.log("notice", f"Refused connection from {conn.peer or conn.name}: {why}")
    code = v5_code if conn.version == MQTT_5 else v3_code
    ctx.outbox.send(conn, Connack(code, properties=ctx.outbox.failure_properties(conn, why)))
    close(ctx, conn, now, publish_will=False, reason=why)


def on_connect(ctx: Context, conn: Connection, connect: Connect, now: float) -> None:
    conn.version = conn.decoder.version = connect.protocol_level
    if conn.version == MQTT_5:
        # Known before any answer, so that even a refusing CONNACK respects them [MQTT-3.1.2-24]
        conn.maximum_packet_size = connect.properties.maximum_packet_size
        conn.problem_information = connect.properties.request_problem_information != 0
    client_id, assigned = _choose_client_id(ctx, conn, connect, now)
    if client_id is None:
        return  # refused, and closed
    prefixes = ctx.settings.clientid_prefixes
    if prefixes and not client_id.startswith(prefixes):
        # mosquitto's deprecated clientid_prefixes: other client ids are not authorised
        refuse(ctx, conn, ConnectReturnCode.NOT_AUTHORIZED, ReasonCode.NOT_AUTHORIZED,
               f"client id {client_id!r} does not start with {prefixes!r} (clientid_prefixes)", now)
        return
    if not _may_accept(ctx, conn, connect, now):
        return  # refused, and closed
    conn.client_id = client_id
    method = connect.properties.authentication_method if conn.version == MQTT_5 else None
    if method is None:
        accept(ctx, conn, connect, assigned, now)
        return
    # Enhanced authentication (5.0 4.12): the method's exchange decides before any session exists
    if not auth_exchange.begin(ctx, conn, method):
        # A method we do not support: CONNACK 0x8C and close [MQTT-4.12.0-1]
        refuse(ctx, conn, 0, ReasonCode.BAD_AUTHENTICATION_METHOD,
               f"authentication method {method!r} is not supported", now)
        return
    conn.pending_connect = (connect, assigned)
    ctx.connections.transition(conn, Event.AUTHENTICATION_STARTED)
    _act_on(ctx, conn, auth_exchange.advance(conn, connect.properties.authentication_data), now)


def on_auth_before_connack(ctx: Context, conn: Connection, auth: Auth, now: float) -> None:
    """AUTH 0x18 from a client in the middle of enhanced authentication: the next step."""
    auth_exchange.check_auth(conn, auth)
    _act_on(ctx, conn, auth_exchange.advance(conn, auth.properties.authentication_data), now)


def _act_on(ctx: Context, conn: Connection, result: AuthResult, now: float) -> None:
    if isinstance(result, Continue):
        # More is needed: AUTH 0x18 [MQTT-4.12.0-2], with the same method [MQTT-4.12.0-5]
        ctx.outbox.send(conn, Auth(ReasonCode.CONTINUE_AUTHENTICATION, auth_exchange.properties(conn, result.data)))
        return
    pending, assigned = conn.pending_connect
    conn.pending_connect = None
    if isinstance(result, Accepted):
        conn.username = result.username
        accept(ctx, conn, pending, assigned, now, auth_exchange.properties(conn, result.data))
    else:
        # Failed: CONNACK 0x87 Not authorized, then close [MQTT-4.12.0-4]
        refuse(ctx, conn, 0, ReasonCode.NOT_AUTHORIZED, result.reason, now)


def accept(ctx: Context, conn: Connection, connect: Connect, assigned: str | None, now: float,
           auth: Properties | None = None) -> None:
    """The client is who it says: take over, open the session, negotiate, CONNACK 0x00."""
    if conn.listener is not None and conn.listener.use_username_as_clientid:
        # use_username_as_clientid (mosquitto): the user name replaces the client id, so nobody can
        # take over another user's session; a client without a user name is not authorised
        if conn.username is None:
            refuse(ctx, conn, ConnectReturnCode.NOT_AUTHORIZED, ReasonCode.NOT_AUTHORIZED,
                   "use_username_as_clientid needs a user name", now)
            return
        conn.client_id = conn.username
        if assigned is not None:  # the client sent no id: it learns the one it has [MQTT-3.2.2-16]
            assigned = conn.username
    client_id = conn.client_id
    _take_over(ctx, client_id, now)
    session, session_present = _open_session(ctx, conn, connect, now)
    connack_properties = _negotiate(ctx, conn, connect, assigned, now)
    if auth is not None:
        # The same Authentication Method in a successful CONNACK [MQTT-4.12.0-5], with the
        # method's final data; never without a method in CONNECT [MQTT-4.12.0-6]
        connack_properties.authentication_method = auth.authentication_method
        connack_properties.authentication_data = auth.authentication_data
    ctx.log(CONNECTION_MESSAGE, f"New client connected from {conn.peer} as {client_id} "
                      f"(p{_MOSQUITTO_PROTOCOL_NUMBER[conn.version]}, c{int(connect.clean_start)}, "
                      f"k{connect.keep_alive}" + (f", u'{conn.username}'" if conn.username else "") + ").")
    # Accepted [MQTT-3.1.4-4] (3.1.1), [MQTT-3.1.4-5] (5.0)
    # MQTT 3.1 has no Session Present flag: the first CONNACK byte is reserved and stays 0 (3.1, CONNACK)
    ctx.outbox.send(conn, Connack(ConnectReturnCode.ACCEPTED, session_present and conn.version != MQTT_3_1,
                                  connack_properties))
    ctx.connections.transition(conn, Event.ACCEPTED)
    watch_deadline(ctx, conn, now)  # keep alive from now on
    ctx.counters.connects += 1
    if session_present:
        ctx.router.resume(conn, now)  # what was in flight, then the queue [MQTT-4.4.0-1]


def _choose_client_id(ctx: Context, conn: Connection, connect: Connect, now: float) -> tuple[str | None, str | None]:
    """(client id, the id we assigned or None); (None, None) if the CONNECT was refused."""
    security = conn.security
    client_id, version = connect.client_id, conn.version
    if version == MQTT_3_1 and not 1 <= len(client_id) <= 23:
        # MQTT 3.1 (section 3.1): 1 to 23 characters, else return code 2
        refuse(ctx, conn, ConnectReturnCode.IDENTIFIER_REJECTED, 0, "client id must be 1-23 characters", now)
        return None, None
    if client_id:
        return client_id, None
    if version == MQTT_3_1_1 and not connect.clean_start:
        # Empty client id with Clean Session 0: return code 2 [MQTT-3.1.3-8] (3.1.1)
        refuse(ctx, conn, ConnectReturnCode.IDENTIFIER_REJECTED, 0, "zero length client id needs clean session",
               now)
        return None, None
    if not security.allow_zero_length_clientid:
        # [MQTT-3.1.3-9] (3.1.1), [MQTT-3.1.3-8] (5.0)
        refuse(ctx, conn, ConnectReturnCode.IDENTIFIER_REJECTED, ReasonCode.CLIENT_IDENTIFIER_NOT_VALID,
               "zero length client ids are not allowed", now)
        return None, None
    # A unique id of our own [MQTT-3.1.3-6]; 5.0 tells the client [MQTT-3.1.3-7], [MQTT-3.2.2-16]
    client_id = ctx.new_client_id(security.auto_id_prefix)
    while client_id in ctx.sessions:
        client_id = ctx.new_client_id(security.auto_id_prefix)
    return client_id, client_id


def _may_accept(ctx: Context, conn: Connection, connect: Connect, now: float) -> bool:
    """Authentication, and what the CONNECT asks that the server does not support."""
    settings = ctx.settings
    v5 = conn.version == MQTT_5
    if settings.server_reference is not None:
        # Server redirection (5.0 4.11): 0x9C Use another server (temporarily) or 0x9D Server moved,
        # with the Server Reference. 3.1/3.1.1 know no redirection: return code 3 Server unavailable.
        # Then close [MQTT-3.2.2-5] (3.1.1), [MQTT-3.2.2-7] (5.0)
        ctx.log("notice", f"Redirected {conn.peer or conn.name} to {settings.server_reference}.")
        code = ReasonCode.SERVER_MOVED if settings.server_moved else ReasonCode.USE_ANOTHER_SERVER
        properties = Properties(server_reference=settings.server_reference) if v5 else Properties()
        ctx.outbox.send(conn, Connack(code if v5 else ConnectReturnCode.SERVER_UNAVAILABLE, properties=properties))
        close(ctx, conn, now, publish_will=False, reason="redirected")
        return False
    if not v5 or connect.properties.authentication_method is None:
        accepted, username, why = authenticate(conn.security, connect, conn.identity)
        if not accepted:
            # Authentication failed: CONNACK 5 / 0x87 (as mosquitto 2.0.11), then close
            # [MQTT-3.2.2-5] (3.1.1), [MQTT-3.1.4-2] (5.0)
            refuse(ctx, conn, ConnectReturnCode.NOT_AUTHORIZED, ReasonCode.NOT_AUTHORIZED, why, now)
            return False
        conn.username = username
        conn.credentials = (connect.username, connect.password)
    limit = settings.keepalive_limit
    if (not v5 and settings.compat.v3_keepalive_limit_refuses and limit
            and (connect.keep_alive == 0 or connect.keep_alive > limit)):
        # mosquitto 2.0.21 / 2.1.2 refuse a 3.x client whose Keep Alive is 0 or above max_keepalive, with
        # return code 2 (identifier rejected), which does not apply; no return code does, so refbroker
        # closes without CONNACK [MQTT-3.2.2-6] (3.1.1) (refbroker/departures.py)
        ctx.log("notice", f"Refused connection from {conn.peer or conn.name}: keep alive {connect.keep_alive} "
                          f"is not within max_keepalive {limit}")
        close(ctx, conn, now, publish_will=False, reason="keep alive above max_keepalive")
        return False
    will = connect.will
    if will is not None and will.qos > settings.max_qos:
        # 5.0: CONNACK 0x9B [MQTT-3.2.2-12]; 3.1.1 has no return code for it: close [MQTT-3.2.2-6]
        if v5:
            refuse(ctx, conn, 0, ReasonCode.QOS_NOT_SUPPORTED, "will QoS is not supported", now)
        else:
            close(ctx, conn, now, publish_will=False, reason="will QoS above max_qos")
        return False
    if will is not None and will.retain and not settings.retain_available:
        # 5.0: CONNACK 0x9A [MQTT-3.2.2-13]; 3.1.1: close [MQTT-3.2.2-6]
        if v5:
            refuse(ctx, conn, 0, ReasonCode.RETAIN_NOT_SUPPORTED, "retained messages are not supported", now)
        else:
            close(ctx, conn, now, publish_will=False, reason="retained will without retain support")
        return False
    return True


def _take_over(ctx: Context, client_id: str, now: float) -> None:
    """A client with this id is connected already: the older connection goes [MQTT-3.1.4-2] (3.1.1);
    5.0 tells it why with DISCONNECT 0x8E [MQTT-3.1.4-3] (mosquitto sends that only from 2.1.0)."""
    old = ctx.connections.of_client(client_id)
    if old is None:
        return
    ctx.log("notice", f"Client {client_id} already connected, closing old connection.")
    if old.version == MQTT_5:
        ctx.outbox.send(old, Disconnect(ReasonCode.SESSION_TAKEN_OVER,
                                     ctx.outbox.failure_properties(old, "another connection took over the session")))
    close(ctx, old, now, publish_will=True, reason="session taken over")


def _open_session(ctx: Context, conn: Connection, connect: Connect, now: float) -> tuple[Session, bool]:
    """Clean Start / Clean Session handling [MQTT-3.1.4-3] (3.1.1), [MQTT-3.1.4-4] (5.0):
    the session for this connection, and whether it existed already (Session Present)."""
    client_id = conn.client_id
    existing = ctx.sessions.get(client_id)
    if existing is not None and existing.expires_at is not None and now >= existing.expires_at:
        end_session(ctx, existing, now)  # expired, its timer just has not fired yet
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
            end_session(ctx, existing, now)
        session, present = Session(client_id), False
        ctx.sessions.add(session)
    else:
        # Resume the stored session [MQTT-3.1.2-4] (3.1.1), [MQTT-3.1.2-5] (5.0); Session Present 1
        # [MQTT-3.2.2-2] (3.1.1), [MQTT-3.2.2-3] (5.0)
        session, present = existing, True
        # A new connection before the Will Delay passed: that will is not sent [MQTT-3.1.3-9] (5.0)
        ctx.wills.cancel(client_id)
    session.expiry_interval = expiry
    session.expires_at = None
    session.protocol_level = conn.version
    session.username = conn.username
    session.listener = conn.listener  # offline, it receives what this listener's ACL lets it read
    conn.session = session
    conn.connect_session_expiry = expiry
    return session, present


def _negotiate(ctx: Context, conn: Connection, connect: Connect, assigned: str | None, now: float) -> Properties:
    """Keep alive, limits and will for this connection; returns the CONNACK properties (5.0)."""
    settings = ctx.settings
    properties = connect.properties
    connack_properties = Properties(wire_order=settings.compat.connack_property_order)
    keep_alive = connect.keep_alive
    client_window = 65535
    if conn.version == MQTT_5:
        limit = settings.keepalive_limit
        if limit and (keep_alive > limit or keep_alive == 0):
            # Server Keep Alive: the client must use ours [MQTT-3.1.2-21]. Like mosquitto, also sent
            # (as max_keepalive) when the client asked for no keep alive at all; mosquitto 2.0.11's
            # default max_keepalive is 65535, later versions have none (compat.py).
            keep_alive = limit
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
        if settings.packet_size_limit:
            connack_properties.maximum_packet_size = settings.packet_size_limit
        client_window = properties.receive_maximum or 65535
        conn.aliases = InboundTopicAliases(settings.max_topic_alias)
        if settings.assign_topic_aliases and properties.topic_alias_maximum:
            conn.outbound_aliases = OutboundTopicAliases(properties.topic_alias_maximum)
        if properties.request_response_information and settings.response_information is not None:
            # Only when asked for [MQTT-3.1.2-28]; mosquitto 2.0 never sends it (off by default)
            connack_properties.response_information = settings.response_information.replace(
                "%c", conn.client_id)
    conn.send_window = min(settings.receive_maximum, client_window)
    conn.keep_alive = keep_alive
    # Authenticated: from now on the limit is ours (max_packet_size), no longer the one before CONNACK
    conn.decoder.max_packet_size = settings.packet_size_limit or None
    if connect.will is not None:
        # Kept until the connection ends [MQTT-3.1.2-8] (3.1.1), [MQTT-3.1.2-7] (5.0)
        conn.will = Message.from_will(connect.will, conn.client_id)
        if conn.version == MQTT_5:
            conn.will.properties.wire_order = settings.compat.forwarded_order(connect.will.properties.wire_order)
        conn.will.topic = conn.mount_point + conn.will.topic  # the listener's mount_point
        conn.will_delay = connect.will.properties.will_delay_interval or 0
    return connack_properties


def _peek_protocol_level(body: bytes) -> int | None:
    """The protocol level byte of a CONNECT body we could not decode (it follows the protocol name)."""
    if len(body) < 2:
        return None
    name_length = (body[0] << 8) | body[1]
    index = 2 + name_length
    return body[index] if index < len(body) else None
