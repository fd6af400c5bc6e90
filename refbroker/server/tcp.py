"""asyncio listeners around one `Broker`: plain TCP, TLS, WebSocket, and WebSocket over TLS.

Each accepted socket gets an id; its bytes go to `broker.data_received`, and the returned actions
are performed at once: `Send` writes, `Close` closes, `PauseReading` / `ResumeReading` stop and
start reading the socket, `ProcessLater` comes back to `broker.process_buffered` on a later turn of
the event loop (after the callbacks already waiting: the other connections' reads). When the
transport's buffer of unwritten bytes passes its high-water mark (asyncio's pause_writing) the
broker is told (`writing_paused`), and again when it is down to the low-water mark. Which
connection is read when is the core's decision (core/flow_control.py); this module only performs it.
One timer handle follows `broker.next_deadline()` and calls `broker.tick` when it comes (keep alive,
expiry, $SYS). Time is the event loop's monotonic clock.

Closing: when the broker ends a connection right after sending it something (a refusing CONNACK, a
DISCONNECT with a reason code), the client must be able to read it even if it is still sending. So
the write side is shut down once the bytes are out (a FIN after the last packet), what the client
still sends is read and thrown away until it closes or DRAIN_SECONDS pass, and only then is the
socket closed: closing a socket with unread input makes the kernel answer with a reset, which can
destroy the client's copy of that last packet, and a client still sending would see a broken pipe.

TLS is a `TlsLink` (tls.py) between the transport and the broker (and the WebSocketLink, for
WebSocket over TLS): the broker learns of a TLS connection once its handshake has succeeded, and a
failed handshake is logged with OpenSSL's reason. A WebSocket connection puts a `WebSocketLink`
(websocket.py) between the transport (or the TlsLink) and the broker. The broker sees only bytes.
A listener may also be a Unix domain socket (`listener 0 /path`), be limited to IPv4 or IPv6
(`socket_domain`), and have a `mount_point`, which the broker is told with each connection.
`reload_certificates` reads the TLS listeners' certificate files again (SIGHUP).
"""

from __future__ import annotations

import asyncio
import itertools
import os
import socket
import ssl
import stat
from collections.abc import Callable, Iterable

from ..core import Action, Broker, Close, Listener, PauseReading, ProcessLater, ResumeReading, Send
from .tls import TlsLink, certificate_identity, load_certificates, server_context
from .websocket import WebSocketLink

MQTT_MAX_PACKET = 268_435_460  # the largest possible MQTT packet, the WebSocket frame limit too
DRAIN_SECONDS = 2.0            # how long a connection the broker ended is read (and discarded) at most
LISTEN_BACKLOG = 1024          # connections the kernel may hold for accept(): bursts of clients
TLS_HANDSHAKE_TIMEOUT = 60.0   # seconds a client has to finish the TLS handshake (asyncio's default too)

_FAMILIES = {None: socket.AF_UNSPEC, "ipv4": socket.AF_INET, "ipv6": socket.AF_INET6}


class BrokerServer:
    def __init__(self, broker: Broker, loop: asyncio.AbstractEventLoop, log: Callable[[str, str], None] | None = None):
        self.broker = broker
        self.loop = loop
        self.log = log or (lambda kind, message: None)  # the `websockets` log type, failed TLS handshakes
        self.tls_contexts: list[tuple[Listener, object]] = []  # (listener, its ssl.SSLContext)
        self.clients: dict[int, _ClientProtocol] = {}  # open connections, by the broker's id for them
        self.servers: list[asyncio.base_events.Server] = []
        self._ids = itertools.count(1)
        self._timer: asyncio.Handle | None = None
        self._timer_when = 0.0  # when _timer fires (uvloop's call_at returns a plain Handle for the past)
        self._to_process: set[int] = set()  # connections with a process_buffered call scheduled
        loop.set_exception_handler(self._on_loop_error)

    def new_connection_id(self) -> int:
        return next(self._ids)

    async def listen(self, host: str | None, port: int, listener: Listener | None = None) -> list[tuple[str, int]]:
        """Start a listener (plain TCP unless `listener` says TLS and/or websockets); returns the
        (address, port) pairs it is bound to."""
        listener = listener or Listener(port, host)
        context = server_context(listener.tls) if listener.tls.enabled else None  # TLS: tls.TlsLink
        if context is not None:
            self.tls_contexts.append((listener, context))
        if listener.unix_socket is not None:
            _remove_stale_socket(listener.unix_socket)
            server = await self.loop.create_unix_server(lambda: _ClientProtocol(self, listener, context),
                                                        listener.unix_socket, backlog=LISTEN_BACKLOG)
            self.servers.append(server)
            self._reschedule()
            return [(listener.unix_socket, 0)]
        server = await self.loop.create_server(lambda: _ClientProtocol(self, listener, context), host, port,
                                               reuse_address=True, backlog=LISTEN_BACKLOG,
                                               family=_FAMILIES[listener.socket_domain])
        self.servers.append(server)
        self._reschedule()
        return [sock.getsockname()[:2] for sock in server.sockets]

    def reload_certificates(self, listeners: list[Listener]) -> list[str]:
        """SIGHUP: load each TLS listener's certificate, key and CA files again, from the files that
        the listener at the same address in `listeners` (the config read again) names; connected
        clients stay, new handshakes use the new files. Returns the errors (a listener whose files
        fail to load keeps the ones it had)."""
        new_by_address = {_address(listener): listener for listener in listeners}
        errors = []
        for listener, context in self.tls_contexts:
            new = new_by_address.get(_address(listener), listener)
            tls = new.tls if new.tls.enabled else listener.tls
            try:
                load_certificates(context, tls)
            except (OSError, ValueError) as error:
                errors.append(f"Error when reloading certificate '{tls.certfile}' or key '{tls.keyfile}': {error}")
        return errors

    async def listen_on(self, listener: Listener) -> list[tuple[str, int]]:
        return await self.listen(listener.host, listener.port, listener)

    def close(self) -> None:
        for server in self.servers:
            server.close()
        for client in list(self.clients.values()):
            client.abort()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def perform(self, actions: Iterable[Action]) -> None:
        # Performance: the packets for one connection are joined and written at once, so a batch of
        # input (say 20 PUBLISHes in one read) costs one write per connection instead of one per packet.
        # The order per connection is kept; a Close writes what came before it first.
        unwritten: dict[int, list[bytes]] = {}
        clients = self.clients
        for action in actions:
            kind = type(action)
            if kind is Send:
                unwritten.setdefault(action.connection, []).append(action.data)
                continue
            client = clients.get(action.connection)
            if client is None:
                continue
            if kind is Close:
                chunks = unwritten.pop(action.connection, None)
                if chunks:
                    client.write(chunks[0] if len(chunks) == 1 else b"".join(chunks))
                del clients[action.connection]
                client.end(last_words=bool(chunks))
            elif kind is PauseReading:
                client.pause_reading()
            elif kind is ResumeReading:
                client.resume_reading()
                self._process_later(action.connection)
            elif kind is ProcessLater:
                self._process_later(action.connection)
        for connection, chunks in unwritten.items():
            client = clients.get(connection)
            if client is not None:
                client.write(chunks[0] if len(chunks) == 1 else b"".join(chunks))
        self._reschedule()

    def writing_changed(self, connection: int, paused: bool) -> None:
        """The transport's buffer passed its high-water mark (paused) or is down to its low-water mark."""
        if connection not in self.clients:
            return
        broker, now = self.broker, self.loop.time()
        self.perform(broker.writing_paused(connection, now) if paused else broker.writing_resumed(connection, now))

    def _process_later(self, connection: int) -> None:
        if connection not in self._to_process:
            self._to_process.add(connection)
            self.loop.call_soon(self._process_buffered, connection)

    def _process_buffered(self, connection: int) -> None:
        self._to_process.discard(connection)
        if connection in self.clients:
            self.perform(self.broker.process_buffered(connection, self.loop.time()))

    def _reschedule(self) -> None:
        deadline = self.broker.next_deadline()
        if deadline is None:
            return
        if self._timer is not None:
            if self._timer_when <= deadline:
                return
            self._timer.cancel()
        self._timer = self.loop.call_at(deadline, self._on_timer)
        self._timer_when = deadline

    def _on_timer(self) -> None:
        self._timer = None
        self.perform(self.broker.tick(self.loop.time()))

    def _on_loop_error(self, loop: asyncio.AbstractEventLoop, context: dict) -> None:
        # Whatever escapes a callback is one line in the broker's log, never a traceback on stderr
        error = context.get("exception")
        self.log("error", f"Internal error: {context.get('message', '')}" + (f": {error!r}" if error is not None else ""))


def _address(listener: Listener) -> tuple:
    return (listener.port, listener.host, listener.unix_socket, listener.protocol)


def _remove_stale_socket(path: str) -> None:
    """A Unix socket file left by an earlier run is removed (anything else there is not touched)."""
    try:
        if stat.S_ISSOCK(os.stat(path).st_mode):
            os.unlink(path)
    except FileNotFoundError:
        pass


class _ClientProtocol(asyncio.Protocol):
    """One accepted socket: its bytes go to the broker core; the core's actions come back through
    BrokerServer, which calls write, pause_reading, resume_reading and end. On a TLS listener the broker
    learns of the connection only once the TLS handshake has succeeded."""

    __slots__ = ("server", "listener", "tls_context", "id", "transport", "tls", "websocket", "started", "reading",
                 "ending", "_drain_timer", "_handshake_timer")

    def __init__(self, server: BrokerServer, listener: Listener, tls_context: ssl.SSLContext | None = None):
        self.server = server
        self.listener = listener
        self.tls_context = tls_context
        self.id = server.new_connection_id()
        self.transport: asyncio.Transport | None = None
        self.tls: TlsLink | None = None
        self.websocket: WebSocketLink | None = None
        self.started = False  # the broker knows this connection
        self.reading = True
        self.ending = False  # the broker ended the connection: input is read and thrown away
        self._drain_timer: asyncio.TimerHandle | None = None
        self._handshake_timer: asyncio.TimerHandle | None = None

    # ------------------------------------------------------------------------ from the event loop

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport
        if self.tls_context is None:
            self._start(transport)
            return
        self.tls = TlsLink(transport, self.tls_context)
        self._handshake_timer = self.server.loop.call_later(TLS_HANDSHAKE_TIMEOUT, transport.abort)

    def _start(self, link: asyncio.Transport | TlsLink) -> None:
        """The connection is ready for MQTT (after the TLS handshake, on a TLS listener): tell the broker."""
        server, listener = self.server, self.listener
        peer = self.transport.get_extra_info("peername")
        peer_text = f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) else (listener.unix_socket or "")
        if listener.protocol == "websockets":
            limit = server.broker.settings.packet_size_limit or MQTT_MAX_PACKET
            self.websocket = WebSocketLink(link, max_size=limit,
                                           log=lambda message: server.log("websockets", f"{peer_text}: {message}"))
        identity = None
        if listener.tls.use_identity_as_username or listener.tls.use_subject_as_username:
            # The verified client certificate names the user (require_certificate made sure there is one)
            identity = certificate_identity(self.tls.ssl_object if self.tls else None, listener.tls)
            if identity is None:
                link.close()
                return
        server.clients[self.id] = self
        self.started = True
        server.perform(server.broker.connection_made(self.id, server.loop.time(), peer_text, identity, listener,
                                                     mount_point=listener.mount_point))

    def data_received(self, data: bytes) -> None:
        if self.ending:
            return  # drained: see end()
        server = self.server
        if self.tls is not None:
            data = self.tls.feed(data)
            if not self.started:
                if self.tls.failure is not None:
                    self._handshake_failed(self.tls.failure)
                    return
                if not self.tls.handshake_done:
                    return
                self._handshake_timer.cancel()
                self._start(self.tls)
            if not data or not self.started:
                return
        if self.websocket is not None:
            data = self.websocket.feed(data)
            if not data:
                return
        server.perform(server.broker.data_received(self.id, data, server.loop.time()))

    def eof_received(self) -> bool:
        return False  # the client closed its side: so do we (after what is buffered is written)

    def _handshake_failed(self, reason: str) -> None:
        self._handshake_timer.cancel()
        peer = self.transport.get_extra_info("peername")
        port = (self.transport.get_extra_info("sockname") or ("", self.listener.port))[1]
        where = f" from {peer[0]}:{peer[1]}" if isinstance(peer, tuple) else ""
        self.server.log("notice", f"TLS handshake failed{where} on port {port}: {reason}")

    def connection_lost(self, exc: Exception | None) -> None:
        if self._handshake_timer is not None:
            self._handshake_timer.cancel()
        if self._drain_timer is not None:
            self._drain_timer.cancel()
            self._drain_timer = None
        if not self.started:
            return  # the broker never knew it (a failed or unfinished TLS handshake)
        server = self.server
        if server.clients.get(self.id) is self:
            del server.clients[self.id]
        server.perform(server.broker.connection_lost(self.id, server.loop.time()))

    def pause_writing(self) -> None:
        if not self.ending:
            self.server.loop.call_soon(self.server.writing_changed, self.id, True)

    def resume_writing(self) -> None:
        if not self.ending:
            self.server.loop.call_soon(self.server.writing_changed, self.id, False)

    # ------------------------------------------------------------------------------ from the broker

    def write(self, data: bytes) -> None:
        (self.websocket or self.tls or self.transport).write(data)

    def pause_reading(self) -> None:
        if self.reading and not self.ending:
            self.reading = False
            self.transport.pause_reading()

    def resume_reading(self) -> None:
        if not self.reading:
            self.reading = True
            self.transport.resume_reading()

    def end(self, last_words: bool) -> None:
        """The broker closed the connection. If it just sent something (`last_words`: a CONNACK or
        DISCONNECT that says why) or bytes are still unwritten, those go out, then the write side is
        shut and the input drained (module docstring); otherwise the connection is closed now."""
        self.ending = True
        transport = self.transport
        if transport.is_closing():
            return
        if self.websocket is not None:
            last_words = self.websocket.send_close() or last_words
        if self.tls is not None:
            self.tls.send_close_notify()  # TLS's goodbye goes out first, whatever follows
        if not last_words and not transport.get_write_buffer_size():
            transport.close()
            return
        if transport.can_write_eof():
            try:
                transport.write_eof()  # after the buffered bytes: the client reads them, then end of stream
            except OSError:  # the client is gone already: nothing to drain
                transport.close()
                return
        self.resume_reading()
        self._drain_timer = self.server.loop.call_later(DRAIN_SECONDS, self.abort)

    def abort(self) -> None:
        self.transport.abort()
