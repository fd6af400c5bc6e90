"""MQTT over WebSocket for the raw client, without threads: the `websockets` library's sans-IO
`ClientProtocol` over a blocking socket (plain, or TLS for wss://).

    stream = WebSocketStream.open(sock, "ws://127.0.0.1:8080/mqtt", timeout=5)
    stream.subprotocol          # what the server selected ("mqtt")
    stream.send(b"...")         # one binary message (a str goes as a text message)
    stream.recv(timeout=3)      # the next message's data; TimeoutError; WebSocketClosed at the end
    stream.close()              # the network connection just ends (no closing handshake)

Why not the library's synchronous client: it reads in a background thread while the caller writes,
and over TLS the two meet on one OpenSSL connection. When a server sends its TLS 1.3 session tickets
just as the client writes its upgrade request, that request can be lost, and the client waits for an
answer that never comes (seen against refbroker and mosquitto 2.1.2). Here one thread does everything.
"""

from __future__ import annotations

import socket
import time
from collections import deque

from websockets.client import ClientProtocol
from websockets.frames import Opcode
from websockets.http11 import Response
from websockets.uri import parse_uri

__all__ = ["WebSocketClosed", "WebSocketStream"]


class WebSocketClosed(Exception):
    """The WebSocket (or the network connection under it) is over."""


class WebSocketStream:
    def __init__(self, sock: socket.socket, protocol: ClientProtocol):
        self.socket = sock
        self.protocol = protocol
        self.subprotocol: str | None = None
        self._messages: deque[bytes | str] = deque()
        self._fragments: list[bytes] = []
        self._fragment_opcode: Opcode | None = None
        self._ended = False  # the network connection reached its end
        self._closed: str | None = None  # why the WebSocket is over (messages before it are still handed out)

    @classmethod
    def open(cls, sock: socket.socket, uri: str, timeout: float, subprotocols: tuple[str, ...] = ("mqtt",)
             ) -> WebSocketStream:
        """The opening handshake on a connected socket; raises the library's handshake error, or
        TimeoutError, or WebSocketClosed."""
        stream = cls(sock, ClientProtocol(parse_uri(uri), subprotocols=list(subprotocols), max_size=None))
        stream.handshake(timeout)
        return stream

    def handshake(self, timeout: float) -> None:
        """Send the upgrade request and read the server's answer; sets `subprotocol`. Raises as `open`."""
        protocol = self.protocol
        protocol.send_request(protocol.connect())
        self._flush()
        deadline = time.monotonic() + timeout
        while True:
            if self._closed is not None:
                raise WebSocketClosed(self._closed)
            for event in self._receive(deadline):
                if isinstance(event, Response):
                    if protocol.handshake_exc is not None:
                        raise protocol.handshake_exc
                    self.subprotocol = protocol.subprotocol
                    return
                self._take(event)

    def send(self, message: bytes | str) -> None:
        if isinstance(message, str):
            self.protocol.send_text(message.encode("utf-8"))
        else:
            self.protocol.send_binary(message)
        self._flush()

    def recv(self, timeout: float) -> bytes | str:
        """The next whole message (bytes for binary, str for text); WebSocketClosed once the messages
        that came before the end are handed out."""
        deadline = time.monotonic() + timeout
        while not self._messages:
            if self._closed is not None:
                raise WebSocketClosed(self._closed)
            for event in self._receive(deadline):
                self._take(event)
        return self._messages.popleft()

    def close(self) -> None:
        try:
            self.socket.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.socket.close()

    # ------------------------------------------------------------------------------------ internals

    def _receive(self, deadline: float) -> list:
        """Read once (waiting until `deadline`) and return the protocol's events."""
        if self._ended:
            raise WebSocketClosed(self._closed or "the connection is over")
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError("nothing from the WebSocket in time")
        self.socket.settimeout(remaining)
        try:
            data = self.socket.recv(65536)
        except TimeoutError:
            raise TimeoutError("nothing from the WebSocket in time") from None
        except OSError as exc:
            raise WebSocketClosed(f"the connection broke: {exc}") from None
        if data:
            self.protocol.receive_data(data)
        else:
            # The server ended the stream: close our side too, as any client does. (Over TLS, mosquitto
            # 2.0 ends the session for good, and publishes the will, only once the client has closed.)
            self._ended = True
            self.protocol.receive_eof()
            self.close()
            events = self.protocol.events_received()
            if self._closed is None:
                self._closed = "the server closed the connection"
            return events
        events = self.protocol.events_received()
        self._flush()  # pongs, the answer to a close frame
        return events

    def _take(self, frame) -> None:
        opcode = frame.opcode
        if opcode is Opcode.CLOSE:
            self._closed = f"the server closed the WebSocket ({self.protocol.close_rcvd})"
            return
        if opcode in (Opcode.TEXT, Opcode.BINARY):
            self._fragment_opcode, self._fragments = opcode, [frame.data]
        elif opcode is Opcode.CONT and self._fragment_opcode is not None:
            self._fragments.append(frame.data)
        else:
            return  # PING / PONG: the protocol answers pings itself
        if frame.fin:
            data = b"".join(self._fragments)
            self._messages.append(data.decode("utf-8", "replace") if self._fragment_opcode is Opcode.TEXT else data)
            self._fragment_opcode, self._fragments = None, []

    def _flush(self) -> None:
        for chunk in self.protocol.data_to_send():
            if not chunk:
                continue  # the library's signal to half-close; close() ends the connection
            try:
                self.socket.sendall(chunk)
            except OSError as exc:
                raise WebSocketClosed(f"cannot send: {exc}") from None
