"""mosquitto's choices, one small table per mosquitto version.

refbroker stands in for mosquitto in other people's byte-level tests, so wherever the MQTT
specification lets a broker choose (which reason code a protocol error gets, whether a refusing
CONNACK or a DISCONNECT precedes the close, 0x10 No matching subscribers, limits ...) refbroker's
bytes are those of a real mosquitto version: 2.0.11 by default (Debian 12's), 2.0.21 or 2.1.2 with
the config key `mosquitto_compat`. Each table below is one `MosquittoCompat`; the later versions are
written as the changes from the earlier one, so the tables also document how the versions differ.

Every value was read off the real versions' bytes and is checked against them: mostly the reference
corpus (pcap/captures/: the conformance suite's conversations recorded from each version), replayed
against refbroker in each mode by tests/pcap/test_refbroker_fidelity.py (the comment after an entry
names a test of the suite whose capture shows it); the choices that only a configuration with limits
or a publisher's own property order bring out are checked side by side with the real versions by
tests/broker/test_fidelity_bytes.py. Where mosquitto breaks the specification refbroker does not
follow it: those places are listed, with the statement and the capture, in refbroker/departures.py.

Error answers are keyed by the error's kind (protocol/errors.py): "KIND in PACKET" first, then
"KIND", then the generic kind of its class ("malformed packet", "protocol error"); an error no key
matches gets its own reason code, the one the specification names (0x81, 0x82, 0x94 ...).
`CLOSE` means: close the network connection without a DISCONNECT (or CONNACK) before it.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from ..protocol import MQTTError

__all__ = ["CLOSE", "DEFAULT_VERSION", "VERSIONS", "MosquittoCompat", "answer_for"]

#: close without a DISCONNECT / CONNACK first
CLOSE = None

MALFORMED, PROTOCOL_ERROR = 0x81, 0x82
# Property identifiers (5.0 2.2.2.2) of the orders below
MESSAGE_EXPIRY, SUBSCRIPTION_ID, TOPIC_ALIAS = 0x02, 0x0B, 0x23
ASSIGNED_ID, SERVER_KEEP_ALIVE, RECEIVE_MAXIMUM, TOPIC_ALIAS_MAXIMUM = 0x12, 0x13, 0x21, 0x22
MAXIMUM_QOS, RETAIN_AVAILABLE, MAXIMUM_PACKET_SIZE = 0x24, 0x25, 0x27


@dataclass(frozen=True)
class MosquittoCompat:
    """What one mosquitto version does where the specification allows more than one answer."""

    version: str
    #: 5.0, after CONNACK: the DISCONNECT reason code for a malformed packet or protocol error, or CLOSE
    #: (4.13.1: the server SHOULD send DISCONNECT with a reason code, and MUST close [MQTT-4.13.1-1])
    disconnect: Mapping[str, int | None]
    #: 5.0, a CONNECT that cannot be accepted as read: the CONNACK reason code before the close, or CLOSE
    #: (3.1.4: the server MAY send a CONNACK with a reason code of 0x80 or greater [MQTT-3.1.4-1])
    bad_connect: Mapping[str, int | None]
    #: PUBACK 0x10 No matching subscribers when no subscription matched the topic (5.0, 3.4.2.1: "If the
    #: Server knows that there are no matching subscribers, it MAY use this Reason Code"); PUBREC is 0x00
    puback_no_matching_subscribers: bool
    #: the reason code of a PUBCOMP / PUBREL answering a PUBREL / PUBREC whose packet identifier is not in
    #: flight (5.0: 0x92 Packet Identifier not found exists for it, 0x00 is allowed too)
    unknown_packet_id_code: int
    #: an invalid topic filter in SUBSCRIBE closes the connection (5.0: after the `disconnect` answer of
    #: "invalid topic filter"), instead of a SUBACK failure code for that filter; both are allowed
    invalid_filter_closes: bool
    #: max_keepalive when the configuration sets none (0: no limit). A 5.0 client asking for more, or for
    #: Keep Alive 0, gets it as Server Keep Alive (3.2.2.3.14: the server may always send one)
    default_max_keepalive: int
    #: 3.1/3.1.1: a client whose Keep Alive is 0 or above max_keepalive (when one is set) is refused
    #: (mosquitto answers return code 2, which does not apply: a departure, refbroker closes)
    v3_keepalive_limit_refuses: bool
    #: Maximum Packet Size when the configuration sets none: 0 = only the protocol's limit
    default_max_packet_size: int
    #: 3.1/3.1.1: a message matching several subscriptions of one client is sent once per subscription
    #: ([MQTT-3.3.5-1] asks for the highest QoS; "the Server MAY deliver further copies")
    v3_copy_per_subscription: bool
    #: the order of a successful CONNACK's properties (identifiers; others follow in the table's order)
    connack_property_order: tuple[int, ...]
    #: a forwarded PUBLISH: its Subscription Identifiers before the publisher's properties (which keep
    #: their order, then the Message Expiry Interval), or after everything
    subscription_ids_first: bool
    #: the most '/' a topic name or filter may have (an implementation limit; the specification sets none):
    #: a deeper one is refused like an invalid one ("topic too deep", "invalid topic filter"); 0: no limit
    topic_depth_limit: int

    def forwarded_order(self, published: tuple[int, ...]) -> tuple[int, ...]:
        """The property order of the copies of a message whose PUBLISH had properties in `published` order."""
        return _forwarded_order(published, self.subscription_ids_first)


@functools.lru_cache(maxsize=1024)
def _forwarded_order(published: tuple[int, ...], ids_first: bool) -> tuple[int, ...]:
    kept = tuple(identifier for identifier in published
                 if identifier not in (MESSAGE_EXPIRY, SUBSCRIPTION_ID, TOPIC_ALIAS))
    if ids_first:
        return (SUBSCRIPTION_ID, *kept, MESSAGE_EXPIRY)
    return (*kept, MESSAGE_EXPIRY, SUBSCRIPTION_ID)


def _table(entries: dict[str, int | None]) -> Mapping[str, int | None]:
    return MappingProxyType(entries)


MOSQUITTO_2_0_11 = MosquittoCompat(
    version="2.0.11",
    disconnect=_table({
        # closed without a DISCONNECT
        "invalid flags in DISCONNECT": CLOSE,       # test_malformed.test_invalid_fixed_header_flags_close
        "invalid flags in PUBREL": CLOSE,           # test_malformed.test_invalid_fixed_header_flags_close
        "invalid flags in AUTH": CLOSE,             # test_v5_auth.test_auth_with_invalid_flags_closes
        "AUTH without Authentication Method": CLOSE,  # test_malformed.test_v5_unexpected_auth_closes
        "duplicate property": CLOSE,                # test_v5_protocol_errors.test_*_twice
        "ill-formed UTF-8 in a property": CLOSE,    # test_v5.test_user_property_with_invalid_utf8_closes
        "long Variable Byte Integer": CLOSE,        # test_malformed.test_remaining_length_of_five_bytes_closes
        "second CONNECT": CLOSE,                    # test_connect.test_second_connect_closes_connection
        "keep alive timeout": CLOSE,                # test_session.test_keep_alive_timeout_closes_silent_client
        # 0x81 Malformed Packet where the specification's word is Protocol Error (or more precise)
        "Topic Alias 0": MALFORMED,                 # test_v5.test_invalid_topic_alias_closes
        "Subscription Identifier 0 in SUBSCRIBE": MALFORMED,  # test_v5.test_subscription_identifier_zero_closes
        "packet identifier 0 in SUBSCRIBE": MALFORMED,  # test_malformed.test_subscribe_with_packet_id_zero_closes
        "subscription QoS 3": MALFORMED,            # test_subscribe.test_subscribe_qos3_closes
        "Retain Handling 3": MALFORMED,             # test_v5.test_retain_handling_3_closes
        "no topic filter": MALFORMED,               # test_subscribe.test_(un)subscribe_without_filters_closes
        "invalid topic filter": MALFORMED,          # test_subscribe.test_invalid_topic_filter_refused
        # 0x82 Protocol Error where the specification's word is Malformed Packet (or more precise)
        "wildcard in topic name": PROTOCOL_ERROR,   # test_malformed.test_publish_to_wildcard_topic_closes
        "reserved packet type": PROTOCOL_ERROR,     # test_malformed.test_reserved_packet_type_zero_closes
        "topic too deep": PROTOCOL_ERROR,           # tests/broker/test_fidelity_bytes.py
        "bare $share/": PROTOCOL_ERROR,             # (2.0.11 grants it: a departure; 2.0.21's answer)
    }),
    bad_connect=_table({
        "malformed packet": CLOSE,                  # test_connect.test_reserved_connect_flag_closes
        "protocol error": CLOSE,                    # test_v5_protocol_errors.test_connect_*_twice
    }),
    puback_no_matching_subscribers=True,            # test_publish.test_publish_without_subscribers_is_acknowledged
    unknown_packet_id_code=0x00,                    # test_publish.test_pubrel_for_unknown_packet_id_gets_pubcomp
    invalid_filter_closes=True,                     # test_subscribe.test_invalid_topic_filter_refused
    default_max_keepalive=65535,                    # test_session.test_keep_alive_zero_is_never_timed_out
    v3_keepalive_limit_refuses=False,               # tests/broker/test_fidelity_bytes.py
    default_max_packet_size=0,
    v3_copy_per_subscription=False,                 # (2.0 sends one copy: which QoS is a departure)
    connack_property_order=(TOPIC_ALIAS_MAXIMUM, SERVER_KEEP_ALIVE, ASSIGNED_ID, RETAIN_AVAILABLE,
                            MAXIMUM_PACKET_SIZE, RECEIVE_MAXIMUM, MAXIMUM_QOS),  # tests/broker/test_fidelity_bytes.py
    subscription_ids_first=True,                    # tests/broker/test_fidelity_bytes.py
    topic_depth_limit=200,                          # tests/broker/test_fidelity_bytes.py
)


def _changed(base: MosquittoCompat, version: str, *, disconnect: dict | None = None,
             bad_connect: dict | None = None, **fields) -> MosquittoCompat:
    """`base` with some answers and fields changed: a later version written as its differences."""
    return dataclasses.replace(
        base, version=version, **fields,
        disconnect=_table({**base.disconnect, **(disconnect or {})}),
        bad_connect=_table({**base.bad_connect, **(bad_connect or {})}))


MOSQUITTO_2_0_21 = _changed(
    MOSQUITTO_2_0_11, "2.0.21",
    disconnect={
        "invalid flags in DISCONNECT": MALFORMED,   # test_malformed.test_invalid_fixed_header_flags_close
        "invalid flags in PUBREL": MALFORMED,       # test_malformed.test_invalid_fixed_header_flags_close
        "invalid flags in AUTH": PROTOCOL_ERROR,    # test_v5_auth.test_auth_with_invalid_flags_closes
        "AUTH without Authentication Method": PROTOCOL_ERROR,  # test_malformed.test_v5_unexpected_auth_closes
        "duplicate property": PROTOCOL_ERROR,       # test_v5_protocol_errors.test_*_twice
        "property not allowed": PROTOCOL_ERROR,     # test_v5.test_property_not_allowed_in_packet_closes
        "Topic Alias 0": PROTOCOL_ERROR,            # test_v5.test_invalid_topic_alias_closes
        "wildcard in topic name": MALFORMED,        # test_malformed.test_publish_to_wildcard_topic_closes
        "empty topic name": MALFORMED,              # test_malformed.test_publish_with_empty_topic_closes
        "topic too deep": MALFORMED,                # tests/broker/test_fidelity_bytes.py
    },
    default_max_keepalive=0,                        # test_session.test_keep_alive_zero_is_never_timed_out
    v3_keepalive_limit_refuses=True,                # tests/broker/test_fidelity_bytes.py
    connack_property_order=(SERVER_KEEP_ALIVE, TOPIC_ALIAS_MAXIMUM, ASSIGNED_ID, RETAIN_AVAILABLE,
                            MAXIMUM_PACKET_SIZE, RECEIVE_MAXIMUM, MAXIMUM_QOS),  # tests/broker/test_fidelity_bytes.py
)

MOSQUITTO_2_1_2 = _changed(
    MOSQUITTO_2_0_21, "2.1.2",
    bad_connect={
        "protocol error": PROTOCOL_ERROR,           # test_v5_protocol_errors.test_connect_*_twice
    },
    default_max_packet_size=2_000_000,              # test_connect.test_v5_connack_properties_are_sane
    v3_copy_per_subscription=True,                  # test_subscribe.test_overlapping_subscriptions_respect_maximum_qos
    subscription_ids_first=False,                   # tests/broker/test_fidelity_bytes.py
)

#: the tables by version, for `mosquitto_compat VERSION`
VERSIONS: Mapping[str, MosquittoCompat] = MappingProxyType(
    {table.version: table for table in (MOSQUITTO_2_0_11, MOSQUITTO_2_0_21, MOSQUITTO_2_1_2)})
DEFAULT_VERSION = "2.0.11"


def answer_for(answers: Mapping[str, int | None], error: MQTTError) -> int | None:
    """The reason code `answers` gives `error` (or CLOSE); its own reason code if no key matches."""
    if error.packet is not None:
        key = f"{error.kind} in {error.packet}"
        if key in answers:
            return answers[key]
    for key in (error.kind, error.generic_kind):
        if key in answers:
            return answers[key]
    return error.reason_code
