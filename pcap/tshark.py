"""An independent judge of our decoder: compare it with tshark's MQTT dissector, packet by packet.

Wireshark's MQTT dissector was written by other people from the same specifications; where both
decoders read the same bytes the same way, we have two witnesses instead of one. For every MQTT packet
of every session the comparison looks at: the packet type and fixed-header flags, the packet
identifier, the topic (or topic filters with their options), the reason/return codes, every property
(and Will property) with its value, the PUBLISH payload and the CONNECT fields.

Outcomes per packet:
    agree       both decoders read every compared field the same way
    disagree    they differ; the differing fields are listed
    refused     our codec refuses the packet (malformed, or a protocol error the codec detects, with
                the statement it breaks); tshark's dissector is lenient and usually shows fields anyway.
                These are listed apart: an explained difference, not a disagreement
    explained   tshark cannot dissect the packet for a known reason of its own: a session without CONNECT
                (tshark says "unknown version" and shows no fields), or a Remaining Length cut by a TCP
                segment boundary (tshark 4.0 then loses the framing of that direction from this packet on;
                the stream is valid MQTT, TCP may cut anywhere)
    unmatched   one side has a packet the other does not (different framing after a broken packet)

Several capture files are checked with one tshark run (they are concatenated with mergecap first,
because starting tshark costs a third of a second per file). tshark reads the broker ports that are
not 1883 as MQTT through "Decode As" (`-d tcp.port==N,mqtt`).

    check_captures(paths) -> TsharkReport;  find_tshark() -> path or None
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import xml.etree.ElementTree as ET
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from refbroker.protocol import (MQTT_5, Auth, Connack, Connect, Disconnect, Publish, Suback, Subscribe, Unsuback,
                                Unsubscribe)
from refbroker.protocol.properties import PROPERTY_TABLE, PropertyType

from .reader import read_capture
from .session import DecodedPacket

__all__ = ["PacketVerdict", "TsharkError", "TsharkReport", "check_captures", "compare_views", "dissect", "find_tshark",
           "our_view", "tshark_view"]

_TSHARK_HINT = "tshark not installed: apt-get install tshark"
_ACKS = {"PUBACK", "PUBREC", "PUBREL", "PUBCOMP"}
_TYPE_NAMES = {1: "CONNECT", 2: "CONNACK", 3: "PUBLISH", 4: "PUBACK", 5: "PUBREC", 6: "PUBREL", 7: "PUBCOMP",
               8: "SUBSCRIBE", 9: "SUBACK", 10: "UNSUBSCRIBE", 11: "UNSUBACK", 12: "PINGREQ", 13: "PINGRESP",
               14: "DISCONNECT", 15: "AUTH"}


class TsharkError(Exception):
    """tshark is missing or failed; the message says what to do."""


def find_tshark() -> str | None:
    return shutil.which("tshark")


@dataclass
class PacketVerdict:
    file: str
    session: int
    direction: str
    index: int  # position among the packets of this session and direction
    name: str
    outcome: str  # agree | disagree | refused | unmatched
    detail: str = ""


@dataclass
class TsharkReport:
    files: int = 0
    verdicts: list[PacketVerdict] = field(default_factory=list)
    tshark_version: str = ""

    @property
    def counts(self) -> Counter:
        return Counter(v.outcome for v in self.verdicts)

    def problems(self) -> list[PacketVerdict]:
        return [v for v in self.verdicts if v.outcome in ("disagree", "unmatched")]

    def summary(self) -> str:
        counts = self.counts
        return (f"{sum(counts.values())} packets in {self.files} file(s): {counts['agree']} agree, "
                f"{counts['disagree']} disagree, {counts['refused']} refused by our codec (malformed or "
                f"protocol errors by the spec), {counts['explained']} not fully dissected by tshark (its reason "
                f"given), {counts['unmatched']} unmatched")


# ------------------------------------------------------------------------------- our side, normalised


def _property_value(definition, value):
    if definition.type is PropertyType.UTF8_STRING:
        return value.encode("utf-8", "surrogatepass")
    if definition.type is PropertyType.UTF8_STRING_PAIR:
        return (value[0].encode("utf-8", "surrogatepass"), value[1].encode("utf-8", "surrogatepass"))
    return value  # int or bytes


def _our_properties(properties, scope: str) -> list:
    out = []
    for definition in PROPERTY_TABLE:
        value = getattr(properties, definition.attribute)
        if value is None or value == []:
            continue
        for item in value if definition.repeatable else [value]:
            out.append((scope, definition.identifier, _property_value(definition, item)))
    return sorted(out, key=repr)


def our_view(decoded: DecodedPacket) -> dict:
    """The compared fields of one packet as our codec decoded it."""
    packet, raw = decoded.packet, decoded.raw
    level = packet.protocol_level if isinstance(packet, Connect) else decoded.version
    view: dict = {"type": _TYPE_NAMES.get(raw[0] >> 4, "?"), "flags": raw[0] & 0x0F}
    packet_id = getattr(packet, "packet_id", None)
    view["packet_id"] = packet_id
    properties = _our_properties(packet.properties, "properties") if level == MQTT_5 and hasattr(packet, "properties") \
        else []
    reasons: tuple = ()
    if isinstance(packet, Connect):
        name = packet.protocol_name or ("MQIsdp" if packet.protocol_level == 3 else "MQTT")
        will = packet.will
        view["connect"] = (name.encode(), packet.protocol_level, raw_connect_flags(packet), packet.keep_alive,
                           packet.client_id.encode("utf-8", "surrogatepass"),
                           will.topic.encode("utf-8", "surrogatepass") if will else None,
                           will.payload if will else None,
                           packet.username.encode("utf-8", "surrogatepass") if packet.username is not None else None,
                           packet.password)
        if will is not None and level == MQTT_5:
            properties = sorted(properties + _our_properties(will.properties, "will"), key=repr)
    elif isinstance(packet, Connack):
        reasons = (packet.reason_code,)
    elif isinstance(packet, Publish):
        view["topic"] = packet.topic.encode("utf-8", "surrogatepass")
        view["payload"] = packet.payload
    elif view["type"] in _ACKS or isinstance(packet, (Disconnect, Auth)):
        reasons = (packet.reason_code,) if level == MQTT_5 else ()
    elif isinstance(packet, Subscribe):
        view["subscriptions"] = tuple((s.topic_filter.encode("utf-8", "surrogatepass"), s.options_byte(level))
                                      for s in packet.subscriptions)
    elif isinstance(packet, Suback):
        reasons = tuple(packet.reason_codes)
    elif isinstance(packet, Unsubscribe):
        view["subscriptions"] = tuple((f.encode("utf-8", "surrogatepass"), None) for f in packet.topic_filters)
    elif isinstance(packet, Unsuback):
        reasons = tuple(packet.reason_codes) if level == MQTT_5 else ()
    view["reasons"] = reasons
    view["properties"] = properties
    return view


def raw_connect_flags(packet: Connect) -> int:
    flags = int(packet.reserved_flag) | (packet.clean_start << 1)
    if packet.will is not None:
        flags |= 0x04 | (packet.will.qos << 3) | (packet.will.retain << 5)
    if packet.password is not None:
        flags |= 0x40
    if packet.username is not None:
        flags |= 0x80
    return flags


# ------------------------------------------------------------------------------ tshark side, normalised


def _hex(element) -> bytes:
    value = element.get("value") or ""
    try:
        return bytes.fromhex(value)
    except ValueError:
        return (element.get("show") or "").encode()


def _int(element) -> int:
    show = element.get("show") or "0"
    return int(show, 16) if show.startswith("0x") else int(show)


def _tshark_properties(container, scope: str) -> list:
    out, current = [], None
    key = None
    for child in container:
        name = child.get("name")
        if name == "mqtt.property_id":
            current = _int(child)
            continue
        if current is None or name.endswith("_len") or name == "mqtt.property_len":
            continue
        if name in ("mqtt.prop_number", "mqtt.property.max_qos", "mqtt.property.topic_alias"):
            out.append((scope, current, _int(child)))
        elif name == "mqtt.prop_string":
            out.append((scope, current, _hex(child)))
        elif name == "mqtt.property.content_type":
            out.append((scope, current, _hex(child)[2:]))
        elif name == "mqtt.prop_key":
            key = _hex(child)
        elif name == "mqtt.prop_value":
            out.append((scope, current, (key, _hex(child))))
        elif name == "mqtt.prop_unknown":
            out.append((scope, current, ("unknown", child.get("show"))))
    return out


def _walk(element):
    """The fields under an mqtt element, properties blocks not entered (they are read apart). A field of
    size 0 is one tshark generated, not bytes of the packet (e.g. the topic a Topic Alias stands for):
    the comparison is about the wire, so those are left out."""
    for child in element:
        if child.get("size") == "0":
            continue
        yield child
        if child.get("name") not in ("mqtt.properties", "mqtt.will_properties"):
            yield from _walk(child)


def tshark_view(proto, level: int | None) -> dict:
    """The compared fields of one packet as tshark dissected it (an `mqtt` element of its PDML output)."""
    fields: dict[str, list] = {}
    properties: list = []
    for child in _walk(proto):
        name = child.get("name") or ""
        if name == "mqtt.properties":
            properties += _tshark_properties(child, "properties")
        elif name == "mqtt.will_properties":
            properties += _tshark_properties(child, "will")
        fields.setdefault(name, []).append(child)

    def first(name, convert=_int):
        items = fields.get(name)
        return convert(items[0]) if items else None

    header = first("mqtt.hdrflags") or 0
    kind = _TYPE_NAMES.get(header >> 4, "?")
    view: dict = {"type": kind, "flags": header & 0x0F, "packet_id": first("mqtt.msgid")}
    reasons: tuple = ()
    if kind == "CONNECT":
        view["connect"] = (first("mqtt.protoname", _hex), first("mqtt.ver"), first("mqtt.conflags"),
                           first("mqtt.kalive"), first("mqtt.clientid", _hex) or b"", first("mqtt.willtopic", _hex),
                           first("mqtt.willmsg", _hex), first("mqtt.username", _hex), first("mqtt.passwd", _hex))
        if view["connect"][5] is not None and view["connect"][6] is None:
            view["connect"] = view["connect"][:6] + (b"",) + view["connect"][7:]  # an empty will message
    elif kind == "CONNACK":
        code = first("mqtt.connack.reason_code")
        reasons = (code if code is not None else first("mqtt.conack.val"),)
    elif kind == "PUBLISH":
        view["topic"] = first("mqtt.topic", _hex) or b""
        view["payload"] = first("mqtt.msg", _hex) or b""
    elif kind in _ACKS or kind in ("DISCONNECT", "AUTH"):
        if level == MQTT_5:
            code = first(f"mqtt.{kind.lower()}.reason_code")
            reasons = (0 if code is None else code,)  # an absent reason code means 0x00 (e.g. 3.4.2.1)
    elif kind == "SUBSCRIBE":
        topics = [_hex(e) for e in fields.get("mqtt.topic", [])]
        options = [_int(e) for e in fields.get("mqtt.subscription_options", fields.get("mqtt.sub.qos", []))]
        view["subscriptions"] = tuple(zip(topics, options + [None] * (len(topics) - len(options))))
    elif kind == "SUBACK":
        reasons = tuple(_int(e) for e in fields.get("mqtt.suback.reason_code", fields.get("mqtt.suback.qos", [])))
    elif kind == "UNSUBSCRIBE":
        view["subscriptions"] = tuple((_hex(e), None) for e in fields.get("mqtt.topic", []))
    elif kind == "UNSUBACK":
        reasons = tuple(_int(e) for e in fields.get("mqtt.unsuback.reason_code", [])) if level == MQTT_5 else ()
    view["reasons"] = reasons
    view["properties"] = sorted(properties, key=repr) if level == MQTT_5 else []
    return view


def _short(value) -> str:
    text = repr(value)
    return text if len(text) <= 120 else text[:117] + "..."


def compare_views(ours: dict, theirs: dict) -> list[str]:
    """'field: ours X, tshark Y' for every compared field the two views read differently."""
    out = []
    for key in ours.keys() | theirs.keys():
        if ours.get(key) != theirs.get(key):
            out.append(f"{key}: ours {_short(ours.get(key))}, tshark {_short(theirs.get(key))}")
    return sorted(out)


# ------------------------------------------------------------------------------------------ running


def _tshark_version(tshark: str) -> str:
    try:
        out = subprocess.run([tshark, "--version"], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    return out.splitlines()[0] if out else "unknown"


def _merge(paths: list[Path], workdir: str) -> Path:
    if len(paths) == 1:
        return paths[0]
    mergecap = shutil.which("mergecap")
    if mergecap is None:
        raise TsharkError("mergecap not installed (it comes with tshark: apt-get install tshark)")
    merged = Path(workdir) / "merged.pcapng"
    result = subprocess.run([mergecap, "-a", "-F", "pcapng", "-w", str(merged), *map(str, paths)],
                            capture_output=True, text=True)
    if result.returncode != 0:
        raise TsharkError(f"mergecap failed: {result.stderr.strip()}")
    return merged


def _run_tshark(tshark: str, path: Path, ports, output: Path) -> None:
    command = [tshark, "-r", str(path), "-Y", "mqtt", "-T", "pdml", "-J", "ip ipv6 tcp mqtt"]
    for port in sorted(set(ports) - {1883}):
        command += ["-d", f"tcp.port=={port},mqtt"]
    with open(output, "wb") as sink:
        result = subprocess.run(command, stdout=sink, stderr=subprocess.PIPE)
    if result.returncode != 0:
        raise TsharkError(f"tshark failed ({' '.join(command)}): {result.stderr.decode(errors='replace').strip()}")


def _packets(pdml: Path):
    """(frame number, (src, port), (dst, port), [mqtt elements]) for each frame with MQTT in it."""
    for _, packet in ET.iterparse(pdml, events=("end",)):
        if packet.tag != "packet":
            continue
        number = src = dst = sport = dport = None
        protos = []
        for proto in packet:
            name = proto.get("name")
            fields = {f.get("name"): f.get("show") for f in proto} if name != "mqtt" else {}
            if name == "geninfo":
                number = int(fields["num"])
            elif name in ("ip", "ipv6"):
                src, dst = fields.get(f"{name}.src"), fields.get(f"{name}.dst")
            elif name == "tcp":
                sport, dport = int(fields["tcp.srcport"]), int(fields["tcp.dstport"])
            elif name == "mqtt":
                protos.append(proto)
        for proto in [p for p in packet if p.get("name") != "mqtt"]:
            packet.remove(proto)  # keep only what is compared
        if number is not None and src is not None and protos:
            yield number, (src, sport), (dst, dport), protos


def dissect(path, ports=()) -> list:
    """tshark's dissection of one capture: [(frame number, (src, port), (dst, port), [mqtt elements])]."""
    tshark = find_tshark()
    if tshark is None:
        raise TsharkError(_TSHARK_HINT)
    with tempfile.TemporaryDirectory(prefix="pcap-tshark-") as workdir:
        output = Path(workdir) / "out.pdml"
        _run_tshark(tshark, Path(path), ports, output)
        return list(_packets(output))


def check_captures(paths, progress=None) -> TsharkReport:
    """Compare our decoding of every MQTT packet in `paths` with tshark's. TsharkError without tshark."""
    tshark = find_tshark()
    if tshark is None:
        raise TsharkError(_TSHARK_HINT)
    paths = [Path(p) for p in paths]
    captures = [read_capture(p) for p in paths]
    report = TsharkReport(files=len(paths), tshark_version=_tshark_version(tshark))
    # Frame ranges: mergecap -a keeps the files' frames in order, one after the other.
    starts, total = [], 0
    for capture in captures:
        starts.append(total)
        total += capture.frames
    ports = {s.broker[1] for c in captures for s in c.sessions}
    with tempfile.TemporaryDirectory(prefix="pcap-tshark-") as workdir:
        merged = _merge(paths, workdir)
        output = Path(workdir) / "out.pdml"
        _run_tshark(tshark, merged, ports, output)
        theirs = _parse_pdml(output, starts, captures)
    if progress:
        progress(f"tshark dissected {sum(len(v) for v in theirs.values())} MQTT packets")
    for file_index, capture in enumerate(captures):
        for session in capture.sessions:
            decoded = session.packets()
            for direction in ("client", "broker"):
                ours = [p for p in decoded if p.direction.value == direction]
                their_list = theirs.get((file_index, session.number, direction), [])
                split = _first_split_header(session, direction, ours)
                _compare(report, capture.path, session.number, direction, ours, their_list, split)
    return report


def _parse_pdml(path: Path, starts: list[int], captures) -> dict:
    """{(file index, session number, 'client'|'broker'): [mqtt elements in order]}"""
    import bisect

    endpoint_index = []
    for capture in captures:
        index = {}
        for session in capture.sessions:
            index.setdefault((tuple(session.client), tuple(session.broker)), session.number)
        endpoint_index.append(index)
    out: dict = {}
    for number, src, dst, protos in _packets(path):
        file_index = bisect.bisect_right(starts, number - 1) - 1
        index = endpoint_index[file_index]
        session, direction = index.get((src, dst)), "client"
        if session is None:
            session, direction = index.get((dst, src)), "broker"
        if session is not None:
            out.setdefault((file_index, session, direction), []).extend(protos)
    return out


def _first_split_header(session, direction: str, ours: list[DecodedPacket]) -> int | None:
    """Index of the first packet whose fixed header (type byte and Remaining Length) is cut by a segment
    boundary of the capture (each chunk of a session read from a file is one TCP segment's bytes)."""
    boundaries, offset = set(), 0
    for chunk in session.chunks:
        if chunk.direction.value == direction:
            offset += len(chunk.data)
            boundaries.add(offset)
    start = 0
    for index, packet in enumerate(ours):
        header = 2
        while header < len(packet.raw) and header <= 5 and packet.raw[header - 1] & 0x80:
            header += 1
        if any(start < boundary < start + header for boundary in boundaries):
            return index
        start += len(packet.raw)
    return None


_SPLIT_HEADER = ("tshark lost the framing: a Remaining Length before this packet (or its own) was cut by a "
                 "TCP segment boundary, which tshark 4.0's MQTT dissector does not reassemble")


def _compare(report: TsharkReport, file: str, session: int, direction: str, ours: list[DecodedPacket],
             theirs: list, split: int | None = None) -> None:
    for index in range(max(len(ours), len(theirs))):
        mine = ours[index] if index < len(ours) else None
        their = theirs[index] if index < len(theirs) else None
        outcome, detail = _verdict(mine, their)
        if split is not None and index >= split and outcome in ("disagree", "unmatched"):
            outcome, detail = "explained", f"{_SPLIT_HEADER} ({outcome}: {detail})"
        report.verdicts.append(PacketVerdict(file, session, direction, index, mine.name if mine else "?",
                                             outcome, detail))


def _verdict(mine: DecodedPacket | None, their) -> tuple[str, str]:
    if mine is None:
        return "unmatched", f"tshark has a packet our decoder does not: {their.get('showname')}"
    if mine.packet is None:
        seen = their.get("showname", "").split(", ", 1)[-1] if their is not None else "nothing"
        return "refused", f"our codec: {mine.error}; tshark shows: {seen}"
    if their is None:
        return "unmatched", "our decoder has a packet tshark does not"
    if any(child.get("name") == "mqtt.unknown_version" for child in their.iter("field")):
        return "explained", "tshark: unknown version (missing the CONNECT packet?); it shows only the fixed header"
    level = mine.packet.protocol_level if isinstance(mine.packet, Connect) else mine.version
    differences = compare_views(our_view(mine), tshark_view(their, level))
    return ("disagree" if differences else "agree"), "; ".join(differences)
