"""The life of a connection after CONNECT: PINGREQ, DISCONNECT, protocol errors, closing, wills,
and what happens when a timer comes due (CONNECT timeout, keep alive, session expiry, Will Delay).

`close` ends a connection, whatever the cause: the connection table moves it to CLOSED, the session
stays (until it expires) or ends now, and the will is published, delayed or dropped. The `on_*_due`
functions run when a timer event of timers.py is due (from `Broker.tick`).

A connection has one deadline at a time: CONNECT_TIMEOUT after its last packet while it has not
completed CONNECT, then 1.5 x its Keep Alive after its last packet. `watch_deadline` makes sure a
ConnectionDue timer comes at the latest when the deadline may have passed; when it comes, the
deadline is worked out again from the connection's state and the time of its last packet, so a
packet never touches the timers. One timer per connection, not one per deadline: a timer that was
overtaken by an earlier one is recognised (it comes before `conn.checked_at`) and dropped.
"""

from __future__ import annotations

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
from .access import may_publish
from .compat import CLOSE, answer_for
from .connection import Connection
from .context import Context
from .messages import Message
from .sessions import Session
from .settings import CONNECTION_MESSAGE
from .states import AUTHENTICATING, AWAITING_CONNECT, CLOSED, CONNECTED, Event
from .timers import ConnectionDue, SessionExpiryDue, WillDue

CONNECT_TIMEOUT = 90.0  # seconds a new connection may take to send CONNECT


def on_pingreq(ctx: Context, conn: Connection, pingreq: Pingreq, now: float) -> None:
    ctx.outbox.send(conn, Pingresp())  # [MQTT-3.12.4-1]


def on_disconnect(ctx: Context, conn: Connection, disconnect: Disconnect, now: float) -> None:
    if conn.state is AUTHENTICATING:
        # The client gives up during enhanced authentication (5.0 4.12): no session was opened
        close(ctx, conn, now, publish_will=False, reason="DISCONNECT during authentication")
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
    ctx.log(CONNECTION_MESSAGE, f"Client {conn.name} disconnected.")
    close(ctx, conn, now, publish_will=publish_will, reason="DISCONNECT")


def protocol_violation(ctx: Context, conn: Connection, error: MQTTError, now: float) -> None:
    """A malformed packet or a protocol error: close the connection [MQTT-4.8.0-1] (3.1.1),
    [MQTT-4.13.1-1] (5.0). 5.0 first says why with a DISCONNECT reason code, which the specification
    recommends ("SHOULD", 4.13.1): whether, and which code, is the mosquitto version's choice (compat.py)."""
    what = "malformed packet" if isinstance(error, MalformedPacket) else "protocol error"
    ctx.log("notice", f"Client {conn.name} disconnected due to {what}: {error}")
    if conn.version == MQTT_5 and conn.state is CONNECTED:
        code = answer_for(ctx.settings.compat.disconnect, error)
        if code is not CLOSE:
            if code not in VALID_REASON_CODES["DISCONNECT"]:
                code = ReasonCode.MALFORMED_PACKET if isinstance(error, MalformedPacket) else ReasonCode.PROTOCOL_ERROR
            ctx.outbox.send(conn, Disconnect(code, ctx.outbox.failure_properties(conn, str(error))))
    elif conn.state is AUTHENTICATING:
        # Before CONNACK the answer is a CONNACK with the reason code (5.0 4.13.1)
        code = ReasonCode.MALFORMED_PACKET if isinstance(error, MalformedPacket) else ReasonCode.PROTOCOL_ERROR
        ctx.outbox.send(conn, Connack(code, properties=ctx.outbox.failure_properties(conn, str(error))))
    close(ctx, conn, now, publish_will=True, reason=str(error))


def close(ctx: Context, conn: Connection, now: float, *, publish_will: bool, reason: str,
          send_close: bool = True) -> None:
    """End a connection. The session stays (and expires later) or ends now; the will is
    published (or delayed) when `publish_will` and there is one. `send_close` False: the network
    connection is gone already."""
    if conn.state is CLOSED:
        return
    was_connected = conn.state is CONNECTED
    ctx.connections.transition(conn, Event.CLOSED)
    if send_close:
        ctx.outbox.close(conn, reason)
    ctx.router.connection_closed(conn, was_connected)
    ctx.holds.forget(conn.id)
    if not was_connected:
        return
    session = conn.session
    ctx.sessions.touch(session.client_id)  # its expiry starts: for persistence
    will, conn.will = conn.will, None
    if will is not None and publish_will:
        if may_publish(conn.security, conn.client_id, conn.username, will.topic):
            _start_will(ctx, conn.client_id, will, conn.will_delay, now)
        else:
            ctx.log("notice", f"Denied will of {conn.name} to '{will.topic}'.")
    if session.expiry_interval == 0:
        end_session(ctx, session, now)  # [MQTT-3.1.2-6] (3.1.1): lasts as long as the connection
        return
    deadline = session.expiry_deadline(now, ctx.settings.persistent_client_expiration)
    session.expires_at = deadline
    if deadline is not None:
        ctx.timers.schedule(deadline, SessionExpiryDue(session.client_id))


def end_session(ctx: Context, session: Session, now: float) -> None:
    """The session ends: its subscriptions and queued messages go; a delayed will is due now
    (published when the delay passes or the session ends, whichever comes first [MQTT-3.1.2-8] (5.0))."""
    will = ctx.wills.take(session.client_id)
    if will is not None:
        ctx.router.publish(will, now)
    for topic_filter in session.unsubscribe_all():
        ctx.subscriptions.remove(session.client_id, topic_filter)
    ctx.sessions.remove(session)


def _start_will(ctx: Context, client_id: str, will: Message, delay: int, now: float) -> None:
    expiry = will.properties.message_expiry_interval
    if expiry is not None:
        # The will's Message Expiry Interval counts from when it is published (5.0 3.1.3.2.4)
        will.properties = will.properties.copy()
        will.properties.message_expiry_interval = None
        will.expires_at = now + delay + expiry
    if delay <= 0:
        ctx.router.publish(will, now)
        return
    # Will Delay Interval (5.0 3.1.3.2.2): wait, unless the client comes back first
    ctx.wills.delay(client_id, will, now + delay)
    ctx.timers.schedule(now + delay, WillDue(client_id))


def deadline(conn: Connection) -> float | None:
    """When the connection is closed unless a packet comes first; None: never."""
    if conn.state in (AWAITING_CONNECT, AUTHENTICATING):
        # A connection that never sends CONNECT (or never finishes authenticating) is closed after a
        # while (3.1.4: "a reasonable amount of time"); like mosquitto, the default keep alive of 60 s x 1.5
        return conn.last_received + CONNECT_TIMEOUT
    if conn.state is CONNECTED and conn.keep_alive:
        # Keep alive as negotiated: closed after 1.5 x Keep Alive without a packet (0: never)
        return conn.last_received + conn.keep_alive * 1.5
    return None


def watch_deadline(ctx: Context, conn: Connection, now: float) -> None:
    """Make sure a ConnectionDue timer comes by the connection's deadline (it opened, or it completed
    CONNECT): a new one, unless the one waiting comes in time (it looks again then)."""
    when = deadline(conn)
    if when is None or now < conn.checked_at <= when:
        return
    conn.checked_at = when
    ctx.timers.schedule(when, ConnectionDue(conn.id))


def on_connection_due(ctx: Context, event: ConnectionDue, now: float) -> None:
    conn = ctx.connections.get(event.connection)
    if conn is None or now < conn.checked_at:
        return  # closed, or this timer was overtaken by an earlier one, which set a later one
    when = deadline(conn)
    if when is None:
        return
    if now < when:
        conn.checked_at = when
        ctx.timers.schedule(when, event)
        return
    if conn.state is not CONNECTED:
        ctx.log("notice", f"Client {conn.name} did not complete CONNECT, disconnecting.")
        close(ctx, conn, now, publish_will=False, reason="no CONNECT")
        return
    # Nothing for 1.5 x Keep Alive: closed as if the network failed, so the will is published
    # [MQTT-3.1.2-24] (3.1.1), [MQTT-3.1.2-22] (5.0); 5.0 may first say 0x8D Keep Alive timeout
    # (mosquitto does not: compat.py).
    ctx.log(CONNECTION_MESSAGE, f"Client {conn.name} has exceeded timeout, disconnecting.")
    code = ctx.settings.compat.disconnect.get("keep alive timeout", ReasonCode.KEEP_ALIVE_TIMEOUT)
    if conn.version == MQTT_5 and code is not CLOSE:
        ctx.outbox.send(conn, Disconnect(code, ctx.outbox.failure_properties(conn, "keep alive timeout")))
    close(ctx, conn, now, publish_will=True, reason="keep alive timeout")


def on_session_expiry_due(ctx: Context, event: SessionExpiryDue, now: float) -> None:
    session = ctx.sessions.get(event.client_id)
    if (session is None or ctx.connections.is_online(event.client_id) or session.expires_at is None
            or now < session.expires_at):
        return
    ctx.log("notice", f"Session of {event.client_id} expired.")
    ctx.counters.sessions_expired += 1
    end_session(ctx, session, now)  # [MQTT-4.1.0-2] (5.0)


def on_will_due(ctx: Context, event: WillDue, now: float) -> None:
    will = ctx.wills.take_if_due(event.client_id, now)
    if will is not None:
        ctx.router.publish(will, now)
