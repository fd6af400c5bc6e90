"""Explain a capture: every MQTT packet of every session, both directions, with its time, every field
and property, and the ids of the normative statements that govern each (sans-IO: capture in, text or
an explanation model out; the HTML page is rendered by pcap/explain_html.py).

    explain_capture(capture) -> list[SessionExplanation]
    render_text(explanations, hex_dump=False) -> str

A field's statements come from `pcap.statements` (the section that defines the field in the version
the session speaks, plus the chapter-2/4 rules its value brings in: QoS flows, topic rules, packet
identifiers). A packet that does not decode is shown with the codec's reason (which names the
statement it breaks when there is one) and its bytes.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field

from refbroker.protocol import (
    MQTT_5,
    VERSION_NAMES,
    Auth,
    Connack,
    Connect,
    ConnectReturnCode,
    Disconnect,
    Packet,
    Properties,
    Publish,
    Subscribe,
    Suback,
    Unsuback,
    Unsubscribe,
    is_shared_subscription,
)
from refbroker.protocol.properties import PROPERTY_TABLE
from refbroker.protocol.reason_codes import reason_name

from . import statements as st
from .reader import Capture
from .session import CLIENT, DecodedPacket, Session

__all__ = ["Field", "PacketExplanation", "SessionExplanation", "describe_packet", "explain_capture",
           "render_text"]

_BYTES_SHOWN = 64  # bytes of a payload / binary value shown before "..."


@dataclass
class Field:
    label: str
    value: str
    ids: tuple[str, ...] = ()
    children: list["Field"] = field(default_factory=list)


@dataclass
class PacketExplanation:
    offset: float  # seconds since the start of the capture
    time: float  # seconds since the epoch
    direction: str  # "C->B" or "B->C"
    name: str
    size: int
    header: str  # the fixed header: first byte in binary and the remaining length
    fields: list[Field]
    ids: tuple[str, ...]  # statements about the packet as a whole
    error: str | None
    raw_hex: str


@dataclass
class SessionExplanation:
    number: int
    client: str
    broker: str
    version: str
    started: str  # UTC date and time of the session's start
    packets: list[PacketExplanation]
    notes: list[str]
    closed: str  # how the session ended


# ------------------------------------------------------------------------------------------ values


def _text(value: str) -> str:
    return repr(value)


def _binary(value: bytes) -> str:
    shown = value[:_BYTES_SHOWN]
    try:
        text = shown.decode("utf-8")
        printable = text.isprintable()
    except UnicodeDecodeError:
        printable = False
    more = f" ... ({len(value)} bytes)" if len(value) > _BYTES_SHOWN else f" ({len(value)} bytes)"
    return (repr(text) if printable else shown.hex(" ")) + more if value else "(empty)"


def _reason(packet: str, code: int, level: int | None) -> str:
    if packet == "CONNACK" and level != MQTT_5:
        try:
            return f"0x{code:02X} {ConnectReturnCode(code).name.replace('_', ' ').lower()}"
        except ValueError:
            return f"0x{code:02X} (reserved)"
    if packet == "SUBACK" and level != MQTT_5:
        return f"0x{code:02X} " + ("failure" if code == 0x80 else f"granted QoS {code}")
    return f"0x{code:02X} {reason_name(packet, code)}"


def _property_fields(properties: Properties, packet: str, level: int | None, section: str | None = None) -> list[Field]:
    out = []
    for definition in PROPERTY_TABLE:
        value = getattr(properties, definition.attribute)
        if value is None or value == []:
            continue
        ids = st.field_ids(level, packet, definition.name, section=section)
        values = value if definition.repeatable else [value]
        for item in values:
            if isinstance(item, tuple):
                shown = f"{_text(item[0])}: {_text(item[1])}"
                ids = ids + st.group_ids(level, "encoding", "1.5.7")
            elif isinstance(item, bytes):
                shown = _binary(item)
            elif isinstance(item, str):
                shown = _text(item)
            else:
                shown = str(item)
            out.append(Field(f"{definition.name} (0x{definition.identifier:02X})", shown, ids))
    return out


def _properties_field(properties: Properties, packet: str, level: int | None, section: str | None = None,
                      label: str = "Properties") -> list[Field]:
    if level != MQTT_5:
        return []
    children = _property_fields(properties, packet, level, section)
    return [Field(label, f"{len(children)} propert{'y' if len(children) == 1 else 'ies'}" if children else "none",
                  st.group_ids(level, "properties"), children)]


def _topic_ids(level: int | None, topic: str, is_filter: bool) -> tuple[str, ...]:
    ids = st.group_ids(level, "topics", "4.7.3")
    if is_filter or "+" in topic or "#" in topic:
        ids += st.group_ids(level, "topics", "4.7.1")
    if topic.startswith("$"):
        ids += st.group_ids(level, "topics", "4.7.2")
    if is_filter and is_shared_subscription(topic):
        ids += st.group_ids(level, "shared-subscriptions")
    return ids


def _packet_id_field(packet_id: int | None, level: int | None) -> list[Field]:
    if packet_id is None:
        return []
    group = "2.2.1" if level == MQTT_5 else "2.3.1"
    return [Field("Packet Identifier", str(packet_id), st.group_ids(level, "packet-id", group))]


# ----------------------------------------------------------------------------------------- packets


def _connect(packet: Connect, level: int | None) -> list[Field]:
    v5 = packet.protocol_level == MQTT_5
    name = packet.protocol_name or ("MQIsdp" if packet.protocol_level == 3 else "MQTT")
    will = packet.will
    flags = [
        Field("User Name Flag", str(int(packet.username is not None)),
              st.field_ids(level, "CONNECT", "User Name Flag")),
        Field("Password Flag", str(int(packet.password is not None)), st.field_ids(level, "CONNECT", "Password Flag")),
        Field("Will Retain", str(int(bool(will and will.retain))), st.field_ids(level, "CONNECT", "Will Retain")),
        Field("Will QoS", str(will.qos if will else 0), st.field_ids(level, "CONNECT", "Will QoS")),
        Field("Will Flag", str(int(will is not None)), st.field_ids(level, "CONNECT", "Will Flag")),
        Field("Clean Start" if v5 else "Clean Session", str(int(packet.clean_start)),
              st.field_ids(level, "CONNECT", "Clean Start", "Clean Session")),
        Field("Reserved", "0", st.field_ids(level, "CONNECT", "Connect Flags")),
    ]
    out = [
        Field("Protocol Name", _text(name), st.field_ids(level, "CONNECT", "Protocol Name")),
        Field("Protocol Level", f"{packet.protocol_level} (MQTT {VERSION_NAMES.get(packet.protocol_level, '?')})",
              st.field_ids(level, "CONNECT", "Protocol Level", "Protocol Version")),
        Field("Connect Flags", "", (), flags),
        Field("Keep Alive", f"{packet.keep_alive} s", st.field_ids(level, "CONNECT", "Keep Alive")),
        *_properties_field(packet.properties, "CONNECT", level, section="3.1.2.11"),
        Field("Client Identifier", _text(packet.client_id), st.field_ids(level, "CONNECT", "Client Identifier")),
    ]
    if will is not None:
        will_fields = _properties_field(will.properties, "CONNECT", level, section="3.1.3.2", label="Will Properties")
        will_fields += [
            Field("Will Topic", _text(will.topic),
                  st.field_ids(level, "CONNECT", "Will Topic") + _topic_ids(level, will.topic, False)),
            Field("Will Payload", _binary(will.payload), st.field_ids(level, "CONNECT", "Will Payload")),
        ]
        out.append(Field("Will", f"QoS {will.qos}{', retain' if will.retain else ''}", (), will_fields))
    if packet.username is not None:
        out.append(Field("User Name", _text(packet.username), st.field_ids(level, "CONNECT", "User Name")))
    if packet.password is not None:
        out.append(Field("Password", f"({len(packet.password)} bytes)", st.field_ids(level, "CONNECT", "Password")))
    return out


def _connack(packet: Connack, level: int | None) -> list[Field]:
    return [
        Field("Session Present", str(int(packet.session_present)), st.field_ids(level, "CONNACK", "Session Present")),
        Field("Reason Code" if level == MQTT_5 else "Return Code", _reason("CONNACK", packet.reason_code, level),
              st.field_ids(level, "CONNACK", "Connect Reason Code", "Connect Return code")),
        *_properties_field(packet.properties, "CONNACK", level),
    ]


def _publish(packet: Publish, level: int | None) -> list[Field]:
    flow = {0: "4.3.1", 1: "4.3.2", 2: "4.3.3"}.get(packet.qos)
    return [
        Field("DUP", str(int(packet.dup)), st.field_ids(level, "PUBLISH", "DUP")),
        Field("QoS", str(packet.qos), st.field_ids(level, "PUBLISH", "QoS") + st.group_ids(level, "qos-flow", flow)),
        Field("RETAIN", str(int(packet.retain)), st.field_ids(level, "PUBLISH", "RETAIN")),
        Field("Topic Name", _text(packet.topic),
              st.field_ids(level, "PUBLISH", "Topic Name") + _topic_ids(level, packet.topic, False)),
        *_packet_id_field(packet.packet_id, level),
        *_properties_field(packet.properties, "PUBLISH", level),
        Field("Payload", _binary(packet.payload), ()),
    ]


def _publish_ack(packet, level: int | None) -> list[Field]:
    name = packet.name
    flow = "4.3.2" if name == "PUBACK" else "4.3.3"
    out = _packet_id_field(packet.packet_id, level)
    out[0].ids += st.group_ids(level, "qos-flow", flow)
    if level == MQTT_5:
        out.append(Field("Reason Code", _reason(name, packet.reason_code, level),
                         st.field_ids(level, name, "Reason Code")))
        out += _properties_field(packet.properties, name, level)
    return out


def _subscribe(packet: Subscribe, level: int | None) -> list[Field]:
    v5 = level == MQTT_5
    subscriptions = []
    for subscription in packet.subscriptions:
        options = [Field("QoS", str(subscription.qos), st.field_ids(level, "SUBSCRIBE", "Subscription Options"))]
        if v5:
            options += [
                Field("No Local", str(int(subscription.no_local)), ()),
                Field("Retain As Published", str(int(subscription.retain_as_published)), ()),
                Field("Retain Handling", str(subscription.retain_handling), ()),
            ]
        subscriptions.append(Field("Topic Filter", _text(subscription.topic_filter),
                                   st.field_ids(level, "SUBSCRIBE", "Payload") +
                                   _topic_ids(level, subscription.topic_filter, True), options))
    return [*_packet_id_field(packet.packet_id, level), *_properties_field(packet.properties, "SUBSCRIBE", level),
            *subscriptions]


def _suback(packet: Suback, level: int | None) -> list[Field]:
    codes = [Field(f"#{index + 1}", _reason("SUBACK", code, level), ())
             for index, code in enumerate(packet.reason_codes)]
    return [*_packet_id_field(packet.packet_id, level), *_properties_field(packet.properties, "SUBACK", level),
            Field("Reason Codes" if level == MQTT_5 else "Return Codes", str(len(codes)),
                  st.field_ids(level, "SUBACK", "Payload"), codes)]


def _unsubscribe(packet: Unsubscribe, level: int | None) -> list[Field]:
    return [*_packet_id_field(packet.packet_id, level), *_properties_field(packet.properties, "UNSUBSCRIBE", level),
            *(Field("Topic Filter", _text(topic_filter),
                    st.field_ids(level, "UNSUBSCRIBE", "Payload") + _topic_ids(level, topic_filter, True))
              for topic_filter in packet.topic_filters)]


def _unsuback(packet: Unsuback, level: int | None) -> list[Field]:
    out = _packet_id_field(packet.packet_id, level)
    if level == MQTT_5:
        out += _properties_field(packet.properties, "UNSUBACK", level)
        out.append(Field("Reason Codes", str(len(packet.reason_codes)), st.field_ids(level, "UNSUBACK", "Payload"),
                         [Field(f"#{i + 1}", _reason("UNSUBACK", code, level), ())
                          for i, code in enumerate(packet.reason_codes)]))
    return out


def _reason_only(packet: Disconnect | Auth, level: int | None) -> list[Field]:
    if level != MQTT_5:
        return []
    name = packet.name
    out = [Field("Reason Code", _reason(name, packet.reason_code, level),
                 st.field_ids(level, name, "Disconnect Reason Code", "Authenticate Reason Code"))]
    out += _properties_field(packet.properties, name, level)
    if isinstance(packet, Auth):
        out[0].ids += st.group_ids(level, "enhanced-auth")
    return out


_DESCRIBERS = {
    "CONNECT": _connect, "CONNACK": _connack, "PUBLISH": _publish, "PUBACK": _publish_ack, "PUBREC": _publish_ack,
    "PUBREL": _publish_ack, "PUBCOMP": _publish_ack, "SUBSCRIBE": _subscribe, "SUBACK": _suback,
    "UNSUBSCRIBE": _unsubscribe, "UNSUBACK": _unsuback, "DISCONNECT": _reason_only, "AUTH": _reason_only,
}


def describe_packet(packet: Packet, level: int | None) -> list[Field]:
    """The fields of one decoded packet, each with its statement ids."""
    describer = _DESCRIBERS.get(packet.name)
    return describer(packet, level) if describer else []


def _header(raw: bytes) -> str:
    if not raw:
        return ""
    from refbroker.protocol.primitives import decode_variable_byte_integer

    try:
        decoded = decode_variable_byte_integer(raw, 1)
    except Exception:  # noqa: BLE001 - a broken Remaining Length is shown as such
        decoded = None
    length = f"remaining length {decoded[0]}" if decoded else "remaining length unreadable"
    return f"{raw[0] >> 4:04b} {raw[0] & 0x0F:04b}, {length}"


def _explain_packet(decoded: DecodedPacket, start: float) -> PacketExplanation:
    level = decoded.version if decoded.packet is None or not isinstance(decoded.packet, Connect) \
        else decoded.packet.protocol_level
    fields = describe_packet(decoded.packet, level) if decoded.packet is not None else []
    name = decoded.name
    ids = st.packet_ids(level, name) if decoded.packet is not None else ()
    return PacketExplanation(
        offset=decoded.time - start, time=decoded.time, direction=decoded.direction.arrow, name=name,
        size=len(decoded.raw), header=_header(decoded.raw), fields=fields, ids=ids, error=decoded.error,
        raw_hex=decoded.raw.hex(" "))


def _utc(timestamp: float) -> str:
    return datetime.datetime.fromtimestamp(timestamp, datetime.UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3] + " UTC"


def _closed(session: Session) -> str:
    if session.closed is None:
        return "still open at the end of the capture"
    who = {CLIENT: "the client", None: "unknown side"}.get(session.closed_by, "the broker")
    return f"closed by {who}"


def explain_session(session: Session, start: float) -> SessionExplanation:
    decoded = session.packets()
    levels = [p.version for p in decoded if p.version is not None]
    version = VERSION_NAMES.get(levels[0], "?") if levels else "?"
    return SessionExplanation(
        number=session.number, client=f"{session.client[0]}:{session.client[1]}",
        broker=f"{session.broker[0]}:{session.broker[1]}", version=version, started=_utc(session.start_time),
        packets=[_explain_packet(p, start) for p in decoded], notes=list(session.notes), closed=_closed(session))


def explain_capture(capture: Capture) -> list[SessionExplanation]:
    start = min((s.start_time for s in capture.sessions), default=0.0)
    return [explain_session(session, start) for session in capture.sessions]


# ------------------------------------------------------------------------------------------- text


def _field_lines(fields: list[Field], depth: int, out: list[str]) -> None:
    for item in fields:
        text = f"{'  ' * depth}{item.label}: {item.value}" if item.value else f"{'  ' * depth}{item.label}"
        if item.ids:
            text = f"{text:<60} [{' '.join(item.ids)}]"
        out.append(text)
        _field_lines(item.children, depth + 1, out)


def render_text(sessions: list[SessionExplanation], *, hex_dump: bool = False, skipped: list[str] = (),
                source: str = "") -> str:
    out: list[str] = []
    if source:
        out.append(f"capture {source}: {len(sessions)} MQTT session(s)")
    for note in skipped:
        out.append(f"  not decoded: {note}")
    for session in sessions:
        out.append("")
        out.append(f"session {session.number}: client {session.client} -> broker {session.broker}, "
                   f"MQTT {session.version}, started {session.started}, {len(session.packets)} packets, "
                   f"{session.closed}")
        for note in session.notes:
            out.append(f"  note: {note}")
        for packet in session.packets:
            ids = f"  [{' '.join(packet.ids)}]" if packet.ids else ""
            out.append(f"  {packet.offset:+10.6f} s  {packet.direction}  {packet.name} ({packet.size} bytes; "
                       f"{packet.header}){ids}")
            if packet.error:
                out.append(f"      NOT DECODED: {packet.error}")
            lines: list[str] = []
            _field_lines(packet.fields, 3, lines)
            out.extend(lines)
            if hex_dump or packet.error:
                out.append(f"      bytes: {packet.raw_hex[:3 * 256]}{' ...' if packet.size > 256 else ''}")
    return "\n".join(out) + "\n"
