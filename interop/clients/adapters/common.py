"""What every Python client adapter does the same way: the table of named connections and the
operations that only look it up, the MQTT 5 CONNECT values a request actually gave, the form of an
outgoing property value, and the futures that wait for a SUBACK or UNSUBACK by packet id.

An adapter subclasses `ConnectionTable` and writes `close` (how its library lets a connection go);
the library-specific operations (connect, subscribe, publish ...) stay in the adapter's own module.
"""

from __future__ import annotations

import asyncio


def given(**values) -> dict:
    """The keyword arguments that are not None: the optional CONNECT values a request named."""
    return {key: value for key, value in values.items() if value is not None}


def outgoing(key: str, value):
    """A property value of a request as the libraries take it: User Properties as (name, value) tuples,
    Correlation Data as bytes (the line protocol carries it as text); the rest as it is."""
    if key == "user_properties":
        return [tuple(pair) for pair in value]
    if key == "correlation_data":
        return value.encode()
    return value


class Acknowledgements:
    """SUBACKs and UNSUBACKs awaited by packet id, on the asyncio loop."""

    def __init__(self) -> None:
        self.pending: dict[int, asyncio.Future] = {}

    def expect(self, mid: int) -> asyncio.Future:
        """A future for the acknowledgement of `mid`; register it before the loop next runs, so that an
        acknowledgement handed to the loop at once still finds it."""
        future = self.pending[mid] = asyncio.get_running_loop().create_future()
        return future

    def acknowledged(self, mid: int, value) -> None:
        """On the asyncio loop: the acknowledgement of `mid` came with `value`."""
        future = self.pending.pop(mid, None)
        if future is not None and not future.done():
            future.set_result(value)


class ConnectionTable:
    """The connections of one driver by the scenario's name for them; each has an `inbox` and a
    `client` (None once closed)."""

    def __init__(self) -> None:
        self.connections: dict = {}

    async def close(self, connection) -> None:
        """Let the connection's client go, errors of a connection that is gone already swallowed."""
        raise NotImplementedError

    async def release(self, old) -> None:
        """Let the connection a new `connect` under the same name replaces go (by default: close it)."""
        await self.close(old)

    async def replace(self, conn: str, connection):
        """Make `connection` the one named `conn`, after releasing the one it replaces. Messages that
        arrived for the old one and were not received yet stay in the inbox."""
        old = self.connections.get(conn)
        if old is not None:
            await self.release(old)
        self.connections[conn] = connection
        if old is not None:
            connection.inbox = old.inbox
        return connection

    def get(self, conn: str):
        """The open connection named `conn`."""
        connection = self.connections.get(conn)
        if connection is None or connection.client is None:
            raise RuntimeError(f"no connection {conn!r}")
        return connection

    async def op_receive(self, conn, count=1, timeout=2.0):
        connection = self.connections.get(conn)
        if connection is None:
            raise RuntimeError(f"no connection {conn!r}")
        return {"messages": await connection.inbox.take(count, timeout)}

    async def op_disconnect(self, conn):
        await self.close(self.get(conn))
        return {}

    async def op_reset(self):
        for connection in self.connections.values():
            await self.close(connection)
        self.connections.clear()
        return {}
