"""Errors raised while decoding or validating MQTT packets.

The MQTT 5.0 specification separates two kinds of bad input (section 1.2 and 4.13):

* a *Malformed Packet* cannot be parsed according to the specification (reason code 0x81);
* a *Protocol Error* parses, but carries data the protocol does not allow, or data that is
  inconsistent with the state of the connection (reason code 0x82).

Some rules name a more specific reason code (Topic Name invalid 0x90, Packet too large 0x95 ...).
Every error carries the reason code a v5 receiver would put in its CONNACK or DISCONNECT, and,
where one exists, the normative statement id of the rule that was broken, so that a test (or a
learner) can see exactly which sentence of the specification the input violated.

Each also has a `kind`: a short, stable name of what was wrong ("duplicate property", "Topic Alias 0",
"invalid flags"), and `packet`, the name of the packet it was found in (filled in by `decode_packet`).
Where the specification lets a receiver choose its answer (which reason code, or a close without
one), a table keyed by kind can choose it: refbroker's mosquitto compatibility does (core/compat.py).
An error raised without a kind has its class's generic one ("malformed packet", "protocol error").

MQTT 3.1.1 has no reason codes on DISCONNECT: a 3.1.1 receiver simply closes the connection.

The two specifications number many of the same rules differently (a zero packet identifier breaks
[MQTT-2.3.1-1] in 3.1.1 and [MQTT-2.2.1-3] in 5.0), and an id of one version often names another
rule in the other. An error cites the id of the version being decoded: `rule_for_version` picks it.
MQTT 3.1 numbers none of its sentences; a 3.1 packet is held to the 3.1.1 statement of the same rule.
"""

from __future__ import annotations

from .reason_codes import ReasonCode


def rule_for_version(version: int | None, *, v311: str | None, v5: str | None) -> str | None:
    """The statement id of one rule as the version being decoded numbers it.

    `version` is the protocol level (3 and 4 cite the 3.1.1 id, 5 the 5.0 id). None means the level
    is not known yet (a server before CONNECT): then no id is cited, because the numbers differ.
    `v311` or `v5` is None where that version states the rule without a number."""
    if version is None:
        return None
    return v5 if version == 5 else v311  # 5: MQTT 5.0's protocol level (packets.MQTT_5)


class MQTTError(Exception):
    """Base class: something about the bytes or the packet breaks the MQTT rules."""

    reason_code: ReasonCode = ReasonCode.UNSPECIFIED_ERROR
    generic_kind = "error"
    # Set by StreamDecoder.feed: the complete, valid packets that arrived before the bad one.
    preceding_packets: list | tuple = ()
    # The name of the packet the error is in ("SUBSCRIBE"), when known: set by decode_packet.
    packet: str | None = None

    def __init__(self, message: str, *, rule: str | None = None, reason_code: ReasonCode | None = None,
                 kind: str | None = None):
        super().__init__(message if rule is None else f"{message} [{rule}]")
        self.rule = rule
        if reason_code is not None:
            self.reason_code = reason_code
        self.kind = kind or self.generic_kind


class MalformedPacket(MQTTError):
    """The bytes cannot be parsed as the packet they claim to be (v5 reason code 0x81)."""

    reason_code = ReasonCode.MALFORMED_PACKET
    generic_kind = "malformed packet"


class ProtocolError(MQTTError):
    """The packet parses but its content is not allowed by the protocol (v5 reason code 0x82)."""

    reason_code = ReasonCode.PROTOCOL_ERROR
    generic_kind = "protocol error"


class PacketTooLarge(MQTTError):
    """The packet is larger than the receiver's Maximum Packet Size (v5 reason code 0x95)."""

    reason_code = ReasonCode.PACKET_TOO_LARGE
    generic_kind = "packet too large"


class UnsupportedProtocolVersion(ProtocolError):
    """CONNECT names a protocol name/level pair we do not speak.

    A 3.1.1 server answers CONNACK return code 0x01, a 5.0 server CONNACK 0x84, then closes
    [MQTT-3.1.2-2]. The offending level is kept so the server can choose the answer's format.
    """

    reason_code = ReasonCode.UNSUPPORTED_PROTOCOL_VERSION

    def __init__(self, message: str, *, protocol_name: str, protocol_level: int, rule: str | None = None):
        super().__init__(message, rule=rule, kind="unsupported protocol version")
        self.protocol_name = protocol_name
        self.protocol_level = protocol_level
