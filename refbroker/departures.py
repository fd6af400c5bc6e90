"""Where refbroker follows the MQTT specification and mosquitto does not.

Everywhere else refbroker's bytes are mosquitto's (core/compat.py: 2.0.11 by default, 2.0.21 or 2.1.2
with `mosquitto_compat`). Here mosquitto breaks a statement of the specification, so refbroker keeps
to the specification and says so. Each `Departure` names the statement, what mosquitto does, what
refbroker does, the mosquitto versions that do it, the number of the deviation in the conformance
suite's list (conformance/deviations.py) where it is recorded with its evidence, and the captures of
the reference corpus (pcap/captures/, named by the suite's test) that show it, with the kinds of
difference a replay of them against refbroker reports.

This list is the one source: refbroker/README.md's section "Where refbroker follows the
specification and mosquitto does not" is `markdown()` (`python -m refbroker.departures` prints it),
and tests/pcap/test_refbroker_fidelity.py replays each version's corpus against refbroker in that
version's mode and asserts that the captures that differ are exactly those listed here, with no
other kind of difference.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["DEPARTURES", "Departure", "markdown"]

ALL = ("2.0.11", "2.0.21", "2.1.2")


@dataclass(frozen=True)
class Departure:
    #: (MQTT version, statement id) pairs of the statement catalogue (conformance/catalogue)
    statements: tuple[tuple[str, str], ...]
    mosquitto: str                  # what mosquitto does
    refbroker: str                  # what refbroker does instead, and the sentence that asks for it
    versions: tuple[str, ...]       # the mosquitto versions (of the compat tables) that do it
    deviation: int | None           # the number in conformance/deviations.py, if recorded there
    #: the corpus captures that show it: the conformance test ids of the manifest
    captures: tuple[str, ...] = ()
    #: the kinds of difference the replay of those captures reports (pcap/diff.py)
    differences: tuple[str, ...] = ()
    #: why no capture shows it, when none does
    no_capture: str = ""


_T = "conformance/tests/"

DEPARTURES: tuple[Departure, ...] = (
    Departure(
        (("5.0", "MQTT-3.3.4-7"),),
        "answers the QoS 2 PUBLISH that exceeds its Receive Maximum with PUBREC 0x97 Quota exceeded and "
        "keeps the connection",
        "DISCONNECT 0x93 Receive Maximum exceeded, then closes (5.0 3.3.4: 'the Server uses a DISCONNECT "
        "packet with Reason Code 0x93')",
        ALL, 8,
        (f"{_T}test_flows.py::test_receive_maximum_overrun_disconnects[v5.0]",
         f"{_T}test_flows.py::test_packet_id_after_failed_pubrec_is_a_new_message[v5.0]"),
        ("DISCONNECT instead of PUBREC", "connection close", "missing PUBCOMP", "missing PUBREC",
         "missing PUBLISH")),
    Departure(
        (("5.0", "MQTT-3.3.4-9"), ("5.0", "MQTT-4.9.0-2")),
        "sends a client more unacknowledged QoS 1/2 PUBLISHes than its Receive Maximum (an acknowledgement "
        "releases two queued messages)",
        "never more than the client's Receive Maximum in flight",
        ("2.0.11",), 103,
        (f"{_T}test_v5.py::test_receive_maximum_respected[v5.0]",
         f"{_T}test_v5_limits.py::test_initial_send_quota_is_within_receive_maximum[v5.0]"),
        ("missing PUBLISH", "extra PUBREL", "missing PUBREL")),
    Departure(
        (("5.0", "MQTT-3.1.4-3"),),
        "closes the connection a new CONNECT with the same client id takes over, without a DISCONNECT",
        "DISCONNECT 0x8E Session taken over first ('the Server sends a DISCONNECT packet to the existing "
        "Client with Reason Code of 0x8E')",
        ("2.0.11",), 13,
        (f"{_T}test_session.py::test_client_id_takeover_closes_existing_connection[v5.0]",
         "interop/paho-mqtt-persistent-session-v5.0"),
        ("extra DISCONNECT",)),
    Departure(
        (("3.1.1", "MQTT-2.2.2-2"), ("5.0", "MQTT-2.1.3-1")),
        "answers a PINGREQ with reserved fixed-header flags set with PINGRESP",
        "closes the connection (5.0: DISCONNECT 0x81 first, as mosquitto 2.0.21 does)",
        ("2.0.11",), 102,
        (f"{_T}test_malformed.py::test_invalid_fixed_header_flags_close[v3.1.1-PINGREQ flags 0001]",
         f"{_T}test_malformed.py::test_invalid_fixed_header_flags_close[v5.0-PINGREQ flags 0001]"),
        ("connection close", "DISCONNECT instead of PINGRESP")),
    Departure(
        (("5.0", "PE-3.1.2.11.10-a"), ("5.0", "MQTT-3.1.4-1")),
        "accepts a CONNECT with Authentication Data but no Authentication Method (CONNACK 0x00)",
        "refuses it as a Protocol Error: closes the connection (2.1.2 mode: after CONNACK 0x82, as mosquitto "
        "2.1.2 does)",
        ("2.0.11", "2.0.21"), 105,
        (f"{_T}test_v5_protocol_errors.py::test_connect_authentication_data_without_method[v5.0]",),
        ("connection close",)),
    Departure(
        (("5.0", "PE-3.3.4-a"), ("5.0", "PE-3.3.2.3.8-a")),
        "accepts and forwards a client PUBLISH that carries a Subscription Identifier (even 0)",
        "a Protocol Error: DISCONNECT 0x82, nothing forwarded ([MQTT-3.3.4-6]: a client PUBLISH MUST NOT "
        "contain one)",
        ("2.0.11", "2.0.21"), 106,
        (f"{_T}test_v5_protocol_errors.py::test_publish_from_client_with_subscription_identifier[v5.0]",
         f"{_T}test_v5_protocol_errors.py::test_publish_subscription_identifier_zero[v5.0]"),
        ("DISCONNECT instead of PUBACK", "connection close", "missing PUBLISH")),
    Departure(
        (("5.0", "MQTT-3.3.2-14"),),
        "accepts a PUBLISH whose Response Topic has a wildcard and forwards that Response Topic",
        "a Protocol Error: DISCONNECT 0x82, nothing forwarded",
        ("2.0.11",), 107,
        (f"{_T}test_v5_protocol_errors.py::test_response_topic_with_wildcard_not_forwarded[v5.0-reply/+]",
         f"{_T}test_v5_protocol_errors.py::test_response_topic_with_wildcard_not_forwarded[v5.0-reply/#]"),
        ("DISCONNECT instead of PUBACK", "connection close", "missing PUBLISH")),
    Departure(
        (("5.0", "MQTT-4.8.2-1"),),
        "grants the shared subscription '$share//x', whose ShareName is empty (SUBACK 0x00)",
        "an invalid topic filter: DISCONNECT 0x81, as mosquitto answers other invalid filters",
        ALL, 108,
        (f"{_T}test_v5.py::test_shared_subscription_without_share_name_refused[v5.0-$share//x]",),
        ("DISCONNECT instead of SUBACK", "connection close")),
    Departure(
        (("5.0", "MQTT-4.8.2-1"),),
        "grants '$share/' (no ShareName, no topic filter) as a subscription (SUBACK 0x00)",
        "DISCONNECT 0x82, as mosquitto 2.0.21 answers it",
        ("2.0.11",), 108,
        (f"{_T}test_v5.py::test_shared_subscription_without_share_name_refused[v5.0-$share/]",),
        ("DISCONNECT instead of SUBACK", "connection close")),
    Departure(
        (("3.1", "V31-3.1-b"),),
        "accepts an MQTT 3.1 client identifier longer than 23 characters (CONNACK 0)",
        "CONNACK return code 2 (identifier rejected), then closes",
        ALL, 110,
        (f"{_T}test_v31.py::test_client_identifier_longer_than_23_is_rejected[v3.1]",),
        ("CONNACK Return Code", "connection close")),
    Departure(
        (("3.1.1", "MQTT-3.1.2-2"),),
        "answers a CONNECT 'MQTT' with a protocol level it does not know with a 5.0 CONNACK 20 03 00 84 00, "
        "which a 3.1.1 client cannot read",
        "CONNACK 20 02 00 01 (3.1.1: return code 0x01, unacceptable protocol level); the level gives no clue "
        "that the client reads 5.0, so a 5.0 client gets the same answer (5.0 allows it)",
        ("2.1.2",), 1,
        (f"{_T}test_connect.py::test_unsupported_protocol_level[v3.1.1-255]",
         f"{_T}test_connect.py::test_unsupported_protocol_level[v3.1.1-6]",
         f"{_T}test_connect.py::test_unsupported_protocol_level[v5.0-255]",
         f"{_T}test_connect.py::test_unsupported_protocol_level[v5.0-6]"),
        ("CONNACK Reason Code", "CONNACK Return Code")),
    Departure(
        (("3.1", "V31-3.1-d"), ("3.1", "V31-3.2-a")),
        "answers CONNECT 'MQIsdp' with a protocol version it does not know with a 5.0 CONNACK 20 03 00 84 00",
        "CONNACK 20 02 00 01 (MQTT 3.1: return code 1, unacceptable protocol version)",
        ("2.1.2",), 111,
        (f"{_T}test_v31.py::test_mqisdp_with_another_level_is_refused[v3.1-127]",),
        ("CONNACK Reason Code", "CONNACK Return Code")),
    # ----- not shown by a capture of the corpus (yet)
    Departure(
        (("3.1.1", "MQTT-3.1.2-24"), ("5.0", "MQTT-3.1.2-22"), ("3.1", "V31-3.1-f")),
        "closes a client silent for 1.5 x Keep Alive seconds late (up to 7 s for a Keep Alive of 1 s)",
        "closes it at 1.5 x Keep Alive",
        ("2.0.11",), 101,
        no_capture="timing: the corpus captures show it, but a replay does not compare times"),
    Departure(
        (("3.1.1", "MQTT-4.8.0-1"), ("5.0", "MQTT-4.13.1-1")),
        "does not close a connection promptly after a packet of the reserved type 0",
        "closes it at once (5.0: DISCONNECT 0x82, as mosquitto)",
        ("2.0.11",), 22,
        no_capture="timing: the corpus capture shows mosquitto's answer, a replay does not compare times"),
    Departure(
        (("5.0", "MQTT-3.4.2-1"),),
        "answers a PUBLISH it accepts, when it matched subscribers, with PUBACK 0x10 No matching subscribers "
        "in some cases",
        "PUBACK 0x10 only when no subscription matched the topic, 0x00 otherwise",
        ("2.0.11",), 19,
        no_capture="no conversation of the suite leads mosquitto 2.0.11 to it"),
    Departure(
        (("3.1.1", "MQTT-3.3.5-1"),),
        "sends a 3.1.1 client with overlapping subscriptions one copy at the QoS of the subscription its "
        "topic tree reaches first, not the highest",
        "one copy at the highest QoS of the matching subscriptions (2.1.2 mode: one copy per subscription, "
        "as mosquitto 2.1.2)",
        ("2.0.11", "2.0.21"), 104,
        no_capture="found by the suite's hypothesis tests, which the corpus leaves out"),
    Departure(
        (("5.0", "MQTT-4.3.3-10"), ("3.1.1", "MQTT-4.3.3-2")),
        "answers a second duplicate QoS 2 PUBLISH before PUBREL with DISCONNECT 0x82",
        "PUBREC again, every time",
        ("2.1.2",), 21,
        no_capture="no conversation of the suite sends a second duplicate"),
    Departure(
        (("5.0", "MQTT-3.1.2-8"),),
        "publishes a Will with a Will Delay Interval at once when the connection drops, although the session "
        "outlives the delay",
        "waits for the delay (or the end of the session)",
        ("2.1.2",), 109,
        no_capture="the corpus build leaves test_v5_will_delay out: its timing does not replay identically"),
    Departure(
        (("5.0", "MQTT-3.1.2-8"),),
        "waits for the Will Delay Interval (2.1.2: part of it) although the session (Session Expiry 0) ended "
        "with the connection",
        "publishes the Will at once: it is sent when the delay passes or the session ends, whichever is first",
        ALL, None,
        no_capture="the suite has no test of a Will Delay with Session Expiry 0"),
    Departure(
        (("5.0", "MQTT-3.8.3-4"),),
        "accepts No Local on a shared subscription",
        "a Protocol Error: DISCONNECT 0x82, as mosquitto 2.0.21 answers it",
        ("2.0.11",), None,
        no_capture="the suite has no test of it yet"),
    Departure(
        (("3.1.1", "MQTT-3.2.2-6"),),
        "refuses a 3.1.1 client whose Keep Alive is 0 or above max_keepalive (when one is set) with return code "
        "2 (identifier rejected), which is not why it is refused",
        "closes the connection without CONNACK: no return code applies",
        ("2.0.21", "2.1.2"), None,
        no_capture="the corpus is recorded without max_keepalive; tests/broker/test_fidelity_bytes.py shows it "
                   "side by side"),
    Departure(
        (("5.0", "MQTT-3.4.2-1"),),
        "answers a PUBLISH above message_size_limit with PUBACK 0x95 Packet too large, not a PUBACK reason code",
        "PUBACK (PUBREC) 0x97 Quota exceeded",
        ALL, None,
        no_capture="the corpus is recorded without message_size_limit"),
)


def markdown() -> str:
    """The README section's list, made from DEPARTURES."""
    lines = []
    for departure in DEPARTURES:
        statements = ", ".join(f"[{statement}] ({version})" for version, statement in departure.statements)
        versions = ", ".join(departure.versions)
        lines.append(f"- {statements}: mosquitto {versions} {departure.mosquitto}; refbroker: {departure.refbroker}.")
        evidence = [f"conformance deviation {departure.deviation}"] if departure.deviation is not None else []
        if departure.captures:
            evidence.append("captures: " + ", ".join(f"`{capture.removeprefix(_T)}`" for capture in departure.captures))
        else:
            evidence.append(f"no capture: {departure.no_capture}")
        lines.append(f"  ({'; '.join(evidence)})")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(markdown(), end="")
