"""Known deviations of real brokers from the MQTT specifications.

A conformance test that observes one of these behaviours calls
`conformance.known_deviation(N, observed)`: on a target that is known to have deviation N (matched on
its version string, or listed in its target profile) the outcome is recorded as *fail* with
`known_deviation: N` (pytest shows it as xfail); on any other target it is a plain failure.

Numbers below 100 are deviations known from mosquitto's own ChangeLog and issue tracker
(github.com/eclipse-mosquitto/mosquitto: the issue numbers are given as #NNNN), each confirmed or
refined by this suite where the versions at hand show it. Numbers from 101 on are deviations this suite
found itself; each carries its evidence (the spec sentence and the bytes observed), because no outside
reference vouches for it.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .targets import BrokerTarget

__all__ = ["DEVIATIONS", "Deviation", "applies", "applies_to_target", "parse_mosquitto_version"]

Version = tuple[int, ...]


def parse_mosquitto_version(version_string: str) -> Version | None:
    """"mosquitto 2.0.11" -> (2, 0, 11); None for anything that is not a mosquitto version string."""
    match = re.fullmatch(r"\s*mosquitto\s+v?(\d+)\.(\d+)(?:\.(\d+))?\S*\s*(?:\(.*\)\s*)?", version_string or "", re.IGNORECASE)
    if not match:
        return None
    return tuple(int(part or 0) for part in match.groups())


@dataclass(frozen=True)
class Deviation:
    number: int
    broker: str
    title: str
    #: (MQTT version, statement id) pairs the behaviour breaks
    statements: tuple[tuple[str, str], ...]
    #: which versions of `broker` show it, as a predicate on the parsed version
    affected: Callable[[Version], bool]
    versions_text: str
    reference: str
    #: for deviations found by this suite: the spec sentence and the bytes observed
    evidence: str = ""

    def applies(self, version_string: str) -> bool:
        if self.broker != "mosquitto":
            return False
        version = parse_mosquitto_version(version_string)
        return version is not None and self.affected(version)


def _between(low: Version | None = None, below: Version | None = None) -> Callable[[Version], bool]:
    """low <= version < below (either bound may be open)."""
    return lambda v: (low is None or v >= low) and (below is None or v < below)


_ALL: tuple[Deviation, ...] = (
    Deviation(
        1, "mosquitto",
        "CONNECT with an unknown protocol level gets a v5-format CONNACK 20 03 00 84 00 instead of the "
        "3.1.1 answer 20 02 00 01",
        (("3.1.1", "MQTT-3.1.2-2"),), _between((2, 1, 0)),
        "2.1.x (open; observed on 2.1.2; 2.0.11 and 2.0.21 answer 20 02 00 01, see the pcap corpus's "
        "test_connect.test_unsupported_protocol_level captures)",
        "eclipse-mosquitto/mosquitto#3696 (which dates it from 2.0.12; the 2.0.21 capture says otherwise)"),
    Deviation(
        7, "mosquitto",
        "PUBLISH with an empty topic and an unknown Topic Alias answered with Topic Alias invalid (0x94) "
        "instead of a Protocol Error",
        (("5.0", "PE-3.3.4-c"),), _between(None, (2, 0, 6)), "before 2.0.6",
        "ChangeLog 2.0.6"),
    Deviation(
        8, "mosquitto",
        "Receive Maximum overrun by the client answered with PUBREC 0x97 and the connection kept, "
        "instead of DISCONNECT 0x93",
        (("5.0", "MQTT-3.3.4-8"),), _between((2, 0, 0)), "2.0.0 and later (open)",
        "#3588, #3611"),
    Deviation(
        13, "mosquitto",
        "Session takeover: the existing v5 connection is closed without DISCONNECT 0x8E (Session taken over)",
        (("5.0", "MQTT-3.1.4-3"),), _between(None, (2, 0, 15)),
        "before 2.0.15 (observed on 2.0.11; 2.0.21 and 2.1.2 send DISCONNECT 0x8E, see the pcap corpus's "
        "test_session.test_client_id_takeover_closes_existing_connection captures)",
        "eclipse-mosquitto/mosquitto#2340 (wrong code before 2.0.15: #2607)"),
    Deviation(
        19, "mosquitto",
        "PUBACK/PUBREC wrongly carry 0x10 (No matching subscribers) when there are subscribers",
        (("5.0", "MQTT-3.4.2-1"),), _between(None, (2, 0, 20)), "before 2.0.20",
        "#3128"),
    Deviation(
        21, "mosquitto",
        "QoS 2: a second duplicate PUBLISH before PUBREL is answered with DISCONNECT 0x82 instead of PUBREC",
        (("5.0", "MQTT-4.3.3-10"), ("3.1.1", "MQTT-4.3.3-2")), _between((2, 1, 0)), "2.1.x (open)",
        "#3599, #3602"),
    Deviation(
        22, "mosquitto",
        "Reserved packet type 0 not disconnected promptly",
        (("3.1.1", "MQTT-4.8.0-1"), ("5.0", "MQTT-4.13.1-1")), _between(None, (2, 0, 21)), "before 2.0.21",
        "#2325"),
    # ---- found by this suite (101+) ----
    Deviation(
        101, "mosquitto",
        "Keep Alive expiry is detected late: a client silent for 1.5 x Keep Alive stays connected for seconds more",
        (("3.1.1", "MQTT-3.1.2-24"), ("5.0", "MQTT-3.1.2-22"), ("3.1", "V31-3.1-f")), lambda v: v == (2, 0, 11),
        "2.0.11 (observed)",
        "found by this suite (test_session.py::test_keep_alive_timeout_closes_silent_client)",
        evidence=(
            "3.1.1 section 3.1.2.10 / 5.0 section 3.1.2.10: 'If the Keep Alive value is non-zero and the Server "
            "does not receive a Control Packet from the Client within one and a half times the Keep Alive time "
            "period, it MUST disconnect the Network Connection to the Client as if the network had failed' "
            "[MQTT-3.1.2-24] (3.1.1), [MQTT-3.1.2-22] (5.0). Observed on mosquitto 2.0.11: CONNECT with Keep "
            "Alive 1 (10 0f 00 04 4d 51 54 54 04 02 00 01 ...), CONNACK 20 02 00 00, then silence: twelve "
            "connections were closed after 1.19, 1.58, 4.91, 5.04, 5.10, 5.27, 5.36, 5.73, 5.96, 6.56, 6.58 and "
            "6.86 s (limit 1.5 s); the broker log says 'Client ... has exceeded timeout, disconnecting.' only "
            "then. The check apparently runs on a coarse periodic timer with whole-second timestamps.")),
    Deviation(
        102, "mosquitto",
        "PINGREQ with non-zero fixed-header flags is answered with PINGRESP instead of closing the connection",
        (("3.1.1", "MQTT-2.2.2-2"), ("5.0", "MQTT-2.1.3-1")), lambda v: v == (2, 0, 11), "2.0.11 (observed)",
        "found by this suite (test_malformed.py::test_invalid_fixed_header_flags_close); possibly among the "
        "'strict protocol compliance fixes' of 2.0.12 (mosquitto ChangeLog), not verified",
        evidence=(
            "3.1.1 section 2.2.2: 'Where a flag bit is marked as \u201cReserved\u201d in Table 2.2 - Flag Bits, it "
            "is reserved for future use and MUST be set to the value listed in that table [MQTT-2.2.2-1]. If "
            "invalid flags are received, the receiver MUST close the Network Connection [MQTT-2.2.2-2]'; 5.0 "
            "section 2.1.3: 'If invalid flags are received it is a Malformed Packet' [MQTT-2.1.3-1], and 4.13.1 "
            "'it MUST close the Network Connection' [MQTT-4.13.1-1]. PINGREQ's flags are 0000. Observed on "
            "mosquitto 2.0.11, both versions: client sends c1 00 (PINGREQ, flags 0001), broker answers d0 00 "
            "(PINGRESP) and keeps the connection open. PUBREL, SUBSCRIBE, UNSUBSCRIBE and DISCONNECT with "
            "wrong flags are closed correctly.")),
    Deviation(
        103, "mosquitto",
        "Receive Maximum of the client exceeded: each PUBACK releases two queued QoS 1 PUBLISHes, so the "
        "client holds Receive Maximum + 1 unacknowledged messages",
        (("5.0", "MQTT-3.3.4-9"), ("5.0", "MQTT-4.9.0-2")), lambda v: v == (2, 0, 11), "2.0.11 (observed)",
        "found by this suite (test_v5.py::test_receive_maximum_respected)",
        evidence=(
            "5.0 section 3.3.4: 'The Server MUST NOT send more than Receive Maximum QoS 1 and QoS 2 PUBLISH "
            "packets for which it has not received PUBACK, PUBCOMP, or PUBREC with a Reason Code of 128 or "
            "greater from the Client [MQTT-3.3.4-9].' Observed on mosquitto 2.0.11: CONNECT with Receive "
            "Maximum 2 (property 21 00 02), SUBSCRIBE QoS 1, six QoS 1 messages published; the broker sends "
            "ids 1 and 2 and waits (correct); after PUBACK 40 02 00 01 it sends ids 3 and 4 (3 unacknowledged: "
            "2, 3, 4); after PUBACK for id 2 it sends ids 5 and 6. Reproduced three times in a row.")),
    Deviation(
        104, "mosquitto",
        "MQTT 3.1.1 overlapping subscriptions: the one copy sent is at the QoS of the subscription mosquitto's "
        "topic tree reaches first (an exact level before '+' before '#'), not at the highest granted QoS",
        (("3.1.1", "MQTT-3.3.5-1"),), _between((2, 0, 11), (2, 1, 0)),
        "2.0.11 and 2.0.21 (observed); not 2.1.2",
        "found by this suite (test_properties.py::test_deliveries_equal_matching_subscriptions); not in "
        "mosquitto ChangeLog 2.1.0 (allow_duplicate_messages) concerns duplicate copies, not their QoS",
        evidence=(
            "3.1.1 section 3.3.5: 'When Clients make subscriptions with Topic Filters that include wildcards, it "
            "is possible for a Client's subscriptions to overlap so that a published message might match "
            "multiple filters. In this case the Server MUST deliver the message to the Client respecting the "
            "maximum QoS of all the matching subscriptions [MQTT-3.3.5-1].' Observed on mosquitto 2.0.11 "
            "(default configuration, allow_duplicate_messages false), MQTT 3.1.1: one client subscribes to '#' "
            "at QoS 1 and to 'ns1' at QoS 0 (SUBACKs grant 1 and 0); a QoS 1 PUBLISH to 'ns1' reaches it once, "
            "as 30 06 00 03 6e 73 31 78 (QoS 0). The same with '+' at QoS 2 and 'ns1' at QoS 0, with the "
            "subscriptions made in either order. Likewise 'ns1/a' at QoS 1 with 'ns1/#' or 'ns1/+' at QoS 2: a "
            "QoS 2 PUBLISH to 'ns1/a' arrives once, as 32 0a 00 05 6e 73 31 2f 61 00 01 78 (QoS 1). With "
            "'ns1/#' at QoS 1 and 'ns1' at QoS 0 the copy is QoS 1 (32 08 00 03 6e 73 31 00 01 78), as it must "
            "be. MQTT 5.0 connections get one copy per subscription (e.g. 32 0b ... 00 01 00 78 and 34 0b ... "
            "00 02 00 78), which the 5.0 text allows.")),
    Deviation(
        105, "mosquitto",
        "CONNECT carrying Authentication Data without an Authentication Method is accepted (CONNACK 0x00) "
        "instead of being refused as a Protocol Error",
        (("5.0", "PE-3.1.2.11.10-a"), ("5.0", "MQTT-3.1.4-1")), _between((2, 0, 11), (2, 1, 0)),
        "2.0.11 and 2.0.21 (observed); not 2.1.2",
        "found by this suite (test_v5_protocol_errors.py::test_connect_authentication_data_without_method)",
        evidence=(
            "5.0 section 3.1.2.11.10: 'It is a Protocol Error to include Authentication Data if there is no "
            "Authentication Method.' 4.13.1: on a Protocol Error the server MUST close the connection "
            "[MQTT-4.13.1-1], and 3.1.4: 'The Server MUST validate that the CONNECT packet matches the format "
            "described in section 3.1 and close the Network Connection if it does not match' [MQTT-3.1.4-1]. "
            "Observed on mosquitto 2.0.11: CONNECT 10 21 00 04 4d 51 54 54 05 02 00 1e 05 16 00 02 01 02 00 0f "
            "... (properties: 16 00 02 01 02 = Authentication Data only) is answered with CONNACK 20 09 00 00 06 "
            "22 00 0a 21 00 14 (Success) and the connection stays open.")),
    Deviation(
        106, "mosquitto",
        "A client PUBLISH carrying a Subscription Identifier (even the forbidden value 0) is accepted and "
        "acknowledged instead of being treated as a Protocol Error",
        (("5.0", "PE-3.3.4-a"), ("5.0", "PE-3.3.2.3.8-a")), _between((2, 0, 11), (2, 1, 0)),
        "2.0.11 and 2.0.21 (observed); not 2.1.2",
        "found by this suite (test_v5_protocol_errors.py::test_publish_from_client_with_subscription_identifier, "
        "::test_publish_subscription_identifier_zero)",
        evidence=(
            "5.0 section 3.3.4: 'It is a Protocol Error for a PUBLISH packet to contain any Subscription "
            "Identifier other than those received in SUBSCRIBE packet which caused it to flow. A PUBLISH packet "
            "sent from a Client to a Server MUST NOT contain a Subscription Identifier [MQTT-3.3.4-6].' 3.3.2.3.8: "
            "'It is a Protocol Error if the Subscription Identifier has a value of 0.' 4.13.1: the server MUST "
            "close the connection [MQTT-4.13.1-1]. Observed on mosquitto 2.0.11: PUBLISH 32 34 00 18 "
            "'conformance/.../x' 00 01 02 0b 05 'must not be delivered' (QoS 1, property 0b 05 = Subscription "
            "Identifier 5) is answered with PUBACK 40 02 00 01 and the connection stays open; the same with "
            "0b 00 (Subscription Identifier 0).")),
    Deviation(
        107, "mosquitto",
        "A PUBLISH whose Response Topic contains a wildcard ('reply/+', 'reply/#') is accepted and forwarded "
        "to subscribers with that Response Topic",
        (("5.0", "MQTT-3.3.2-14"),), lambda v: v == (2, 0, 11), "2.0.11 (observed)",
        "found by this suite (test_v5_protocol_errors.py::test_response_topic_with_wildcard_not_forwarded)",
        evidence=(
            "5.0 section 3.3.2.3.5: 'The Response Topic MUST NOT contain wildcard characters [MQTT-3.3.2-14].' The "
            "statement binds every sender of a PUBLISH, the server included, and 'The Server MUST send the Response "
            "Topic unaltered to all subscribers receiving the Application Message [MQTT-3.3.2-15]', so a server "
            "can only refuse such a message (close, or PUBACK/PUBREC 0x80+), never forward it. Observed on "
            "mosquitto 2.0.11: PUBLISH 32 2e 00 18 'conformance/.../x' 00 01 0a 08 00 07 72 65 70 6c 79 2f 2b "
            "'payload' (Response Topic 'reply/+') gets PUBACK 40 02 00 01, and the subscriber receives 32 2e ... "
            "0a 08 00 07 72 65 70 6c 79 2f 2b ... with the wildcard Response Topic; the same for 'reply/#'.")),
    Deviation(
        108, "mosquitto",
        "A shared-subscription filter with an empty ShareName ('$share//x', '$share/') is granted (SUBACK 0x00) "
        "instead of refused",
        (("5.0", "MQTT-4.8.2-1"),), _between((2, 0, 11)), "2.0.11, 2.0.21 and 2.1.2 (observed)",
        "found by this suite (test_v5.py::test_shared_subscription_without_share_name_refused)",
        evidence=(
            "5.0 section 4.8.2: '$share is a literal string that marks the Topic Filter as being a Shared "
            "Subscription Topic Filter.' ... 'A Shared Subscription's Topic Filter MUST start with $share/ and "
            "MUST contain a ShareName that is at least one character long [MQTT-4.8.2-1].' Observed on mosquitto "
            "2.0.11 (MQTT 5.0): SUBSCRIBE 82 0f 00 01 00 00 09 24 73 68 61 72 65 2f 2f 78 00 ('$share//x', QoS 0) "
            "is answered with SUBACK 90 04 00 01 00 00 (granted QoS 0); SUBSCRIBE 82 0d 00 01 00 00 07 24 73 68 61 "
            "72 65 2f 00 ('$share/') likewise. A ShareName with a wildcard ('$share/g+/x') is refused with "
            "DISCONNECT 0x81, so the check exists but lets an empty ShareName through.")),
    Deviation(
        109, "mosquitto",
        "A Will with a Will Delay Interval is published at once when the connection drops, although the "
        "session (Session Expiry Interval 30 s) outlives the delay",
        (("5.0", "MQTT-3.1.2-8"),), _between((2, 1, 0)), "2.1.2 (observed); not 2.0.11 or 2.0.21",
        "found by this suite (test_will.py::test_v5_will_delay); mosquitto's known will-delay issue "
        "Session Expiry 0 (#3505), not this case",
        evidence=(
            "5.0 section 3.1.2.5: 'The Will Message MUST be published after the Network Connection is subsequently "
            "closed and either the Will Delay Interval has elapsed or the Session ends [...] [MQTT-3.1.2-8]', and "
            "3.1.3.2.2: 'The Server delays publishing the Client's Will Message until the Will Delay Interval has "
            "passed or the Session ends, whichever happens first.' Observed on mosquitto 2.1.2 "
            "(Debian sid image, MQTT 5.0): a client connects with Clean Start 0, Session Expiry Interval 30 and a "
            "QoS 1 Will whose properties carry Will Delay Interval 1 (18 00 00 00 01); its socket is closed "
            "without DISCONNECT; the watcher subscribed to the will topic receives the Will PUBLISH 0.2 to 0.7 s after the "
            "close, before the 1 s delay (the delay seems rounded to mosquitto's whole-second timer). Reproduced "
            "4 times out of 4; 2.0.11 and 2.0.21 wait for the delay.")),
    Deviation(
        110, "mosquitto",
        "MQTT 3.1: a Client Identifier longer than 23 characters is accepted (CONNACK 0) instead of refused "
        "with return code 2 (identifier rejected)",
        (("3.1", "V31-3.1-b"),), _between((2, 0, 0)), "2.0.11, 2.0.21 and 2.1.2 (observed); 1.x not checked",
        "found by this suite (test_v31.py::test_client_identifier_longer_than_23_is_rejected)",
        evidence=(
            "MQTT 3.1, section 3.1 (CONNECT payload): the Client Identifier must be between 1 and 23 characters "
            "long, and a server receiving a longer one answers CONNACK with return code 2 (identifier rejected). "
            "Observed on mosquitto 2.0.11 (Debian bookworm binary), 2.0.21 and 2.1.2 (Docker images): CONNECT "
            "'MQIsdp' level 3 with a 24-character identifier (10 26 00 06 4d 51 49 73 64 70 03 02 00 3c 00 18 "
            "...) is answered 20 02 00 00 and the connection is usable. The 23-character case and empty "
            "identifiers (return code 2) behave as specified.")),
    Deviation(
        111, "mosquitto",
        "MQTT 3.1: CONNECT 'MQIsdp' with protocol version 127 gets a v5-format CONNACK 20 03 00 84 00 "
        "instead of the 3.1 answer 20 02 00 01 (unacceptable protocol version)",
        (("3.1", "V31-3.1-d"), ("3.1", "V31-3.2-a")), _between((2, 1, 0)), "2.1.2 (observed); not 2.0.11 or 2.0.21",
        "found by this suite (test_v31.py::test_mqisdp_with_another_level_is_refused); related to deviation #1 "
        "(the same v5-format answer to an unknown level under the name 'MQTT')",
        evidence=(
            "MQTT 3.1, section 3.2 (CONNACK): the variable header is two bytes, a reserved byte and the return "
            "code, and return code 1 refuses an unacceptable protocol version. Observed on mosquitto 2.1.2 "
            "(Debian sid image): CONNECT 10 1d 00 06 4d 51 49 73 64 70 7f 02 ... (MQIsdp, level 0x7F) is answered "
            "20 03 00 84 00, a CONNACK with remaining length 3 and the MQTT 5.0 reason code 0x84, which a 3.1 "
            "client cannot read; 'MQIsdp' level 4 still gets 20 02 00 01. mosquitto 2.0.11 and 2.0.21 answer "
            "20 02 00 01 to both.")),
    Deviation(
        112, "mosquitto",
        "MQTT over WebSocket: a text frame does not close the connection; it stays open and stops answering",
        (("3.1.1", "MQTT-6.0.0-1"), ("5.0", "MQTT-6.0.0-1")), _between((2, 0, 11), (2, 1, 0)),
        "2.0.11 and 2.0.21 (observed); 2.1.2 closes the connection",
        "found by this suite (test_wire.py::test_websocket_transport), once the mosquitto target opened a "
        "WebSocket listener",
        evidence=(
            "Both specifications, section 6: 'MQTT Control Packets MUST be sent in WebSocket binary data frames. If "
            "any other type of data frame is received the recipient MUST close the Network Connection "
            "[MQTT-6.0.0-1].' Observed on mosquitto 2.0.11 (Debian bookworm binary, listener with protocol "
            "websockets), MQTT 3.1.1 and 5.0: after CONNECT / CONNACK 20 02 00 00 the client sends one text frame "
            "'this is not MQTT'; the TCP connection is still open 3 s later, and a PINGREQ c0 00 sent then gets no "
            "PINGRESP within 2 s; the same on 2.0.21 (Docker image, trixie). (Consistent with the text's bytes being "
            "read as MQTT: 't' 0x74 would be a PUBREL header announcing 0x68 = 104 more bytes.)")),
)

DEVIATIONS: dict[int, Deviation] = {d.number: d for d in _ALL}


def applies(number: int, version_string: str, declared: frozenset[int] | set[int] = frozenset()) -> bool:
    """Does deviation `number` apply to a broker with this version string (or declared in its profile)?"""
    if number in declared:
        return True
    deviation = DEVIATIONS.get(number)
    return deviation is not None and deviation.applies(version_string)


def applies_to_target(number: int, target: BrokerTarget) -> bool:
    return applies(number, target.version_string, target.profile.known_deviations)
