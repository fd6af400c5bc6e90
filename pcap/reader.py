"""Read a capture file (pcap or pcapng, from this project, tcpdump, Wireshark, dumpcap; gzip too) into
MQTT sessions.

scapy parses the file and the link/IP/TCP layers (Ethernet, Linux "any" cooked capture, BSD loopback,
raw IP; IPv4 and IPv6). This module reassembles each TCP connection's two byte streams by sequence
number, so it does not matter how the sender cut its packets into segments: several MQTT packets in one
segment, one packet across many, segments captured out of order or twice (retransmissions) all give
the same streams. A hole in a stream (a segment the capture missed) is reported in the session's
notes, and decoding of that direction stops there.

Which side is the client: the side that sent the SYN; for a connection captured after its handshake,
the side whose first bytes are an MQTT CONNECT; failing that, the side that does not use the
well-known MQTT ports 1883/8883. A connection is kept as MQTT when its client stream starts with a
CONNECT, or when the broker's port is 1883, 8883 or one given in `ports` (as Wireshark does). Other
TCP connections are listed in `Capture.skipped` with the reason.

`read_capture(path, ports=())` -> `Capture`; `CaptureError` (with a message for a person) when the file
cannot be read, is not a capture, or is truncated.
"""

from __future__ import annotations

import gzip
import io
import logging
import os
import struct
from dataclasses import dataclass, field
from pathlib import Path

from .session import BROKER, CLIENT, Chunk, Session

__all__ = ["MQTT_PORTS", "Capture", "CaptureError", "read_capture", "sessions_from_packets"]

MQTT_PORTS = frozenset({1883, 8883})
_SEQ_MOD = 1 << 32


class CaptureError(Exception):
    """The file cannot be used as a capture; the message says why, for a person."""


@dataclass
class Capture:
    path: str
    sessions: list[Session]
    skipped: list[str] = field(default_factory=list)  # TCP connections that are not MQTT, and why
    frames: int = 0  # frames in the file
    link_types: set[str] = field(default_factory=set)


# ----------------------------------------------------------------------------------------- file level


def _open_raw(path: Path) -> bytes:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise CaptureError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise CaptureError(f"{path}: is a directory, not a capture file") from None
    except OSError as error:
        raise CaptureError(f"{path}: cannot read it: {error.strerror or error}") from None
    if data[:2] == b"\x1f\x8b":
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError) as error:
            raise CaptureError(f"{path}: a gzip file that does not decompress (truncated?): {error}") from None
    return data


def check_structure(data: bytes, name: str) -> None:
    """Raise CaptureError unless `data` is a whole pcap or pcapng file (every record/block complete).

    scapy stops silently at a record cut short, so a truncated file would look like a short capture.
    """
    if not data:
        raise CaptureError(f"{name}: the file is empty")
    magic = data[:4]
    if magic == b"\x0a\x0d\x0d\x0a":  # pcapng: blocks of (type, total length, body, total length)
        if len(data) < 12:
            raise CaptureError(f"{name}: truncated pcapng file (its first block is incomplete)")
        endian = "<" if data[8:12] == b"\x4d\x3c\x2b\x1a" else ">"
        offset = 0
        while offset < len(data):
            if offset + 8 > len(data):
                raise CaptureError(f"{name}: truncated pcapng file (a block header is cut at byte {offset})")
            (length,) = struct.unpack_from(endian + "I", data, offset + 4)
            if length < 12 or length % 4:
                raise CaptureError(f"{name}: damaged pcapng file (block at byte {offset} has length {length})")
            if offset + length > len(data):
                raise CaptureError(f"{name}: truncated pcapng file (the block at byte {offset} needs {length} "
                                   f"bytes, {len(data) - offset} are left)")
            offset += length
        return
    endians = {b"\xd4\xc3\xb2\xa1": "<", b"\x4d\x3c\xb2\xa1": "<", b"\xa1\xb2\xc3\xd4": ">", b"\xa1\xb2\x3c\x4d": ">"}
    if magic in endians:  # classic pcap: 24-byte header, then (16-byte header, captured bytes) records
        if len(data) < 24:
            raise CaptureError(f"{name}: truncated pcap file (its 24-byte header is incomplete)")
        offset = 24
        while offset < len(data):
            if offset + 16 > len(data):
                raise CaptureError(f"{name}: truncated pcap file (a record header is cut at byte {offset})")
            (captured,) = struct.unpack_from(endians[magic] + "I", data, offset + 8)
            if offset + 16 + captured > len(data):
                raise CaptureError(f"{name}: truncated pcap file (the record at byte {offset} needs {captured} "
                                   f"bytes, {len(data) - offset - 16} are left)")
            offset += 16 + captured
        return
    raise CaptureError(f"{name}: not a pcap or pcapng file (it starts with {data[:8].hex(' ')})")


def _load_layers() -> None:
    # Registers the link types scapy needs to dissect (Ethernet, cooked Linux, loopback, IPv4/IPv6, TCP).
    import scapy.layers.inet  # noqa: F401
    import scapy.layers.inet6  # noqa: F401
    import scapy.layers.l2  # noqa: F401


def read_capture(path: str | os.PathLike, ports: tuple[int, ...] | frozenset[int] = ()) -> Capture:
    """Read a capture file into its MQTT sessions (see the module docstring)."""
    path = Path(path)
    data = _open_raw(path)
    check_structure(data, str(path))
    _load_layers()
    from scapy.error import Scapy_Exception
    from scapy.utils import PcapReader

    scapy_log = logging.getLogger("scapy.runtime")
    level = scapy_log.level
    scapy_log.setLevel(logging.ERROR)  # link-type warnings are reported by us, per frame kind
    try:
        with PcapReader(io.BytesIO(data)) as reader:
            frames = list(reader)
    except (Scapy_Exception, EOFError, struct.error, ValueError) as error:
        raise CaptureError(f"{path}: cannot parse the capture: {error}") from None
    finally:
        scapy_log.setLevel(level)
    capture = sessions_from_packets(frames, ports)
    capture.path = str(path)
    return capture


# ----------------------------------------------------------------------------------------- TCP level


@dataclass
class _Segment:
    time: float
    seq: int
    data: bytes


@dataclass
class _Half:
    """One direction of a TCP connection."""

    endpoint: tuple[str, int]
    isn: int | None = None  # the SYN's sequence number; else the first segment's
    segments: list[_Segment] = field(default_factory=list)
    syn_seen: bool = False
    syn_without_ack: bool = False
    fin_time: float | None = None
    rst_time: float | None = None


@dataclass
class _Connection:
    a: _Half
    b: _Half
    first_time: float
    done: bool = False  # FIN both ways or RST: a new SYN on the same ports is a new connection


def _tcp_view(frame):
    """(time, (src, sport), (dst, dport), flags, seq, payload, truncated) or None for a non-TCP frame."""
    from scapy.layers.inet import IP, TCP
    from scapy.layers.inet6 import IPv6

    if TCP not in frame:
        return None
    tcp = frame[TCP]
    ip = frame[IP] if IP in frame else frame[IPv6] if IPv6 in frame else None
    if ip is None:
        return None
    payload = bytes(tcp.payload)
    # A capture with a small snapshot length keeps fewer bytes than the IP header announces.
    if IP in frame:
        expected = ip.len - ip.ihl * 4 - tcp.dataofs * 4 if ip.len else len(payload)
    else:
        expected = ip.plen - tcp.dataofs * 4 if ip.plen else len(payload)
    truncated = expected > len(payload)
    if expected < len(payload):  # Ethernet padding after a short IP packet
        payload = payload[:max(expected, 0)]
    return (float(frame.time), (str(ip.src), int(tcp.sport)), (str(ip.dst), int(tcp.dport)), int(tcp.flags),
            int(tcp.seq), payload, truncated)


def _reassemble(half: _Half, notes: list[str], label: str) -> list[tuple[float, bytes]]:
    """The direction's stream as (time, bytes) pieces in stream order; a hole stops it, with a note.

    Offsets are relative to the SYN (data starts at 1) or, without one, to the lowest sequence number
    seen. A piece's time is when its bytes were all there (a late segment that fills a hole gives
    its own, later time), so times never go back.
    """
    def relative(seq: int) -> int:  # signed distance from the ISN, modulo 2**32
        return ((seq - half.isn + (1 << 31)) % _SEQ_MOD) - (1 << 31)

    if not half.segments:
        return []
    ordered = sorted(half.segments, key=lambda s: (relative(s.seq), s.time))
    expected = 1 if half.syn_seen else relative(ordered[0].seq)
    first = expected
    pieces: list[tuple[float, bytes]] = []
    last_time = float("-inf")
    for segment in ordered:
        offset = relative(segment.seq)
        end = offset + len(segment.data)
        if end <= expected:
            continue  # a retransmission of bytes already placed
        if offset > expected:
            notes.append(f"{label}: {offset - expected} bytes missing from the capture after stream byte "
                         f"{expected - first}; the rest of this direction is not decoded")
            break
        last_time = max(last_time, segment.time)
        pieces.append((last_time, segment.data[expected - offset:]))
        expected = end
    return pieces


def _looks_like_connect(data: bytes) -> bool:
    """The stream starts with a CONNECT: type 1, flags 0, and protocol name MQTT or MQIsdp."""
    if len(data) < 2 or data[0] != 0x10:
        return False
    index = 1
    for _ in range(4):
        if index >= len(data):
            return False
        if not data[index] & 0x80:
            break
        index += 1
    body = data[index + 1:index + 9]
    return body.startswith(b"\x00\x04MQTT") or body.startswith(b"\x00\x06MQIsdp")


def sessions_from_packets(frames, ports=()) -> Capture:
    """Reassemble already parsed scapy frames into MQTT sessions."""
    forced_ports = frozenset(ports)
    connections: dict[frozenset, _Connection] = {}
    ordered: list[_Connection] = []
    link_types: set[str] = set()
    truncated_frames = 0
    for frame in frames:
        link_types.add(type(frame).__name__)
        view = _tcp_view(frame)
        if view is None:
            continue
        time, src, dst, flags, seq, payload, truncated = view
        truncated_frames += truncated
        key = frozenset((src, dst))
        connection = connections.get(key)
        syn, ack, fin, rst = flags & 0x02, flags & 0x10, flags & 0x01, flags & 0x04
        if connection is None or (connection.done and syn and not ack):
            connection = _Connection(_Half(src), _Half(dst), time)
            connections[key] = connection
            ordered.append(connection)
        half = connection.a if connection.a.endpoint == src else connection.b
        if syn:
            half.isn, half.syn_seen = seq, True
            half.syn_without_ack = half.syn_without_ack or not ack
        elif half.isn is None:
            half.isn = seq
        if payload:
            # data on a SYN segment (TCP Fast Open) starts one after the SYN's sequence number
            half.segments.append(_Segment(time, (seq + 1) % _SEQ_MOD if syn else seq, payload))
        if fin and half.fin_time is None:
            half.fin_time = time
        if rst and half.rst_time is None:
            half.rst_time = time
        other = connection.b if half is connection.a else connection.a
        if rst or (half.fin_time is not None and other.fin_time is not None):
            connection.done = True

    capture = Capture(path="", sessions=[], frames=len(frames), link_types=link_types)
    if truncated_frames:
        capture.skipped.append(f"{truncated_frames} frame(s) were cut by the capture's snapshot length: "
                               "their streams have holes")
    number = 0
    for connection in ordered:
        notes: list[str] = []
        label, streams = {}, {}
        for half in (connection.a, connection.b):
            label[id(half)] = f"{half.endpoint[0]}:{half.endpoint[1]}"
            streams[id(half)] = _reassemble(half, notes, f"bytes from {label[id(half)]}")
        client, broker = _pick_sides(connection, streams)
        client_data = b"".join(data for _, data in streams[id(client)])
        name = f"{label[id(client)]} -> {label[id(broker)]}"
        if not (_looks_like_connect(client_data) or broker.endpoint[1] in MQTT_PORTS | forced_ports):
            if client_data or streams[id(broker)]:
                capture.skipped.append(f"{name}: not MQTT (the client's first bytes are not a CONNECT and the "
                                       f"port is not 1883/8883; --port {broker.endpoint[1]} decodes it as MQTT anyway)")
            continue
        number += 1
        chunks = [Chunk(time, CLIENT, data) for time, data in streams[id(client)]]
        chunks += [Chunk(time, BROKER, data) for time, data in streams[id(broker)]]
        chunks.sort(key=lambda c: c.time)  # stable: each direction keeps its order
        ends = [(t, d) for t, d in ((client.fin_time, CLIENT), (client.rst_time, CLIENT),
                                      (broker.fin_time, BROKER), (broker.rst_time, BROKER)) if t is not None]
        first_end = min(ends, key=lambda e: e[0]) if ends else None
        session = Session(number, client=client.endpoint, broker=broker.endpoint, chunks=chunks,
                          opened=connection.first_time if client.syn_seen else None,
                          closed=max(t for t, _ in ends) if ends else None,
                          closed_by=first_end[1] if first_end else None, notes=notes)
        for half, direction in ((client, CLIENT), (broker, BROKER)):
            ends = [t for t in (half.fin_time, half.rst_time) if t is not None]
            if ends:
                session.side_closed[direction] = min(ends)
        if not client.syn_seen:
            session.notes.append("the capture starts after this connection's handshake")
        capture.sessions.append(session)
    return capture


def _pick_sides(connection: _Connection, streams: dict) -> tuple[_Half, _Half]:
    a, b = connection.a, connection.b
    if a.syn_without_ack != b.syn_without_ack:
        return (a, b) if a.syn_without_ack else (b, a)
    a_data = b"".join(data for _, data in streams[id(a)])
    b_data = b"".join(data for _, data in streams[id(b)])
    if _looks_like_connect(a_data) != _looks_like_connect(b_data):
        return (a, b) if _looks_like_connect(a_data) else (b, a)
    if (a.endpoint[1] in MQTT_PORTS) != (b.endpoint[1] in MQTT_PORTS):
        return (b, a) if a.endpoint[1] in MQTT_PORTS else (a, b)
    return (a, b) if a.endpoint[1] > b.endpoint[1] else (b, a)  # the ephemeral port is usually the higher one
