"""The load generator's side of the wire: pre-encoded packets, a blocking handshake, and a frame walker.

The generator must be much faster than the brokers it measures, so nothing is encoded per message:
each kind of packet is encoded once with refbroker.protocol (the project's one codec) and, per
message, only the bytes that change are patched into a copy of that template - the packet
identifier, and the payload's first 12 bytes: the send time (time.monotonic_ns(), one clock for
every process on the machine) and a sequence number. Reading walks fixed headers and looks only at
what it needs.
"""

from __future__ import annotations

import socket
import struct
import time
from dataclasses import dataclass

from refbroker.protocol import (
    MQTT_5,
    Connack,
    Connect,
    MQTTError,
    Publish,
    StreamDecoder,
    Suback,
    Subscribe,
    Subscription,
)
from refbroker.protocol.primitives import decode_variable_byte_integer

PAYLOAD_SIZE = 64
# At the start of every payload: send time in ns (time.monotonic_ns) and sequence number.
STAMP = struct.Struct("!QI")
PACKET_ID = struct.Struct("!H")
KEEP_ALIVE = 300  # seconds; longer than any scenario may last (the time cap is at most 120 s)

# Fixed header first bytes (3.1.1 and 5.0 alike)
PUBLISH, PUBACK, PUBREC, PUBREL, PUBCOMP, DISCONNECT = 3, 4, 5, 6, 7, 14
PUBACK_HEADER = bytes((0x40, 0x02))   # + packet id: a 3.1.1 PUBACK, also a valid 5.0 one (reason 0 left out)
PUBREC_HEADER = bytes((0x50, 0x02))
PUBREL_HEADER = bytes((0x62, 0x02))
PUBCOMP_HEADER = bytes((0x70, 0x02))
DISCONNECT_PACKET = bytes((0xE0, 0x00))


class HandshakeError(Exception):
    """The target refused or garbled CONNECT or SUBSCRIBE."""


@dataclass(frozen=True)
class PublishTemplate:
    """One encoded PUBLISH and where its variable parts are."""

    data: bytes
    packet_id_offset: int | None  # None for QoS 0
    payload_offset: int

    @property
    def size(self) -> int:
        return len(self.data)


def publish_template(topic: str, qos: int, version: int, payload_size: int = PAYLOAD_SIZE) -> PublishTemplate:
    if payload_size < STAMP.size:
        raise ValueError(f"payloads need at least {STAMP.size} bytes for the timestamp and sequence number")
    data = Publish(topic, bytes(payload_size), qos, packet_id=1 if qos else None).encode(version)
    _, length_bytes = decode_variable_byte_integer(data, 1)
    variable_header = 1 + length_bytes
    packet_id_offset = variable_header + 2 + len(topic.encode()) if qos else None
    return PublishTemplate(data, packet_id_offset, len(data) - payload_size)


def open_connection(host: str, port: int, client_id: str, version: int, timeout: float = 10.0) -> socket.socket:
    """TCP connect, CONNECT, wait for a successful CONNACK. Returns a blocking socket."""
    sock = socket.create_connection((host, port), timeout=timeout)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        sock.sendall(Connect(client_id=client_id, protocol_level=version, keep_alive=KEEP_ALIVE).encode())
        connack = _read_one(sock, version, timeout)
        if not isinstance(connack, Connack) or connack.reason_code != 0:
            raise HandshakeError(f"{client_id}: CONNECT answered with {connack!r}")
    except BaseException:
        sock.close()
        raise
    return sock


def subscribe(sock: socket.socket, topic: str, qos: int, version: int, timeout: float = 10.0) -> None:
    sock.sendall(Subscribe(1, [Subscription(topic, qos)]).encode(version))
    suback = _read_one(sock, version, timeout)
    if not isinstance(suback, Suback) or suback.reason_codes != [qos]:
        raise HandshakeError(f"SUBSCRIBE to {topic!r} at QoS {qos} answered with {suback!r}")


def _read_one(sock: socket.socket, version: int, timeout: float):
    """The next packet from the target (during the handshake only: nothing else is in flight)."""
    decoder = StreamDecoder(version)
    deadline = time.monotonic() + timeout
    while True:
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            data = sock.recv(65536)
        except TimeoutError:
            raise HandshakeError(f"no answer from the target within {timeout:.0f} s") from None
        if not data:
            raise HandshakeError("the target closed the connection during the handshake")
        try:
            packets = decoder.feed(data)
        except MQTTError as error:
            raise HandshakeError(f"the target sent a bad packet: {error}") from None
        if packets:
            return packets[0]


def frame_size(buffer: bytes, position: int, end: int) -> tuple[int, int] | None:
    """(header size, body size) of the packet at `position`, or None if it is not complete yet.

    The common case (Remaining Length below 128, one byte) is handled inline by `frames`; this is
    the general one."""
    decoded = decode_variable_byte_integer(buffer[position + 1:min(end, position + 5)])
    if decoded is None:
        return None
    body_size, length_bytes = decoded
    header_size = 1 + length_bytes
    if position + header_size + body_size > end:
        return None
    return header_size, body_size


def frames(data: bytes):
    """Each complete packet in `data`, in order, as (first byte, where its body starts, body size, where
    the next packet starts). The bytes from the last of those on are an incomplete packet to keep."""
    position, end = 0, len(data)
    while end - position >= 2:
        body_size = data[position + 1]
        if body_size < 0x80:  # the usual one-byte Remaining Length
            header_size = 2
            if position + 2 + body_size > end:
                return
        else:
            frame = frame_size(data, position, end)
            if frame is None:
                return
            header_size, body_size = frame
        body = position + header_size
        following = body + body_size
        yield data[position], body, body_size, following
        position = following


def skip_properties(buffer: bytes, position: int) -> int:
    """Position after a 5.0 Property Length and the properties it counts."""
    length, length_bytes = decode_variable_byte_integer(buffer, position)
    return position + length_bytes + length


def is_v5(version: int) -> bool:
    return version == MQTT_5
