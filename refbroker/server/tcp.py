"""asyncio TCP listeners around one `Broker`.

Each accepted socket gets an id; its bytes go to `broker.data_received`, and the returned actions
are performed at once: `Send` writes, `Close` closes. One timer handle follows
`broker.next_deadline()` and calls `broker.tick` when it comes (keep alive, expiry, $SYS).
Time is the event loop's monotonic clock.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Iterable

from ..core import Action, Broker, Close, Send


class BrokerServer:
    def __init__(self, broker: Broker, loop: asyncio.AbstractEventLoop):
        self.broker = broker
        self.loop = loop
        self.transports: dict[int, asyncio.Transport] = {}
        self.servers: list[asyncio.base_events.Server] = []
        self._ids = itertools.count(1)
        self._timer: asyncio.TimerHandle | None = None

    async def listen(self, host: str | None, port: int) -> list[tuple[str, int]]:
        """Start a TCP listener; returns the (address, port) pairs it is bound to."""
        server = await self.loop.create_server(lambda: _Connection(self), host, port, reuse_address=True)
        self.servers.append(server)
        self._reschedule()
        return [socket.getsockname()[:2] for socket in server.sockets]

    def close(self) -> None:
        for server in self.servers:
            server.close()
        for transport in list(self.transports.values()):
            transport.abort()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def perform(self, actions: Iterable[Action]) -> None:
        for action in actions:
            transport = self.transports.get(action.connection)
            if transport is None:
                continue
            if isinstance(action, Send):
                transport.write(action.data)
            elif isinstance(action, Close):
                self.transports.pop(action.connection, None)
                transport.close()  # buffered writes are flushed first
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


class _Connection(asyncio.Protocol):
    def __init__(self, server: BrokerServer):
        self.server = server
        self.id = next(server._ids)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        server = self.server
        server.transports[self.id] = transport
        peer = transport.get_extra_info("peername")
        peer_text = f"{peer[0]}:{peer[1]}" if peer else ""
        server.perform(server.broker.connection_made(self.id, server.loop.time(), peer_text))

    def data_received(self, data: bytes) -> None:
        server = self.server
        server.perform(server.broker.data_received(self.id, data, server.loop.time()))

    def connection_lost(self, exc: Exception | None) -> None:
        server = self.server
        server.transports.pop(self.id, None)
        server.perform(server.broker.connection_lost(self.id, server.loop.time()))
