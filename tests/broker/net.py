"""Clients for end-to-end tests through EmbeddedBroker: MQTT over TCP, TLS and WebSocket.

Each speaks bytes made by refbroker.protocol; WebSocket framing is the `websockets` library's
client, TLS the standard library's, so the broker is checked against independent implementations.
"""

from __future__ import annotations

import socket
import ssl

from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect as websocket_connect

from refbroker.protocol import Connect, Packet, StreamDecoder


class StreamClient:
    """MQTT over a (possibly TLS) socket."""

    def __init__(self, port: int, version: int = 4, context: ssl.SSLContext | None = None,
                 server_hostname: str = "localhost"):
        sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        self.socket = context.wrap_socket(sock, server_hostname=server_hostname) if context else sock
        self.version = version
        self.decoder = StreamDecoder(version)
        self.pending: list[Packet] = []

    def send_bytes(self, data: bytes) -> None:
        self.socket.sendall(data)

    def _recv_bytes(self) -> bytes:
        try:
            return self.socket.recv(65536)
        except (ConnectionResetError, ssl.SSLError):
            return b""

    def send(self, packet: Packet) -> None:
        self.send_bytes(packet.encode(self.version))

    def receive(self) -> Packet | None:
        """The next packet; None once the broker closed the connection."""
        while not self.pending:
            data = self._recv_bytes()
            if not data:
                return None
            self.pending += self.decoder.feed(data)
        return self.pending.pop(0)

    def connect(self, client_id: str, **fields) -> Packet:
        self.send(Connect(client_id=client_id, protocol_level=self.version, **fields))
        return self.receive()

    def close(self) -> None:
        self.socket.close()


class WebSocketClient(StreamClient):
    """MQTT over WebSocket (binary frames, subprotocol "mqtt")."""

    def __init__(self, url: str, version: int = 4, context: ssl.SSLContext | None = None,
                 subprotocols: list[str] | None = None):
        # Entered as a context manager, the form websockets >= 17.1 asks for (close() exits it)
        self.websocket = websocket_connect(url, subprotocols=subprotocols or ["mqtt"], ssl=context,
                                           open_timeout=5, close_timeout=1).__enter__()
        self.version = version
        self.decoder = StreamDecoder(version)
        self.pending = []

    def send_bytes(self, data: bytes) -> None:
        self.websocket.send(data)

    def send_fragments(self, *pieces: bytes) -> None:
        """One WebSocket message in several frames (a fragmented message)."""
        self.websocket.send(iter(pieces))

    def _recv_bytes(self) -> bytes:
        try:
            data = self.websocket.recv(timeout=5)
        except ConnectionClosed:
            return b""
        return data if isinstance(data, bytes) else data.encode()

    def close(self) -> None:
        self.websocket.close()
