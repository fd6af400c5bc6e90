"""The known-deviation table's version ranges agree with real mosquitto bytes.

conformance/deviations.py says which mosquitto versions show each deviation; a wrong range labels a real
failure "known" on a version that does not have it (or a known one "new"). For the deviations whose
behaviour the corpus shows (pcap/captures/mosquitto-VERSION, recorded from the real versions), this test
reads the capture of each version and checks that the deviation applies to exactly the versions whose
bytes show the behaviour.

    pytest tests/pcap/test_deviation_ranges.py -q
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from conformance.deviations import DEVIATIONS
from pcap.reader import read_capture
from pcap.session import Direction, Session

CORPUS = Path(__file__).resolve().parents[2] / "pcap" / "captures"
VERSIONS = sorted(path.name.removeprefix("mosquitto-") for path in CORPUS.glob("mosquitto-*"))


def _v5_connack_to_a_311_connect(sessions: list[Session]) -> bool:
    """Deviation 1: CONNECT with level 6 in 3.1.1 format answered with the 5.0-format CONNACK 0x84."""
    return sessions[0].broker_bytes.startswith(b"\x20\x03\x00\x84")


def _takeover_without_disconnect(sessions: list[Session]) -> bool:
    """Deviation 13: the v5 connection a second CONNECT takes over gets no DISCONNECT (0x8E) first."""
    first = sessions[0]
    return not any(packet.packet is not None and packet.name == "DISCONNECT" and packet.direction is Direction.BROKER
                   for packet in first.packets())


def _pubrec_0x97_for_receive_maximum(sessions: list[Session]) -> bool:
    """Deviation 8: a QoS 2 PUBLISH over the broker's Receive Maximum answered with PUBREC 0x97, no DISCONNECT 0x93."""
    packets = [packet for session in sessions for packet in session.packets() if packet.direction is Direction.BROKER]
    pubrec_97 = any(packet.name == "PUBREC" and packet.raw[-1:] == b"\x97" for packet in packets)
    disconnect_93 = any(packet.name == "DISCONNECT" and packet.raw[2:3] == b"\x93" for packet in packets)
    return pubrec_97 and not disconnect_93


#: deviation number -> (capture name, does the capture show the behaviour)
EVIDENCE: dict[int, tuple[str, Callable[[list[Session]], bool]]] = {
    1: ("test_connect.test_unsupported_protocol_level-v3.1.1-6.pcapng.gz", _v5_connack_to_a_311_connect),
    8: ("test_flows.test_receive_maximum_overrun_disconnects-v5.0.pcapng.gz", _pubrec_0x97_for_receive_maximum),
    13: ("test_session.test_client_id_takeover_closes_existing_connection-v5.0.pcapng.gz",
         _takeover_without_disconnect),
}


@pytest.mark.parametrize("number", sorted(EVIDENCE))
def test_a_deviation_applies_to_exactly_the_versions_whose_bytes_show_it(number):
    assert len(VERSIONS) >= 3, f"the corpus has {VERSIONS}"
    name, shows = EVIDENCE[number]
    observed = {}
    for version in VERSIONS:
        capture = read_capture(CORPUS / f"mosquitto-{version}" / name)
        assert capture.sessions, f"{version}/{name} has no MQTT session"
        observed[version] = shows(capture.sessions)
    claimed = {version: DEVIATIONS[number].applies(f"mosquitto {version}") for version in VERSIONS}
    assert claimed == observed, (f"deviation {number} ({DEVIATIONS[number].versions_text}) is claimed for "
                                 f"{claimed}, the captures show {observed}")
