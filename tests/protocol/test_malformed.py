"""Malformed and invalid packets: what the decoder refuses, with which error, reason code and rule.

`BAD` is a table of byte sequences, one per row: the protocol level the receiver speaks (None: a
server that has not seen CONNECT yet), the bytes in hex (fixed header first), the error class the
decoder must raise, the MQTT 5.0 reason code that error carries (what a v5 receiver puts in its
CONNACK or DISCONNECT), the normative statement id when the codec names one (as the decoded version
numbers it: the two specifications number many of the same rules differently), and a note saying
which rule the bytes break. Each row is its own test. Every row is fed to a `StreamDecoder`, as a
broker would; rows that form one complete frame are also fed to `decode_packet` directly.

`GOOD` holds the near misses that must be *accepted* (U+FEFF kept, an empty topic with a Topic
Alias, a password without a user name in 5.0 ...), so that the table does not reward a decoder
that refuses too much.

Byte cheat sheet: CONNECT 3.1.1 with client id "c" is
    10 0D | 00 04 'MQTT' 4D 51 54 54 | level 04 | flags 02 | keep alive 00 3C | 00 01 63
and in 5.0 the level is 05 and a Property Length (and properties) follows the keep alive.
"""

from __future__ import annotations

from typing import NamedTuple

import pytest
from hypothesis import given
from hypothesis import strategies as st

from conformance import strategies as mqtt_st
from conformance.catalogue import normalise_id
from refbroker.protocol import (
    Connect,
    MalformedPacket,
    PacketTooLarge,
    ProtocolError,
    Publish,
    StreamDecoder,
    Subscribe,
    Subscription,
    UnsupportedProtocolVersion,
    decode_packet,
)
from refbroker.protocol.errors import MQTTError
from refbroker.protocol.primitives import decode_variable_byte_integer, encode_variable_byte_integer
from refbroker.protocol.topics import InvalidTopicName

M, P, U, T, TOO_LARGE = MalformedPacket, ProtocolError, UnsupportedProtocolVersion, InvalidTopicName, PacketTooLarge
#: a row's `rule` when the error must cite no statement: the decoded version states the rule without a number
NONE_CITED = "(none)"


class Bad(NamedTuple):
    id: str
    version: int | None      # 3, 4, 5, or None: a server-side decoder before CONNECT
    hex: str                  # the bytes on the wire
    error: type[MQTTError]    # the exact class expected
    reason: int               # the v5 reason code the error carries
    rule: str | None          # the statement id the error must name (None: not checked; NONE_CITED: no id)
    note: str                 # the rule the bytes break
    max_packet_size: int | None = None


BAD: list[Bad] = [
    # ---- fixed header: reserved flags [MQTT-2.1.3-1] (3.1.1: [MQTT-2.2.2-1], [MQTT-2.2.2-2]) ----------
    Bad("connect-flags-1", None, "11 0D 00 04 4D 51 54 54 04 02 00 3C 00 01 63", M, 0x81, "MQTT-2.2.2-2",
        "CONNECT fixed header flags must be 0000"),
    Bad("connect-flags-1-v5", None, "11 0E 00 04 4D 51 54 54 05 02 00 3C 00 00 01 63", M, 0x81, "MQTT-2.1.3-1",
        "CONNECT fixed header flags must be 0000 (the CONNECT names level 5)"),
    Bad("connect-flags-1-no-version", None, "11 0D 00 04 4D 51 54 58 04 02 00 3C 00 01 63", M, 0x81, NONE_CITED,
        "CONNECT fixed header flags must be 0000; 'MQTX' names no version, whose number to cite"),
    Bad("connack-flags-1", 4, "21 02 00 00", M, 0x81, "MQTT-2.2.2-2", "CONNACK flags must be 0000"),
    Bad("puback-flags-2", 4, "42 02 00 01", M, 0x81, "MQTT-2.2.2-2", "PUBACK flags must be 0000"),
    Bad("pubrec-flags-8", 5, "58 02 00 01", M, 0x81, "MQTT-2.1.3-1", "PUBREC flags must be 0000"),
    Bad("pubrel-flags-0", 4, "60 02 00 01", M, 0x81, "MQTT-2.2.2-2", "PUBREL flags must be 0010 [MQTT-3.6.1-1]"),
    Bad("pubrel-flags-3-v5", 5, "63 02 00 01", M, 0x81, "MQTT-2.1.3-1", "PUBREL flags must be 0010"),
    Bad("pubcomp-flags-1", 4, "71 02 00 01", M, 0x81, "MQTT-2.2.2-2", "PUBCOMP flags must be 0000"),
    Bad("subscribe-flags-0", 4, "80 06 00 01 00 01 61 00", M, 0x81, "MQTT-2.2.2-2",
        "SUBSCRIBE flags must be 0010 [MQTT-3.8.1-1]"),
    Bad("subscribe-flags-3-v5", 5, "83 07 00 01 00 00 01 61 00", M, 0x81, "MQTT-2.1.3-1",
        "SUBSCRIBE flags must be 0010 [MQTT-3.8.1-1]"),
    Bad("suback-flags-2", 4, "92 03 00 01 00", M, 0x81, "MQTT-2.2.2-2", "SUBACK flags must be 0000"),
    Bad("unsubscribe-flags-0", 4, "A0 05 00 01 00 01 61", M, 0x81, "MQTT-2.2.2-2",
        "UNSUBSCRIBE flags must be 0010 [MQTT-3.10.1-1]"),
    Bad("unsuback-flags-1", 4, "B1 02 00 01", M, 0x81, "MQTT-2.2.2-2", "UNSUBACK flags must be 0000"),
    Bad("pingreq-flags-1", 4, "C1 00", M, 0x81, "MQTT-2.2.2-2", "PINGREQ flags must be 0000"),
    Bad("pingresp-flags-8", 4, "D8 00", M, 0x81, "MQTT-2.2.2-2", "PINGRESP flags must be 0000"),
    Bad("disconnect-flags-1", 4, "E1 00", M, 0x81, "MQTT-2.2.2-2", "DISCONNECT flags must be 0000"),
    Bad("disconnect-flags-2-v5", 5, "E2 00", M, 0x81, "MQTT-2.1.3-1", "DISCONNECT flags 0000 [MQTT-3.14.1-1]"),
    Bad("auth-flags-1", 5, "F1 02 18 00", M, 0x81, "MQTT-2.1.3-1", "AUTH flags must be 0000 [MQTT-3.15.1-1]"),
    # ---- packet types ---------------------------------------------------------------------------------
    Bad("type-0-v4", 4, "00 00", M, 0x81, None, "packet type 0 is reserved/forbidden (2.1.2)"),
    Bad("type-0-v5", 5, "00 02 00 01", M, 0x81, None, "packet type 0 is reserved/forbidden (2.1.2)"),
    Bad("auth-in-v311", 4, "F0 00", M, 0x81, None, "type 15 is reserved in 3.1.1 (2.2.1)"),
    Bad("auth-in-v31", 3, "F0 00", M, 0x81, None, "type 15 is reserved in 3.1"),
    Bad("first-packet-pingreq", None, "C0 00", P, 0x82, "MQTT-3.1.0-1", "the first packet must be CONNECT"),
    Bad("first-packet-publish", None, "30 03 00 01 61", P, 0x82, "MQTT-3.1.0-1", "the first packet must be CONNECT"),
    # ---- Remaining Length (Variable Byte Integer, 1.5.5) ---------------------------------------------
    Bad("vbi-5-bytes", 4, "30 FF FF FF FF 7F", M, 0x81, None, "a Variable Byte Integer has at most 4 bytes"),
    Bad("vbi-non-minimal-2", 4, "C0 80 00", M, 0x81, NONE_CITED, "0 encoded in 2 bytes: minimum bytes"),
    Bad("vbi-non-minimal-3", 4, "30 80 80 00", M, 0x81, NONE_CITED, "0 encoded in 3 bytes: minimum bytes"),
    Bad("vbi-non-minimal-v5", 5, "C0 80 00", M, 0x81, "MQTT-1.5.5-1", "0 encoded in 2 bytes: minimum bytes"),
    Bad("vbi-non-minimal-property-length", 5, "40 05 00 01 00 80 00", M, 0x81, "MQTT-1.5.5-1",
        "Property Length 0 in 2 bytes: minimum bytes"),
    Bad("too-large-10MB-header-only", 5, "30 80 80 80 05", TOO_LARGE, 0x95, "MQTT-3.1.2-24",
        "Remaining Length 10 MiB > Maximum Packet Size 1024", 1024),
    Bad("too-large-by-one", 4, "30 06 00 01 61 41 42 43", TOO_LARGE, 0x95, NONE_CITED,
        "8 bytes > Maximum Packet Size 7 (fixed header included)", 7),
    # ---- truncated bodies (Remaining Length agrees with the bytes, but a field runs out) --------------
    Bad("connect-truncated-protocol-name", None, "10 03 00 04 4D", M, 0x81, None, "protocol name cut short"),
    Bad("connect-truncated-after-flags", None, "10 08 00 04 4D 51 54 54 04 02", M, 0x81, None,
        "no Keep Alive"),
    Bad("connect-truncated-client-id", None, "10 0D 00 04 4D 51 54 54 04 02 00 3C 00 05 63", M, 0x81, None,
        "client id length 5, 1 byte present"),
    Bad("connect-truncated-will", None, "10 0D 00 04 4D 51 54 54 04 06 00 3C 00 01 63", M, 0x81, None,
        "Will Flag set, no Will Topic"),
    Bad("connect-v5-truncated-properties", None, "10 0B 00 04 4D 51 54 54 05 02 00 3C 05", M, 0x81, None,
        "Property Length 5, nothing follows"),
    Bad("connack-truncated", 4, "20 01 00", M, 0x81, None, "no return code"),
    Bad("connack-v5-no-property-length", 5, "20 02 00 00", M, 0x81, None, "5.0 CONNACK needs a Property Length"),
    Bad("publish-truncated-topic", 4, "30 03 00 05 61", M, 0x81, None, "topic length 5, 1 byte present"),
    Bad("publish-qos1-no-packet-id", 4, "32 03 00 01 61", M, 0x81, None, "QoS 1 needs a Packet Identifier"),
    Bad("publish-v5-no-property-length", 5, "30 03 00 01 61", M, 0x81, None, "5.0 PUBLISH needs a Property Length"),
    Bad("puback-truncated", 4, "40 01 00", M, 0x81, None, "Packet Identifier cut short"),
    Bad("pubrec-truncated", 5, "50 01 00", M, 0x81, None, "Packet Identifier cut short"),
    Bad("pubrel-truncated", 4, "62 00", M, 0x81, None, "no Packet Identifier"),
    Bad("pubcomp-truncated", 4, "70 01 00", M, 0x81, None, "Packet Identifier cut short"),
    Bad("subscribe-no-options", 4, "82 05 00 01 00 01 61", M, 0x81, None, "topic filter without options byte"),
    Bad("suback-truncated", 4, "90 01 00", M, 0x81, None, "Packet Identifier cut short"),
    Bad("unsubscribe-truncated-filter", 4, "A2 05 00 01 00 03 61", M, 0x81, None, "filter length 3, 1 present"),
    Bad("unsuback-truncated", 4, "B0 01 00", M, 0x81, None, "Packet Identifier cut short"),
    Bad("disconnect-v5-property-length-past-end", 5, "E0 02 00 05", M, 0x81, None,
        "Property Length 5, nothing follows"),
    Bad("auth-truncated-property", 5, "F0 03 18 01 15", M, 0x81, None,
        "Authentication Method with no string inside the Property Length"),
    # ---- trailing garbage ------------------------------------------------------------------------------
    Bad("connect-trailing-byte", None, "10 0E 00 04 4D 51 54 54 04 02 00 3C 00 01 63 FF", M, 0x81, None,
        "a byte after the last CONNECT field"),
    Bad("connack-trailing-byte", 4, "20 03 00 00 00", M, 0x81, None, "3.1.1 CONNACK is exactly 2 bytes"),
    Bad("puback-v311-trailing-byte", 4, "40 03 00 01 00", M, 0x81, None, "3.1.1 PUBACK has no reason code"),
    Bad("unsuback-v311-trailing-byte", 4, "B0 03 00 01 00", M, 0x81, None, "3.1.1 UNSUBACK has no reason codes"),
    Bad("puback-v5-trailing-byte", 5, "40 05 00 01 00 00 FF", M, 0x81, None, "a byte after the properties"),
    Bad("pingreq-with-body", 4, "C0 01 00", M, 0x81, None, "PINGREQ has no variable header or payload"),
    Bad("pingresp-with-body", 5, "D0 01 00", M, 0x81, None, "PINGRESP has no variable header or payload"),
    Bad("disconnect-v311-with-body", 4, "E0 01 00", M, 0x81, None, "3.1.1 DISCONNECT has no body"),
    Bad("disconnect-v31-with-body", 3, "E0 02 00 00", M, 0x81, None, "3.1 DISCONNECT has no body"),
    # ---- UTF-8 Encoded Strings [MQTT-1.5.4-1] (3.1.1: [MQTT-1.5.3-1]) ---------------------------------
    Bad("utf8-overlong-slash", 4, "30 04 00 02 C0 AF", M, 0x81, "MQTT-1.5.3-1", "overlong '/' C0 AF"),
    Bad("utf8-overlong-nul", 4, "30 04 00 02 C0 80", M, 0x81, "MQTT-1.5.3-1", "overlong U+0000 C0 80"),
    Bad("utf8-overlong-3-byte", 4, "30 05 00 03 E0 80 AF", M, 0x81, "MQTT-1.5.3-1", "overlong '/' E0 80 AF"),
    Bad("utf8-surrogate-high", 4, "30 05 00 03 ED A0 80", M, 0x81, "MQTT-1.5.3-1", "U+D800 ED A0 80"),
    Bad("utf8-surrogate-low", 5, "30 06 00 03 ED BF BF 00", M, 0x81, "MQTT-1.5.4-1", "U+DFFF ED BF BF"),
    Bad("utf8-bare-continuation", 4, "30 03 00 01 80", M, 0x81, "MQTT-1.5.3-1", "continuation byte 80 alone"),
    Bad("utf8-truncated-multibyte", 4, "30 04 00 02 E2 82", M, 0x81, "MQTT-1.5.3-1", "'€' E2 82 AC cut short"),
    Bad("utf8-truncated-then-ascii", 4, "30 04 00 02 C3 41", M, 0x81, "MQTT-1.5.3-1", "C3 not continued"),
    Bad("utf8-above-10FFFF", 4, "30 06 00 04 F4 90 80 80", M, 0x81, "MQTT-1.5.3-1", "U+110000 does not exist"),
    Bad("utf8-byte-FF", 4, "30 03 00 01 FF", M, 0x81, "MQTT-1.5.3-1", "FF never occurs in UTF-8"),
    Bad("utf8-surrogate-client-id", None, "10 0F 00 04 4D 51 54 54 04 02 00 3C 00 03 ED A0 80", M, 0x81,
        "MQTT-1.5.3-1", "client id U+D800"),
    Bad("utf8-user-property-name", 5, "30 0B 00 01 61 07 26 00 02 C0 80 00 00", M, 0x81, "MQTT-1.5.4-1",
        "User Property name overlong (1.5.7)"),
    Bad("utf8-subscribe-filter", 4, "82 06 00 01 00 01 80 00", M, 0x81, "MQTT-1.5.3-1",
        "topic filter bare continuation byte [MQTT-3.8.3-1]"),
    # ---- U+0000 [MQTT-1.5.4-2] (3.1.1: [MQTT-1.5.3-2]) -------------------------------------------------
    Bad("nul-in-topic", 4, "30 05 00 03 61 00 62", M, 0x81, "MQTT-1.5.3-2", "topic 'a\\0b'"),
    Bad("nul-in-client-id", None, "10 0D 00 04 4D 51 54 54 04 02 00 3C 00 01 00", M, 0x81, "MQTT-1.5.3-2",
        "client id '\\0'"),
    Bad("nul-in-user-property-name", 5, "30 0B 00 01 61 07 26 00 01 00 00 01 76", M, 0x81, "MQTT-1.5.4-2",
        "User Property name '\\0'"),
    Bad("nul-in-user-property-value", 5, "30 0B 00 01 61 07 26 00 01 6B 00 01 00", M, 0x81, "MQTT-1.5.4-2",
        "User Property value '\\0'"),
    Bad("nul-in-content-type", 5, "30 08 00 01 61 04 03 00 01 00", M, 0x81, "MQTT-1.5.4-2", "Content Type '\\0'"),
    Bad("nul-in-username", None, "10 10 00 04 4D 51 54 54 04 82 00 3C 00 01 63 00 01 00", M, 0x81,
        "MQTT-1.5.3-2", "user name '\\0'"),
    # ---- PUBLISH ---------------------------------------------------------------------------------------
    Bad("publish-qos3", 4, "36 05 00 01 61 00 01", M, 0x81, "MQTT-3.3.1-4", "both QoS bits set"),
    Bad("publish-qos3-v5", 5, "36 06 00 01 61 00 01 00", M, 0x81, "MQTT-3.3.1-4", "both QoS bits set"),
    Bad("publish-dup-qos0", 4, "38 03 00 01 61", M, 0x81, "MQTT-3.3.1-2", "DUP must be 0 for QoS 0"),
    Bad("publish-dup-qos0-v5", 5, "39 04 00 01 61 00", M, 0x81, "MQTT-3.3.1-2", "DUP must be 0 for QoS 0"),
    Bad("publish-topic-plus", 4, "30 03 00 01 2B", T, 0x90, "MQTT-3.3.2-2", "'+' in a topic name"),
    Bad("publish-topic-hash", 4, "30 03 00 01 23", T, 0x90, "MQTT-3.3.2-2", "'#' in a topic name"),
    Bad("publish-topic-a-hash", 5, "30 06 00 03 61 2F 23 00", T, 0x90, "MQTT-3.3.2-2", "'a/#' as a topic name"),
    Bad("publish-topic-plus-inside", 4, "30 07 00 05 61 2F 2B 2F 62", T, 0x90, "MQTT-3.3.2-2", "'a/+/b'"),
    Bad("publish-empty-topic-v311", 4, "30 02 00 00", T, 0x90, "MQTT-4.7.3-1", "a topic name has 1+ characters"),
    Bad("publish-empty-topic-v31", 3, "32 04 00 00 00 01", T, 0x90, "MQTT-4.7.3-1", "a topic name has 1+ characters"),
    Bad("publish-empty-topic-no-alias-v5", 5, "30 03 00 00 00", P, 0x82, None,
        "empty topic needs a Topic Alias (3.3.2.1)"),
    # ---- Packet Identifier 0 [MQTT-2.2.1-3] (3.1.1: [MQTT-2.3.1-1]) -------------------------------------
    Bad("packet-id-0-publish-qos1", 4, "32 05 00 01 61 00 00", P, 0x82, "MQTT-2.3.1-1", "PUBLISH QoS 1 id 0"),
    Bad("packet-id-0-publish-qos2-v5", 5, "34 06 00 01 61 00 00 00", P, 0x82, "MQTT-2.2.1-3", "PUBLISH QoS 2 id 0"),
    Bad("packet-id-0-puback", 4, "40 02 00 00", P, 0x82, "MQTT-2.3.1-1", "PUBACK id 0"),
    Bad("packet-id-0-pubrec", 5, "50 02 00 00", P, 0x82, "MQTT-2.2.1-3", "PUBREC id 0"),
    Bad("packet-id-0-pubrel", 4, "62 02 00 00", P, 0x82, "MQTT-2.3.1-1", "PUBREL id 0"),
    Bad("packet-id-0-pubcomp", 4, "70 02 00 00", P, 0x82, "MQTT-2.3.1-1", "PUBCOMP id 0"),
    Bad("packet-id-0-subscribe", 4, "82 06 00 00 00 01 61 00", P, 0x82, "MQTT-2.3.1-1", "SUBSCRIBE id 0"),
    Bad("packet-id-0-suback", 4, "90 03 00 00 00", P, 0x82, "MQTT-2.3.1-1", "SUBACK id 0"),
    Bad("packet-id-0-unsubscribe", 5, "A2 06 00 00 00 00 01 61", P, 0x82, "MQTT-2.2.1-3", "UNSUBSCRIBE id 0"),
    Bad("packet-id-0-unsuback", 4, "B0 02 00 00", P, 0x82, "MQTT-2.3.1-1", "UNSUBACK id 0"),
    # ---- CONNECT ---------------------------------------------------------------------------------------
    Bad("connect-reserved-flag", None, "10 0D 00 04 4D 51 54 54 04 03 00 3C 00 01 63", M, 0x81, "MQTT-3.1.2-3",
        "reserved Connect Flag (bit 0) set"),
    Bad("connect-reserved-flag-v5", None, "10 0E 00 04 4D 51 54 54 05 03 00 3C 00 00 01 63", M, 0x81,
        "MQTT-3.1.2-3", "reserved Connect Flag (bit 0) set"),
    Bad("connect-will-qos3-v311", None, "10 0D 00 04 4D 51 54 54 04 1E 00 3C 00 01 63", M, 0x81, "MQTT-3.1.2-14",
        "Will QoS 3"),
    Bad("connect-will-qos3-v5", None, "10 0E 00 04 4D 51 54 54 05 1E 00 3C 00 00 01 63", M, 0x81, "MQTT-3.1.2-12",
        "Will QoS 3 is a Malformed Packet (3.1.2.6)"),
    Bad("connect-will-qos-without-will-v311", None, "10 0D 00 04 4D 51 54 54 04 0A 00 3C 00 01 63", P, 0x82,
        "MQTT-3.1.2-13", "Will QoS 1 with Will Flag 0"),
    Bad("connect-will-qos-without-will-v5", None, "10 0E 00 04 4D 51 54 54 05 12 00 3C 00 00 01 63", P, 0x82,
        "MQTT-3.1.2-11", "Will QoS 2 with Will Flag 0"),
    Bad("connect-will-retain-without-will-v311", None, "10 0D 00 04 4D 51 54 54 04 22 00 3C 00 01 63", P, 0x82,
        "MQTT-3.1.2-15", "Will Retain 1 with Will Flag 0"),
    Bad("connect-will-retain-without-will-v5", None, "10 0E 00 04 4D 51 54 54 05 22 00 3C 00 00 01 63", P, 0x82,
        "MQTT-3.1.2-13", "Will Retain 1 with Will Flag 0"),
    Bad("connect-password-without-username-v311", None,
        "10 11 00 04 4D 51 54 54 04 42 00 3C 00 01 63 00 02 70 77", P, 0x82, "MQTT-3.1.2-22",
        "3.1.1: Password Flag without User Name Flag"),
    Bad("connect-password-without-username-v31", None,
        "10 13 00 06 4D 51 49 73 64 70 03 42 00 3C 00 01 63 00 02 70 77", P, 0x82, "MQTT-3.1.2-22",
        "3.1: Password Flag without User Name Flag"),
    Bad("connect-unknown-protocol-name", None, "10 0D 00 04 4D 51 54 58 04 02 00 3C 00 01 63", P, 0x82,
        "MQTT-3.1.2-1", "protocol name 'MQTX'"),
    Bad("connect-will-topic-wildcard", None, "10 12 00 04 4D 51 54 54 04 06 00 3C 00 01 63 00 01 23 00 00", P,
        0x82, "MQTT-3.3.2-2", "Will Topic '#' is not a topic name"),
    # (unsupported protocol levels are in UNSUPPORTED below: they also check .protocol_level)
    # ---- SUBSCRIBE / UNSUBSCRIBE -----------------------------------------------------------------------
    Bad("subscribe-no-filters-v311", 4, "82 02 00 01", P, 0x82, "MQTT-3.8.3-3", "at least one topic filter"),
    Bad("subscribe-no-filters-v5", 5, "82 03 00 01 00", P, 0x82, "MQTT-3.8.3-2", "at least one topic filter"),
    Bad("subscribe-reserved-bits-v311", 4, "82 06 00 01 00 01 61 04", M, 0x81, "MQTT-3-8.3-4",
        "upper 6 bits of Requested QoS are reserved (the id is spelled so in 3.1.1)"),
    Bad("subscribe-qos3-v311", 4, "82 06 00 01 00 01 61 03", M, 0x81, "MQTT-3-8.3-4", "Requested QoS 3"),
    Bad("subscribe-reserved-bits-v5", 5, "82 07 00 01 00 00 01 61 40", M, 0x81, "MQTT-3.8.3-5",
        "Subscription Options bits 6-7 reserved"),
    Bad("subscribe-qos3-v5", 5, "82 07 00 01 00 00 01 61 03", P, 0x82, None, "Maximum QoS 3 (3.8.3.1)"),
    Bad("subscribe-retain-handling-3", 5, "82 07 00 01 00 00 01 61 30", P, 0x82, None, "Retain Handling 3 (3.8.3.1)"),
    Bad("subscribe-no-local-shared", 5, "82 10 00 01 00 00 0A 24 73 68 61 72 65 2F 67 2F 61 04", P, 0x82,
        "MQTT-3.8.3-4", "No Local on '$share/g/a'"),
    Bad("unsubscribe-no-filters-v311", 4, "A2 02 00 01", P, 0x82, "MQTT-3.10.3-2", "at least one topic filter"),
    Bad("unsubscribe-no-filters-v5", 5, "A2 03 00 01 00", P, 0x82, "MQTT-3.10.3-2", "at least one topic filter"),
    # ---- v5 properties: unknown, misplaced (2.2.2.2, Malformed) ------------------------------------------
    Bad("property-unknown-0x04", 5, "30 06 00 01 61 02 04 00", M, 0x81, None, "no property 0x04"),
    Bad("property-unknown-0x00", 5, "40 06 00 01 00 02 00 00", M, 0x81, None, "no property 0x00"),
    Bad("property-topic-alias-in-connect", None, "10 11 00 04 4D 51 54 54 05 02 00 3C 03 23 00 01 00 01 63", M,
        0x81, None, "Topic Alias is a PUBLISH property"),
    Bad("property-will-delay-in-connect", None, "10 13 00 04 4D 51 54 54 05 02 00 3C 05 18 00 00 00 05 00 01 63",
        M, 0x81, None, "Will Delay Interval belongs in the Will Properties"),
    Bad("property-session-expiry-in-publish", 5, "30 09 00 01 61 05 11 00 00 00 0A", M, 0x81, None,
        "Session Expiry Interval is not a PUBLISH property"),
    Bad("property-reason-string-in-subscribe", 5, "82 0A 00 01 03 1F 00 00 00 01 61 00", M, 0x81, None,
        "Reason String is not a SUBSCRIBE property"),
    Bad("property-subscription-id-in-connack", 5, "20 05 00 00 02 0B 01", M, 0x81, None,
        "Subscription Identifier is not a CONNACK property"),
    Bad("property-will-delay-in-disconnect", 5, "E0 07 00 05 18 00 00 00 01", M, 0x81, None,
        "Will Delay Interval is not a DISCONNECT property"),
    Bad("property-length-past-body", 5, "30 05 00 01 61 05 01", M, 0x81, None,
        "Property Length 5 with 1 byte left"),
    Bad("property-value-past-property-length", 5, "30 08 00 01 61 01 02 00 00 00", M, 0x81, None,
        "Message Expiry needs 4 bytes, the Property Length leaves 0"),
    # ---- v5 properties: duplicated (Protocol Error) -----------------------------------------------------
    Bad("duplicate-session-expiry-connect", None,
        "10 18 00 04 4D 51 54 54 05 02 00 3C 0A 11 00 00 00 0A 11 00 00 00 0A 00 01 63", P, 0x82, None,
        "Session Expiry Interval twice (3.1.2.11.2)"),
    Bad("duplicate-topic-alias-publish", 5, "30 0A 00 01 61 06 23 00 01 23 00 02", P, 0x82, None,
        "Topic Alias twice (3.3.2.3.4)"),
    Bad("duplicate-reason-string-puback", 5, "40 0C 00 01 00 08 1F 00 01 78 1F 00 01 78", P, 0x82, None,
        "Reason String twice (3.4.2.2.2)"),
    Bad("duplicate-subscription-id-subscribe", 5, "82 0A 00 01 04 0B 01 0B 02 00 01 61 00", P, 0x82, None,
        "Subscription Identifier twice in SUBSCRIBE (3.8.2.1.2)"),
    Bad("duplicate-content-type-will", None,
        "10 1C 00 04 4D 51 54 54 05 06 00 3C 00 00 01 63 08 03 00 01 78 03 00 01 78 00 01 77 00 00", P, 0x82,
        None, "Will Content Type twice (3.1.3.2.5)"),
    Bad("duplicate-session-expiry-disconnect", 5, "E0 0C 00 0A 11 00 00 00 01 11 00 00 00 01", P, 0x82, None,
        "Session Expiry Interval twice (3.14.2.2.2)"),
    Bad("duplicate-authentication-method-auth", 5, "F0 0A 18 08 15 00 01 78 15 00 01 78", P, 0x82, None,
        "Authentication Method twice (3.15.2.2.2)"),
    # ---- v5 properties: forbidden values (Protocol Error) -----------------------------------------------
    Bad("receive-maximum-0", None, "10 11 00 04 4D 51 54 54 05 02 00 3C 03 21 00 00 00 01 63", P, 0x82, None,
        "Receive Maximum 0 (3.1.2.11.3)"),
    Bad("receive-maximum-0-connack", 5, "20 06 00 00 03 21 00 00", P, 0x82, None, "Receive Maximum 0 (3.2.2.3.3)"),
    Bad("maximum-packet-size-0", None, "10 13 00 04 4D 51 54 54 05 02 00 3C 05 27 00 00 00 00 00 01 63", P, 0x82,
        None, "Maximum Packet Size 0 (3.1.2.11.4)"),
    Bad("topic-alias-0", 5, "30 07 00 01 61 03 23 00 00", P, 0x94, "MQTT-3.3.2-8",
        "Topic Alias 0: DISCONNECT 0x94 Topic Alias invalid (3.3.4)"),
    Bad("response-topic-with-wildcard", 5, "30 0A 00 01 74 06 08 00 03 61 2F 2B", P, 0x82, "MQTT-3.3.2-14",
        "Response Topic 'a/+' contains a wildcard (3.3.2.3.5)"),
    Bad("subscription-identifier-0-subscribe", 5, "82 08 00 01 02 0B 00 00 01 61 00", P, 0x82, None,
        "Subscription Identifier 0 (3.8.2.1.2)"),
    Bad("subscription-identifier-0-publish", 5, "30 06 00 01 61 02 0B 00", P, 0x82, None,
        "Subscription Identifier 0 (3.3.2.3.8)"),
    Bad("payload-format-indicator-2", 5, "30 06 00 01 61 02 01 02", P, 0x82, None,
        "Payload Format Indicator is 0 or 1 (3.3.2.3.2)"),
    Bad("request-problem-information-2", None, "10 10 00 04 4D 51 54 54 05 02 00 3C 02 17 02 00 01 63", P, 0x82,
        None, "Request Problem Information is 0 or 1 (3.1.2.11.7)"),
    Bad("request-response-information-2", None, "10 10 00 04 4D 51 54 54 05 02 00 3C 02 19 02 00 01 63", P, 0x82,
        None, "Request Response Information is 0 or 1 (3.1.2.11.6)"),
    Bad("maximum-qos-2", 5, "20 05 00 00 02 24 02", P, 0x82, None, "Maximum QoS is 0 or 1 (3.2.2.3.4)"),
    Bad("retain-available-2", 5, "20 05 00 00 02 25 02", P, 0x82, None, "Retain Available is 0 or 1 (3.2.2.3.5)"),
    Bad("authentication-data-without-method", None,
        "10 12 00 04 4D 51 54 54 05 02 00 3C 04 16 00 01 AA 00 01 63", P, 0x82, None,
        "Authentication Data without Authentication Method (3.1.2.11.10)"),
    Bad("auth-without-method", 5, "F0 02 18 00", P, 0x82, None, "AUTH needs an Authentication Method (3.15.2.2.2)"),
    Bad("auth-abbreviated", 5, "F0 00", P, 0x82, None, "reason 0, no properties: still no Authentication Method"),
    # ---- reason codes that the packet may not carry (2.4) ---------------------------------------------
    Bad("reason-puback-0x05", 5, "40 03 00 01 05", P, 0x82, None, "0x05 is no reason code"),
    Bad("reason-pubrel-0x10", 5, "62 03 00 01 10", P, 0x82, None, "0x10 is a PUBACK code, not a PUBREL one"),
    Bad("reason-pubcomp-0x80", 5, "70 03 00 01 80", P, 0x82, None, "PUBCOMP has only 0x00 and 0x92"),
    Bad("reason-disconnect-0x05", 5, "E0 01 05", P, 0x82, None, "0x05 is no reason code"),
    Bad("reason-disconnect-0x84", 5, "E0 01 84", P, 0x82, None, "0x84 is a CONNACK-only code"),
    Bad("reason-connack-0x01", 5, "20 03 00 01 00", P, 0x82, None, "0x01 is no CONNACK reason code"),
    Bad("return-code-connack-v311-6", 4, "20 02 00 06", P, 0x82, None, "3.1.1 CONNACK return codes are 0-5"),
    Bad("connack-reserved-ack-flags", 4, "20 02 02 00", M, 0x81, NONE_CITED,
        "bits 7-1 of byte 1 reserved (3.2.2.1; 3.1.1's [MQTT-3.2.2-1] is about Session Present)"),
    Bad("connack-reserved-ack-flags-v5", 5, "20 03 02 00 00", M, 0x81, "MQTT-3.2.2-1", "bits 7-1 of byte 1 reserved"),
    Bad("reason-suback-0x03", 5, "90 04 00 01 00 03", P, 0x82, None, "0x03 is no SUBACK reason code"),
    Bad("return-code-suback-v311-0x03", 4, "90 03 00 01 03", P, 0x82, "MQTT-3.9.3-2", "3.1.1: 0, 1, 2 or 0x80"),
    Bad("return-code-suback-v311-0x87", 4, "90 03 00 01 87", P, 0x82, "MQTT-3.9.3-2", "0x87 exists only in 5.0"),
    Bad("suback-without-codes", 4, "90 02 00 01", P, 0x82, None, "one return code per topic filter"),
    Bad("reason-unsuback-0x02", 5, "B0 04 00 01 00 02", P, 0x82, None, "0x02 is no UNSUBACK reason code"),
    Bad("unsuback-v5-without-codes", 5, "B0 03 00 01 00", P, 0x82, None, "one reason code per topic filter"),
    Bad("reason-auth-0x01", 5, "F0 01 01", P, 0x82, None, "AUTH has only 0x00, 0x18 and 0x19"),
]


class Unsupported(NamedTuple):
    id: str
    hex: str
    protocol_name: str
    protocol_level: int
    note: str


UNSUPPORTED: list[Unsupported] = [
    Unsupported("mqtt-level-6", "10 0D 00 04 4D 51 54 54 06 02 00 3C 00 01 63", "MQTT", 6, "no MQTT 6"),
    Unsupported("mqtt-level-0", "10 0D 00 04 4D 51 54 54 00 02 00 3C 00 01 63", "MQTT", 0, "no level 0"),
    Unsupported("mqtt-level-3", "10 0D 00 04 4D 51 54 54 03 02 00 3C 00 01 63", "MQTT", 3,
                "level 3 goes with the name 'MQIsdp'"),
    Unsupported("mqisdp-level-4", "10 0F 00 06 4D 51 49 73 64 70 04 02 00 3C 00 01 63", "MQIsdp", 4,
                "'MQIsdp' is only level 3"),
    Unsupported("bridge-bit-0x84", "10 0D 00 04 4D 51 54 54 84 02 00 3C 00 01 63", "MQTT", 0x84,
                "mosquitto's bridge bit is not a standard level"),
]


# ------------------------------------------------------------------------------------------- helpers


def frame_of(data: bytes) -> tuple[int, bytes] | None:
    """(first byte, body) if `data` is exactly one complete frame with a valid Remaining Length."""
    try:
        decoded = decode_variable_byte_integer(data, 1)
    except MalformedPacket:
        return None
    if decoded is None:
        return None
    length, used = decoded
    body = data[1 + used:]
    return (data[0], body) if len(body) == length else None


def version_of(row: Bad) -> str | None:
    """The MQTT version whose statements the row's error must cite: the receiver's, or before CONNECT the one
    the CONNECT names (None when the bytes name none). MQTT 3.1 numbers no statements; a 3.1 packet is held to
    the 3.1.1 statement of the same rule."""
    level = row.version
    if level is None:
        frame = frame_of(bytes.fromhex(row.hex))
        body = frame[1] if frame is not None else b""
        name_length = int.from_bytes(body[:2], "big") if len(body) >= 2 else 0
        name, level = body[2:2 + name_length], body[2 + name_length] if len(body) > 2 + name_length else None
        if (name, level) not in ((b"MQIsdp", 3), (b"MQTT", 4), (b"MQTT", 5)):
            return None
    return "5.0" if level == 5 else "3.1.1"


def check_error(exc: MQTTError, row: Bad) -> None:
    assert type(exc) is row.error, f"{row.id}: {type(exc).__name__} ({exc}) instead of {row.error.__name__}"
    assert exc.reason_code == row.reason, f"{row.id}: reason code 0x{exc.reason_code:02X}, expected 0x{row.reason:02X}"
    if row.rule == NONE_CITED:
        assert exc.rule is None, f"{row.id}: cites {exc.rule!r}, which the decoded version does not number"
    elif row.rule is not None:
        assert exc.rule == row.rule, f"{row.id}: rule {exc.rule!r}, expected {row.rule!r}"


# --------------------------------------------------------------------------------------------- tests


def test_the_table_is_large_and_ids_are_unique() -> None:
    assert len(BAD) >= 70
    ids = [row.id for row in BAD] + [row.id for row in UNSUPPORTED]
    assert len(ids) == len(set(ids))


@pytest.mark.parametrize("row", BAD, ids=[row.id for row in BAD])
def test_stream_decoder_refuses(row: Bad) -> None:
    decoder = StreamDecoder(row.version, max_packet_size=row.max_packet_size)
    with pytest.raises(MQTTError) as caught:
        decoder.feed(bytes.fromhex(row.hex))
    check_error(caught.value, row)


COMPLETE_FRAMES = [row for row in BAD if row.max_packet_size is None and frame_of(bytes.fromhex(row.hex))]


@pytest.mark.parametrize("row", COMPLETE_FRAMES, ids=[row.id for row in COMPLETE_FRAMES])
def test_decode_packet_refuses(row: Bad) -> None:
    first_byte, body = frame_of(bytes.fromhex(row.hex))
    with pytest.raises(MQTTError) as caught:
        decode_packet(first_byte, body, row.version)
    check_error(caught.value, row)


@pytest.mark.parametrize("row", BAD, ids=[row.id for row in BAD])
def test_the_cited_statement_is_one_of_the_decoded_version(row: Bad) -> None:
    """Ids are numbered per version: whatever the codec cites must exist in the catalogue of the version it
    decoded (in both, where the bytes name none), so a reader of the error finds the rule. An id of one
    version often names another rule in the other ([MQTT-3.2.2-1] is the reserved CONNACK flags in 5.0,
    Session Present in 3.1.1); that the right one is cited is what each row's `rule` pins."""
    decoder = StreamDecoder(row.version, max_packet_size=row.max_packet_size)
    with pytest.raises(MQTTError) as caught:
        decoder.feed(bytes.fromhex(row.hex))
    rule, version = caught.value.rule, version_of(row)
    if rule is None:
        return
    for catalogue_version in (version,) if version is not None else ("3.1.1", "5.0"):
        try:
            normalise_id(catalogue_version, rule)
        except KeyError as exc:
            pytest.fail(f"{row.id}: decoding MQTT {version or '(version not known yet)'} cites {rule}: {exc.args[0]}")


@pytest.mark.parametrize("row", UNSUPPORTED, ids=[row.id for row in UNSUPPORTED])
def test_unsupported_protocol_version(row: Unsupported) -> None:
    with pytest.raises(UnsupportedProtocolVersion) as caught:
        StreamDecoder().feed(bytes.fromhex(row.hex))
    exc = caught.value
    assert exc.reason_code == 0x84  # CONNACK 0x84 in 5.0, return code 0x01 in 3.1.1 [MQTT-3.1.2-2]
    assert exc.rule == "MQTT-3.1.2-2"
    assert exc.protocol_name == row.protocol_name
    assert exc.protocol_level == row.protocol_level


def test_packet_too_large_is_refused_from_the_fixed_header_alone() -> None:
    """A peer announcing 10 MiB is refused before its body is buffered (5.0 3.1.2.11.4)."""
    decoder = StreamDecoder(5, max_packet_size=1024)
    header = bytes.fromhex("30 80 80 80 05")  # PUBLISH, Remaining Length 10,485,760
    assert decoder.feed(header[:3]) == []  # the Remaining Length is not complete yet: no verdict
    with pytest.raises(PacketTooLarge) as caught:
        decoder.feed(header[3:])
    assert caught.value.reason_code == 0x95


def test_packet_exactly_at_the_maximum_size_is_accepted() -> None:
    data = bytes.fromhex("30 06 00 01 61 41 42 43")  # 8 bytes, fixed header included
    assert StreamDecoder(4, max_packet_size=8).feed(data) == [Publish("a", b"ABC")]


def test_decoder_waits_instead_of_failing_on_a_partial_packet() -> None:
    """A truncated *stream* is not malformed: the rest may still arrive."""
    decoder = StreamDecoder(4)
    assert decoder.feed(bytes.fromhex("30 06 00 01 61 41")) == []
    assert decoder.feed(bytes.fromhex("42 43")) == [Publish("a", b"ABC")]


# --------------------------------------------------------------------------- near misses: must decode


class Good(NamedTuple):
    id: str
    version: int | None
    hex: str
    expected: object
    note: str


GOOD: list[Good] = [
    Good("bom-kept-in-topic", 4, "30 06 00 04 EF BB BF 61", Publish("\ufeffa"),
         "U+FEFF must not be skipped or stripped [MQTT-1.5.4-3] (3.1.1: [MQTT-1.5.3-3])"),
    Good("bom-kept-in-client-id", None, "10 0F 00 04 4D 51 54 54 04 02 00 3C 00 03 EF BB BF",
         Connect(client_id="\ufeff", keep_alive=60), "U+FEFF alone is a valid client id string"),
    Good("empty-topic-with-alias-v5", 5, "30 06 00 00 03 23 00 01", None,
         "an empty topic with a Topic Alias is allowed (3.3.2.1)"),
    Good("password-without-username-v5", None, "10 12 00 04 4D 51 54 54 05 42 00 3C 00 00 01 63 00 02 70 77",
         Connect(client_id="c", protocol_level=5, password=b"pw"), "5.0 allows a password alone (3.1.2.9)"),
    Good("subscription-identifier-repeats-in-publish", 5, "30 08 00 01 61 04 0B 01 0B 02", None,
         "one Subscription Identifier per matching subscription [MQTT-3.3.4-4]"),
    Good("no-local-on-ordinary-filter", 5, "82 07 00 01 00 00 01 61 04",
         Subscribe(1, [Subscription("a", 0, no_local=True)]),
         "No Local is fine on a non-shared filter"),
    Good("share-prefix-is-ordinary-in-v311", 4, "82 0F 00 01 00 0A 24 73 68 61 72 65 2F 67 2F 61 00", None,
         "3.1.1 has no shared subscriptions: '$share/g/a' is a plain filter"),
    Good("dup-with-qos1", 4, "3A 05 00 01 61 00 07", Publish("a", qos=1, dup=True, packet_id=7), "DUP with QoS 1"),
    Good("abbreviated-puback-v5", 5, "40 02 00 01", None, "reason code and properties may be omitted (3.4.2.1)"),
    Good("abbreviated-disconnect-v5", 5, "E0 00", None, "reason code 0, no properties: empty body (3.14.2.1)"),
]


@pytest.mark.parametrize("row", GOOD, ids=[row.id for row in GOOD])
def test_near_misses_are_accepted(row: Good) -> None:
    [packet] = StreamDecoder(row.version).feed(bytes.fromhex(row.hex))
    if row.expected is not None:
        assert packet == row.expected


def test_bom_is_kept_in_user_property() -> None:
    data = bytes.fromhex("30 0F 00 01 61 0B 26 00 03 EF BB BF 00 03 EF BB BF")
    [packet] = StreamDecoder(5).feed(data)
    assert packet.properties.user_properties == [("\ufeff", "\ufeff")]


def test_empty_topic_with_alias_decodes_with_the_alias() -> None:
    [packet] = StreamDecoder(5).feed(bytes.fromhex("30 06 00 00 03 23 00 01"))
    assert packet.topic == "" and packet.properties.topic_alias == 1


# ------------------------------------------------------------------------ good packets before a bad one


@pytest.mark.parametrize("bad", ["C0 01 00", "30 FF FF FF FF 7F", "36 03 00 01 61"],
                         ids=["pingreq-with-body", "vbi-5-bytes", "publish-qos3"])
def test_packets_before_a_bad_one_are_not_lost(bad: str) -> None:
    """Whatever the chunking, the valid packets ahead of a bad one reach the caller."""
    good = [Publish("a", b"1"), Publish("b", b"2", qos=1, packet_id=3)]
    good_bytes = b"".join(packet.encode(4) for packet in good)
    with pytest.raises(MQTTError) as caught:
        StreamDecoder(4).feed(good_bytes + bytes.fromhex(bad))
    assert caught.value.preceding_packets == good
    decoder = StreamDecoder(4)
    assert decoder.feed(good_bytes) == good
    with pytest.raises(MQTTError) as caught:
        decoder.feed(bytes.fromhex(bad))
    assert list(caught.value.preceding_packets) == []


# ------------------------------------------------------------------------------------------- fuzzing


def feed_or_mqtt_error(version: int | None, data: bytes) -> None:
    """Garbage in must give packets or an MQTTError - never IndexError, ValueError, KeyError ..."""
    try:
        StreamDecoder(version).feed(data)
    except MQTTError:
        pass


@pytest.mark.parametrize("version", [None, 3, 4, 5], ids=["server-before-connect", "v3", "v4", "v5"])
@given(data=st.binary(max_size=64))
def test_random_bytes_only_raise_mqtt_errors(version: int | None, data: bytes) -> None:
    feed_or_mqtt_error(version, data)


@pytest.mark.parametrize("version", [3, 4, 5], ids=["v3", "v4", "v5"])
@given(data=st.data())
def test_mutated_valid_packets_only_raise_mqtt_errors(version: int, data: st.DataObject) -> None:
    """Flip, insert or delete a few bytes in the body of a valid packet (the length stays consistent)."""
    packet = data.draw(mqtt_st.packets(version), label="packet")
    first_byte, body = frame_of(packet.encode(version))
    body = bytearray(body)
    for _ in range(data.draw(st.integers(1, 4), label="edits")):
        edit = data.draw(st.sampled_from(["set", "insert", "delete"]), label="edit")
        index = data.draw(st.integers(0, len(body)), label="index")
        if edit == "insert" or not body:
            body[index:index] = bytes([data.draw(st.integers(0, 255), label="byte")])
        elif edit == "delete":
            del body[min(index, len(body) - 1)]
        else:
            body[min(index, len(body) - 1)] = data.draw(st.integers(0, 255), label="byte")
    flags = data.draw(st.sampled_from([first_byte, first_byte ^ data.draw(st.integers(1, 15), label="flip")]))
    frame = bytes([flags]) + encode_variable_byte_integer(len(body)) + bytes(body)
    feed_or_mqtt_error(version if packet.packet_type != 1 else None, frame)
