"""MQTT over WebSocket (both specifications, section 6), framed by the `websockets` library's
sans-IO `ServerProtocol`: HTTP upgrade in, WebSocket frames in and out, MQTT bytes in between.

- The handshake must offer the "mqtt" subprotocol and we answer with it [MQTT-6.0.0-4]; a client
  that offers no "mqtt" gets HTTP 400 (as mosquitto). Any path is accepted.
- MQTT travels in binary frames; a text frame closes the connection [MQTT-6.0.0-1].
- Frames and packets need not line up [MQTT-6.0.0-2]: the payload of each binary (or continuation)
  frame goes to the broker as a piece of a byte stream, and its stream decoder finds the packets.
- Each packet the broker sends goes out as one binary frame. Pings are answered by the library.
"""

from __future__ import annotations

import asyncio

from websockets.exceptions import InvalidState
from websockets.frames import Opcode
from websockets.http11 import Request
from websockets.server import ServerProtocol

SUBPROTOCOL = "mqtt"
CLOSE_UNSUPPORTED_DATA = 1003  # RFC 6455: "received a type of data it cannot accept"


def _select_mqtt(protocol: ServerProtocol, offered):
    return SUBPROTOCOL if SUBPROTOCOL in offered else None  # None: refused (see _on_request)


class WebSocketLink:
    """Sits between an asyncio transport (TCP or TLS) and the broker's byte stream.

    `feed(data)` takes bytes from the network and returns the MQTT bytes they carried (b"" if none);
    `write(data)` frames MQTT bytes; `close()` ends the WebSocket and the transport, `send_close()`
    only the WebSocket (the caller closes the transport when it sees fit). Once the
    WebSocket is over (closed by either side, refused, or broken) the transport is closed, and
    asyncio reports connection_lost as for any other connection.
    """

    def __init__(self, transport: asyncio.Transport, max_size: int | None, log=None):
        self.transport = transport
        self.log = log or (lambda message: None)  # lines of the `websockets` log type
        self.protocol = ServerProtocol(subprotocols=[SUBPROTOCOL], select_subprotocol=_select_mqtt,
                                       max_size=max_size)
        self.open = False  # handshake done: MQTT may flow
        self._text_message = False

    def feed(self, data: bytes) -> bytes:
        self.protocol.receive_data(data)
        mqtt = bytearray()
        for event in self.protocol.events_received():
            if isinstance(event, Request):
                self._on_request(event)
            elif event.opcode is Opcode.TEXT or (event.opcode is Opcode.CONT and self._text_message):
                # Only binary frames carry MQTT: anything else closes the connection [MQTT-6.0.0-1]
                self._text_message = True
                self._end(CLOSE_UNSUPPORTED_DATA, "MQTT needs binary frames")
                break
            elif event.opcode in (Opcode.BINARY, Opcode.CONT) and self.open:
                mqtt += event.data  # one more piece of the byte stream [MQTT-6.0.0-2]
        self._flush()
        return bytes(mqtt)

    def _on_request(self, request: Request) -> None:
        protocol = self.protocol
        response = protocol.accept(request)
        if response.status_code == 101 and response.headers.get("Sec-WebSocket-Protocol") != SUBPROTOCOL:
            # We answer with "mqtt" [MQTT-6.0.0-4]; a client that did not offer it is refused
            response = protocol.reject(400, "the 'mqtt' WebSocket subprotocol is required\n")
        protocol.send_response(response)
        self.open = response.status_code == 101
        if self.open:
            self.log(f"WebSocket connection upgraded (path {request.path}, subprotocol {SUBPROTOCOL}).")
        else:
            self.log(f"WebSocket handshake refused with HTTP {response.status_code} (path {request.path}).")

    def write(self, data: bytes) -> None:
        if not self.open:
            return
        try:
            self.protocol.send_binary(data)  # one packet (or several) per binary frame
        except InvalidState:
            return  # closing already
        self._flush()

    def close(self) -> None:
        self._end(1000, "")

    def send_close(self) -> bool:
        """Start the closing handshake (Close frame, 1000) and leave the TCP connection to the caller;
        True if a frame was sent."""
        if not self.open:
            return False
        self.open = False
        try:
            self.protocol.send_close(1000, "")
        except InvalidState:
            return False
        for chunk in self.protocol.data_to_send():
            if chunk:
                self.transport.write(chunk)
        return True

    def abort(self) -> None:
        self.transport.abort()

    def _end(self, code: int, reason: str) -> None:
        if self.open:
            try:
                self.protocol.send_close(code, reason)
            except InvalidState:
                pass
            self._flush()
        self.open = False
        self.transport.close()  # written data is flushed first

    def _flush(self) -> None:
        for chunk in self.protocol.data_to_send():
            if chunk:
                self.transport.write(chunk)
            else:
                self.open = False
                self.transport.close()  # b"": the library says the connection is over
                return
