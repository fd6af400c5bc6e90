"""Errors raised while decoding or validating MQTT packets.

The MQTT 5.0 specification separates two kinds of bad input (section 1.2 and 4.13):

* a *Malformed Packet* cannot be parsed according to the specification (reason code 0x81);
* a *Protocol Error* parses, but carries data the protocol does not allow, or data that is
  inconsistent with the state of the connection (reason code 0x82).

Some rules name a more specific reason code (Topic Name invalid 0x90, Packet too large 0x95 ...).
Every error carries the reason code a v5 receiver would put in its CONNACK or DISCONNECT, and,
where one exists, the normative statement id of the rule that was broken, so that a test (or a
learner) can see exactly which sentence of the specification the input violated.

MQTT 3.1.1 has no reason codes on DISCONNECT: a 3.1.1 receiver simply closes the connection.
"""

from __future__ import annotations

from .reason_codes import ReasonCode


class MQTTError(Exception):
    """Base class: something about the bytes or the packet breaks the MQTT rules."""

    reason_code: ReasonCode = ReasonCode.UNSPECIFIED_ERROR
    # Set by StreamDecoder.feed: the complete, valid packets that arrived before the bad one.
    preceding_packets: list | tuple = ()

    def __init__(self, message: str, *, rule: str | None = None, reason_code: ReasonCode | None = None):
        super().__init__(message if rule is None else f"{message} [{rule}]")
        self.rule = rule
        if reason_code is not None:
            self.reason_code = reason_code


class MalformedPacket(MQTTError):
    """The bytes cannot be parsed as the packet they claim to be (v5 reason code 0x81)."""

    reason_code = ReasonCode.MALFORMED_PACKET


class ProtocolError(MQTTError):
    """The packet parses but its content is not allowed by the protocol (v5 reason code 0x82)."""

    reason_code = ReasonCode.PROTOCOL_ERROR


class PacketTooLarge(MQTTError):
    """The packet is larger than the receiver's Maximum Packet Size (v5 reason code 0x95)."""

    reason_code = ReasonCode.PACKET_TOO_LARGE


class UnsupportedProtocolVersion(ProtocolError):
    """CONNECT names a protocol name/level pair we do not speak.

    A 3.1.1 server answers CONNACK return code 0x01, a 5.0 server CONNACK 0x84, then closes
    [MQTT-3.1.2-2]. The offending level is kept so the server can choose the answer's format.
    """

    reason_code = ReasonCode.UNSUPPORTED_PROTOCOL_VERSION

    def __init__(self, message: str, *, protocol_name: str, protocol_level: int, rule: str | None = None):
        super().__init__(message, rule=rule)
        self.protocol_name = protocol_name
        self.protocol_level = protocol_level
