"""An incremental decoder: bytes in, whole packets out, however the bytes were split.

TCP delivers a stream, not packets: one `recv` may hold half a packet or several. `StreamDecoder`
keeps what it has not used yet and hands out every packet that is complete. It reads the fixed header
first and refuses a packet larger than the agreed Maximum Packet Size *before* buffering its body,
so a peer cannot make the receiver hold hundreds of megabytes by announcing a huge Remaining Length.

On the server side it starts without a version; the first packet must be CONNECT, and its protocol
level fixes the version for the rest of the connection. After an error the stream is not usable:
the connection has to be closed [MQTT-4.13.1-1].
"""

from __future__ import annotations

from .errors import MQTTError, PacketTooLarge
from .packets import Connect, Packet, decode_packet
from .primitives import decode_variable_byte_integer


class StreamDecoder:
    def __init__(self, version: int | None = None, max_packet_size: int | None = None):
        self.version = version
        self.max_packet_size = max_packet_size  # in bytes, fixed header included (5.0 3.1.2.11.4)
        self._buffer = bytearray()

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
        self._buffer += data
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
            self._buffer += data
        return self._next_frame()

    def _next_frame(self) -> tuple[int, bytes] | None:
        buffer = self._buffer
        if len(buffer) < 2:
            return None
        if buffer[1] < 0x80:  # fast path: a Remaining Length below 128 is one byte, its own value
            remaining_length, length_bytes = buffer[1], 1
        else:
            decoded = decode_variable_byte_integer(buffer, 1)
            if decoded is None:
                return None
            remaining_length, length_bytes = decoded
        header_size = 1 + length_bytes
        total = header_size + remaining_length
        if self.max_packet_size is not None and total > self.max_packet_size:
            raise PacketTooLarge(f"packet of {total} bytes exceeds the maximum packet size {self.max_packet_size}",
                                 rule="MQTT-3.1.2-24")
        if len(buffer) < total:
            return None
        first_byte = buffer[0]
        body = bytes(buffer[header_size:total])
        del buffer[:total]
        return first_byte, body
