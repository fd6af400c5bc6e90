"""The fifteen MQTT control packets, each a dataclass that knows its own wire format.

Every packet has `encode(version) -> bytes` and a `decode_body(flags, reader, version)` class
method; `decode_packet` picks the class from the fixed header. `version` is the protocol level:
3 (MQTT 3.1), 4 (MQTT 3.1.1) or 5 (MQTT 5.0).

Encoding is deliberately permissive: it writes whatever fields it is given, so a test can build a
packet that breaks a rule (QoS 3, packet id 0, a wildcard in a topic name) and see how a broker
reacts. Decoding is strict: it raises `MalformedPacket` or `ProtocolError` (errors.py), naming the
statement that was broken. Rules that need the state of a connection or session (a second CONNECT,
an unknown topic alias, a packet id in use) are the broker's job, not the codec's.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum
from typing import ClassVar

from .errors import MalformedPacket, MQTTError, ProtocolError, UnsupportedProtocolVersion, rule_for_version
from .primitives import Reader, encode_binary, encode_utf8, encode_variable_byte_integer
from .properties import Properties, decode_properties, encode_properties
from .reason_codes import VALID_REASON_CODES, ConnectReturnCode
from .topics import InvalidTopicName, is_shared_subscription, validate_topic_name

MQTT_3_1 = 3
MQTT_3_1_1 = 4
MQTT_5 = 5
SUPPORTED_VERSIONS = (MQTT_3_1, MQTT_3_1_1, MQTT_5)
PROTOCOL_NAMES = {MQTT_3_1: "MQIsdp", MQTT_3_1_1: "MQTT", MQTT_5: "MQTT"}
VERSION_NAMES = {MQTT_3_1: "3.1", MQTT_3_1_1: "3.1.1", MQTT_5: "5.0"}


class PacketType(IntEnum):
    CONNECT = 1
    CONNACK = 2
    PUBLISH = 3
    PUBACK = 4
    PUBREC = 5
    PUBREL = 6
    PUBCOMP = 7
    SUBSCRIBE = 8
    SUBACK = 9
    UNSUBSCRIBE = 10
    UNSUBACK = 11
    PINGREQ = 12
    PINGRESP = 13
    DISCONNECT = 14
    AUTH = 15  # MQTT 5.0 only; reserved in 3.1 and 3.1.1


# "PUBACK" ... by packet type. Performance: an Enum member's .name is a property, slow in a hot path.
_PACKET_NAMES: dict[int, str] = {member: member.name for member in PacketType}


def _fixed_header(packet_type: int, flags: int, body_length: int) -> bytes:
    if body_length < 0x80:  # fast path: a Remaining Length below 128 is one byte, its own value
        return bytes(((packet_type << 4) | flags, body_length))
    return bytes(((packet_type << 4) | flags,)) + encode_variable_byte_integer(body_length)


def _expect_end(reader: Reader, packet: str) -> None:
    if reader.remaining:
        raise MalformedPacket(f"{packet} has {reader.remaining} unexpected bytes at its end")


def _check_packet_id(packet_id: int, packet: str, version: int) -> int:
    if packet_id == 0:
        # [MQTT-2.3.1-1] (3.1.1), [MQTT-2.2.1-3] (5.0): packet identifiers are never 0
        raise ProtocolError(f"{packet} carries packet identifier 0", kind="packet identifier 0",
                            rule=rule_for_version(version, v311="MQTT-2.3.1-1", v5="MQTT-2.2.1-3"))
    return packet_id


def _check_reason_code(code: int, packet: str) -> int:
    if code not in VALID_REASON_CODES[packet]:
        raise ProtocolError(f"reason code 0x{code:02X} is not valid in {packet} (section 2.4)")
    return code


class Packet:
    """Base class. Subclasses set `packet_type` and `fixed_flags` and implement the body."""

    __slots__ = ()
    packet_type: ClassVar[PacketType]
    fixed_flags: ClassVar[int] = 0  # the flags of byte 1 that the specification fixes [MQTT-2.1.3-1]

    @property
    def name(self) -> str:
        return self.packet_type.name

    def flags(self) -> int:
        return self.fixed_flags

    def encode_body(self, version: int) -> bytes:
        return b""

    def encode(self, version: int) -> bytes:
        body = self.encode_body(version)
        return _fixed_header(self.packet_type, self.flags(), len(body)) + body

    @classmethod
    def decode_body(cls, flags: int, reader: Reader, version: int) -> "Packet":
        _expect_end(reader, cls.packet_type.name)
        return cls()


# --------------------------------------------------------------------------------------------- CONNECT


@dataclass(slots=True)
class Will:
    """The Will Message a CONNECT asks the server to publish if the connection ends abnormally."""

    topic: str
    payload: bytes = b""
    qos: int = 0
    retain: bool = False
    properties: Properties = field(default_factory=Properties)


@dataclass(slots=True)
class Connect(Packet):
    packet_type: ClassVar[PacketType] = PacketType.CONNECT

    client_id: str = ""
    protocol_level: int = MQTT_3_1_1
    clean_start: bool = True  # "Clean Session" in 3.1 and 3.1.1
    keep_alive: int = 60
    username: str | None = None
    password: bytes | None = None
    will: Will | None = None
    properties: Properties = field(default_factory=Properties)
    protocol_name: str | None = None  # None: the standard name for the level ("MQIsdp" or "MQTT")
    reserved_flag: bool = False  # must be 0 [MQTT-3.1.2-3]; settable so tests can send it set

    def encode(self, version: int | None = None) -> bytes:
        """The body follows `version` (default: this packet's protocol level)."""
        return Packet.encode(self, self.protocol_level if version is None else version)

    def encode_body(self, version: int) -> bytes:
        name = self.protocol_name if self.protocol_name is not None else PROTOCOL_NAMES.get(self.protocol_level, "MQTT")
        flags = (self.reserved_flag) | (self.clean_start << 1)
        if self.will is not None:
            flags |= 0x04 | (self.will.qos << 3) | (self.will.retain << 5)
        if self.password is not None:
            flags |= 0x40
        if self.username is not None:
            flags |= 0x80
        parts = [encode_utf8(name), bytes((self.protocol_level, flags)), self.keep_alive.to_bytes(2, "big")]
        if version == MQTT_5:
            parts.append(encode_properties(self.properties))
        parts.append(encode_utf8(self.client_id))
        if self.will is not None:
            if version == MQTT_5:
                parts.append(encode_properties(self.will.properties))
            parts.append(encode_utf8(self.will.topic))
            parts.append(encode_binary(self.will.payload))
        if self.username is not None:
            parts.append(encode_utf8(self.username))
        if self.password is not None:
            parts.append(encode_binary(self.password))
        return b"".join(parts)

    @classmethod
    def decode_body(cls, flags: int, reader: Reader, version: int | None) -> "Connect":
        name = reader.utf8("the protocol name")
        level = reader.byte("the protocol level")
        if PROTOCOL_NAMES.get(level) != name:
            if name not in PROTOCOL_NAMES.values():
                # Not MQTT at all: the server must not go on as if it were [MQTT-3.1.2-1]
                raise ProtocolError(f"unknown protocol name {name!r}", rule="MQTT-3.1.2-1")
            # A level we do not speak: CONNACK 0x01 (3.1.1) or 0x84 (5.0), then close [MQTT-3.1.2-2]
            raise UnsupportedProtocolVersion(f"protocol {name!r} level {level} is not supported",
                                             protocol_name=name, protocol_level=level, rule="MQTT-3.1.2-2")
        version = level
        reader.version = level  # what follows is read by the rules of this level
        connect_flags = reader.byte("the connect flags")
        if connect_flags & 0x01:
            raise MalformedPacket("the reserved CONNECT flag is set", rule="MQTT-3.1.2-3")
        has_will = bool(connect_flags & 0x04)
        will_qos = (connect_flags >> 3) & 0x03
        will_retain = bool(connect_flags & 0x20)
        has_password = bool(connect_flags & 0x40)
        has_username = bool(connect_flags & 0x80)
        # These three rules have different ids in 3.1.1 and 5.0, and each id names another rule in the
        # other version (3.1.1's MQTT-3.1.2-13 is 5.0's MQTT-3.1.2-11), so pick the id by version.
        v5 = version == MQTT_5
        if will_qos == 3:
            raise MalformedPacket("Will QoS is 3", rule="MQTT-3.1.2-12" if v5 else "MQTT-3.1.2-14")
        if not has_will and will_qos:
            raise ProtocolError("Will QoS is set without a Will", rule="MQTT-3.1.2-11" if v5 else "MQTT-3.1.2-13")
        if not has_will and will_retain:
            raise ProtocolError("Will Retain is set without a Will", rule="MQTT-3.1.2-13" if v5 else "MQTT-3.1.2-15")
        if version != MQTT_5 and has_password and not has_username:
            raise ProtocolError("password without a user name", rule="MQTT-3.1.2-22")  # 3.1.1 only
        keep_alive = reader.two_byte_int("the keep alive")
        properties = decode_properties(reader, "CONNECT") if version == MQTT_5 else Properties()
        if properties.authentication_data is not None and properties.authentication_method is None:
            # 5.0 3.1.2.11.10: "It is a Protocol Error to include Authentication Data if there is no
            # Authentication Method."
            raise ProtocolError("CONNECT has Authentication Data without an Authentication Method")
        client_id = reader.utf8("the client identifier")  # [MQTT-3.1.3-3] (3.1.1), [MQTT-3.1.3-4] (5.0)
        will = None
        if has_will:
            will_properties = decode_properties(reader, "WILL") if version == MQTT_5 else Properties()
            will_topic = reader.utf8("the will topic")
            try:
                validate_topic_name(will_topic)
            except InvalidTopicName as exc:
                raise ProtocolError(f"invalid will topic {will_topic!r}", rule=exc.rule) from None
            will = Will(will_topic, reader.binary("the will payload"), will_qos, will_retain, will_properties)
        username = reader.utf8("the user name") if has_username else None
        password = reader.binary("the password") if has_password else None
        _expect_end(reader, "CONNECT")
        return cls(client_id=client_id, protocol_level=level, clean_start=bool(connect_flags & 0x02),
                   keep_alive=keep_alive, username=username, password=password, will=will,
                   properties=properties)


# --------------------------------------------------------------------------------------------- CONNACK


@dataclass(slots=True)
class Connack(Packet):
    packet_type: ClassVar[PacketType] = PacketType.CONNACK

    reason_code: int = 0  # the "return code" in 3.1 and 3.1.1 (ConnectReturnCode)
    session_present: bool = False
    properties: Properties = field(default_factory=Properties)

    def encode_body(self, version: int) -> bytes:
        body = bytes((int(self.session_present), self.reason_code))
        if version == MQTT_5:
            body += encode_properties(self.properties)
        return body

    @classmethod
    def decode_body(cls, flags: int, reader: Reader, version: int) -> "Connack":
        acknowledge_flags = reader.byte("the connect acknowledge flags")
        if acknowledge_flags & 0xFE:
            # [MQTT-3.2.2-1] (5.0); 3.1.1 states the same rule without a number (3.2.2.1)
            raise MalformedPacket("reserved CONNACK flag bits are set (3.2.2.1)",
                                  rule=rule_for_version(version, v311=None, v5="MQTT-3.2.2-1"))
        code = reader.byte("the connect reason code")
        if version == MQTT_5:
            _check_reason_code(code, "CONNACK")
            properties = decode_properties(reader, "CONNACK")
        else:
            if code not in ConnectReturnCode.__members__.values():
                raise ProtocolError(f"CONNACK return code {code} is reserved")
            properties = Properties()
        _expect_end(reader, "CONNACK")
        return cls(code, bool(acknowledge_flags & 0x01), properties)


# --------------------------------------------------------------------------------------------- PUBLISH


@dataclass(slots=True)
class Publish(Packet):
    packet_type: ClassVar[PacketType] = PacketType.PUBLISH

    topic: str
    payload: bytes = b""
    qos: int = 0
    retain: bool = False
    dup: bool = False
    packet_id: int | None = None  # present only for QoS 1 and 2 [MQTT-2.2.1-2]
    properties: Properties = field(default_factory=Properties)

    def flags(self) -> int:
        return (self.dup << 3) | (self.qos << 1) | self.retain

    def encode(self, version: int) -> bytes:
        # Fixed header and body joined at once: a large payload is copied once, not twice
        parts = self._body_parts(version)
        header = _fixed_header(self.packet_type, self.flags(), sum(map(len, parts)))
        return b"".join((header, *parts))

    def encode_body(self, version: int) -> bytes:
        return b"".join(self._body_parts(version))

    def encode_around_packet_id(self, version: int) -> tuple[bytes, bytes]:
        """This PUBLISH's bytes cut where the packet identifier goes: (before, after), so that
        `before + packet_id.to_bytes(2, "big") + after` is the packet with any identifier. A broker
        sending one message to many clients, each copy with an identifier of its own, encodes it once.
        QoS 0 has no identifier: (the whole packet, b"")."""
        parts = self._body_parts(version)
        header = _fixed_header(self.packet_type, self.flags(), sum(map(len, parts)))
        if self.packet_id is None:
            return b"".join((header, *parts)), b""
        return header + parts[0], b"".join(parts[2:])  # parts[1] is the packet identifier

    def _body_parts(self, version: int) -> list[bytes]:
        parts = [encode_utf8(self.topic)]
        if self.packet_id is not None:
            parts.append(self.packet_id.to_bytes(2, "big"))
        if version == MQTT_5:
            parts.append(encode_properties(self.properties))
        parts.append(self.payload)
        return parts

    @classmethod
    def decode_body(cls, flags: int, reader: Reader, version: int) -> "Publish":
        qos = (flags >> 1) & 0x03
        if qos == 3:
            raise MalformedPacket("PUBLISH with QoS 3", rule="MQTT-3.3.1-4")
        dup = bool(flags & 0x08)
        if dup and qos == 0:
            raise MalformedPacket("PUBLISH with QoS 0 has DUP set", rule="MQTT-3.3.1-2")
        topic = reader.utf8("the topic name")
        packet_id = _check_packet_id(reader.two_byte_int("the packet identifier"), "PUBLISH", version) if qos else None
        properties = decode_properties(reader, "PUBLISH") if version == MQTT_5 else Properties()
        if topic or version != MQTT_5:
            validate_topic_name(topic)  # no wildcards, at least one character [MQTT-4.7.3-1]
        elif properties.topic_alias is None:
            # 5.0 3.3.2.1: an empty topic is allowed only together with a Topic Alias
            raise ProtocolError("PUBLISH has an empty topic name and no topic alias", kind="empty topic name")
        return cls(topic, reader.rest(), qos, bool(flags & 0x01), dup, packet_id, properties)


# ----------------------------------------------------------------------- PUBACK PUBREC PUBREL PUBCOMP


@dataclass(slots=True)
class _PublishAcknowledgement(Packet):
    """PUBACK, PUBREC, PUBREL and PUBCOMP share one layout: packet id, then (5.0) reason and properties."""

    packet_id: int
    reason_code: int = 0
    properties: Properties = field(default_factory=Properties)

    def encode_body(self, version: int) -> bytes:
        body = self.packet_id.to_bytes(2, "big")
        if version == MQTT_5:
            # The reason code may be left out when it is 0 and there are no properties (3.4.2.1)
            if self.properties:
                body += bytes((self.reason_code,)) + encode_properties(self.properties)
            elif self.reason_code:
                body += bytes((self.reason_code,))
        return body

    @classmethod
    def decode_body(cls, flags: int, reader: Reader, version: int):
        if reader.remaining == 2:
            # The common case, every 3.1.1 one: the packet identifier alone (5.0: reason code 0x00, no
            # properties, 3.4.2.1). A broker reads one of these for each QoS 1/2 copy it sends.
            packet_id = (reader.data[reader.pos] << 8) | reader.data[reader.pos + 1]
            if packet_id:
                reader.pos += 2
                return cls(packet_id)
        name = _PACKET_NAMES[cls.packet_type]
        packet_id = _check_packet_id(reader.two_byte_int("the packet identifier"), name, version)
        reason_code, properties = 0, Properties()
        if version == MQTT_5 and reader.remaining:
            reason_code = _check_reason_code(reader.byte("the reason code"), name)
            if reader.remaining:
                properties = decode_properties(reader, name)
        _expect_end(reader, name)
        return cls(packet_id, reason_code, properties)


@dataclass(slots=True)
class Puback(_PublishAcknowledgement):
    packet_type: ClassVar[PacketType] = PacketType.PUBACK


@dataclass(slots=True)
class Pubrec(_PublishAcknowledgement):
    packet_type: ClassVar[PacketType] = PacketType.PUBREC


@dataclass(slots=True)
class Pubrel(_PublishAcknowledgement):
    packet_type: ClassVar[PacketType] = PacketType.PUBREL
    fixed_flags: ClassVar[int] = 0b0010  # [MQTT-3.6.1-1]


@dataclass(slots=True)
class Pubcomp(_PublishAcknowledgement):
    packet_type: ClassVar[PacketType] = PacketType.PUBCOMP


# ------------------------------------------------------------------------------------------- SUBSCRIBE


@dataclass(slots=True)
class Subscription:
    """One topic filter of a SUBSCRIBE with its options (the options other than QoS are 5.0 only)."""

    topic_filter: str
    qos: int = 0
    no_local: bool = False
    retain_as_published: bool = False
    retain_handling: int = 0  # 0 send retained, 1 only if the subscription is new, 2 never

    def options_byte(self, version: int) -> int:
        if version != MQTT_5:
            return self.qos
        return self.qos | (self.no_local << 2) | (self.retain_as_published << 3) | (self.retain_handling << 4)


@dataclass(slots=True)
class Subscribe(Packet):
    packet_type: ClassVar[PacketType] = PacketType.SUBSCRIBE
    fixed_flags: ClassVar[int] = 0b0010  # [MQTT-3.8.1-1]

    packet_id: int
    subscriptions: list[Subscription]
    properties: Properties = field(default_factory=Properties)

    def encode_body(self, version: int) -> bytes:
        parts = [self.packet_id.to_bytes(2, "big")]
        if version == MQTT_5:
            parts.append(encode_properties(self.properties))
        for subscription in self.subscriptions:
            parts.append(encode_utf8(subscription.topic_filter))
            parts.append(bytes((subscription.options_byte(version),)))
        return b"".join(parts)

    @classmethod
    def decode_body(cls, flags: int, reader: Reader, version: int) -> "Subscribe":
        packet_id = _check_packet_id(reader.two_byte_int("the packet identifier"), "SUBSCRIBE", version)
        properties = decode_properties(reader, "SUBSCRIBE") if version == MQTT_5 else Properties()
        subscriptions = []
        while reader.remaining:
            topic_filter = reader.utf8("a topic filter")
            options = reader.byte("the subscription options")
            qos = options & 0x03
            if version == MQTT_5:
                if options & 0xC0:
                    raise MalformedPacket("reserved subscription option bits are set", rule="MQTT-3.8.3-5")
                if qos == 3:
                    raise ProtocolError("subscription asks for QoS 3 (3.8.3.1)", kind="subscription QoS 3")
                retain_handling = (options >> 4) & 0x03
                if retain_handling == 3:
                    raise ProtocolError("Retain Handling is 3 (3.8.3.1)", kind="Retain Handling 3")
                if options & 0x04 and is_shared_subscription(topic_filter):
                    raise ProtocolError("No Local is set on a shared subscription", rule="MQTT-3.8.3-4")
                subscriptions.append(Subscription(topic_filter, qos, bool(options & 0x04), bool(options & 0x08),
                                                  retain_handling))
            else:
                if options & 0xFC:
                    raise MalformedPacket("reserved subscription option bits are set", rule="MQTT-3-8.3-4")
                if qos == 3:
                    raise MalformedPacket("subscription asks for QoS 3", rule="MQTT-3-8.3-4")
                subscriptions.append(Subscription(topic_filter, qos))
        if not subscriptions:
            # [MQTT-3.8.3-3] (3.1.1), [MQTT-3.8.3-2] (5.0): at least one topic filter
            raise ProtocolError("SUBSCRIBE without any topic filter",
                                rule="MQTT-3.8.3-2" if version == MQTT_5 else "MQTT-3.8.3-3", kind="no topic filter")
        return cls(packet_id, subscriptions, properties)


@dataclass(slots=True)
class Suback(Packet):
    packet_type: ClassVar[PacketType] = PacketType.SUBACK

    packet_id: int
    reason_codes: list[int]  # one per topic filter, in order; "return codes" in 3.1.1
    properties: Properties = field(default_factory=Properties)

    def encode_body(self, version: int) -> bytes:
        body = self.packet_id.to_bytes(2, "big")
        if version == MQTT_5:
            body += encode_properties(self.properties)
        return body + bytes(self.reason_codes)

    @classmethod
    def decode_body(cls, flags: int, reader: Reader, version: int) -> "Suback":
        packet_id = _check_packet_id(reader.two_byte_int("the packet identifier"), "SUBACK", version)
        properties = decode_properties(reader, "SUBACK") if version == MQTT_5 else Properties()
        codes = list(reader.rest())
        if not codes:
            raise ProtocolError("SUBACK without any reason code")
        for code in codes:
            if version == MQTT_5:
                _check_reason_code(code, "SUBACK")
            elif code not in (0x00, 0x01, 0x02, 0x80):
                raise ProtocolError(f"SUBACK return code 0x{code:02X} is reserved", rule="MQTT-3.9.3-2")
        return cls(packet_id, codes, properties)


# ----------------------------------------------------------------------------------------- UNSUBSCRIBE


@dataclass(slots=True)
class Unsubscribe(Packet):
    packet_type: ClassVar[PacketType] = PacketType.UNSUBSCRIBE
    fixed_flags: ClassVar[int] = 0b0010  # [MQTT-3.10.1-1]

    packet_id: int
    topic_filters: list[str]
    properties: Properties = field(default_factory=Properties)

    def encode_body(self, version: int) -> bytes:
        parts = [self.packet_id.to_bytes(2, "big")]
        if version == MQTT_5:
            parts.append(encode_properties(self.properties))
        parts.extend(encode_utf8(topic_filter) for topic_filter in self.topic_filters)
        return b"".join(parts)

    @classmethod
    def decode_body(cls, flags: int, reader: Reader, version: int) -> "Unsubscribe":
        packet_id = _check_packet_id(reader.two_byte_int("the packet identifier"), "UNSUBSCRIBE", version)
        properties = decode_properties(reader, "UNSUBSCRIBE") if version == MQTT_5 else Properties()
        topic_filters = []
        while reader.remaining:
            topic_filters.append(reader.utf8("a topic filter"))
        if not topic_filters:
            raise ProtocolError("UNSUBSCRIBE without any topic filter", rule="MQTT-3.10.3-2", kind="no topic filter")
        return cls(packet_id, topic_filters, properties)


@dataclass(slots=True)
class Unsuback(Packet):
    packet_type: ClassVar[PacketType] = PacketType.UNSUBACK

    packet_id: int
    reason_codes: list[int] = field(default_factory=list)  # 5.0 only: one per topic filter
    properties: Properties = field(default_factory=Properties)

    def encode_body(self, version: int) -> bytes:
        body = self.packet_id.to_bytes(2, "big")
        if version == MQTT_5:
            body += encode_properties(self.properties) + bytes(self.reason_codes)
        return body

    @classmethod
    def decode_body(cls, flags: int, reader: Reader, version: int) -> "Unsuback":
        packet_id = _check_packet_id(reader.two_byte_int("the packet identifier"), "UNSUBACK", version)
        if version != MQTT_5:
            _expect_end(reader, "UNSUBACK")
            return cls(packet_id)
        properties = decode_properties(reader, "UNSUBACK")
        codes = [_check_reason_code(code, "UNSUBACK") for code in reader.rest()]
        if not codes:
            raise ProtocolError("UNSUBACK without any reason code")
        return cls(packet_id, codes, properties)


# -------------------------------------------------------------------------------- PINGREQ and PINGRESP


@dataclass(slots=True)
class Pingreq(Packet):
    packet_type: ClassVar[PacketType] = PacketType.PINGREQ


@dataclass(slots=True)
class Pingresp(Packet):
    packet_type: ClassVar[PacketType] = PacketType.PINGRESP


# ---------------------------------------------------------------------------------- DISCONNECT and AUTH


@dataclass(slots=True)
class _ReasonOnly(Packet):
    """DISCONNECT and AUTH: an optional reason code and properties, left out when empty (5.0): no
    properties, no Property Length (3.14.2.2.1, 3.15.2.2.1), as for the acknowledgements and as
    mosquitto sends them (e0 01 81)."""

    reason_code: int = 0
    properties: Properties = field(default_factory=Properties)

    def encode_body(self, version: int) -> bytes:
        if version != MQTT_5 or (self.reason_code == 0 and not self.properties):
            return b""
        if not self.properties:
            return bytes((self.reason_code,))
        return bytes((self.reason_code,)) + encode_properties(self.properties)

    @classmethod
    def decode_body(cls, flags: int, reader: Reader, version: int):
        name = cls.packet_type.name
        reason_code, properties = 0, Properties()
        if version == MQTT_5 and reader.remaining:
            reason_code = _check_reason_code(reader.byte("the reason code"), name)
            if reader.remaining:
                properties = decode_properties(reader, name)
        _expect_end(reader, name)
        return cls(reason_code, properties)


@dataclass(slots=True)
class Disconnect(_ReasonOnly):
    packet_type: ClassVar[PacketType] = PacketType.DISCONNECT


@dataclass(slots=True)
class Auth(_ReasonOnly):
    packet_type: ClassVar[PacketType] = PacketType.AUTH

    @classmethod
    def decode_body(cls, flags: int, reader: Reader, version: int) -> "Auth":
        packet = super(Auth, cls).decode_body(flags, reader, version)
        if packet.properties.authentication_method is None:
            # 5.0 3.15.2.2.2: "It is a Protocol Error to omit the Authentication Method"
            raise ProtocolError("AUTH without an Authentication Method", kind="AUTH without Authentication Method")
        return packet


PACKET_CLASSES: dict[int, type[Packet]] = {cls.packet_type: cls for cls in (
    Connect, Connack, Publish, Puback, Pubrec, Pubrel, Pubcomp, Subscribe, Suback, Unsubscribe, Unsuback,
    Pingreq, Pingresp, Disconnect, Auth)}


def _connect_level(body: bytes | memoryview) -> int | None:
    """The protocol level a CONNECT body names, if its protocol name and level agree; else None."""
    try:
        reader = Reader(body)
        name, level = reader.utf8("the protocol name"), reader.byte("the protocol level")
    except MQTTError:
        return None
    return level if PROTOCOL_NAMES.get(level) == name else None


def decode_packet(first_byte: int, body: bytes | memoryview, version: int | None) -> Packet:
    """Decode one packet from its fixed header's first byte and its body (the Remaining Length bytes).

    `version` is the protocol level agreed by CONNECT; None before it, when only CONNECT can be read.
    """
    packet_type, flags = first_byte >> 4, first_byte & 0x0F
    if packet_type == 0 or (packet_type == PacketType.AUTH and version != MQTT_5):
        raise MalformedPacket(f"reserved packet type {packet_type}", kind="reserved packet type")
    cls = PACKET_CLASSES[packet_type]
    if cls is not Publish and flags != cls.fixed_flags:
        # [MQTT-2.2.2-1] and [MQTT-2.2.2-2] (3.1.1); [MQTT-2.1.3-1] (5.0). Before CONNECT the level is the
        # one this CONNECT names.
        level = version if version is not None or cls is not Connect else _connect_level(body)
        error = MalformedPacket(f"{cls.packet_type.name} has invalid fixed header flags 0x{flags:X}",
                                rule=rule_for_version(level, v311="MQTT-2.2.2-2", v5="MQTT-2.1.3-1"),
                                kind="invalid flags")
        error.packet = _PACKET_NAMES[packet_type]
        raise error
    if version is None and cls is not Connect:
        raise ProtocolError(f"{cls.packet_type.name} before CONNECT", rule="MQTT-3.1.0-1")
    try:
        return cls.decode_body(flags, Reader(body, version=version), version)
    except MQTTError as error:
        if error.packet is None:
            error.packet = _PACKET_NAMES[packet_type]
        raise
