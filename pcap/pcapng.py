"""Write recorded sessions to a pcapng file that Wireshark and tshark open.

The proxy sees byte streams, not IP packets, so the Ethernet/IP/TCP framing is synthesized (with
scapy): a three-way handshake, one segment per chunk the proxy read (split when longer than
`MAX_SEGMENT`), sequence and acknowledgement numbers that add up, and a FIN exchange when the
session ended. Initial sequence numbers are derived from the session's endpoints, start time and
number (MAC addresses from its number), so writing the same sessions twice gives the same file, and two
sessions that happen to use the same ports (files merged with mergecap) still look like two connections.

The MQTT payload bytes are exactly the bytes that crossed the proxy.
"""

from __future__ import annotations

import ipaddress
import os
import zlib
from collections.abc import Iterable
from pathlib import Path

from .session import BROKER, CLIENT, Direction, Session

__all__ = ["MAX_SEGMENT", "session_frames", "write_pcapng"]

MAX_SEGMENT = 32_768  # bytes of payload per synthesized TCP segment (an IPv4 packet holds at most 65,515)


def _layers():
    # scapy is imported lazily: importing it costs ~1 s, and most of pcap/ does not need it.
    from scapy.layers.inet import IP, TCP
    from scapy.layers.inet6 import IPv6
    from scapy.layers.l2 import Ether
    return Ether, IP, IPv6, TCP


def _ip_layer(source: str, destination: str):
    _, IP, IPv6, _ = _layers()
    try:
        is_v6 = ipaddress.ip_address(source).version == 6 or ipaddress.ip_address(destination).version == 6
    except ValueError:  # a host name: fall back on loopback addresses so the file stays valid
        return IP(src="127.0.0.1", dst="127.0.0.1")
    if is_v6:
        def v6(address: str) -> str:
            parsed = ipaddress.ip_address(address)
            return str(parsed if parsed.version == 6 else ipaddress.IPv6Address(f"::ffff:{parsed}"))
        return IPv6(src=v6(source), dst=v6(destination))
    return IP(src=source, dst=destination, flags="DF")


def session_frames(session: Session, server_port: int | None = None) -> list:
    """The synthesized scapy frames of one session, each with its `.time` set."""
    Ether, _, _, TCP = _layers()
    number = session.number
    mac = {CLIENT: f"02:00:00:00:{(number >> 8) & 0xFF:02x}:{number & 0xFF:02x}",
           BROKER: "02:00:00:00:ff:fe"}
    host = {CLIENT: session.client[0], BROKER: session.broker[0]}
    port = {CLIENT: session.client[1], BROKER: server_port or session.broker[1]}
    # Initial sequence numbers derived from the session itself: the same session gives the same file, and
    # two sessions on the same ports (captures merged with mergecap, say) do not look like one connection.
    # Then: the next sequence number each side will send.
    seed = f"{session.client}|{session.broker}|{session.start_time:.6f}|{number}".encode()
    next_seq = {CLIENT: zlib.crc32(seed + b"|client"), BROKER: zlib.crc32(seed + b"|broker")}
    frames = []

    def other(direction: Direction) -> Direction:
        return BROKER if direction is CLIENT else CLIENT

    def emit(direction: Direction, time: float, flags: str, payload: bytes = b"", ack: bool = True) -> None:
        segment = TCP(sport=port[direction], dport=port[other(direction)], seq=next_seq[direction],
                      ack=next_seq[other(direction)] if ack else 0, flags=flags, window=65535)
        frame = Ether(src=mac[direction], dst=mac[other(direction)]) / _ip_layer(host[direction],
                                                                                 host[other(direction)]) / segment
        if payload:
            frame = frame / payload
        frame.time = time
        frames.append(frame)
        advance = len(payload) + (1 if "S" in flags else 0) + (1 if "F" in flags else 0)
        next_seq[direction] = (next_seq[direction] + advance) & 0xFFFF_FFFF

    start = session.start_time
    emit(CLIENT, start, "S", ack=False)
    emit(BROKER, start, "SA")
    emit(CLIENT, start, "A")
    # Data and FINs in time order, so that each segment acknowledges only what the other side had sent
    # by then (a FIN acknowledging bytes still to come would make Wireshark see them as retransmissions).
    events: list[tuple[float, int, Direction, bytes | None]] = [
        (chunk.time, index, chunk.direction, chunk.data) for index, chunk in enumerate(session.chunks)]
    if session.closed is not None:
        first = session.closed_by or CLIENT
        for order, side in enumerate((first, other(first))):
            last_data = max((c.time for c in session.chunks if c.direction is side), default=start)
            when = max(session.side_closed.get(side, session.closed), last_data)
            events.append((when, len(session.chunks) + order, side, None))
    fins: list[tuple[float, Direction]] = []
    for when, _, direction, data in sorted(events, key=lambda event: (event[0], event[1])):
        if data is None:
            emit(direction, when, "FA")
            fins.append((when, direction))
            continue
        for offset in range(0, len(data), MAX_SEGMENT):
            emit(direction, when, "PA", data[offset:offset + MAX_SEGMENT])
    if len(fins) == 2:
        emit(fins[0][1], fins[1][0], "A")  # the last ACK, for the second FIN
    return frames


def write_pcapng(sessions: Iterable[Session], path: str | os.PathLike, server_port: int | None = None) -> Path:
    """Write `sessions` to `path` (pcapng, Ethernet link type), frames in time order.

    `server_port` replaces the broker's port in the file (e.g. 1883, so Wireshark dissects MQTT
    without a "Decode As" rule); by default the real port is kept.
    """
    from scapy.utils import PcapNgWriter

    frames = []
    for session in sessions:
        frames.extend(session_frames(session, server_port))
    frames.sort(key=lambda frame: float(frame.time))  # stable: a session's own order is kept on ties
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    writer = PcapNgWriter(str(path))
    try:
        if not frames:  # an empty but valid file: just the section and interface headers
            writer.write_header(None)
        for frame in frames:
            writer.write(frame)
    finally:
        writer.close()
    return path
