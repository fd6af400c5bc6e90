"""One recorded TCP conversation between an MQTT client and a broker, and its MQTT packets.

This module owns the data model the rest of `pcap/` shares, with no I/O:

* `Chunk`: bytes that one side sent, with the time they were seen (seconds since the epoch) and
  their direction (`CLIENT` = client to broker, `BROKER` = broker to client);
* `Session`: the ordered chunks of one TCP connection plus the two endpoints;
* `decode_session(session)`: the MQTT packets of both directions, each with its time, direction,
  raw bytes, the decoded packet from the project's codec (refbroker.protocol) or the reason it
  could not be decoded.

How a stream was cut into chunks does not matter to the decoding: packets split across chunks or
several packets in one chunk come out the same (the codec's fixed-header framing does the work).
The broker-to-client direction is decoded with the protocol version the client's CONNECT chose;
for a capture that starts after the CONNECT the version is guessed (see `decode_session`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

from refbroker.protocol import MQTT_3_1_1, MQTT_5, SUPPORTED_VERSIONS, Connect, MQTTError, Packet, decode_packet
from refbroker.protocol.primitives import decode_variable_byte_integer

__all__ = ["BROKER", "CLIENT", "Chunk", "DecodedPacket", "Direction", "Framer", "Session", "decode_session"]


class Direction(Enum):
    CLIENT = "client"  # client -> broker
    BROKER = "broker"  # broker -> client

    @property
    def arrow(self) -> str:
        return "C->B" if self is Direction.CLIENT else "B->C"


CLIENT = Direction.CLIENT
BROKER = Direction.BROKER


@dataclass(frozen=True, slots=True)
class Chunk:
    time: float
    direction: Direction
    data: bytes


@dataclass
class Session:
    """A TCP conversation. Endpoints are (host, port) pairs: the client's, and the broker's."""

    number: int
    client: tuple[str, int]
    broker: tuple[str, int]
    chunks: list[Chunk] = field(default_factory=list)
    opened: float | None = None  # time of the TCP connect, if known
    closed: float | None = None  # time the conversation ended, if it did
    closed_by: Direction | None = None  # the side that closed first, if known
    # when each side closed its sending direction (FIN, EOF or reset), for the sides that did
    side_closed: dict[Direction, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)  # e.g. "gap in the capture: 120 bytes missing"

    def stream(self, direction: Direction) -> bytes:
        """Every byte one side sent, in order."""
        return b"".join(chunk.data for chunk in self.chunks if chunk.direction is direction)

    @property
    def client_bytes(self) -> bytes:
        return self.stream(CLIENT)

    @property
    def broker_bytes(self) -> bytes:
        return self.stream(BROKER)

    @property
    def start_time(self) -> float:
        if self.opened is not None:
            return self.opened
        return self.chunks[0].time if self.chunks else 0.0

    def packets(self) -> list["DecodedPacket"]:
        return decode_session(self)


@dataclass(frozen=True, slots=True)
class DecodedPacket:
    time: float  # when the chunk that completed the packet was seen
    direction: Direction
    raw: bytes  # the whole packet, fixed header included (or the undecodable rest of the stream)
    packet: Packet | None  # None when it could not be decoded
    error: str | None = None  # why not, with the statement id when the codec names one
    version: int | None = None  # the protocol level it was decoded with
    index: int = 0  # position among the packets of its direction (0 = first)

    @property
    def name(self) -> str:
        if self.packet is not None:
            return self.packet.name
        if self.raw:
            from refbroker.protocol import PacketType
            try:
                return PacketType(self.raw[0] >> 4).name
            except ValueError:
                return f"reserved type {self.raw[0] >> 4}"
        return "?"


class Framer:
    """Cuts one direction's byte stream into whole packets (fixed header + Remaining Length)."""

    def __init__(self) -> None:
        self.buffer = bytearray()
        self.broken: str | None = None  # once the framing itself is lost, the rest is one blob

    def frames(self, data: bytes) -> list[bytes]:
        if self.broken:
            return []
        self.buffer += data
        out = []
        while len(self.buffer) >= 2:
            try:
                decoded = decode_variable_byte_integer(self.buffer, 1)
            except MQTTError as error:
                self.broken = str(error)
                break
            if decoded is None:
                break
            length, used = decoded
            total = 1 + used + length
            if len(self.buffer) < total:
                break
            out.append(bytes(self.buffer[:total]))
            del self.buffer[:total]
        return out


def _decode(raw: bytes, version: int | None) -> tuple[Packet | None, str | None]:
    _, used = decode_variable_byte_integer(raw, 1)
    try:
        return decode_packet(raw[0], raw[1 + used:], version), None
    except MQTTError as error:
        return None, f"{type(error).__name__}: {error}"
    except (ValueError, IndexError) as error:  # a codec bug must not stop a whole capture
        return None, f"undecodable: {error}"


def _connect_level(raw: bytes) -> int | None:
    """The protocol level a CONNECT asks for, read from its bytes even when the CONNECT is otherwise bad
    (the broker answers in that version [MQTT-3.1.2-2]); None if it is not a CONNECT."""
    if raw[0] != 0x10:
        return None
    packet, _ = _decode(raw, None)
    if isinstance(packet, Connect):
        return packet.protocol_level
    _, used = decode_variable_byte_integer(raw, 1)
    body = raw[1 + used:]
    if len(body) >= 2:
        name_length = int.from_bytes(body[:2], "big")
        if len(body) > 2 + name_length:
            return body[2 + name_length]
    return None


def _guess_version(frames: list[bytes]) -> int:
    """When the CONNECT does not say: 5.0 if every other frame decodes as 5.0, else 3.1.1."""
    for raw in frames:
        if raw[0] >> 4 != 1 and _decode(raw, MQTT_5)[0] is None:
            return MQTT_3_1_1
    return MQTT_5


def decode_session(session: Session) -> list[DecodedPacket]:
    """The MQTT packets of both directions in time order.

    The version comes from the client's CONNECT [MQTT-3.1.2-2]; if the capture has none (it started
    late), it is guessed from the frames themselves and a note is added to `session.notes`.
    A packet that does not decode is still listed (packet None, with the error); when the framing
    itself is lost (a bad Remaining Length), the rest of that direction is one undecodable blob.
    """
    framers = {CLIENT: Framer(), BROKER: Framer()}
    pending: list[tuple[float, Direction, bytes]] = []
    for chunk in session.chunks:
        for raw in framers[chunk.direction].frames(chunk.data):
            pending.append((chunk.time, chunk.direction, raw))

    version: int | None = None
    asked = next((_connect_level(raw) for _, direction, raw in pending if direction is CLIENT), None)
    if asked in SUPPORTED_VERSIONS:
        version = asked
    elif pending:
        version = _guess_version([raw for _, _, raw in pending])
        why = "no CONNECT at the start of the capture" if asked is None else \
            f"the CONNECT asks for protocol level {asked}, which MQTT does not define"
        note = f"{why}: the other packets decoded as MQTT {'5.0' if version == MQTT_5 else '3.1.1'}"
        if note not in session.notes:
            session.notes.append(note)

    out: list[DecodedPacket] = []
    counters = {CLIENT: 0, BROKER: 0}
    for time, direction, raw in pending:
        packet, error = _decode(raw, None if raw[0] >> 4 == 1 else version)
        out.append(DecodedPacket(time, direction, raw, packet, error, version, counters[direction]))
        counters[direction] += 1
    last_time = session.chunks[-1].time if session.chunks else 0.0
    for direction, framer in framers.items():
        rest = bytes(framer.buffer)
        if framer.broken:
            out.append(DecodedPacket(last_time, direction, rest, None, f"framing lost: {framer.broken}", version,
                                     counters[direction]))
        elif rest:
            out.append(DecodedPacket(last_time, direction, rest, None,
                                     f"incomplete packet at the end of the stream ({len(rest)} bytes)", version,
                                     counters[direction]))
    return out
