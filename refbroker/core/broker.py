"""The broker: bytes in, actions out. Sans-IO: no sockets, no tasks, no clock.

The host (refbroker/server, or a test) calls

    connection_made(conn_id, now, peer, identity, listener)  a client connected (identity: TLS
                                             certificate user; listener: which one it came in on)
    data_received(conn_id, data, now)        bytes arrived from it
    process_buffered(conn_id, now)           when asked to (ProcessLater, ResumeReading): read what waits
    writing_paused(conn_id, now)             the host's buffer of bytes not yet written to it passed its mark
    writing_resumed(conn_id, now)            ... and is back under it
    connection_lost(conn_id, now)            its network connection ended
    tick(now)                                at next_deadline(): CONNECT and keep alive, expiry, wills, $SYS

and each returns the list of actions (actions.py) to carry out, in order: `Send`, `Close`, and
`PauseReading` / `ResumeReading` / `ProcessLater`, with which the core paces its reading of each
connection (fairness and back-pressure, flow_control.py).

Input is checked before it is buffered: the first byte of a connection must be that of a CONNECT
[MQTT-3.1.0-1], and until a client is authenticated a packet may be at most
UNAUTHENTICATED_PACKET_LIMIT bytes, decided from its fixed header alone.

Each packet read (with the codec, refbroker.protocol) is first checked against the connection state
table (states.py: which packets each state accepts, with the statement that says so), then handed to
its handler, one module per part of the protocol:

    connect.py         CONNECT, and AUTH before CONNACK: client id, authentication, takeover, session
    auth_exchange.py   AUTH after CONNACK: re-authentication (5.0 4.12.1)
    publish_flow.py    PUBLISH from a client and the QoS 1/2 acknowledgements both ways
    subscribe.py       SUBSCRIBE and UNSUBSCRIBE
    lifecycle.py       PINGREQ, DISCONNECT, protocol errors, closing, wills, and the timers

A handler is called as handler(ctx, conn, packet, now). `ctx` (context.py) holds the collaborators,
each the one owner of its state: the connection table, the sessions, subscriptions, retained messages,
the router (delivery), the outbox (everything sent), timers, pending wills, counters, the log. This
module owns only the entry points and the dispatch.

Rules the code enforces carry their normative statement id. Where 3.1.1 and 5.0 number a rule
differently both are given, e.g. [MQTT-3.1.3-8] (3.1.1) / [MQTT-3.1.3-8] (5.0) are different rules.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable

from .. import __version__
from ..protocol import (
    MQTT_5,
    Auth,
    Connect,
    Disconnect,
    MQTTError,
    Pingreq,
    Puback,
    Pubcomp,
    Publish,
    Pubrec,
    Pubrel,
    ReasonCode,
    Subscribe,
    Unsubscribe,
    decode_packet,
)
from . import auth_exchange, connect, lifecycle, packet_log, publish_flow, subscribe, sys_topics
from .access import check_credentials
from .actions import Action, Close, ConnectionId
from .auth_methods import available_methods
from .changes import ChangeMarks, Changes
from .connection import Connection, Connections
from .context import Context, Log
from .counters import Counters
from .flow_control import PACKETS_PER_TURN, BackPressure, Hold, ReadHolds
from .messages import Message
from .outbox import Outbox
from .restore import SavedState, restore
from .retained import RetainedStore
from .router import Router
from .sessions import Sessions
from .settings import CONNECTION_MESSAGE, Listener, Settings
from .states import AUTHENTICATING, AWAITING_CONNECT, CLOSED, CONNECTED, check_packet
from .subscriptions import SubscriptionStore
from .sys_load import LoadAverages
from .timers import (
    CongestionDue,
    ConnectionDue,
    SessionExpiryDue,
    SubscriptionDue,
    SysDue,
    Timers,
    WillDue,
)
from .wills import PendingWills


CONNECT_FIRST_BYTE = 0x10  # packet type 1, flags 0 [MQTT-2.2.2-2]
# The largest packet a client may send before it is authenticated: a CONNECT (or, 5.0, AUTH) whose
# client id, will topic, will payload, user name and password (at most 64 KiB each) and properties
# need no more. Bigger is refused from the fixed header, before its body is buffered.
UNAUTHENTICATED_PACKET_LIMIT = 1024 * 1024


def _no_log(kind: str, message: str) -> None:
    pass


def _mosquitto_style_client_id(prefix: str) -> str:
    return prefix + str(uuid.uuid4()).upper()


class Broker:
    def __init__(self, settings: Settings | None = None, *, now: float = 0.0, log: Log | None = None,
                 version: str = f"refbroker version {__version__}",
                 client_id_factory: Callable[[str], str] = _mosquitto_style_client_id,
                 memory_usage: Callable[[], tuple[int, int]] | None = None):
        settings = settings or Settings()
        log = log or _no_log
        self._debug = log is not _no_log and getattr(log, "wants_debug", True)
        counters = Counters()
        changes = Changes(keep=settings.persistence)  # marks only for persistence to take
        connections = Connections()
        sessions = Sessions(changes)
        subscriptions = SubscriptionStore()
        retained = RetainedStore(changes)
        outbox = Outbox(settings, counters, log, self._debug)
        timers = Timers()
        holds = ReadHolds(outbox)
        back_pressure = BackPressure(settings, holds, timers, log)
        router = Router(settings=settings, connections=connections, sessions=sessions, subscriptions=subscriptions,
                        retained=retained, outbox=outbox, counters=counters, back_pressure=back_pressure, log=log)
        self.ctx = Context(settings=settings, version=version, started_at=now, connections=connections,
                           sessions=sessions, subscriptions=subscriptions, retained=retained, router=router,
                           outbox=outbox, holds=holds, back_pressure=back_pressure, timers=timers,
                           wills=PendingWills(changes), counters=counters, changes=changes,
                           load=LoadAverages(now), log=log, auth_methods=available_methods(settings),
                           new_client_id=client_id_factory, memory_usage=memory_usage)
        if settings.sys_interval > 0:
            self.ctx.timers.schedule(now, SysDue(first=True))

    # A few collaborators are worth reaching directly, from tests and from the host
    settings = property(lambda self: self.ctx.settings)
    version = property(lambda self: self.ctx.version)
    connections = property(lambda self: self.ctx.connections)
    sessions = property(lambda self: self.ctx.sessions)
    subscriptions = property(lambda self: self.ctx.subscriptions)
    retained = property(lambda self: self.ctx.retained)
    wills = property(lambda self: self.ctx.wills)

    # ------------------------------------------------------------------------- for the host's persistence

    def restore(self, state: SavedState, now: float) -> None:
        """Put saved sessions, retained messages and delayed wills back (restore.py); before any client."""
        restore(self.ctx, state, now)

    def log_packets(self, on: bool) -> None:
        """Log every packet received and sent ("debug"), or stop: for a log_type reloaded on SIGHUP."""
        self._debug = on
        self.ctx.outbox.log_packets(on)

    def settings_reloaded(self) -> None:
        """The host changed `settings` in place (SIGHUP): recompute what was derived from them, the
        password file and ACL each connection is held to included."""
        self.ctx.auth_methods = available_methods(self.ctx.settings)
        for conn in self.ctx.connections:
            conn.security = self.ctx.settings.security_for(conn.listener)

    def recheck_credentials(self, now: float) -> list[Action]:
        """After the settings changed (SIGHUP): close every connection whose CONNECT credentials no
        longer pass (a user removed from the password file, a changed password, anonymous access
        turned off), as mosquitto 2.0 does; the others stay connected."""
        ctx = self.ctx
        for conn in ctx.connections:
            if conn.state is not CONNECTED or conn.credentials is None:
                continue
            accepted, _, why = check_credentials(conn.security, *conn.credentials, conn.identity)
            if not accepted:
                ctx.log(CONNECTION_MESSAGE, f"Client {conn.name} disconnected.")
                lifecycle.close(ctx, conn, now, publish_will=True, reason=f"not authorised any more: {why}")
        return ctx.outbox.take()

    def take_changes(self) -> ChangeMarks:
        """What changed since the last call (changes.py): the parts persistence must save."""
        return self.ctx.changes.take()

    @property
    def change_count(self) -> int:
        """Changes since the last `take_changes`, counted as mosquitto's autosave_on_changes counts them."""
        return self.ctx.changes.count

    def publish(self, topic: str, payload: bytes, now: float, *, qos: int = 0, retain: bool = False) -> list[Action]:
        """Publish a message of the broker's own (e.g. a log line for `log_dest topic`)."""
        self.ctx.router.publish(Message(topic, payload, qos, retain), now)
        return self.ctx.outbox.take()


    # ---------------------------------------------------------------------------------- entry points

    def connection_made(self, conn_id: ConnectionId, now: float, peer: str = "", identity: str | None = None,
                        listener: Listener | None = None, mount_point: str = "") -> list[Action]:
        """`identity`: the user name the transport has proved already (the Common Name or subject of a
        TLS client certificate on a `use_identity_as_username` / `use_subject_as_username` listener);
        None: CONNECT's credentials count. `listener`: the listener that accepted the connection: its
        max_connections and, with per_listener_settings, its password file and ACL apply, as do
        use_username_as_clientid; None: the global settings. `mount_point`: the listener's
        mount_point, put in front of every topic of this client."""
        ctx = self.ctx
        if listener is not None and 0 <= listener.max_connections <= ctx.connections.on_listener(listener):
            # max_connections: as mosquitto, the socket is closed at once, before any packet is read
            address = peer.rpartition(":")[0] or peer or str(conn_id)
            ctx.log(CONNECTION_MESSAGE, f"Client connection from {address} denied: max_connections exceeded.")
            return [Close(conn_id, "max_connections exceeded")]
        conn = ctx.connections.open(conn_id, peer=peer, now=now, identity=identity, listener=listener,
                                    security=ctx.settings.security_for(listener))
        conn.mount_point = mount_point
        conn.decoder.max_packet_size = UNAUTHENTICATED_PACKET_LIMIT
        ctx.counters.connections_total += 1
        lifecycle.watch_deadline(ctx, conn, now)  # the time it has to send CONNECT
        if peer:
            on_port = f" on port {listener.port}" if listener is not None and listener.port else ""
            ctx.log(CONNECTION_MESSAGE, f"New connection from {peer}{on_port}.")
        return []

    def data_received(self, conn_id: ConnectionId, data: bytes, now: float) -> list[Action]:
        ctx = self.ctx
        conn = ctx.connections.get(conn_id)
        if conn is None or conn.state is CLOSED or not data:
            return []  # [MQTT-3.1.4-5] (3.1.1), [MQTT-3.1.4-6] (5.0): nothing after a refusal is read
        ctx.counters.bytes_received += len(data)
        if conn.state is AWAITING_CONNECT and not conn.decoder.buffered and data[0] != CONNECT_FIRST_BYTE:
            # The first packet must be a CONNECT [MQTT-3.1.0-1]: an HTTP request, a TLS handshake ... is
            # closed at once, without waiting for the rest of what it seems to announce
            ctx.log("notice", f"Client {conn.name} sent {data[:1].hex()} as its first byte, not CONNECT: "
                              f"closing the connection.")
            lifecycle.close(ctx, conn, now, publish_will=False, reason="first packet is not CONNECT")
            return ctx.outbox.take()
        conn.decoder.append(data)
        self._read_packets(conn, now)
        self._disconnect_over_limit(now)
        return ctx.outbox.take()

    def process_buffered(self, conn_id: ConnectionId, now: float) -> list[Action]:
        """Read the packets a connection sent that are still buffered (the host was told ProcessLater
        or ResumeReading)."""
        conn = self.ctx.connections.get(conn_id)
        if conn is not None and conn.state is not CLOSED:
            self._read_packets(conn, now)
        self._disconnect_over_limit(now)
        return self.ctx.outbox.take()

    def writing_paused(self, conn_id: ConnectionId, now: float) -> list[Action]:
        """The client does not read what we send (the host's buffer for it passed its high-water
        mark): no new PUBLISH is written to it, and it is not read (flow_control.py)."""
        conn = self.ctx.connections.get(conn_id)
        if conn is not None and conn.state is not CLOSED:
            conn.writable = False
            self.ctx.holds.hold(conn_id, Hold.UNREAD)
        return self.ctx.outbox.take()

    def writing_resumed(self, conn_id: ConnectionId, now: float) -> list[Action]:
        """The host's buffer for the client is down to its low-water mark: queued copies go out."""
        ctx = self.ctx
        conn = ctx.connections.get(conn_id)
        if conn is not None and conn.state is not CLOSED:
            conn.writable = True
            ctx.holds.release(conn_id, Hold.UNREAD)
            if conn.state is CONNECTED:
                self._guarded(conn, now, ctx.router.fill_window, conn, now)
        return ctx.outbox.take()

    def connection_lost(self, conn_id: ConnectionId, now: float) -> list[Action]:
        """The network connection ended without us closing it: abnormal unless DISCONNECT came first."""
        ctx = self.ctx
        conn = ctx.connections.get(conn_id)
        if conn is not None and conn.state is not CLOSED:
            ctx.log(CONNECTION_MESSAGE, f"Client {conn.name} closed its connection.")
            # Closed without DISCONNECT: the will is published [MQTT-3.1.2-8]
            try:
                lifecycle.close(ctx, conn, now, publish_will=True, reason="connection lost", send_close=False)
            except Exception as error:  # a bug of ours must not stop the broker
                ctx.log("error", f"Internal error closing {conn.name}: {error!r}")
        ctx.holds.forget(conn_id)
        self._disconnect_over_limit(now)
        return ctx.outbox.take()

    def tick(self, now: float) -> list[Action]:
        """Run every timer that is due: CONNECT and keep alive, session expiry, delayed wills,
        congested subscribers, $SYS."""
        ctx = self.ctx
        for event in ctx.timers.pop_due(now):
            try:
                self._on_timer[type(event)](ctx, event, now)
            except Exception as error:  # a bug of ours must not stop the broker, nor the other timers
                ctx.log("error", f"Internal error handling {type(event).__name__}: {error!r}")
        self._disconnect_over_limit(now)
        return ctx.outbox.take()

    def next_deadline(self) -> float | None:
        """When `tick` should next be called (None: nothing scheduled)."""
        return self.ctx.timers.next_deadline()

    # ------------------------------------------------------------------------------------- reading

    def _read_packets(self, conn: Connection, now: float) -> None:
        """Read the buffered packets of `conn`, at most PACKETS_PER_TURN (fairness), and none while
        back-pressure or unread output holds it (flow_control.py)."""
        ctx = self.ctx
        holds = ctx.holds
        if holds.stops_processing(conn.id):
            return  # its release asks the host to come back
        budget = PACKETS_PER_TURN
        decoder = conn.decoder
        try:
            while True:
                if conn.state is CLOSED or holds.stops_processing(conn.id):
                    return
                if not budget:
                    # More may be buffered: the other connections first, then this one again
                    holds.hold(conn.id, Hold.BACKLOG)
                    ctx.outbox.process_later(conn.id)
                    return
                frame = decoder.next_raw_frame()
                if frame is None:
                    break
                budget -= 1
                first_byte, body = frame
                try:
                    packet = decode_packet(first_byte, body, conn.version)
                except MQTTError as error:
                    if conn.state is AWAITING_CONNECT:
                        connect.refuse_bad_connect(ctx, conn, body, error, now)
                        return
                    raise
                conn.last_received = now
                ctx.counters.messages_received += 1
                if self._debug:
                    ctx.log("debug", packet_log.describe(packet, conn.name, received=True))
                self._dispatch(conn, packet, now)
        except MQTTError as error:
            if conn.state is AWAITING_CONNECT:
                # Too large before it is read: a 5.0 client learns why (CONNACK 0x95) if its level shows
                connect.refuse_bad_connect(ctx, conn, decoder.peek_body(16), error, now)
            else:
                lifecycle.protocol_violation(ctx, conn, error, now)
            return
        except Exception as error:  # a bug of ours must cost one connection, never the broker
            self._internal_error(conn, error, now)
            return
        finally:
            if conn.client_id is not None and conn.client_id in ctx.sessions:
                ctx.sessions.touch(conn.client_id)  # acknowledgements, subscriptions ...: for persistence
        holds.release(conn.id, Hold.BACKLOG)

    def _disconnect_over_limit(self, now: float) -> None:
        """Receivers a copy was dropped for because of memory_limit are disconnected, as in mosquitto."""
        ctx = self.ctx
        for conn in ctx.router.take_over_limit():
            if conn.state is not CONNECTED:
                continue
            ctx.log("notice", f"Client {conn.name} disconnected: memory_limit reached, a message for it is dropped.")
            if conn.version == MQTT_5:
                ctx.outbox.send(conn, Disconnect(ReasonCode.QUOTA_EXCEEDED,
                                                 ctx.outbox.failure_properties(conn, "memory_limit reached")))
            lifecycle.close(ctx, conn, now, publish_will=True, reason="memory_limit reached")

    def _guarded(self, conn: Connection, now: float, function: Callable, *arguments) -> None:
        try:
            function(*arguments)
        except Exception as error:
            self._internal_error(conn, error, now)

    def _internal_error(self, conn: Connection, error: Exception, now: float) -> None:
        ctx = self.ctx
        ctx.log("error", f"Internal error handling data from {conn.name}: {error!r}")
        try:
            lifecycle.close(ctx, conn, now, publish_will=True, reason=f"internal error: {error!r}")
        except Exception as second:
            ctx.log("error", f"Internal error closing {conn.name}: {second!r}")

    # ------------------------------------------------------------------------------------- dispatch

    def _dispatch(self, conn: Connection, packet, now: float) -> None:
        state = conn.state
        rule = check_packet(state, packet)  # ProtocolError if this state does not accept the packet
        self.handlers[(state, type(packet))](self.ctx, conn, packet, now)
        if conn.state not in rule.leads_to:
            raise RuntimeError(f"{packet.name} left the connection {conn.state.value}, which the state table "
                               f"does not allow from {state.value}")

    # The handler of each packet a client may send, by the state the connection is in (the states'
    # rows in states.PACKET_RULES list the same packets). Each is called as handler(ctx, conn, packet, now).
    handlers: dict[tuple, Callable] = {
        (AWAITING_CONNECT, Connect): connect.on_connect,
        (AUTHENTICATING, Auth): connect.on_auth_before_connack,
        (AUTHENTICATING, Disconnect): lifecycle.on_disconnect,
        (CONNECTED, Publish): publish_flow.on_publish,
        (CONNECTED, Puback): publish_flow.on_puback,
        (CONNECTED, Pubrec): publish_flow.on_pubrec,
        (CONNECTED, Pubrel): publish_flow.on_pubrel,
        (CONNECTED, Pubcomp): publish_flow.on_pubcomp,
        (CONNECTED, Subscribe): subscribe.on_subscribe,
        (CONNECTED, Unsubscribe): subscribe.on_unsubscribe,
        (CONNECTED, Pingreq): lifecycle.on_pingreq,
        (CONNECTED, Auth): auth_exchange.on_auth,
        (CONNECTED, Disconnect): lifecycle.on_disconnect,
    }

    # What runs when a timer event comes due, by its type, called as handler(ctx, event, now)
    _on_timer: dict[type, Callable] = {
        ConnectionDue: lifecycle.on_connection_due,
        SessionExpiryDue: lifecycle.on_session_expiry_due,
        WillDue: lifecycle.on_will_due,
        CongestionDue: lambda ctx, event, now: ctx.back_pressure.hold_expired(event.client_id, now),
        SysDue: sys_topics.on_sys_due,
        SubscriptionDue: subscribe.on_subscription_due,
    }
