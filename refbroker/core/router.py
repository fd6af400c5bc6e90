"""The router: Application Messages to the sessions whose subscriptions match, and on to the clients.

It owns the server-to-client half of the QoS flows, from the moment a message is accepted to the
moment a PUBLISH goes out:

    route(message)        every matching subscription -> one Delivery per session (or per subscription)
    deliver(session, d)   connected, writable and room in the in-flight window: send now; else queue (qos.py)
    fill_window(conn)     an acknowledgement freed room, or the host writes again: send queued copies
    resume(conn)          a session came back: resend what was in flight, then fill the window
    publish(message)      a message that did not come in a PUBLISH (a will, a $SYS value)
    connection_closed     a connection ended: nobody waits for it, it waits for nobody
    has_room_for(size)    memory_limit: may the broker hold `size` more bytes of messages?

A copy queued for a connected subscriber may hold back the connection that published it
(back-pressure, flow_control.py); a copy that finds the queue full is dropped, counted in $SYS and
logged once until the queue takes copies again (as mosquitto: "Outgoing messages are being dropped").

Every PUBLISH goes through `_transmit`, which also decides what happens to one that is too large for
the client: it is dropped as if it had been delivered [MQTT-3.1.2-25].

Reading rights (access.py) are checked when a message is routed to a session, with the ACL and user
name of the session's last connection, and again for each copy that leaves the queue or is sent
again after a reconnect, with those of the connection that takes it: a session resumed by another
user (same client id) keeps its subscriptions, as in mosquitto, but only what that user may read
reaches it.
"""

from __future__ import annotations

from collections.abc import Callable

from ..protocol import MQTT_5, Packet, Publish
from .access import may_receive
from .connection import Connection, Connections
from .actions import ConnectionId
from .counters import Counters
from .flow_control import BackPressure
from .messages import Delivery, Message
from .outbox import Outbox, SendResult
from .retained import RetainedStore
from .sessions import Session, Sessions
from .settings import Settings
from .subscriptions import SubscriptionStore


class Router:
    def __init__(self, *, settings: Settings, connections: Connections, sessions: Sessions,
                 subscriptions: SubscriptionStore, retained: RetainedStore, outbox: Outbox, counters: Counters,
                 back_pressure: BackPressure, log: Callable[[str, str], None]):
        self._settings = settings
        self._connections = connections
        self._sessions = sessions
        self._subscriptions = subscriptions
        self._retained = retained
        self._outbox = outbox
        self._counters = counters
        self._back_pressure = back_pressure
        self._log = log
        self._dropping: set[str] = set()  # client ids whose copies are being dropped (logged once)
        self._over_limit: list[Connection] = []  # receivers to disconnect: a copy for them passed memory_limit

    def route(self, message: Message, now: float, source: ConnectionId | None = None) -> bool:
        """Give `message` to every session with a matching subscription [MQTT-4.5.0-1]; True if a
        subscription matched (even one that sends no copy: No Local, the ACL), as mosquitto counts
        subscribers for PUBACK 0x10 No matching subscribers.

        `source`: the connection that published it, which back-pressure may hold (flow_control.py).
        3.1/3.1.1 clients get one copy at the highest QoS of their matching subscriptions
        [MQTT-3.3.5-1] (3.1.1), or, as mosquitto 2.1 does, one copy per matching subscription ("the
        Server MAY deliver further copies", 3.1.1 3.3.5). 5.0 clients get one copy per matching
        subscription, each with its own QoS and Subscription Identifier, as mosquitto does since 1.6.3
        [MQTT-3.3.4-2], [MQTT-3.3.4-5]. The subscriptions are taken in mosquitto's order (subscriptions.py).
        """
        sessions = self._sessions
        settings = self._settings
        v3_copy_per_subscription = settings.compat.v3_copy_per_subscription
        topic = message.topic

        def may_read(client_id: str) -> bool:
            """The ACL of the listener the session was last connected through (access.py)."""
            session = sessions.get(client_id)
            if session is None:
                return False
            security = settings.security_for(session.listener)
            return security.acl is None or may_receive(security, client_id, session.username, topic)

        acl_anywhere = settings.acl_anywhere  # usually not: then nobody's reading rights need a look
        v3_copies: dict[str, Delivery] = {}
        matched = False
        for match in self._subscriptions.match(topic, self._connections.is_online, may_read if acl_anywhere else None):
            matched = True
            session = sessions.get(match.client_id)
            if session is None:
                continue
            options = match.options
            if options.no_local and message.sender == match.client_id:
                continue  # No Local [MQTT-3.8.3-3] (5.0)
            if acl_anywhere and not may_read(match.client_id):
                continue  # the ACL does not let this client read this topic
            # [MQTT-3.8.4-6] (3.1.1), [MQTT-3.8.4-8] (5.0); mosquitto's upgrade_outgoing_qos breaks the rule on purpose
            qos = options.qos if settings.upgrade_outgoing_qos else min(message.qos, options.qos)
            if session.protocol_level == MQTT_5:
                # RETAIN as published only with Retain As Published [MQTT-3.3.1-12/13] (5.0)
                retain = message.retain and options.retain_as_published
                ids = (options.identifier,) if options.identifier is not None else ()
                self.deliver(session, Delivery(message, qos, retain, ids), now, source)
            elif v3_copy_per_subscription:
                # RETAIN is 0 for established subscriptions [MQTT-3.3.1-9] (3.1.1)
                self.deliver(session, Delivery(message, qos, False), now, source)
            else:
                # RETAIN is 0 for established subscriptions [MQTT-3.3.1-9] (3.1.1)
                earlier = v3_copies.get(match.client_id)
                if earlier is None or earlier.qos < qos:
                    v3_copies[match.client_id] = Delivery(message, qos, False)
        for client_id, delivery in v3_copies.items():
            self.deliver(sessions[client_id], delivery, now, source)
        return matched

    def deliver(self, session: Session, delivery: Delivery, now: float, source: ConnectionId | None = None) -> None:
        """One copy to one session: sent now if its client is connected, reads what we send and has
        room in its window (QoS 0 needs none); else queued, or dropped if the queue is full."""
        settings = self._settings
        outgoing = session.outgoing
        self._sessions.touch(session.client_id, counts=True)  # for persistence
        conn = self._connections.of_client(session.client_id)
        if settings.memory_limit and not self.has_room_for(len(delivery.message.payload)):
            # memory_limit, as mosquitto: the copy is dropped and its receiver disconnected
            self._counters.publish_dropped += 1
            if conn is not None and conn not in self._over_limit:
                self._over_limit.append(conn)
            return
        if conn is not None:
            if conn.writable and (delivery.qos == 0 or (not outgoing.queue and outgoing.has_room(
                    delivery.qos, conn.send_window, settings.max_inflight_bytes))):
                self._transmit(conn, outgoing.start(delivery, now))
            elif self._enqueue(session, delivery):
                self._back_pressure.queued(session.client_id, outgoing, conn.id, source, now)
            return
        # Offline: keep QoS 1/2 for the session [MQTT-3.1.2-5] (3.1.1); QoS 0 only with queue_qos0_messages
        if delivery.qos == 0 and not settings.queue_qos0_messages:
            return
        self._enqueue(session, delivery)

    def _enqueue(self, session: Session, delivery: Delivery) -> bool:
        settings = self._settings
        if session.outgoing.enqueue(delivery, settings.max_queued_messages, settings.max_queued_bytes):
            self._dropping.discard(session.client_id)
            return True
        self._counters.publish_dropped += 1
        if session.client_id not in self._dropping:
            self._dropping.add(session.client_id)
            self._log("notice", f"Outgoing messages are being dropped for client {session.client_id}.")
        return False

    def fill_window(self, conn: Connection, now: float) -> None:
        """Room in the in-flight window (an acknowledgement came, or the host writes again): send what
        waits in the queue."""
        outgoing = conn.session.outgoing
        if not outgoing.queue or not conn.writable:
            return
        for publish in outgoing.fill_window(now, conn.send_window, self._settings.max_inflight_bytes,
                                              self._reader_check(conn)):
            self._transmit(conn, publish)
        self._back_pressure.drained(conn.client_id, outgoing)

    def resume(self, conn: Connection, now: float) -> None:
        """A stored session is attached to a new connection: first what was in flight, in order
        [MQTT-4.4.0-1] (PUBLISH with DUP 1, or PUBREL), then the queue; each copy only if the client
        now connected may read it (the session may have been resumed by another user, or under another
        listener's ACL)."""
        for packet in conn.session.outgoing.retransmit(now, self._reader_check(conn)):
            self._transmit(conn, packet)
        self.fill_window(conn, now)

    def _reader_check(self, conn: Connection) -> Callable[[Delivery], bool] | None:
        """For the queue and the retransmission: may the client on `conn` read this copy? (None: no ACL.)"""
        security = conn.security
        if security.acl is None:
            return None

        def may_deliver(delivery: Delivery) -> bool:
            if may_receive(security, conn.client_id, conn.username, delivery.message.topic):
                return True
            self._counters.publish_dropped += 1
            self._log("notice", f"Denied delivery of a stored message on '{delivery.message.topic}' to "
                                f"{conn.name}: its user may not read it.")
            return False
        return may_deliver

    def publish(self, message: Message, now: float) -> None:
        """Publish a message that did not come in a PUBLISH: a will, a $SYS value."""
        if message.retain:
            if not self._settings.retain_available:
                message.retain = False
            else:
                # Will Retain 1: published as retained [MQTT-3.1.2-17] (3.1.1), [MQTT-3.1.2-15] (5.0)
                self._retained.store(message)
        self.route(message, now)

    def bytes_held(self) -> int:
        """Payload bytes of the messages the broker holds for clients: retained, queued, in flight."""
        total = self._retained.payload_bytes
        for session in self._sessions:
            outgoing = session.outgoing
            total += outgoing.inflight_bytes + outgoing.queued_bytes
        return total

    def has_room_for(self, size: int) -> bool:
        """memory_limit (0: none): may the broker hold `size` more bytes of messages? (It counts the
        payloads of what it holds, not Python's heap; with a limit set each message costs a walk over
        the sessions.)"""
        limit = self._settings.memory_limit
        return not limit or self.bytes_held() + size <= limit

    def take_over_limit(self) -> list[Connection]:
        """The receivers a copy was dropped for because of memory_limit since the last call."""
        over, self._over_limit = self._over_limit, []
        return over

    def connection_closed(self, conn: Connection, was_connected: bool) -> None:
        """A connection ended: publishers held for its client go on; it is held for nobody."""
        if was_connected:
            self._back_pressure.subscriber_gone(conn.client_id)
        self._back_pressure.publisher_gone(conn.id)

    def _transmit(self, conn: Connection, packet: Packet) -> None:
        if self._outbox.send(conn, packet) is not SendResult.TOO_LARGE:
            return
        # Larger than the client's Maximum Packet Size: dropped as if it had been delivered
        # [MQTT-3.1.2-25], so a QoS 1/2 copy leaves the in-flight window at once
        assert isinstance(packet, Publish)
        if packet.packet_id is not None:
            conn.session.outgoing.acknowledge(packet.packet_id)
        self._counters.publish_dropped += 1
        self._log("notice", f"Dropped PUBLISH to {conn.name}: larger than its Maximum Packet Size.")
