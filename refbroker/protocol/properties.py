"""MQTT 5.0 properties (section 2.2.2): the table, the `Properties` value object, and their codec.

A property is an identifier (a Variable Byte Integer, in practice one byte) followed by a value of
the type the table gives. The table also says in which packets each property may appear; a property
in the wrong packet, or of the wrong type, is a Malformed Packet (2.2.2.2). A property that appears
twice where the specification allows it once is a Protocol Error; only User Property (and
Subscription Identifier in PUBLISH) may repeat.

MQTT 3.1 and 3.1.1 have no properties: packets of those versions always carry empty `Properties`.
"""

from __future__ import annotations

import functools
import operator
from dataclasses import dataclass, field, fields
from enum import Enum
from typing import Any, Iterator

from .errors import MalformedPacket, MQTTError, ProtocolError
from .primitives import (
    MAX_VARIABLE_BYTE_INTEGER,
    Reader,
    encode_binary,
    encode_utf8,
    encode_variable_byte_integer,
)
from .reason_codes import ReasonCode


class PropertyType(Enum):
    BYTE = "Byte"
    TWO_BYTE_INTEGER = "Two Byte Integer"
    FOUR_BYTE_INTEGER = "Four Byte Integer"
    VARIABLE_BYTE_INTEGER = "Variable Byte Integer"
    UTF8_STRING = "UTF-8 Encoded String"
    BINARY_DATA = "Binary Data"
    UTF8_STRING_PAIR = "UTF-8 String Pair"


# Where a property may appear. "WILL" stands for the Will Properties inside the CONNECT payload.
CONNECT, CONNACK, PUBLISH, WILL, PUBACK, PUBREC, PUBREL, PUBCOMP = (
    "CONNECT", "CONNACK", "PUBLISH", "WILL", "PUBACK", "PUBREC", "PUBREL", "PUBCOMP")
SUBSCRIBE, SUBACK, UNSUBSCRIBE, UNSUBACK, DISCONNECT, AUTH = (
    "SUBSCRIBE", "SUBACK", "UNSUBSCRIBE", "UNSUBACK", "DISCONNECT", "AUTH")


@dataclass(frozen=True)
class PropertyDefinition:
    identifier: int
    name: str            # the specification's name, e.g. "Session Expiry Interval"
    attribute: str       # the field of `Properties` that holds it, e.g. "session_expiry_interval"
    type: PropertyType
    packets: frozenset[str]
    repeatable: bool = False


def _define(identifier: int, name: str, type_: PropertyType, *packets: str, repeatable: bool = False):
    attribute = name.lower().replace(" ", "_")
    if repeatable:  # a list in `Properties`: subscription_identifiers, user_properties
        attribute = {"user_property": "user_properties"}.get(attribute, attribute + "s")
    return PropertyDefinition(identifier, name, attribute, type_, frozenset(packets), repeatable)


T = PropertyType
PROPERTY_TABLE: tuple[PropertyDefinition, ...] = (
    _define(0x01, "Payload Format Indicator", T.BYTE, PUBLISH, WILL),
    _define(0x02, "Message Expiry Interval", T.FOUR_BYTE_INTEGER, PUBLISH, WILL),
    _define(0x03, "Content Type", T.UTF8_STRING, PUBLISH, WILL),
    _define(0x08, "Response Topic", T.UTF8_STRING, PUBLISH, WILL),
    _define(0x09, "Correlation Data", T.BINARY_DATA, PUBLISH, WILL),
    # Repeats in PUBLISH (one per matching subscription, [MQTT-3.3.4-4]); at most once in SUBSCRIBE.
    _define(0x0B, "Subscription Identifier", T.VARIABLE_BYTE_INTEGER, PUBLISH, SUBSCRIBE, repeatable=True),
    _define(0x11, "Session Expiry Interval", T.FOUR_BYTE_INTEGER, CONNECT, CONNACK, DISCONNECT),
    _define(0x12, "Assigned Client Identifier", T.UTF8_STRING, CONNACK),
    _define(0x13, "Server Keep Alive", T.TWO_BYTE_INTEGER, CONNACK),
    _define(0x15, "Authentication Method", T.UTF8_STRING, CONNECT, CONNACK, AUTH),
    _define(0x16, "Authentication Data", T.BINARY_DATA, CONNECT, CONNACK, AUTH),
    _define(0x17, "Request Problem Information", T.BYTE, CONNECT),
    _define(0x18, "Will Delay Interval", T.FOUR_BYTE_INTEGER, WILL),
    _define(0x19, "Request Response Information", T.BYTE, CONNECT),
    _define(0x1A, "Response Information", T.UTF8_STRING, CONNACK),
    _define(0x1C, "Server Reference", T.UTF8_STRING, CONNACK, DISCONNECT),
    _define(0x1F, "Reason String", T.UTF8_STRING, CONNACK, PUBACK, PUBREC, PUBREL, PUBCOMP, SUBACK, UNSUBACK,
            DISCONNECT, AUTH),
    _define(0x21, "Receive Maximum", T.TWO_BYTE_INTEGER, CONNECT, CONNACK),
    _define(0x22, "Topic Alias Maximum", T.TWO_BYTE_INTEGER, CONNECT, CONNACK),
    _define(0x23, "Topic Alias", T.TWO_BYTE_INTEGER, PUBLISH),
    _define(0x24, "Maximum QoS", T.BYTE, CONNACK),
    _define(0x25, "Retain Available", T.BYTE, CONNACK),
    _define(0x26, "User Property", T.UTF8_STRING_PAIR, CONNECT, CONNACK, PUBLISH, WILL, PUBACK, PUBREC, PUBREL,
            PUBCOMP, SUBSCRIBE, SUBACK, UNSUBSCRIBE, UNSUBACK, DISCONNECT, AUTH, repeatable=True),
    _define(0x27, "Maximum Packet Size", T.FOUR_BYTE_INTEGER, CONNECT, CONNACK),
    _define(0x28, "Wildcard Subscription Available", T.BYTE, CONNACK),
    _define(0x29, "Subscription Identifier Available", T.BYTE, CONNACK),
    _define(0x2A, "Shared Subscription Available", T.BYTE, CONNACK),
)
del T
PROPERTIES_BY_ID: dict[int, PropertyDefinition] = {p.identifier: p for p in PROPERTY_TABLE}
PROPERTIES_BY_ATTRIBUTE: dict[str, PropertyDefinition] = {p.attribute: p for p in PROPERTY_TABLE}

# Values the specification forbids, each "a Protocol Error" in the section named.
_BOOLEAN_BYTE = frozenset({0, 1})
_ALLOWED_VALUES: dict[str, tuple[frozenset[int] | range, str]] = {
    "payload_format_indicator": (_BOOLEAN_BYTE, "3.3.2.3.2"),
    "request_problem_information": (_BOOLEAN_BYTE, "3.1.2.11.7"),
    "request_response_information": (_BOOLEAN_BYTE, "3.1.2.11.6"),
    "maximum_qos": (_BOOLEAN_BYTE, "3.2.2.3.4"),
    "retain_available": (_BOOLEAN_BYTE, "3.2.2.3.5"),
    "wildcard_subscription_available": (_BOOLEAN_BYTE, "3.2.2.3.11"),
    "subscription_identifier_available": (_BOOLEAN_BYTE, "3.2.2.3.12"),
    "shared_subscription_available": (_BOOLEAN_BYTE, "3.2.2.3.13"),
    "receive_maximum": (range(1, 0x10000), "3.1.2.11.3 / 3.2.2.3.3"),
    "maximum_packet_size": (range(1, 0x1_0000_0000), "3.1.2.11.4 / 3.2.2.3.6"),
    "topic_alias": (range(1, 0x10000), "3.3.2.3.4"),
    "subscription_identifiers": (range(1, MAX_VARIABLE_BYTE_INTEGER + 1), "3.3.2.3.8 / 3.8.2.1.2"),
}
# Forbidden values whose Protocol Error has a more specific reason code than 0x82.
# "A Topic Alias value of 0 ... is a Protocol Error, the receiver uses DISCONNECT with Reason Code
# of 0x94 (Topic Alias invalid)" (5.0 section 3.3.4); the sender's rule is [MQTT-3.3.2-8].
_FORBIDDEN_VALUE_REASON: dict[str, tuple[ReasonCode, str]] = {
    "topic_alias": (ReasonCode.TOPIC_ALIAS_INVALID, "MQTT-3.3.2-8"),
}


@dataclass(slots=True)
class Properties:
    """The properties of one packet; a field left at None (or empty list) is absent.

    `wire_order` is the order of the property identifiers on the wire: decoding records it, encoding
    writes the identifiers it lists first, in that order, and the others after them in the table's
    order (the specification leaves the order to the sender; a broker that imitates another one
    byte for byte chooses it). It is not a property: equality and truth ignore it.
    """

    payload_format_indicator: int | None = None
    message_expiry_interval: int | None = None
    content_type: str | None = None
    response_topic: str | None = None
    correlation_data: bytes | None = None
    subscription_identifiers: list[int] = field(default_factory=list)
    session_expiry_interval: int | None = None
    assigned_client_identifier: str | None = None
    server_keep_alive: int | None = None
    authentication_method: str | None = None
    authentication_data: bytes | None = None
    request_problem_information: int | None = None
    will_delay_interval: int | None = None
    request_response_information: int | None = None
    response_information: str | None = None
    server_reference: str | None = None
    reason_string: str | None = None
    receive_maximum: int | None = None
    topic_alias_maximum: int | None = None
    topic_alias: int | None = None
    maximum_qos: int | None = None
    retain_available: int | None = None
    user_properties: list[tuple[str, str]] = field(default_factory=list)
    maximum_packet_size: int | None = None
    wildcard_subscription_available: int | None = None
    subscription_identifier_available: int | None = None
    shared_subscription_available: int | None = None
    wire_order: tuple[int, ...] = field(default=(), compare=False)

    def __repr__(self) -> str:
        return "Properties(" + ", ".join(f"{name}={value!r}" for name, value in self.items()) + ")"

    def __bool__(self) -> bool:
        # Performance: every value at once (operator.attrgetter, in C) compared with the values of an
        # empty Properties, rather than a Python loop over the table; acks and PUBLISHes ask this often.
        return _all_values(self) != _EMPTY_VALUES

    def items(self) -> Iterator[tuple[str, Any]]:
        """(attribute, value) for every property that is present."""
        for definition in PROPERTY_TABLE:
            value = getattr(self, definition.attribute)
            if value is not None and value != []:
                yield definition.attribute, value

    def copy(self) -> "Properties":
        clone = Properties(*_all_values(self))  # the fields in their order, as __init__ takes them
        clone.subscription_identifiers = list(self.subscription_identifiers)
        clone.user_properties = list(self.user_properties)
        clone.wire_order = self.wire_order
        return clone


# All property values of a Properties as one tuple, in field order (as __init__ takes them, wire_order
# excepted); and those of an empty one.
_all_values = operator.attrgetter(*(f.name for f in fields(Properties) if f.name != "wire_order"))
_EMPTY_VALUES = _all_values(Properties())


@functools.lru_cache(maxsize=256)
def _definitions_in(order: tuple[int, ...]) -> tuple[PropertyDefinition, ...]:
    """The table's definitions, those of `order` first and in that order."""
    first = [PROPERTIES_BY_ID[identifier] for identifier in dict.fromkeys(order) if identifier in PROPERTIES_BY_ID]
    return tuple(first) + tuple(definition for definition in PROPERTY_TABLE if definition not in first)


def _encode_value(type_: PropertyType, value: Any) -> bytes:
    if type_ is PropertyType.BYTE:
        return bytes((value,))
    if type_ is PropertyType.TWO_BYTE_INTEGER:
        return value.to_bytes(2, "big")
    if type_ is PropertyType.FOUR_BYTE_INTEGER:
        return value.to_bytes(4, "big")
    if type_ is PropertyType.VARIABLE_BYTE_INTEGER:
        return encode_variable_byte_integer(value)
    if type_ is PropertyType.UTF8_STRING:
        return encode_utf8(value)
    if type_ is PropertyType.BINARY_DATA:
        return encode_binary(value)
    key, text = value
    return encode_utf8(key) + encode_utf8(text)


def encode_properties(properties: Properties | None) -> bytes:
    """Property Length followed by the properties; zero length when there are none [MQTT-2.2.2-1].

    Encoding does not check which packet the properties belong to, so tests can build packets
    that break the rules on purpose; `decode_properties` is the side that checks.
    """
    if properties is None or not properties:
        return b"\x00"  # no properties, the usual case: a Property Length of zero
    body = bytearray()
    for definition in _definitions_in(properties.wire_order) if properties.wire_order else PROPERTY_TABLE:
        value = getattr(properties, definition.attribute)
        if value is None or value == []:
            continue
        identifier = bytes((definition.identifier,))
        values = value if definition.repeatable else (value,)
        for item in values:
            body += identifier
            body += _encode_value(definition.type, item)
    return encode_variable_byte_integer(len(body)) + bytes(body)


def _decode_value(reader: Reader, definition: PropertyDefinition) -> Any:
    what = f"property {definition.name}"
    type_ = definition.type
    if type_ is PropertyType.BYTE:
        return reader.byte(what)
    if type_ is PropertyType.TWO_BYTE_INTEGER:
        return reader.two_byte_int(what)
    if type_ is PropertyType.FOUR_BYTE_INTEGER:
        return reader.four_byte_int(what)
    if type_ is PropertyType.VARIABLE_BYTE_INTEGER:
        return reader.variable_byte_int(what)
    if type_ is PropertyType.UTF8_STRING:
        return reader.utf8(what)
    if type_ is PropertyType.BINARY_DATA:
        return reader.binary(what)
    return (reader.utf8(f"{what} name"), reader.utf8(f"{what} value"))  # [MQTT-1.5.7-1]


def decode_properties(reader: Reader, packet: str) -> Properties:
    """Read a Property Length and the properties after it, as they may appear in `packet`."""
    length = reader.variable_byte_int("the property length")
    if length > reader.remaining:
        raise MalformedPacket(f"property length {length} runs past the end of the packet")
    properties = Properties()
    if length == 0:
        return properties
    end = reader.pos + length
    outer_end, reader.end = reader.end, end  # properties must not read past their own length
    seen: dict[int, None] = {}  # the identifiers in their order on the wire
    try:
        while reader.pos < end:
            identifier = reader.variable_byte_int("a property identifier")
            definition = PROPERTIES_BY_ID.get(identifier)
            if definition is None:
                raise MalformedPacket(f"unknown property identifier 0x{identifier:02X} in {packet}")
            if packet not in definition.packets:
                raise MalformedPacket(f"property {definition.name} is not allowed in {packet}",  # 2.2.2.2
                                      kind="property not allowed")
            repeats_here = definition.repeatable and not (identifier == 0x0B and packet == SUBSCRIBE)
            if identifier in seen and not repeats_here:
                raise ProtocolError(f"property {definition.name} included more than once in {packet}",
                                    kind="duplicate property")
            seen[identifier] = None
            try:
                value = _decode_value(reader, definition)
            except MQTTError as error:
                error.kind = f"{error.kind} in a property"  # e.g. "ill-formed UTF-8 in a property"
                raise
            attribute = definition.attribute
            allowed = _ALLOWED_VALUES.get(attribute)
            if allowed is not None and value not in allowed[0]:
                reason_code, rule = _FORBIDDEN_VALUE_REASON.get(attribute, (None, None))
                raise ProtocolError(f"{definition.name} has the forbidden value {value} (section {allowed[1]})",
                                    rule=rule, reason_code=reason_code, kind=f"{definition.name} {value}")
            if attribute == "response_topic" and ("+" in value or "#" in value):
                # A Response Topic is a Topic Name, so it carries no wildcards [MQTT-3.3.2-14]; a server
                # could only forward it unaltered [MQTT-3.3.2-15], so it refuses the packet instead.
                raise ProtocolError(f"Response Topic {value!r} contains a wildcard", rule="MQTT-3.3.2-14",
                                    kind="wildcard in Response Topic")
            if definition.repeatable:
                getattr(properties, attribute).append(value)
            else:
                setattr(properties, attribute, value)
    finally:
        reader.end = outer_end
    properties.wire_order = tuple(seen)
    return properties
