"""Hand-made TCP conversations for the reader tests: segments cut, merged, reordered and repeated at will,
written with scapy as real capture files (pcap, pcapng, gzip, Ethernet / Linux cooked / IPv6)."""

from __future__ import annotations

from dataclasses import dataclass, field

from scapy.layers.inet import IP, TCP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import CookedLinux, Ether
from scapy.utils import PcapNgWriter, PcapWriter

from refbroker.protocol import (MQTT_5, Connack, Connect, Disconnect, Properties, Puback, Publish, Suback,
                                Subscribe, Subscription)


def conversation(version: int = MQTT_5, client_id: str = "reader-test") -> list[tuple[str, bytes]]:
    """A small realistic exchange as (side, packet bytes): 'c' client to broker, 'b' broker to client."""
    props = Properties(user_properties=[("k", "v")]) if version == MQTT_5 else Properties()
    return [
        ("c", Connect(client_id=client_id, protocol_level=version, keep_alive=30).encode()),
        ("b", Connack(0, False, Properties(topic_alias_maximum=10) if version == MQTT_5 else Properties())
         .encode(version)),
        ("c", Subscribe(1, [Subscription("a/#", 1)]).encode(version)),
        ("b", Suback(1, [1]).encode(version)),
        ("c", Publish("a/b", b"x" * 300, 1, False, False, 7, props).encode(version)),
        ("b", Puback(7).encode(version)),
        ("b", Publish("a/b", b"x" * 300, 1, False, False, 1, props).encode(version)),
        ("c", Puback(1).encode(version)),
        ("c", Disconnect().encode(version)),
    ]


@dataclass
class Flow:
    """One TCP connection; `segment` adds a data segment, `frames` gives them (handshake/FIN optional)."""

    client: tuple[str, int] = ("10.0.0.1", 40001)
    broker: tuple[str, int] = ("10.0.0.2", 1883)
    start: float = 1_700_000_000.0
    client_isn: int = 1000
    broker_isn: int = 0xFFFF_FF00  # wraps around 2**32 after 256 bytes
    link: str = "ether"  # ether | cooked
    handshake: bool = True
    segments: list[tuple[float, str, int, bytes, str]] = field(default_factory=list)  # time, side, seq, data, flags
    offsets: dict[str, int] = field(default_factory=lambda: {"c": 1, "b": 1})

    def _tcp(self, side: str, seq: int, flags: str, data: bytes = b""):
        src, dst = (self.client, self.broker) if side == "c" else (self.broker, self.client)
        ip = IPv6(src=src[0], dst=dst[0]) if ":" in src[0] else IP(src=src[0], dst=dst[0])
        layer2 = Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02") if self.link == "ether" else CookedLinux()
        frame = layer2 / ip / TCP(sport=src[1], dport=dst[1], seq=seq % 2**32, flags=flags)
        return frame / data if data else frame

    def isn(self, side: str) -> int:
        return self.client_isn if side == "c" else self.broker_isn

    def segment(self, at: float, side: str, data: bytes, offset: int | None = None) -> None:
        """Data at a stream offset (default: right after the previous segment of that side)."""
        if offset is None:
            offset = self.offsets[side]
            self.offsets[side] += len(data)
        self.segments.append((at, side, self.isn(side) + offset, data, "PA"))

    def fin(self, at: float, side: str) -> None:
        self.segments.append((at, side, self.isn(side) + self.offsets[side], b"", "FA"))

    def frames(self) -> list:
        out = []
        if self.handshake:
            for flags, side in (("S", "c"), ("SA", "b"), ("A", "c")):
                frame = self._tcp(side, self.isn(side) + (0 if "S" in flags else 1), flags)
                frame.time = self.start
                out.append(frame)
        for at, side, seq, data, flags in self.segments:
            frame = self._tcp(side, seq, flags, data)
            frame.time = self.start + at
            out.append(frame)
        return out


def stream_flow(packets: list[tuple[str, bytes]], cut: int | None = None, **kwargs) -> Flow:
    """Each side's bytes in order, cut into segments of `cut` bytes (None: one segment per packet)."""
    flow = Flow(**kwargs)
    for index, (side, data) in enumerate(packets):
        pieces = [data] if cut is None else [data[i:i + cut] for i in range(0, len(data), cut)]
        for number, piece in enumerate(pieces):
            flow.segment(index * 0.01 + number * 0.00001, side, piece)
    return flow


def write(path, frames, kind: str = "pcapng") -> None:
    frames = sorted(frames, key=lambda f: float(f.time))
    writer = PcapNgWriter(str(path)) if kind == "pcapng" else PcapWriter(str(path))
    for frame in frames:
        writer.write(frame)
    writer.close()
