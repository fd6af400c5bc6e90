"""A raw, synchronous MQTT test client for the conformance suite.

It talks to a broker over a plain TCP socket (or, with `websocket=True`, over WebSocket with the
subprotocol "mqtt", one binary message per packet sent; or over any endpoint of conformance/transports.py,
TLS and WebSocket over TLS included) and does nothing behind the test's back: no automatic
acknowledgements, no retries, no keep-alive pings. It frames the byte stream itself (one `recv` is
not one packet) with `refbroker.protocol.StreamDecoder`, decodes with the project's codec, and keeps
a trace of every packet in both directions for the results file.

Waiting is driven by arrival: `expect` returns as soon as a packet is there and only runs into its
timeout when the broker stays silent. The only fixed waits are `expect_nothing(seconds)`, which is
how a test shows that something did *not* happen.

Failures raised here are `ConformanceFailure` subclasses (`AssertionError`s), so a broker that answers
wrongly makes a test *fail*; `HarnessError` (not an assertion) means the harness itself could not do its
job (the broker cannot be reached), which the plugin records as *error*. Both are defined in
conformance/errors.py and importable from here too. A packet the broker's announced limits forbid is
not sent (unless the test asks for that with `beyond_server_limits()`): the test ends as not applicable
(conformance/outcomes.py).
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import itertools
import select
import socket
import ssl
import time
from collections import deque
from collections.abc import Iterable
from typing import TypeVar

from refbroker.protocol import (
    MQTT_5,
    VERSION_NAMES,
    Connack,
    Connect,
    Disconnect,
    MQTTError,
    Packet,
    PacketType,
    Pingreq,
    Pingresp,
    Properties,
    Puback,
    Pubcomp,
    Publish,
    Pubrec,
    Pubrel,
    StreamDecoder,
    Suback,
    Subscribe,
    Subscription,
    Unsuback,
    Unsubscribe,
    Will,
    decode_packet,
)
from refbroker.protocol.primitives import encode_variable_byte_integer

from .errors import ConformanceFailure, HarnessError
from .outcomes import not_applicable
from .probe import ServerLimits
from .transports import Endpoint, open_stream
from .websocket_stream import WebSocketClosed, WebSocketStream

__all__ = [
    "DEFAULT_TIMEOUT",
    "ConformanceFailure",
    "ConnectionClosed",
    "HarnessError",
    "InvalidServerPacket",
    "NoPacketReceived",
    "RawClient",
    "UnexpectedPacket",
    "summarize",
]

DEFAULT_TIMEOUT = 3.0  # seconds to wait for an answer the broker owes us; only reached on failure
_HEX_LIMIT = 4096  # bytes of a packet kept as hex in the trace

P = TypeVar("P", bound=Packet)


class UnexpectedPacket(ConformanceFailure):
    def __init__(self, message: str, packet: Packet | None = None):
        super().__init__(message)
        self.packet = packet


class NoPacketReceived(ConformanceFailure):
    pass


class ConnectionClosed(ConformanceFailure):
    pass


class InvalidServerPacket(ConformanceFailure):
    """The broker sent bytes our decoder refuses; `raw` holds them."""

    def __init__(self, message: str, raw: bytes, error: Exception):
        super().__init__(message)
        self.raw = raw
        self.error = error


# ------------------------------------------------------------------------------------------ summaries


def _short(value: object, limit: int = 64) -> str:
    if isinstance(value, (bytes, bytearray)):
        data = bytes(value)
        return repr(data[:limit]) + (f"...({len(data)} bytes)" if len(data) > limit else "")
    text = repr(value)
    return text if len(text) <= 2 * limit else text[: 2 * limit] + "..."


def summarize(packet: Packet, version: int | None = None) -> str:
    """A one-line human summary of a packet: its type and the fields that carry information.

    With `version` 3 or 4 (or for a CONNECT below level 5) fields carry the names of MQTT 3.1/3.1.1:
    clean_session, return_code(s); the reason codes those versions do not have are left out.
    """
    v3 = (version is not None and version < MQTT_5) or (
        isinstance(packet, Connect) and version is None and packet.protocol_level < MQTT_5)
    parts = []
    for f in dataclasses.fields(packet):  # type: ignore[arg-type]
        value = getattr(packet, f.name)
        if v3 and f.name in ("reason_code", "reason_codes"):
            if isinstance(packet, Connack):
                parts.append(f"return_code=0x{value:02X}")
            elif isinstance(packet, Suback):
                parts.append("return_codes=[" + ", ".join(f"0x{c:02X}" for c in value) + "]")
            continue
        if v3 and f.name == "clean_start":
            parts.append(f"clean_session={value}")
            continue
        if isinstance(value, Properties):
            if value:
                parts.append("properties={" + ", ".join(f"{k}={_short(v)}" for k, v in value.items()) + "}")
            continue
        if f.name == "reserved_flag" and not value:
            continue
        if value is None or value == []:
            continue
        if isinstance(value, Will):
            will = f"Will(topic={value.topic!r}, payload={_short(value.payload)}, qos={value.qos}, retain={value.retain}"
            if value.properties:
                will += ", properties={" + ", ".join(f"{k}={_short(v)}" for k, v in value.properties.items()) + "}"
            parts.append("will=" + will + ")")
            continue
        if f.name == "reason_code" and isinstance(value, int):
            parts.append(f"reason_code=0x{value:02X}")
            continue
        if f.name == "reason_codes":
            parts.append("reason_codes=[" + ", ".join(f"0x{c:02X}" for c in value) + "]")
            continue
        parts.append(f"{f.name}={_short(value)}")
    return f"{packet.packet_type.name}(" + ", ".join(parts) + ")"


def frame_bytes(first_byte: int, body: bytes) -> bytes:
    """The full wire bytes of a frame from its first byte and body (the length is re-encoded minimally)."""
    return bytes((first_byte,)) + encode_variable_byte_integer(len(body)) + body


# ---------------------------------------------------------------------------------------- the client

_client_numbers = itertools.count(1)


class RawClient:
    """One TCP connection to a broker, speaking MQTT at protocol level `version` (4 = 3.1.1, 5 = 5.0).

    `name` identifies the client in the trace; `client_id` is the id `connect()` uses by default.
    """

    def __init__(self, host: str | None = None, port: int | None = None, version: int = 4, *, client_id: str = "",
                 name: str | None = None, connect_timeout: float = 5.0, default_timeout: float = DEFAULT_TIMEOUT,
                 websocket: bool = False, server_limits: ServerLimits | None = None,
                 credentials: tuple[str, str] | None = None, endpoint: Endpoint | None = None):
        if endpoint is not None:  # tcp, tls, ws or wss (transports.py); host, port and websocket follow it
            host, port, websocket = endpoint.host, endpoint.port, endpoint.websocket
        self.endpoint = endpoint
        self.host, self.port = host, port
        self.version = version
        self.client_id = client_id
        self.name = name or f"client{next(_client_numbers)}"
        self.default_timeout = default_timeout
        self.trace: list[dict] = []
        self.connack: Connack | None = None
        self.peer_closed = False  # the broker closed (or reset) the connection
        self.closed = False  # we closed the socket
        self._decoder = StreamDecoder(version)
        self._held: deque[tuple[bytes, Packet]] = deque()  # packets set aside while waiting for another
        self._frames: deque[bytes] = deque()  # complete frames read but not yet handed out
        self._unframed = bytearray()  # bytes received and not yet handed out as frames (mirrors the decoder)
        self._packet_ids = itertools.cycle(range(1, 0x10000))
        self._t0 = time.monotonic()
        #: the limits the broker announced (v5 CONNACK); `send` keeps the test's packets within them
        self.server_limits: ServerLimits = server_limits or ServerLimits()
        self._limits_enforced = True
        #: (username, password) of a broker that admits no client without them (target profile [credentials]):
        #: every CONNECT `send` encodes without a User Name gets them
        self.credentials = credentials
        self.ws = None  # the websockets connection when `websocket`
        if websocket:
            self._open_websocket(host, port, version, connect_timeout)
            return
        if endpoint is not None and endpoint.secure:
            try:
                self.sock = open_stream(endpoint, connect_timeout)
            except OSError as exc:
                raise HarnessError(f"cannot open a TLS connection to the broker at {endpoint.url}: {exc}") from exc
            self.sock.setblocking(False)
            self._event("open", f"TLS connection ({self.sock.version()}) to {host}:{port} "
                                f"(MQTT {VERSION_NAMES.get(version, version)})")
            return
        try:
            self.sock = socket.create_connection((host, port), timeout=connect_timeout)
        except OSError as exc:
            raise HarnessError(f"cannot connect to the broker at {host}:{port}: {exc}") from exc
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock.setblocking(False)
        self._event("open", f"TCP connection to {host}:{port} (MQTT {VERSION_NAMES.get(version, version)})")

    def _open_websocket(self, host: str, port: int, version: int, connect_timeout: float) -> None:
        secure = self.endpoint is not None and self.endpoint.secure
        uri = f"{'wss' if secure else 'ws'}://{host}:{port}/mqtt"
        try:
            if secure:
                sock = open_stream(Endpoint("tls", host, port, self.endpoint.cafile, self.endpoint.certfile,
                                            self.endpoint.keyfile, self.endpoint.server_hostname), connect_timeout)
            else:
                sock = socket.create_connection((host, port), timeout=connect_timeout)
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError as exc:
            raise HarnessError(f"cannot open a WebSocket to the broker at {uri}: {exc}") from exc
        try:
            self.ws = WebSocketStream.open(sock, uri, connect_timeout)  # one thread: websocket_stream.py
        except Exception as exc:  # noqa: BLE001 - refused handshake, timeout, closed...
            sock.close()
            raise HarnessError(f"cannot open a WebSocket to the broker at {uri}: {exc}") from exc
        self.sock = self.ws.socket
        self._event("open", f"WebSocket connection to {uri}, subprotocol {self.ws.subprotocol!r} "
                            f"(MQTT {VERSION_NAMES.get(version, version)})")

    # -------------------------------------------------------------------------------------- trace

    def _record(self, direction: str, packet_type: str, summary: str, raw: bytes = b"") -> None:
        entry = {
            "t": round(time.time(), 6),
            "elapsed": round(time.monotonic() - self._t0, 6),
            "dir": direction,
            "type": packet_type,
            "summary": summary,
        }
        if raw:
            entry["hex"] = raw[:_HEX_LIMIT].hex(" ")
            if len(raw) > _HEX_LIMIT:
                entry["hex_truncated"] = len(raw)
        self.trace.append(entry)

    def _event(self, kind: str, summary: str) -> None:
        self._record("event", kind.upper(), summary)

    def note(self, text: str) -> None:
        """Add a free-text note to the trace (e.g. what the test is about to do)."""
        self._event("note", text)

    # -------------------------------------------------------------------------------------- sending

    def next_packet_id(self) -> int:
        return next(self._packet_ids)

    def connect_packet(self, **fields) -> Connect:
        """A CONNECT of this client (its client id, protocol level and the target's credentials, if any) with
        `fields` changed: the start of a test's hand-built, often broken, CONNECT."""
        username, password = self.credentials if self.credentials is not None else (None, None)
        defaults = {"client_id": self.client_id, "protocol_level": self.version, "username": username,
                    "password": password.encode("utf-8") if password is not None else None}
        return Connect(**{**defaults, **fields})

    def send(self, packet: Packet) -> bytes:
        """Encode `packet` with this client's protocol version and send it. Returns the bytes sent.

        A packet the broker's announced limits forbid (bigger than its Maximum Packet Size, a QoS above
        its Maximum QoS, a feature it says it lacks) is not sent: the test cannot fit this broker and
        ends as not applicable, unless it runs inside `beyond_server_limits()` (tests of those limits).
        """
        if isinstance(packet, Connect) and self.credentials is not None and packet.username is None:
            packet = dataclasses.replace(packet, username=self.credentials[0],
                                         password=self.credentials[1].encode("utf-8"))
        data = packet.encode(self.version)
        if self._limits_enforced:
            problem = self._beyond_limits(packet, len(data))
            if problem:
                self._event("not-sent", problem)
                not_applicable(f"{self.name}: {problem}")
        self._send(data, packet.packet_type.name, summarize(packet, self.version))
        return data

    @contextlib.contextmanager
    def beyond_server_limits(self):
        """Send packets beyond the broker's announced limits (for tests of what the broker does then)."""
        previous, self._limits_enforced = self._limits_enforced, False
        try:
            yield self
        finally:
            self._limits_enforced = previous

    def _beyond_limits(self, packet: Packet, size: int) -> str | None:
        """Why the broker's announced limits forbid sending `packet`, or None. [MQTT-3.2.2-*] (5.0 3.2.2.3)"""
        limits = self.server_limits
        name = packet.packet_type.name
        if limits.maximum_packet_size is not None and size > limits.maximum_packet_size:
            # [MQTT-3.2.2-15]: the Client MUST NOT send packets exceeding the server's Maximum Packet Size
            return (f"the test needs a {size}-byte {name}, beyond the broker's Maximum Packet Size "
                    f"{limits.maximum_packet_size} (CONNACK)")
        qos = None
        if isinstance(packet, Publish):
            qos = packet.qos
            if packet.retain and limits.retain_available is False:  # [MQTT-3.2.2-14]
                return "the test publishes a retained message; the broker's CONNACK says Retain Available 0"
            alias = packet.properties.topic_alias
            if alias is not None and alias > (limits.topic_alias_maximum or 0):
                return (f"the test uses Topic Alias {alias}; the broker's Topic Alias Maximum is "
                        f"{limits.topic_alias_maximum or 0} (CONNACK)")
        elif isinstance(packet, Connect) and packet.will is not None:
            qos = packet.will.qos
            if packet.will.retain and limits.retain_available is False:
                return "the test uses a retained Will; the broker's CONNACK says Retain Available 0"
        if qos is not None and limits.maximum_qos is not None and qos > limits.maximum_qos:  # [MQTT-3.2.2-11]
            return f"the test sends QoS {qos}; the broker's Maximum QoS is {limits.maximum_qos} (CONNACK)"
        if isinstance(packet, Subscribe):
            filters = [s.topic_filter for s in packet.subscriptions]
            shared = [f for f in filters if f.startswith("$share/")]
            if shared and limits.shared_subscription_available is False:
                return f"the test subscribes to {shared[0]!r}; the broker's CONNACK says Shared Subscription Available 0"
            wild = [f for f in filters if ("+" in f or "#" in f)]
            if wild and limits.wildcard_subscription_available is False:
                return f"the test subscribes to {wild[0]!r}; the broker's CONNACK says Wildcard Subscription Available 0"
            if packet.properties.subscription_identifiers and limits.subscription_identifier_available is False:
                return "the test uses a Subscription Identifier; the broker's CONNACK says it has none available"
        return None

    def send_raw(self, data: bytes, note: str | None = None) -> None:
        """Send bytes as they are (malformed packets...). The trace gets a decode attempt or `note`."""
        data = bytes(data)
        packet_type, summary = "RAW", note or ""
        if len(data) >= 2:
            decoder = StreamDecoder(self.version)
            try:
                frame = decoder.next_raw_frame(data)
                if frame is not None:
                    packet = decode_packet(frame[0], frame[1], self.version)
                    packet_type = packet.packet_type.name
                    summary = (note + ": " if note else "") + summarize(packet, self.version)
                    if decoder.buffered:
                        summary += f" + {decoder.buffered} more bytes"
            except Exception as exc:  # noqa: BLE001 - the test's own bytes, malformed on purpose
                try:
                    packet_type = PacketType(data[0] >> 4).name
                except ValueError:
                    packet_type = f"TYPE{data[0] >> 4}"
                summary = (note + ": " if note else "") + f"not decodable ({exc})"
        self._send(data, packet_type, summary or "raw bytes")

    def _send(self, data: bytes, packet_type: str, summary: str) -> None:
        self._record("out", packet_type, summary, data)
        if self.closed:
            raise HarnessError(f"{self.name}: send after the test closed the socket")
        if self.peer_closed:
            self._event("send-failed", "not sent: the broker had already closed the connection")
            return
        if self.ws is not None:
            self._ws_send(data)
            return
        view = memoryview(data)
        deadline = time.monotonic() + 10.0
        while view:
            try:
                sent = self.sock.send(view)
                view = view[sent:]
            except (BlockingIOError, ssl.SSLWantWriteError, ssl.SSLWantReadError):
                if time.monotonic() > deadline:
                    raise HarnessError(f"{self.name}: the broker does not read; could not send {len(data)} bytes")
                select.select([], [self.sock], [], 0.1)
            except (BrokenPipeError, ConnectionResetError, ConnectionAbortedError) as exc:
                self._mark_peer_closed(f"send failed: {exc.strerror or exc}")
                return

    def _ws_send(self, message: bytes | str) -> None:
        try:
            self.ws.send(message)
        except WebSocketClosed as exc:
            self._mark_peer_closed(f"WebSocket closed: {exc}")
        except OSError as exc:
            self._mark_peer_closed(f"send failed: {exc.strerror or exc}")

    def send_websocket_message(self, data: bytes | str, note: str | None = None) -> None:
        """WebSocket only: send `data` as one message, binary for bytes and text for str, whatever it holds
        (part of a packet, several packets...)."""
        if self.ws is None:
            raise HarnessError(f"{self.name}: send_websocket_message needs a WebSocket client")
        kind = "text" if isinstance(data, str) else "binary"
        raw = data.encode("utf-8") if isinstance(data, str) else bytes(data)
        self._record("out", "WS-" + kind.upper(), note or f"one {kind} WebSocket message", raw)
        if self.closed:
            raise HarnessError(f"{self.name}: send after the test closed the connection")
        if self.peer_closed:
            self._event("send-failed", "not sent: the broker had already closed the connection")
            return
        self._ws_send(data)

    # ------------------------------------------------------------------------------------ receiving

    def _mark_peer_closed(self, how: str) -> None:
        if not self.peer_closed:
            self.peer_closed = True
            self._event("closed", f"the broker closed the connection ({how})")

    def _read_some(self, deadline: float) -> bool:
        """Wait until bytes arrive (feeding them to the decoder), the peer closes, or `deadline`.

        Returns False on timeout.
        """
        if self.ws is not None:
            return self._ws_read_some(deadline)
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            # TLS may hold decrypted bytes the socket no longer signals as readable
            if not (isinstance(self.sock, ssl.SSLSocket) and self.sock.pending()):
                readable, _, _ = select.select([self.sock], [], [], remaining)
                if not readable:
                    return False
            try:
                data = self.sock.recv(65536)
            except (BlockingIOError, ssl.SSLWantReadError, ssl.SSLWantWriteError):
                continue
            except (ConnectionResetError, ConnectionAbortedError) as exc:
                self._mark_peer_closed(f"reset: {exc.strerror or exc}")
                return True
            except ssl.SSLError as exc:  # a TLS alert from the broker (e.g. it refused our certificate)
                self._mark_peer_closed(f"TLS: {exc.reason or exc}")
                return True
            except OSError as exc:
                if exc.errno in (errno.ECONNRESET, errno.EPIPE, errno.ETIMEDOUT):
                    self._mark_peer_closed(f"{exc.strerror or exc}")
                    return True
                raise
            if not data:
                self._mark_peer_closed("end of stream")
                return True
            self._unframed += data
            try:
                frame = self._decoder.next_raw_frame(data)
            except MQTTError:
                frame = None  # left in the buffer: _next_frame reports it
            if frame is not None:
                self._frames.append(self._framed(frame))
            return True

    def _ws_read_some(self, deadline: float) -> bool:
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            try:
                message = self.ws.recv(timeout=remaining)
            except TimeoutError:
                return False
            except WebSocketClosed as exc:
                self._mark_peer_closed(f"WebSocket closed: {exc}")
                return True
            except OSError as exc:
                self._mark_peer_closed(f"{exc.strerror or exc}")
                return True
            if isinstance(message, str):
                # [MQTT-6.0.0-1]: MQTT travels in binary frames; the trace keeps what came
                self._record("in", "WS-TEXT", "a text WebSocket message from the broker", message.encode("utf-8"))
                continue
            self._feed(bytes(message))
            return True

    def _feed(self, data: bytes) -> None:
        self._unframed += data
        try:
            frame = self._decoder.next_raw_frame(data)
        except MQTTError:
            frame = None  # left in the buffer: _next_frame reports it
        if frame is not None:
            self._frames.append(self._framed(frame))

    def _next_frame(self, deadline: float) -> bytes | None:
        """The next complete frame's bytes, or None on timeout. Raises ConnectionClosed at end of stream."""
        while True:
            if self._frames:
                return self._frames.popleft()
            try:
                frame = self._decoder.next_raw_frame()
            except MQTTError as exc:
                raw = self._drain_buffer()
                self._record("in", "INVALID", f"undecodable frame header: {exc}", raw)
                raise InvalidServerPacket(f"{self.name}: the broker sent bytes that are not an MQTT packet "
                                          f"({exc}): {raw.hex(' ')}", raw, exc) from None
            if frame is not None:
                return self._framed(frame)
            if self.peer_closed:
                leftover = self._drain_buffer()
                if leftover:
                    self._record("in", "INCOMPLETE", "the connection closed inside a packet", leftover)
                raise ConnectionClosed(f"{self.name}: the broker closed the connection"
                                       + (f" after {len(leftover)} bytes of an incomplete packet" if leftover else ""))
            if not self._read_some(deadline):
                return None

    def _drain_buffer(self) -> bytes:
        """The bytes received but not framed (for the trace), clearing the decoder."""
        buffered = bytes(self._unframed)
        self._unframed.clear()
        self._decoder = StreamDecoder(self.version)
        return buffered

    def _framed(self, frame: tuple[int, bytes]) -> bytes:
        raw = frame_bytes(frame[0], frame[1])
        del self._unframed[:len(raw)]
        return raw

    def _decode(self, raw: bytes) -> Packet:
        first, body = raw[0], raw[1 + _vbi_len(raw):]
        try:
            packet = decode_packet(first, body, self.version)
        except Exception as exc:  # noqa: BLE001 - whatever the codec raises, the bytes came from the broker
            try:
                packet_type = PacketType(first >> 4).name
            except ValueError:
                packet_type = f"TYPE{first >> 4}"
            self._record("in", packet_type, f"INVALID: {exc}", raw)
            raise InvalidServerPacket(
                f"{self.name}: the broker sent a {packet_type} that is not valid MQTT "
                f"{VERSION_NAMES.get(self.version, self.version)}: {exc}; bytes: {raw.hex(' ')}", raw, exc) from None
        self._record("in", packet.packet_type.name, summarize(packet, self.version), raw)
        if isinstance(packet, Connack) and self.connack is None:
            self._accept_connack(packet)
        return packet

    def _accept_connack(self, connack: Connack) -> None:
        self.connack = connack
        if self.version == MQTT_5 and connack.reason_code == 0:
            self.server_limits = ServerLimits.from_properties(connack.properties)

    def decode_raw(self, raw: bytes) -> Packet:
        """Decode a frame returned by `expect_raw` (InvalidServerPacket if it is not valid MQTT)."""
        first, body = raw[0], raw[1 + _vbi_len(raw):]
        try:
            return decode_packet(first, body, self.version)
        except Exception as exc:  # noqa: BLE001 - whatever the codec raises, the bytes came from the broker
            raise InvalidServerPacket(f"{self.name}: the broker sent a {_type_name(first)} that is not valid MQTT "
                                      f"{VERSION_NAMES.get(self.version, self.version)}: {exc}; bytes: "
                                      f"{raw.hex(' ')}", raw, exc) from None

    def receive(self, timeout: float | None = None) -> Packet | None:
        """The next packet, or None if none arrives within `timeout`. Raises ConnectionClosed."""
        if self._held:
            return self._held.popleft()[1]
        deadline = time.monotonic() + (self.default_timeout if timeout is None else timeout)
        raw = self._next_frame(deadline)
        return None if raw is None else self._decode(raw)

    def expect_raw(self, timeout: float | None = None) -> bytes:
        """The next frame's bytes, undecoded (recorded in the trace as raw). Fails on timeout or close."""
        if self._held:
            return self._held.popleft()[0]
        deadline = time.monotonic() + (self.default_timeout if timeout is None else timeout)
        try:
            raw = self._next_frame(deadline)
        except ConnectionClosed as exc:
            raise ConnectionClosed(f"{exc} while we waited for a packet") from None
        if raw is None:
            raise NoPacketReceived(f"{self.name}: nothing arrived within {self._timeout_text(timeout)}")
        try:
            packet = decode_packet(raw[0], raw[1 + _vbi_len(raw):], self.version)
            summary = summarize(packet)
            if isinstance(packet, Connack) and self.connack is None:
                self._accept_connack(packet)
        except Exception as exc:  # noqa: BLE001 - the test judges the raw bytes itself
            summary = f"raw frame (not decodable as MQTT {VERSION_NAMES.get(self.version, self.version)}: {exc})"
        self._record("in", _type_name(raw[0]), summary, raw)
        return raw

    def answer_or_close(self, timeout: float | None = None) -> Packet | None:
        """For a test that expects the broker to answer or to close: the next packet, or None when the broker
        closed the connection; silence for `timeout` fails with "the broker neither answered nor closed the
        connection within N s"."""
        try:
            packet = self.receive(timeout)
        except ConnectionClosed:
            return None
        if packet is None:
            raise NoPacketReceived(f"{self.name}: the broker neither answered nor closed the connection within "
                                   f"{self._timeout_text(timeout)}")
        return packet

    def raw_answer_or_close(self, timeout: float | None = None) -> bytes | None:
        """Like `answer_or_close`, but the answer's bytes undecoded (as `expect_raw`)."""
        try:
            return self.expect_raw(timeout)
        except ConnectionClosed:
            return None
        except NoPacketReceived:
            raise NoPacketReceived(f"{self.name}: the broker neither answered nor closed the connection within "
                                   f"{self._timeout_text(timeout)}") from None

    def _timeout_text(self, timeout: float | None) -> str:
        return f"{self.default_timeout if timeout is None else timeout:g} s"

    def expect(self, packet_class: type[P], timeout: float | None = None, *,
               set_aside: Iterable[type[Packet]] = ()) -> P:
        """Return the next packet, which must be a `packet_class`.

        Packets of the classes in `set_aside` that arrive first are kept for later `receive`/`expect`
        calls (e.g. PUBLISHes a broker may send before the SUBACK).
        """
        set_aside = tuple(set_aside)
        # Held packets come first, in order; set-aside classes stay held.
        for index, (raw, packet) in enumerate(self._held):
            if isinstance(packet, packet_class):
                del self._held[index]
                return packet  # type: ignore[return-value]
            if not isinstance(packet, set_aside):
                del self._held[index]
                return self._check_type(packet, packet_class, timeout)
        deadline = time.monotonic() + (self.default_timeout if timeout is None else timeout)
        while True:
            try:
                raw = self._next_frame(deadline)
            except ConnectionClosed as exc:
                raise ConnectionClosed(f"{exc} while we waited for {packet_class.packet_type.name}") from None
            if raw is None:
                raise NoPacketReceived(f"{self.name}: expected {packet_class.packet_type.name}, but nothing arrived "
                                       f"within {self._timeout_text(timeout)}")
            packet = self._decode(raw)
            if set_aside and isinstance(packet, set_aside) and not isinstance(packet, packet_class):
                self._held.append((raw, packet))
                continue
            return self._check_type(packet, packet_class, timeout)

    def _check_type(self, packet: Packet, packet_class: type[P], timeout: float | None) -> P:
        if not isinstance(packet, packet_class):
            raise UnexpectedPacket(f"{self.name}: expected {packet_class.packet_type.name}, "
                                   f"got {summarize(packet)}", packet)
        return packet

    def expect_disconnect(self, timeout: float | None = None, *,
                          reasons: Iterable[int] | None = None) -> Disconnect | None:
        """Pass when the broker closes the connection within `timeout`.

        A DISCONNECT may come first (MQTT 5.0); it is returned so the test can check its reason code,
        and if `reasons` is given its reason code must be one of them. Any other packet, or the
        connection staying open, fails. ECONNRESET counts as closed.
        """
        deadline = time.monotonic() + (self.default_timeout if timeout is None else timeout)
        disconnect: Disconnect | None = None
        if self._held:
            raw, packet = self._held.popleft()
            raise UnexpectedPacket(f"{self.name}: expected the connection to close, got {summarize(packet)}", packet)
        while True:
            try:
                raw = self._next_frame(deadline)
            except ConnectionClosed:
                break
            if raw is None:
                if disconnect is not None:
                    raise ConformanceFailure(f"{self.name}: the broker sent DISCONNECT but did not close the "
                                             f"connection within {self._timeout_text(timeout)}")
                raise ConformanceFailure(f"{self.name}: the broker neither answered nor closed the connection "
                                         f"within {self._timeout_text(timeout)}")
            packet = self._decode(raw)
            if isinstance(packet, Disconnect) and disconnect is None:
                disconnect = packet
                continue
            raise UnexpectedPacket(f"{self.name}: expected the connection to close, got {summarize(packet)}", packet)
        if disconnect is not None:
            if self.version != MQTT_5:
                raise UnexpectedPacket(f"{self.name}: the broker sent DISCONNECT on an MQTT 3.1.1 connection "
                                       "(servers never send DISCONNECT in 3.1.1)", disconnect)
            if reasons is not None:
                allowed = set(reasons)
                if disconnect.reason_code not in allowed:
                    raise ConformanceFailure(
                        f"{self.name}: the broker closed with DISCONNECT reason 0x{disconnect.reason_code:02X}; "
                        f"expected one of {', '.join(f'0x{c:02X}' for c in sorted(allowed))}")
        return disconnect

    def expect_nothing(self, for_seconds: float) -> None:
        """Fail if any packet arrives (or the broker closes) within `for_seconds`."""
        if self._held:
            raise UnexpectedPacket(f"{self.name}: expected nothing, got {summarize(self._held[0][1])}",
                                   self._held[0][1])
        deadline = time.monotonic() + for_seconds
        try:
            raw = self._next_frame(deadline)
        except ConnectionClosed:
            raise ConnectionClosed(f"{self.name}: expected nothing for {for_seconds:g} s, "
                                   "but the broker closed the connection") from None
        if raw is not None:
            packet = self._decode(raw)
            raise UnexpectedPacket(f"{self.name}: expected nothing for {for_seconds:g} s, got {summarize(packet)}",
                                   packet)

    def collect(self, for_seconds: float, *, until_count: int | None = None) -> list[Packet]:
        """All packets that arrive within `for_seconds` (returns early once `until_count` have come)."""
        packets: list[Packet] = []
        while self._held and (until_count is None or len(packets) < until_count):
            packets.append(self._held.popleft()[1])
        deadline = time.monotonic() + for_seconds
        while until_count is None or len(packets) < until_count:
            try:
                raw = self._next_frame(deadline)
            except ConnectionClosed:
                break
            if raw is None:
                break
            packets.append(self._decode(raw))
        return packets

    def is_open(self, within: float = 0.0) -> bool:
        """True unless the broker has closed the connection (looks for `within` seconds, keeping packets)."""
        if self.peer_closed:
            return False
        deadline = time.monotonic() + within
        while not self.peer_closed:
            if not self._read_some(deadline):
                break
        return not self.peer_closed

    # ------------------------------------------------------------------------------------ helpers

    def connect(self, client_id: str | None = None, *, clean_start: bool = True, keep_alive: int = 30,
                will: Will | None = None, properties: Properties | None = None, username: str | None = None,
                password: bytes | None = None, timeout: float | None = None, expect_success: bool = True) -> Connack:
        """Send CONNECT and return the CONNACK (which must be a success unless `expect_success` is False)."""
        connect = Connect(client_id=self.client_id if client_id is None else client_id, protocol_level=self.version,
                          clean_start=clean_start, keep_alive=keep_alive, will=will,
                          properties=properties or Properties(), username=username, password=password)
        self.send(connect)
        connack = self.expect(Connack, timeout)
        if expect_success and connack.reason_code != 0:
            raise ConformanceFailure(f"{self.name}: CONNECT was refused with "
                                     f"{'reason' if self.version == MQTT_5 else 'return'} code "
                                     f"0x{connack.reason_code:02X}: {summarize(connack)}")
        if self.version == MQTT_5 and connack.properties.assigned_client_identifier:
            self.client_id = connack.properties.assigned_client_identifier
        return connack

    def subscribe(self, *subscriptions: Subscription | tuple[str, int] | str, qos: int = 0,
                  properties: Properties | None = None, timeout: float | None = None,
                  lower_grant_ok: bool = False) -> Suback:
        """SUBSCRIBE and return the SUBACK (checked to echo our packet id and give one code per filter).

        "The Server might grant a lower maximum QoS than the Subscriber requested" (3.8.4 of both versions):
        a test whose flow needs the QoS it asked for is not applicable when the broker grants less, unless
        it says `lower_grant_ok` (it works from the granted QoS itself)."""
        subs = [s if isinstance(s, Subscription) else Subscription(s, qos) if isinstance(s, str)
                else Subscription(s[0], s[1]) for s in subscriptions]
        packet_id = self.next_packet_id()
        self.send(Subscribe(packet_id, subs, properties or Properties()))
        suback = self.expect(Suback, timeout, set_aside=(Publish,))
        if suback.packet_id != packet_id:
            raise ConformanceFailure(f"{self.name}: SUBACK has packet id {suback.packet_id}, "
                                     f"the SUBSCRIBE had {packet_id} [MQTT-3.8.4-2]")
        if len(suback.reason_codes) != len(subs):
            raise ConformanceFailure(f"{self.name}: SUBACK has {len(suback.reason_codes)} codes for "
                                     f"{len(subs)} topic filters "
                                     f"[{'MQTT-3.8.4-6' if self.version == MQTT_5 else 'MQTT-3.8.4-5'}]")
        lower = [f"QoS {code} for {sub.topic_filter!r} at QoS {sub.qos}"
                 for sub, code in zip(subs, suback.reason_codes) if code < sub.qos]
        if lower and not lower_grant_ok:
            not_applicable(f"the broker granted {', '.join(lower)}, less than this test needs; a server may grant a "
                           "lower QoS than requested (3.8.4)")
        return suback

    def unsubscribe(self, *topic_filters: str, properties: Properties | None = None,
                    timeout: float | None = None) -> Unsuback:
        packet_id = self.next_packet_id()
        self.send(Unsubscribe(packet_id, list(topic_filters), properties or Properties()))
        unsuback = self.expect(Unsuback, timeout, set_aside=(Publish,))
        if unsuback.packet_id != packet_id:
            raise ConformanceFailure(f"{self.name}: UNSUBACK has packet id {unsuback.packet_id}, "
                                     f"the UNSUBSCRIBE had {packet_id} "
                                     f"[{'MQTT-3.10.4-5' if self.version == MQTT_5 else 'MQTT-3.10.4-4'}]")
        return unsuback

    def publish(self, topic: str, payload: bytes = b"", qos: int = 0, *, retain: bool = False, dup: bool = False,
                properties: Properties | None = None, packet_id: int | None = None,
                timeout: float | None = None) -> Packet | None:
        """PUBLISH and complete the QoS flow. Returns the PUBACK (QoS 1), the PUBCOMP (QoS 2) or None.

        Checks that the acknowledgements echo the packet id. A failure reason code (>= 0x80) is
        returned as it is, for the test to judge. PUBLISHes that arrive meanwhile are kept for later.
        """
        if qos and packet_id is None:
            packet_id = self.next_packet_id()
        self.send(Publish(topic, payload, qos, retain, dup, packet_id if qos else None, properties or Properties()))
        if qos == 0:
            return None
        if qos == 1:
            puback = self._expect_publish_ack(Puback, timeout, qos, retain)
            self._check_id(puback, packet_id)
            return puback
        pubrec = self._expect_publish_ack(Pubrec, timeout, qos, retain)
        self._check_id(pubrec, packet_id)
        if self.version == MQTT_5 and pubrec.reason_code >= 0x80:
            return pubrec
        self.send(Pubrel(packet_id))
        pubcomp = self.expect(Pubcomp, timeout, set_aside=(Publish,))
        self._check_id(pubcomp, packet_id)
        return pubcomp

    def _expect_publish_ack(self, ack_class: type[P], timeout: float | None, qos: int, retain: bool) -> P:
        """The PUBACK/PUBREC of our PUBLISH. An MQTT 3.1.1 server that does not authorise a PUBLISH "MUST
        either make a positive acknowledgement ... or close the Network Connection" [MQTT-3.3.5-2]: it cannot
        say why (a QoS it does not offer, retained messages it does not keep, an ACL). So on 3.1.1 a close
        instead of the acknowledgement makes the test not applicable (its flow needs the message accepted);
        a v5 server has reason codes for that and gets no such allowance."""
        try:
            return self.expect(ack_class, timeout, set_aside=(Publish,))
        except ConnectionClosed:
            if self.version == MQTT_5:
                raise
            not_applicable(f"the broker closed the connection instead of acknowledging a QoS {qos}"
                           f"{' retained' if retain else ''} PUBLISH, which a 3.1.1 server may do with a PUBLISH it "
                           "does not authorise [MQTT-3.3.5-2]; if it lacks QoS 2 or retained messages, a target "
                           "profile can say so ([features] qos2 / retain = false)")

    def _check_id(self, ack: Packet, packet_id: int | None) -> None:
        if getattr(ack, "packet_id", None) != packet_id:
            # an acknowledgement echoes the packet id of the PUBLISH it answers
            raise ConformanceFailure(f"{self.name}: {ack.packet_type.name} has packet id "
                                     f"{getattr(ack, 'packet_id', None)}, the PUBLISH had {packet_id} "
                                     f"[{'MQTT-2.2.1-5' if self.version == MQTT_5 else 'MQTT-2.3.1-6'}]")

    def expect_publish(self, timeout: float | None = None, *, ack: bool = True) -> Publish:
        """The next packet must be a PUBLISH; with `ack`, complete its QoS 1/2 flow as a receiver."""
        publish = self.expect(Publish, timeout)
        if ack:
            self.acknowledge(publish, timeout)
        return publish

    def acknowledge(self, publish: Publish, timeout: float | None = None) -> None:
        if publish.qos == 1:
            self.send(Puback(publish.packet_id))
        elif publish.qos == 2:
            self.send(Pubrec(publish.packet_id))
            pubrel = self.expect(Pubrel, timeout, set_aside=(Publish,))
            self._check_id(pubrel, publish.packet_id)
            self.send(Pubcomp(publish.packet_id))

    def collect_publishes(self, for_seconds: float, *, until_count: int | None = None,
                          ack: bool = True) -> list[Publish]:
        """PUBLISHes arriving within `for_seconds` (acknowledged if `ack`); any other packet fails."""
        publishes: list[Publish] = []
        deadline = time.monotonic() + for_seconds
        while until_count is None or len(publishes) < until_count:
            remaining = deadline - time.monotonic()
            if remaining <= 0 and not self._held:
                break
            try:
                packet = self.receive(max(remaining, 0.0))
            except ConnectionClosed:
                raise ConnectionClosed(f"{self.name}: the broker closed the connection while we collected "
                                       f"PUBLISHes ({len(publishes)} so far)") from None
            if packet is None:
                break
            if not isinstance(packet, Publish):
                raise UnexpectedPacket(f"{self.name}: expected only PUBLISHes, got {summarize(packet)}", packet)
            if ack:
                self.acknowledge(packet)
            publishes.append(packet)
        return publishes

    def ping(self, timeout: float | None = None) -> Pingresp:
        self.send(Pingreq())
        return self.expect(Pingresp, timeout, set_aside=(Publish,))

    def disconnect(self, reason_code: int = 0, properties: Properties | None = None) -> None:
        """Send DISCONNECT and close the socket (the normal end of a connection)."""
        if not self.closed:
            self.send(Disconnect(reason_code, properties or Properties()))
            self.close()

    def close(self) -> None:
        """Close the socket without DISCONNECT (an abnormal end, as far as the broker knows)."""
        if not self.closed:
            self.closed = True
            try:
                if self.ws is not None:
                    self.ws.close()  # the network connection just ends, as over TCP (no closing handshake)
                else:
                    self.sock.close()
            except Exception:
                if self.ws is None:
                    raise
            finally:
                self._event("close", "the test closed the socket")

    def __enter__(self) -> RawClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<RawClient {self.name} {self.host}:{self.port} v{self.version} id={self.client_id!r}>"


def _vbi_len(raw: bytes) -> int:
    """Number of Remaining Length bytes in a well-framed packet."""
    count = 1
    while raw[count] & 0x80:
        count += 1
    return count


def _type_name(first_byte: int) -> str:
    try:
        return PacketType(first_byte >> 4).name
    except ValueError:
        return f"TYPE{first_byte >> 4}"
