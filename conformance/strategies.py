"""Hypothesis strategies for MQTT data: strings, topic names and filters, v5 properties, and packets.

This module owns the *generators of valid protocol data* used by the project's own tests (the codec
round trips, the differential tests against paho-mqtt and scapy) and, later, by the broker-agnostic
conformance suite. Nothing here knows about a broker: every strategy only builds values of
`refbroker.protocol` (the project's single MQTT codec), and each one documents which rules of the
specification the values it generates respect, so a failing example can be traced back to a rule.

Public strategies:

* `utf8_strings()`  -- any text a UTF-8 Encoded String may hold: no U+0000, no surrogates
  ([MQTT-1.5.4-1], [MQTT-1.5.4-2]), sometimes with U+FEFF, which must be kept [MQTT-1.5.4-3].
* `topic_names()`, `topic_filters()`, `invalid_topic_filters()` -- section 4.7 (and 4.8.2 for
  "$share/ShareName/filter").
* `properties_for(packet_name)` -- MQTT 5.0 Properties valid in that packet (section 2.2.2 and
  `refbroker.protocol.properties.PROPERTY_TABLE`); "WILL" means the Will Properties of CONNECT.
* `packets(version)` and one strategy per packet class (`connects(version)`, `publishes(version)`,
  ...) producing packets that a strict receiver of that protocol level must accept. `version` is the
  protocol level: 3 (MQTT 3.1), 4 (MQTT 3.1.1) or 5 (MQTT 5.0).

Sizes are kept small on purpose (short strings, a handful of topic levels, few list items): the
strategies are for exploring the *shape* of packets, not for load.
"""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

from refbroker.protocol import (
    MQTT_3_1,
    MQTT_3_1_1,
    MQTT_5,
    Auth,
    Connack,
    Connect,
    ConnectReturnCode,
    Disconnect,
    Pingreq,
    Pingresp,
    Properties,
    Puback,
    Pubcomp,
    Publish,
    Pubrec,
    Pubrel,
    Suback,
    Subscribe,
    Subscription,
    Unsuback,
    Unsubscribe,
    Will,
)
from refbroker.protocol.primitives import MAX_VARIABLE_BYTE_INTEGER
from refbroker.protocol.properties import PROPERTY_TABLE
from refbroker.protocol.reason_codes import VALID_REASON_CODES

__all__ = [
    "VERSIONS",
    "utf8_strings",
    "binary_data",
    "packet_ids",
    "topic_levels",
    "topic_names",
    "topic_filters",
    "shared_topic_filters",
    "invalid_topic_filters",
    "properties_for",
    "wills",
    "subscriptions",
    "connects",
    "connacks",
    "publishes",
    "pubacks",
    "pubrecs",
    "pubrels",
    "pubcomps",
    "subscribes",
    "subacks",
    "unsubscribes",
    "unsubacks",
    "pingreqs",
    "pingresps",
    "disconnects",
    "auths",
    "packets",
    "PACKET_STRATEGIES",
]

VERSIONS = (MQTT_3_1, MQTT_3_1_1, MQTT_5)

# ------------------------------------------------------------------------------------ basic data types

# Any Unicode scalar value except U+0000; surrogates (category Cs) cannot be encoded in UTF-8.
_CHARACTERS = st.characters(exclude_categories=("Cs",), exclude_characters="\x00")
_BOM = "\ufeff"  # ZERO WIDTH NO-BREAK SPACE: must not be skipped or stripped [MQTT-1.5.4-3]


@st.composite
def utf8_strings(draw: st.DrawFn, min_size: int = 0, max_size: int = 12,
                 alphabet: st.SearchStrategy[str] | None = None) -> str:
    """Text valid in a UTF-8 Encoded String (1.5.4): no U+0000, no surrogates; U+FEFF sometimes.

    About one string in eight gets a U+FEFF at a random place, which a receiver must keep
    [MQTT-1.5.4-3]. Characters the specification only discourages (controls, non-characters) are
    included: a receiver may, but need not, refuse them, and the codec accepts them.
    """
    text = draw(st.text(alphabet if alphabet is not None else _CHARACTERS, min_size=min_size, max_size=max_size))
    if len(text) < max_size and draw(st.integers(0, 7)) == 0:
        index = draw(st.integers(0, len(text)))
        text = text[:index] + _BOM + text[index:]
    return text


def binary_data(max_size: int = 32) -> st.SearchStrategy[bytes]:
    """Binary Data (1.5.6): any bytes, up to `max_size` (the wire limit is 65,535)."""
    return st.binary(max_size=max_size)


def packet_ids() -> st.SearchStrategy[int]:
    """A non-zero Packet Identifier [MQTT-2.2.1-3] (3.1.1: [MQTT-2.3.1-1])."""
    return st.integers(1, 0xFFFF)


_u16 = st.integers(0, 0xFFFF)
_u32 = st.integers(0, 0xFFFF_FFFF)
_flag_byte = st.integers(0, 1)

# ------------------------------------------------------------------------------- topic names and filters

_LEVEL_CHARACTERS = st.characters(exclude_categories=("Cs",), exclude_characters="\x00/+#")
# A few short, colliding levels make matching interesting; arbitrary text keeps the codec honest.
_COMMON_LEVELS = st.sampled_from(["a", "b", "sport", "tennis", "player1", "", "$SYS", "€", _BOM + "x"])


def topic_levels(alphabet: st.SearchStrategy[str] | None = None, max_size: int = 6) -> st.SearchStrategy[str]:
    """One topic level: any text without '/', '+', '#' or U+0000 (it may be empty).

    A custom `alphabet` (e.g. ``st.sampled_from("ab$")``) must not produce those characters either.
    """
    if alphabet is not None:
        return st.text(alphabet, max_size=max_size)
    return st.one_of(_COMMON_LEVELS, utf8_strings(max_size=max_size, alphabet=_LEVEL_CHARACTERS))


def topic_names(levels: st.SearchStrategy[str] | None = None, max_levels: int = 5,
                dollar: bool = True) -> st.SearchStrategy[str]:
    """A Topic Name a PUBLISH may use (4.7.3): at least one character, no wildcard, no U+0000.

    Levels may be empty ("a//b", "/a", "a/"). With `dollar`, some names start with '$'
    (like "$SYS/broker"), which wildcard filters at the first level must not match [MQTT-4.7.2-1].
    """
    levels = levels if levels is not None else topic_levels()
    names = st.lists(levels, min_size=1, max_size=max_levels).map("/".join)
    if dollar:
        names = st.one_of(names, st.tuples(levels, names).map(lambda t: "$" + t[0] + "/" + t[1]))
    return names.filter(lambda name: name != "" and len(name.encode("utf-8")) <= 0xFFFF)


def topic_filters(levels: st.SearchStrategy[str] | None = None, max_levels: int = 5, dollar: bool = True,
                  shared: bool = False) -> st.SearchStrategy[str]:
    """A valid Topic Filter (4.7.1): '+' only as a whole level, '#' only as the whole last level.

    With `dollar`, some filters start with a '$' level. With `shared` (MQTT 5.0 only), some filters
    are Shared Subscriptions "$share/ShareName/filter" (4.8.2).
    """
    levels = levels if levels is not None else topic_levels()
    level_or_plus = st.one_of(levels, st.just("+"))
    body = st.tuples(st.lists(level_or_plus, min_size=0, max_size=max_levels), st.booleans()).map(
        lambda t: "/".join(t[0] + (["#"] if t[1] else [])))
    filters = body.filter(bool)
    if dollar:
        filters = st.one_of(filters, st.tuples(levels, filters).map(lambda t: "$" + t[0] + "/" + t[1]))
    # "$share/..." is produced only on purpose, so that it is always a valid shared subscription.
    filters = filters.filter(lambda f: not f.startswith("$share/"))
    if shared:
        filters = st.one_of(filters, shared_topic_filters(filters))
    return filters.filter(lambda f: len(f.encode("utf-8")) <= 0xFFFF)


def shared_topic_filters(inner: st.SearchStrategy[str] | None = None) -> st.SearchStrategy[str]:
    """"$share/ShareName/filter" (5.0 4.8.2): a non-empty ShareName without '/', '+', '#'."""
    inner = inner if inner is not None else topic_filters(shared=False)
    share_names = st.one_of(st.sampled_from(["g", "group1", "€"]),
                            st.text(_LEVEL_CHARACTERS, min_size=1, max_size=6))
    return st.tuples(share_names, inner).map(lambda t: f"$share/{t[0]}/{t[1]}")


_INVALID_FILTER_EXAMPLES = (
    "",             # at least one character [MQTT-4.7.3-1]
    "#/a",          # '#' must be the last level
    "a/#/b",
    "a#",           # '#' must be a whole level
    "a/b#",
    "#a",
    "a+",           # '+' must be a whole level
    "+a/b",
    "a/+b/c",
    "a/b+",
    "++",
    "##",
    "a/\x00",       # U+0000 [MQTT-4.7.3-2]
)
_INVALID_SHARED_EXAMPLES = (
    "$share//a",     # empty ShareName [MQTT-4.8.2-1]
    "$share/g+/a",   # wildcard in ShareName [MQTT-4.8.2-2]
    "$share/g#/a",
    "$share/g",      # no topic filter after the ShareName
    "$share/g/",     # empty topic filter
    "$share/g/a#",   # the inner filter is invalid
)


def invalid_topic_filters(shared: bool = False) -> st.SearchStrategy[str]:
    """Topic Filters that break 4.7.1/4.7.3 (and, with `shared`, the 4.8.2 rules for "$share/...").

    Without `shared` (MQTT 3.1.1 view) "$share/..." is an ordinary filter, so those examples are
    left out. Every value is refused by `validate_topic_filter(f, allow_shared=shared)`.
    """
    fixed = _INVALID_FILTER_EXAMPLES + (_INVALID_SHARED_EXAMPLES if shared else ())
    level = topic_levels()

    def misplaced_hash(parts: tuple[list[str], list[str]]) -> str:
        before, after = parts
        return "/".join(before + ["#"] + after)

    def glued_wildcard(parts: tuple[str, str, str, bool]) -> str:
        prefix, wildcard, suffix, before = parts
        return prefix + "/" + (wildcard + suffix if before else suffix + wildcard)

    generated = st.one_of(
        st.tuples(st.lists(level, max_size=3), st.lists(level, min_size=1, max_size=3)).map(misplaced_hash),
        st.tuples(level, st.sampled_from("+#"), st.text(_LEVEL_CHARACTERS, min_size=1, max_size=4),
                  st.booleans()).map(glued_wildcard),
    )
    return st.one_of(st.sampled_from(fixed), generated)


# ------------------------------------------------------------------------------------- v5 properties

def _value_strategies(packet_name: str) -> dict[str, st.SearchStrategy[Any]]:
    """The value strategy for every property attribute, respecting the values the spec forbids."""
    text = utf8_strings()
    many_subscription_ids = packet_name == "PUBLISH"  # repeats only in PUBLISH [MQTT-3.3.4-4]
    return {
        "payload_format_indicator": _flag_byte,          # 0 or 1 (3.3.2.3.2)
        "message_expiry_interval": _u32,
        "content_type": text,
        "response_topic": topic_names(),                 # a Topic Name, no wildcards [MQTT-3.3.2-14]
        "correlation_data": binary_data(16),
        "subscription_identifiers": st.lists(st.integers(1, MAX_VARIABLE_BYTE_INTEGER), min_size=1,
                                             max_size=3 if many_subscription_ids else 1),
        "session_expiry_interval": _u32,
        "assigned_client_identifier": text,
        "server_keep_alive": _u16,
        "authentication_method": text,
        "authentication_data": binary_data(16),         # only with a method: see properties_for
        "request_problem_information": _flag_byte,
        "will_delay_interval": _u32,
        "request_response_information": _flag_byte,
        "response_information": text,
        "server_reference": text,
        "reason_string": text,
        "receive_maximum": st.integers(1, 0xFFFF),       # 0 is a Protocol Error
        "topic_alias_maximum": _u16,
        "topic_alias": st.integers(1, 0xFFFF),           # 0 is not permitted [MQTT-3.3.2-8]
        "maximum_qos": _flag_byte,                       # 0 or 1 only
        "retain_available": _flag_byte,
        "user_properties": st.lists(st.tuples(text, text), min_size=1, max_size=4),  # order kept
        "maximum_packet_size": st.integers(1, 0xFFFF_FFFF),  # 0 is a Protocol Error
        "wildcard_subscription_available": _flag_byte,
        "subscription_identifier_available": _flag_byte,
        "shared_subscription_available": _flag_byte,
    }


def properties_for(packet_name: str) -> st.SearchStrategy[Properties]:
    """MQTT 5.0 Properties that are valid in `packet_name` ("CONNECT", "PUBLISH", "WILL", ...).

    Each property allowed in that packet by PROPERTY_TABLE is present or absent independently.
    Non-repeatable properties appear at most once (they are single fields of `Properties`);
    Subscription Identifier repeats only in PUBLISH; User Property may repeat, in order. Forbidden
    values (Receive Maximum 0, Topic Alias 0, Maximum QoS 2 ...) are never generated.
    Authentication Data comes only with an Authentication Method (5.0 3.1.2.11.10), and AUTH always
    carries an Authentication Method (5.0 3.15.2.2.2).
    """
    allowed = [d.attribute for d in PROPERTY_TABLE if packet_name in d.packets]
    if not allowed:
        raise ValueError(f"no properties are defined for {packet_name!r}")
    values = _value_strategies(packet_name)
    required = {"authentication_method": values["authentication_method"]} if packet_name == "AUTH" else {}
    optional = {name: values[name] for name in allowed if name not in required}

    def build(chosen: dict[str, Any]) -> Properties:
        if chosen.get("authentication_method") is None:
            chosen.pop("authentication_data", None)
        return Properties(**chosen)

    return st.fixed_dictionaries(required, optional=optional).map(build)


def _properties(version: int, packet_name: str) -> st.SearchStrategy[Properties]:
    """Properties for a packet of `version`: always empty before MQTT 5.0."""
    return properties_for(packet_name) if version == MQTT_5 else st.builds(Properties)


def _check_version(version: int) -> None:
    if version not in VERSIONS:
        raise ValueError(f"unknown protocol level {version!r}; expected one of {VERSIONS}")


# ------------------------------------------------------------------------------------------- packets

def wills(version: int) -> st.SearchStrategy[Will]:
    """A Will Message: a valid topic name, QoS 0..2 [MQTT-3.1.2-12], Will Properties in 5.0 only."""
    return st.builds(Will, topic=topic_names(), payload=binary_data(), qos=st.integers(0, 2),
                     retain=st.booleans(), properties=_properties(version, "WILL"))


@st.composite
def connects(draw: st.DrawFn, version: int) -> Connect:
    """CONNECT whose protocol_level (and standard protocol name) is `version`.

    3.1: Client Identifier of 1 to 23 characters (3.1 section 3.1). 3.1.1: an empty Client
    Identifier requires Clean Session [MQTT-3.1.3-7]. 3.1 and 3.1.1: no password without a user
    name [MQTT-3.1.2-22]; 5.0 allows it (3.1.2.9). The reserved flag is never set.
    """
    _check_version(version)
    clean_start = draw(st.booleans())
    if version == MQTT_3_1:
        client_id = draw(utf8_strings(min_size=1, max_size=23))
    else:
        client_id = draw(utf8_strings())
        if version == MQTT_3_1_1 and client_id == "":
            clean_start = True
    username = draw(st.none() | utf8_strings())
    password = draw(st.none() | binary_data(16))
    if version != MQTT_5 and username is None:
        password = None
    return Connect(
        client_id=client_id,
        protocol_level=version,
        clean_start=clean_start,
        keep_alive=draw(_u16),
        username=username,
        password=password,
        will=draw(st.none() | wills(version)),
        properties=draw(_properties(version, "CONNECT")),
    )


@st.composite
def connacks(draw: st.DrawFn, version: int) -> Connack:
    """CONNACK: 3.1/3.1.1 return codes 0..5, 5.0 CONNACK reason codes (2.4).

    Session Present is set only with a success code ([MQTT-3.2.2-4] 3.1.1, [MQTT-3.2.2-6] 5.0) and
    never in 3.1, whose first CONNACK byte is reserved.
    """
    _check_version(version)
    if version == MQTT_5:
        code = draw(st.sampled_from(sorted(VALID_REASON_CODES["CONNACK"])))
    else:
        code = draw(st.sampled_from([int(c) for c in ConnectReturnCode]))
    session_present = draw(st.booleans()) if code == 0 and version != MQTT_3_1 else False
    return Connack(code, session_present, draw(_properties(version, "CONNACK")))


@st.composite
def publishes(draw: st.DrawFn, version: int, topics: st.SearchStrategy[str] | None = None,
              max_payload: int = 64) -> Publish:
    """PUBLISH: QoS 0..2 [MQTT-3.3.1-4]; a Packet Identifier iff QoS > 0 [MQTT-2.2.1-2]; DUP only
    with QoS > 0 [MQTT-3.3.1-2]; a topic name without wildcards. In 5.0 the topic may be empty when
    a Topic Alias is present (3.3.2.1).
    """
    _check_version(version)
    qos = draw(st.integers(0, 2))
    properties = draw(_properties(version, "PUBLISH"))
    topic = draw(topics if topics is not None else topic_names())
    if properties.topic_alias is not None and draw(st.booleans()):
        topic = ""
    return Publish(
        topic=topic,
        payload=draw(st.binary(max_size=max_payload)),
        qos=qos,
        retain=draw(st.booleans()),
        dup=draw(st.booleans()) if qos else False,
        packet_id=draw(packet_ids()) if qos else None,
        properties=properties,
    )


def _acknowledgements(cls: type, version: int) -> st.SearchStrategy:
    _check_version(version)
    name = cls.packet_type.name
    if version != MQTT_5:
        return st.builds(cls, packet_id=packet_ids())
    return st.builds(cls, packet_id=packet_ids(), reason_code=st.sampled_from(sorted(VALID_REASON_CODES[name])),
                     properties=properties_for(name))


def pubacks(version: int) -> st.SearchStrategy[Puback]:
    """PUBACK: a non-zero Packet Identifier; 5.0 adds a PUBACK reason code and properties."""
    return _acknowledgements(Puback, version)


def pubrecs(version: int) -> st.SearchStrategy[Pubrec]:
    """PUBREC: as PUBACK, with the PUBREC reason codes."""
    return _acknowledgements(Pubrec, version)


def pubrels(version: int) -> st.SearchStrategy[Pubrel]:
    """PUBREL: as PUBACK; 5.0 reason codes 0x00 or 0x92."""
    return _acknowledgements(Pubrel, version)


def pubcomps(version: int) -> st.SearchStrategy[Pubcomp]:
    """PUBCOMP: as PUBREL."""
    return _acknowledgements(Pubcomp, version)


@st.composite
def subscriptions(draw: st.DrawFn, version: int) -> Subscription:
    """One topic filter with its options: QoS 0..2; in 5.0 also No Local (never on a shared
    subscription [MQTT-3.8.3-4]), Retain As Published and Retain Handling 0..2."""
    topic_filter = draw(topic_filters(shared=version == MQTT_5))
    qos = draw(st.integers(0, 2))
    if version != MQTT_5:
        return Subscription(topic_filter, qos)
    shared = topic_filter.startswith("$share/")
    return Subscription(topic_filter, qos, no_local=False if shared else draw(st.booleans()),
                        retain_as_published=draw(st.booleans()), retain_handling=draw(st.integers(0, 2)))


def subscribes(version: int) -> st.SearchStrategy[Subscribe]:
    """SUBSCRIBE: a Packet Identifier and 1 to 4 subscriptions [MQTT-3.8.3-3] (5.0: [MQTT-3.8.3-2])."""
    _check_version(version)
    return st.builds(Subscribe, packet_id=packet_ids(),
                     subscriptions=st.lists(subscriptions(version), min_size=1, max_size=4),
                     properties=_properties(version, "SUBSCRIBE"))


def subacks(version: int) -> st.SearchStrategy[Suback]:
    """SUBACK: 1 to 4 return codes. 3.1: 0..2; 3.1.1: 0, 1, 2 or 0x80 [MQTT-3.9.3-2]; 5.0: the
    SUBACK reason codes of section 2.4."""
    _check_version(version)
    codes = {MQTT_3_1: [0, 1, 2], MQTT_3_1_1: [0, 1, 2, 0x80]}.get(version) or sorted(VALID_REASON_CODES["SUBACK"])
    return st.builds(Suback, packet_id=packet_ids(), reason_codes=st.lists(st.sampled_from(codes), min_size=1,
                                                                            max_size=4),
                     properties=_properties(version, "SUBACK"))


def unsubscribes(version: int) -> st.SearchStrategy[Unsubscribe]:
    """UNSUBSCRIBE: a Packet Identifier and 1 to 4 topic filters [MQTT-3.10.3-2]."""
    _check_version(version)
    return st.builds(Unsubscribe, packet_id=packet_ids(),
                     topic_filters=st.lists(topic_filters(shared=version == MQTT_5), min_size=1, max_size=4),
                     properties=_properties(version, "UNSUBSCRIBE"))


def unsubacks(version: int) -> st.SearchStrategy[Unsuback]:
    """UNSUBACK: a Packet Identifier; 5.0 adds properties and 1 to 4 UNSUBACK reason codes
    (3.1 and 3.1.1 have no reason codes)."""
    _check_version(version)
    if version != MQTT_5:
        return st.builds(Unsuback, packet_id=packet_ids())
    return st.builds(Unsuback, packet_id=packet_ids(),
                     reason_codes=st.lists(st.sampled_from(sorted(VALID_REASON_CODES["UNSUBACK"])), min_size=1,
                                           max_size=4),
                     properties=properties_for("UNSUBACK"))


def pingreqs(version: int) -> st.SearchStrategy[Pingreq]:
    """PINGREQ (no variable header, no payload)."""
    _check_version(version)
    return st.just(Pingreq())


def pingresps(version: int) -> st.SearchStrategy[Pingresp]:
    """PINGRESP (no variable header, no payload)."""
    _check_version(version)
    return st.just(Pingresp())


def disconnects(version: int) -> st.SearchStrategy[Disconnect]:
    """DISCONNECT: empty in 3.1 and 3.1.1; 5.0 adds a DISCONNECT reason code and properties."""
    _check_version(version)
    if version != MQTT_5:
        return st.just(Disconnect())
    return st.builds(Disconnect, reason_code=st.sampled_from(sorted(VALID_REASON_CODES["DISCONNECT"])),
                     properties=properties_for("DISCONNECT"))


def auths(version: int = MQTT_5) -> st.SearchStrategy[Auth]:
    """AUTH (5.0 only): reason 0x00, 0x18 or 0x19, and always an Authentication Method."""
    if version != MQTT_5:
        raise ValueError("AUTH exists only in MQTT 5.0")
    return st.builds(Auth, reason_code=st.sampled_from(sorted(VALID_REASON_CODES["AUTH"])),
                     properties=properties_for("AUTH"))


PACKET_STRATEGIES = {
    "CONNECT": connects,
    "CONNACK": connacks,
    "PUBLISH": publishes,
    "PUBACK": pubacks,
    "PUBREC": pubrecs,
    "PUBREL": pubrels,
    "PUBCOMP": pubcomps,
    "SUBSCRIBE": subscribes,
    "SUBACK": subacks,
    "UNSUBSCRIBE": unsubscribes,
    "UNSUBACK": unsubacks,
    "PINGREQ": pingreqs,
    "PINGRESP": pingresps,
    "DISCONNECT": disconnects,
    "AUTH": auths,
}
"""Packet name -> function(version) returning the strategy for that packet."""


def packets(version: int, *, include_connect: bool = True) -> st.SearchStrategy:
    """Any control packet valid for `version` (AUTH only in 5.0).

    With `include_connect=False`, CONNECT is left out: useful for a stream after the handshake.
    """
    _check_version(version)
    names = [name for name in PACKET_STRATEGIES if version == MQTT_5 or name != "AUTH"]
    if not include_connect:
        names.remove("CONNECT")
    return st.one_of([PACKET_STRATEGIES[name](version) for name in names])
