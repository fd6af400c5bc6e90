"""The life of a connection after CONNECT: PINGREQ, DISCONNECT, protocol errors, closing, wills,
and the timers (keep alive, session expiry, Will Delay Interval).

`close` ends a connection, whatever the cause: the session stays (until it expires) or ends now,
and the will is published, delayed or dropped. The `check_*` functions run when a timer of
timers.py is due (from `Broker.tick`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..protocol import (
    MQTT_5,
    Connack,
    Disconnect,
    MalformedPacket,
    MQTTError,
    Pingreq,
    Pingresp,
    ProtocolError,
    ReasonCode,
)
from ..protocol.reason_codes import VALID_REASON_CODES
from .actions import Close, ConnectionId
from .auth import may_publish
from .connection import AUTHENTICATING, CLOSED, CONNECTED, NEW, Connection
from .messages import Message
from .routing import publish
from .sessions import Session

if TYPE_CHECKING:
    from .broker import Broker


CONNECT_TIMEOUT = 90.0  # seconds a new connection may take to send CONNECT


def on_pingreq(broker: Broker, conn: Connection, pingreq: Pingreq, now: float) -> None:
    broker._send(conn, Pingresp())  # [MQTT-3.12.4-1]


def on_disconnect(broker: Broker, conn: Connection, disconnect: Disconnect, now: float) -> None:
    if conn.state == AUTHENTICATING:
        # The client gives up during enhanced authentication (5.0 4.12): no session was opened
        close(broker, conn, now, publish_will=False, reason="DISCONNECT during authentication")
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
    broker._log("notice", f"Client {conn.name} disconnected.")
    close(broker, conn, now, publish_will=publish_will, reason="DISCONNECT")


def protocol_violation(broker: Broker, conn: Connection, error: MQTTError, now: float) -> None:
    """A malformed packet or a protocol error: close the connection [MQTT-4.8.0-1] (3.1.1),
    [MQTT-4.13.1-1] (5.0); 5.0 first says why with a DISCONNECT reason code."""
    kind = "malformed packet" if isinstance(error, MalformedPacket) else "protocol error"
    broker._log("notice", f"Client {conn.name} disconnected due to {kind}: {error}")
    if conn.version == MQTT_5 and conn.state == CONNECTED:
        code = error.reason_code
        if code not in VALID_REASON_CODES["DISCONNECT"]:
            code = ReasonCode.MALFORMED_PACKET if isinstance(error, MalformedPacket) else ReasonCode.PROTOCOL_ERROR
        broker._send(conn, Disconnect(code, broker._reason(conn, str(error))))
    elif conn.state == AUTHENTICATING:
        # Before CONNACK the answer is a CONNACK with the reason code (5.0 4.13.1)
        code = ReasonCode.MALFORMED_PACKET if isinstance(error, MalformedPacket) else ReasonCode.PROTOCOL_ERROR
        broker._send(conn, Connack(code, properties=broker._reason(conn, str(error))))
    close(broker, conn, now, publish_will=True, reason=str(error))


def close(broker: Broker, conn: Connection, now: float, *, publish_will: bool, reason: str,
          send_close: bool = True) -> None:
    """End a connection. The session stays (and expires later) or ends now; the will is
    published (or delayed) when `publish_will` and there is one."""
    if conn.state == CLOSED:
        return
    was_connected = conn.state == CONNECTED
    conn.state = CLOSED
    if send_close:
        broker._actions.append(Close(conn.id, reason))
    broker.connections.pop(conn.id, None)
    if not was_connected:
        return
    broker._connected -= 1
    session = conn.session
    session.connection = None
    will, conn.will = conn.will, None
    if will is not None and publish_will:
        if may_publish(broker.settings, conn.client_id, conn.username, will.topic):
            _start_will(broker, conn.client_id, will, conn.will_delay, now)
        else:
            broker._log("notice", f"Denied will of {conn.name} to '{will.topic}'.")
    deadline = session.expiry_deadline(now, broker.settings.persistent_client_expiration
                                       if session.expiry_interval else None)
    if session.expiry_interval == 0:
        end_session(broker, session, now)  # [MQTT-3.1.2-6] (3.1.1): lasts as long as the connection
    else:
        session.expires_at = deadline
        if deadline is not None:
            broker.timers.schedule(deadline, ("session", session.client_id))


def end_session(broker: Broker, session: Session, now: float) -> None:
    """The session ends: its subscriptions and queued messages go; a delayed will is due now
    (published when the delay passes or the session ends, whichever comes first [MQTT-3.1.2-8] (5.0))."""
    pending = broker.pending_wills.pop(session.client_id, None)
    if pending is not None:
        publish(broker, pending[1], now)
    for topic_filter in session.subscriptions:
        broker.subscriptions.remove(session.client_id, topic_filter)
    session.subscriptions.clear()
    if broker.sessions.get(session.client_id) is session:
        del broker.sessions[session.client_id]


def _start_will(broker: Broker, client_id: str, will: Message, delay: int, now: float) -> None:
    expiry = will.properties.message_expiry_interval
    if expiry is not None:
        # The will's Message Expiry Interval counts from when it is published (5.0 3.1.3.2.4)
        will.properties = will.properties.copy()
        will.properties.message_expiry_interval = None
        will.expires_at = now + delay + expiry
    if delay <= 0:
        publish(broker, will, now)
        return
    # Will Delay Interval (5.0 3.1.3.2.2): wait, unless the client comes back first
    broker.pending_wills[client_id] = (now + delay, will)
    broker.timers.schedule(now + delay, ("will", client_id))


def check_keep_alive(broker: Broker, conn_id: ConnectionId, now: float) -> None:
    conn = broker.connections.get(conn_id)
    if conn is not None and conn.state in (NEW, AUTHENTICATING):
        if now < conn.last_received + CONNECT_TIMEOUT:
            broker.timers.schedule(conn.last_received + CONNECT_TIMEOUT, ("keepalive", conn_id))
            return
        broker._log("notice", f"Client {conn.name} did not complete CONNECT, disconnecting.")
        close(broker, conn, now, publish_will=False, reason="no CONNECT")
        return
    if conn is None or conn.state != CONNECTED or not conn.keep_alive:
        return
    deadline = conn.last_received + conn.keep_alive * 1.5
    if now < deadline:
        broker.timers.schedule(deadline, ("keepalive", conn_id))
        return
    # Nothing for 1.5 x Keep Alive: closed as if the network failed, so the will is published
    # [MQTT-3.1.2-24] (3.1.1), [MQTT-3.1.2-22] (5.0); 5.0 may first say 0x8D Keep Alive timeout.
    broker._log("notice", f"Client {conn.name} has exceeded timeout, disconnecting.")
    if conn.version == MQTT_5:
        broker._send(conn, Disconnect(ReasonCode.KEEP_ALIVE_TIMEOUT, broker._reason(conn, "keep alive timeout")))
    close(broker, conn, now, publish_will=True, reason="keep alive timeout")


def check_session_expiry(broker: Broker, client_id: str, now: float) -> None:
    session = broker.sessions.get(client_id)
    if session is None or session.online or session.expires_at is None or now < session.expires_at:
        return
    broker._log("notice", f"Session of {client_id} expired.")
    end_session(broker, session, now)  # [MQTT-4.1.0-2] (5.0)


def check_will(broker: Broker, client_id: str, now: float) -> None:
    pending = broker.pending_wills.get(client_id)
    if pending is not None and now >= pending[0]:
        del broker.pending_wills[client_id]
        publish(broker, pending[1], now)
