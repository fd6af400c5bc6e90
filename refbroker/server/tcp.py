"""asyncio listeners around one `Broker`: plain TCP, TLS, WebSocket, and WebSocket over TLS.

Each accepted socket gets an id; its bytes go to `broker.data_received`, and the returned actions
are performed at once: `Send` writes, `Close` closes. One timer handle follows
`broker.next_deadline()` and calls `broker.tick` when it comes (keep alive, expiry, $SYS).
Time is the event loop's monotonic clock.

TLS is asyncio's (`ssl=` of create_server, built by tls.py); a WebSocket connection puts a
`WebSocketLink` (websocket.py) between the transport and the broker. The broker sees only bytes.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Iterable

from ..core import Action, Broker, Close, Listener, Send
from .tls import certificate_common_name, server_context
from .websocket import WebSocketLink

MQTT_MAX_PACKET = 268_435_460  # the largest possible MQTT packet, the WebSocket frame limit too


class BrokerServer:
    def __init__(self, broker: Broker, loop: asyncio.AbstractEventLoop):
        self.broker = broker
        self.loop = loop
        self.links: dict[int, asyncio.Transport | WebSocketLink] = {}  # what Send writes to
        self.servers: list[asyncio.base_events.Server] = []
        self._ids = itertools.count(1)
        self._timer: asyncio.TimerHandle | None = None

    async def listen(self, host: str | None, port: int, listener: Listener | None = None) -> list[tuple[str, int]]:
        """Start a listener (plain TCP unless `listener` says TLS and/or websockets); returns the
        (address, port) pairs it is bound to."""
        listener = listener or Listener(port, host)
        context = server_context(listener.tls) if listener.tls.enabled else None
        server = await self.loop.create_server(lambda: _Connection(self, listener), host, port,
                                               reuse_address=True, ssl=context)
        self.servers.append(server)
        self._reschedule()
        return [socket.getsockname()[:2] for socket in server.sockets]

    async def listen_on(self, listener: Listener) -> list[tuple[str, int]]:
        return await self.listen(listener.host, listener.port, listener)

    def close(self) -> None:
        for server in self.servers:
            server.close()
        for link in list(self.links.values()):
            link.abort()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def perform(self, actions: Iterable[Action]) -> None:
        # Performance: the packets for one connection are joined and written at once, so a batch of
        # input (say 20 PUBLISHes in one read) costs one write per connection instead of one per packet.
        # The order per connection is kept; a Close writes what came before it first.
        unwritten: dict[int, list[bytes]] = {}
        for action in actions:
            link = self.links.get(action.connection)
            if link is None:
                continue
            if isinstance(action, Send):
                unwritten.setdefault(action.connection, []).append(action.data)
            elif isinstance(action, Close):
                _write_joined(link, unwritten.pop(action.connection, None))
                self.links.pop(action.connection, None)
                link.close()  # buffered writes are flushed first
        for connection, chunks in unwritten.items():
            _write_joined(self.links.get(connection), chunks)
        self._reschedule()

    def _reschedule(self) -> None:
        deadline = self.broker.next_deadline()
        if deadline is None:
            return
        if self._timer is not None:
            if self._timer.when() <= deadline:
                return
            self._timer.cancel()
        self._timer = self.loop.call_at(deadline, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        self.perform(self.broker.tick(self.loop.time()))


def _write_joined(link: asyncio.Transport | WebSocketLink | None, chunks: list[bytes] | None) -> None:
    if link is not None and chunks:
        link.write(chunks[0] if len(chunks) == 1 else b"".join(chunks))


class _Connection(asyncio.Protocol):
    def __init__(self, server: BrokerServer, listener: Listener):
        self.server = server
        self.listener = listener
        self.id = next(server._ids)
        self.websocket: WebSocketLink | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        server, listener = self.server, self.listener
        if listener.protocol == "websockets":
            limit = server.broker.settings.max_packet_size or MQTT_MAX_PACKET
            self.websocket = WebSocketLink(transport, max_size=limit)
        server.links[self.id] = self.websocket or transport
        peer = transport.get_extra_info("peername")
        peer_text = f"{peer[0]}:{peer[1]}" if peer else ""
        identity = None
        if listener.tls.use_identity_as_username:
            # The verified client certificate names the user (require_certificate made sure there is one)
            identity = certificate_common_name(transport.get_extra_info("ssl_object"))
            if identity is None:
                transport.close()
                return
        server.perform(server.broker.connection_made(self.id, server.loop.time(), peer_text, identity))

    def data_received(self, data: bytes) -> None:
        server = self.server
        if self.websocket is not None:
            data = self.websocket.feed(data)
            if not data:
                return
        server.perform(server.broker.data_received(self.id, data, server.loop.time()))

    def connection_lost(self, exc: Exception | None) -> None:
        server = self.server
        server.links.pop(self.id, None)
        server.perform(server.broker.connection_lost(self.id, server.loop.time()))
