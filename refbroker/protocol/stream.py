"""An incremental decoder: bytes in, whole packets out, however the bytes were split.

TCP delivers a stream, not packets: one `recv` may hold half a packet or several. `StreamDecoder`
keeps what it has not used yet and hands out every packet that is complete. It reads the fixed header
first and refuses a packet larger than `max_packet_size` as soon as the Remaining Length is known,
*before* buffering its body, so a peer cannot make the receiver hold hundreds of megabytes by
announcing a huge Remaining Length (a server sets a small limit until the client is authenticated).
A Remaining Length of more than four bytes is malformed (3.1.1 2.2.3, 5.0 1.5.5), and is refused
as soon as its fifth byte arrives.

On the server side it starts without a version; the first packet must be CONNECT, and its protocol
level fixes the version for the rest of the connection. After an error the stream is not usable:
the connection has to be closed [MQTT-4.13.1-1].

Memory: a server holds one decoder per connection, and most connections are idle with nothing
buffered, so the buffer is a bytearray only while it holds something (an empty `b""` otherwise).
"""

from __future__ import annotations

from .errors import MQTTError, PacketTooLarge, rule_for_version
from .packets import Connect, Packet, decode_packet
from .primitives import decode_variable_byte_integer


class StreamDecoder:
    __slots__ = ("version", "max_packet_size", "_buffer")

    def __init__(self, version: int | None = None, max_packet_size: int | None = None):
        self.version = version
        self.max_packet_size = max_packet_size  # in bytes, fixed header included (5.0 3.1.2.11.4)
        self._buffer: bytearray | bytes = b""

    @property
    def buffered(self) -> int:
        """Bytes received but not yet part of a complete packet."""
        return len(self._buffer)

    def feed(self, data: bytes) -> list[Packet]:
        """Add `data` and return the packets it completes (possibly none).

        If a packet is bad, the error is raised; the good packets that came before it in the same
        `data` are not lost: they are in the error's `preceding_packets`, so the result does not
        depend on how the stream was cut into chunks.
        """
        self.append(data)
        packets: list[Packet] = []
        try:
            while True:
                frame = self._next_frame()
                if frame is None:
                    break
                first_byte, body = frame
                packet = decode_packet(first_byte, body, self.version)
                if isinstance(packet, Connect) and self.version is None:
                    self.version = packet.protocol_level
                packets.append(packet)
        except MQTTError as error:
            error.preceding_packets = packets
            raise
        return packets

    def next_raw_frame(self, data: bytes = b"") -> tuple[int, bytes] | None:
        """Like `feed` but returns the undecoded (first byte, body) of the next packet, for tools
        that want to look at bytes the decoder would refuse."""
        if data:
            self.append(data)
        return self._next_frame()

    def append(self, data: bytes) -> None:
        """Keep `data` for `next_raw_frame` (which raises PacketTooLarge for what is too large)."""
        if self._buffer:
            self._buffer += data
        else:
            self._buffer = bytearray(data)

    def peek_body(self, size: int) -> bytes:
        """The first `size` bytes of the next packet's body that are buffered (after its fixed
        header), left in the buffer: enough to tell the protocol level of a CONNECT refused unread."""
        buffer = self._buffer
        header = 2
        while header <= 5 and header <= len(buffer) and buffer[header - 1] & 0x80:
            header += 1
        return bytes(buffer[header:header + size])

    def _next_frame(self) -> tuple[int, bytes] | None:
        buffer = self._buffer
        if len(buffer) < 2:
            return None
        if buffer[1] < 0x80:  # fast path: a Remaining Length below 128 is one byte, its own value
            remaining_length, length_bytes = buffer[1], 1
        else:
            decoded = decode_variable_byte_integer(buffer, 1, version=self.version)
            if decoded is None:
                return None
            remaining_length, length_bytes = decoded
        header_size = 1 + length_bytes
        total = header_size + remaining_length
        if self.max_packet_size is not None and total > self.max_packet_size:
            # [MQTT-3.1.2-24] (5.0); 3.1.1 has no Maximum Packet Size (the limit is the receiver's own)
            raise PacketTooLarge(f"packet of {total} bytes exceeds the maximum packet size {self.max_packet_size}",
                                 rule=rule_for_version(self.version, v311=None, v5="MQTT-3.1.2-24"))
        if len(buffer) < total:
            return None
        first_byte = buffer[0]
        with memoryview(buffer) as view:  # one copy of the body, not two (a slice, then bytes)
            body = bytes(view[header_size:total])
        if len(buffer) == total:
            self._buffer = b""  # all used: the bytearray goes
        else:
            del buffer[:total]
        return first_byte, body
