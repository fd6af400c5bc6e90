"""tshark's MQTT dissector (Debian tshark) as an independent judge of our decoder."""

from __future__ import annotations

import subprocess
import sys

import pytest

from pcap.reader import read_capture
from pcap.tshark import check_captures, compare_views, dissect, find_tshark, our_view, tshark_view
from refbroker.protocol import (MQTT_3_1_1, MQTT_5, Auth, Connack, Connect, Disconnect, Properties, Puback,
                                Publish, Suback, Subscribe, Subscription, Unsuback, Unsubscribe, Will)

from .frames import Flow, conversation, stream_flow, write

pytestmark = pytest.mark.skipif(find_tshark() is None, reason="tshark not installed: apt-get install tshark")

EVERY_PROPERTY = Properties(payload_format_indicator=1, message_expiry_interval=100, content_type="text/plain",
                            response_topic="r/t", correlation_data=b"\x00\x01\xff",
                            user_properties=[("k", "v"), ("k2", "v2")], subscription_identifiers=[7, 300],
                            topic_alias=2)


def rich_conversation():
    return [
        ("c", Connect(client_id="me", protocol_level=MQTT_5, username="u", password=b"p",
                      will=Will("w/t", b"bye", 1, True, Properties(will_delay_interval=5, content_type="x",
                                                                    correlation_data=b"zz")),
                      properties=Properties(session_expiry_interval=30, authentication_method="SCRAM",
                                            authentication_data=b"\x01\x02", receive_maximum=5,
                                            maximum_packet_size=1000, topic_alias_maximum=3,
                                            request_problem_information=0, request_response_information=1,
                                            user_properties=[("a", "b")])).encode()),
        ("b", Connack(0, False, Properties(assigned_client_identifier="auto-1", server_keep_alive=10,
                                           response_information="ri", server_reference="sr", reason_string="rs",
                                           maximum_qos=1, retain_available=0, wildcard_subscription_available=0,
                                           subscription_identifier_available=1, shared_subscription_available=0,
                                           topic_alias_maximum=4)).encode(MQTT_5)),
        ("c", Subscribe(9, [Subscription("a/#", 2, True, True, 2), Subscription("$share/g/x", 1)],
                        Properties(subscription_identifiers=[7])).encode(MQTT_5)),
        ("b", Suback(9, [2, 0x80], Properties(reason_string="ok")).encode(MQTT_5)),
        ("c", Publish("a/b", b"hello", 1, False, False, 5, EVERY_PROPERTY).encode(MQTT_5)),
        ("b", Puback(5, 0x10, Properties(reason_string="no one")).encode(MQTT_5)),
        ("c", Unsubscribe(10, ["a/#", "b"]).encode(MQTT_5)),
        ("b", Unsuback(10, [0, 0x11]).encode(MQTT_5)),
        ("c", Auth(0x19, Properties(authentication_method="SCRAM", authentication_data=b"\x00\x11")).encode(MQTT_5)),
        ("b", Disconnect(0x8E, Properties(reason_string="bye", server_reference="elsewhere")).encode(MQTT_5)),
    ]


def test_every_field_and_property_agrees(tmp_path):
    path = tmp_path / "rich.pcapng"
    write(path, stream_flow(rich_conversation(), cut=5).frames())
    report = check_captures([path])
    assert report.counts["agree"] == 10, [v for v in report.verdicts if v.outcome != "agree"]


def test_several_files_3_1_1_and_odd_ports(tmp_path):
    first, second = tmp_path / "a.pcapng", tmp_path / "b.pcapng"
    write(first, stream_flow(conversation(MQTT_3_1_1), cut=3).frames())
    write(second, stream_flow(conversation(MQTT_5), broker=("10.0.0.2", 11883)).frames())  # decoded as
    report = check_captures([first, second])
    assert report.files == 2 and report.counts["agree"] == 18, report.problems()


def test_refused_packets_are_listed_apart(tmp_path):
    packets = conversation()[:2] + [("c", Publish("a/+", b"x", 0).encode(MQTT_5))]  # a wildcard in a topic name
    path = tmp_path / "refused.pcapng"
    write(path, stream_flow(packets).frames())
    report = check_captures([path])
    (refused,) = [v for v in report.verdicts if v.outcome == "refused"]
    assert "MQTT-3.3.2-2" in refused.detail and "tshark shows: Publish Message" in refused.detail
    assert report.problems() == []


def test_a_session_without_connect_is_explained(tmp_path):
    path = tmp_path / "late.pcapng"
    write(path, stream_flow(conversation()[2:4], handshake=False).frames())
    report = check_captures([path])
    assert {v.outcome for v in report.verdicts} == {"explained"}
    assert "unknown version" in report.verdicts[0].detail


def test_the_comparison_finds_a_difference(tmp_path):
    """The judge can say no: our view of one PUBLISH against tshark's dissection of another lists the
    fields that differ (and nothing else)."""
    def publish_capture(name, packet):
        path = tmp_path / name
        write(path, stream_flow(conversation()[:2] + [("c", packet.encode(MQTT_5))]).frames())
        return path

    ours_path = publish_capture("ours.pcapng", Publish("a/b", b"x", 1, False, False, 3))
    theirs_path = publish_capture("theirs.pcapng", Publish("a/c", b"x", 1, True, False, 4))
    (session,) = read_capture(ours_path).sessions
    mine = [p for p in session.packets() if p.name == "PUBLISH"][0]
    frames = [frame for frame in dissect(theirs_path) if any("Publish" in e.get("showname", "") for e in frame[3])]
    *_, protos = frames[0]
    theirs = tshark_view(protos[0], MQTT_5)
    assert compare_views(our_view(mine), our_view(mine)) == []
    assert compare_views(our_view(mine), theirs) == ["flags: ours 2, tshark 3", "packet_id: ours 3, tshark 4",
                                                    "topic: ours b'a/b', tshark b'a/c'"]


def test_generated_fields_are_not_wire_fields(tmp_path):
    """tshark shows the topic a Topic Alias stands for as a generated field; the wire carries an empty
    topic, and that is what both decoders must agree on."""
    packets = conversation()[:2] + [("c", Publish("a/b", b"x", 0, properties=Properties(topic_alias=1)).encode(MQTT_5)),
                                    ("c", Publish("", b"y", 0, properties=Properties(topic_alias=1)).encode(MQTT_5))]
    path = tmp_path / "alias.pcapng"
    write(path, stream_flow(packets).frames())
    report = check_captures([path])
    assert report.counts["agree"] == 4, report.verdicts


def test_cli_check_with_tshark(tmp_path):
    path = tmp_path / "rich.pcapng"
    write(path, stream_flow(rich_conversation()).frames())
    result = subprocess.run([sys.executable, "-m", "pcap", "explain", str(path), "--check-with-tshark"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "tshark check (TShark" in result.stdout and "10 agree, 0 disagree" in result.stdout


def test_mqtt_3_1_agrees(tmp_path):
    from refbroker.protocol import MQTT_3_1

    path = tmp_path / "v31.pcapng"
    write(path, stream_flow(conversation(MQTT_3_1, client_id="old-client"), cut=3).frames())
    report = check_captures([path])
    assert report.counts["agree"] == 9, report.verdicts


def test_a_remaining_length_cut_by_a_segment_boundary(tmp_path):
    """TCP may cut a stream anywhere, also inside the Remaining Length. Our decoder reads such a stream right;
    tshark 4.0's dissector then loses that direction's framing. The check says so instead of reporting
    disagreements (and the packets before the cut still agree)."""
    packets = conversation()[:2] + [("c", Publish("a/b", b"x" * 300, 0).encode(MQTT_5)),
                                    ("c", Disconnect().encode(MQTT_5))]
    flow = Flow()
    flow.segment(0.00, "c", packets[0][1])
    flow.segment(0.01, "b", packets[1][1])
    flow.segment(0.02, "c", packets[2][1][:2])  # 0x30 and the first byte of a two-byte Remaining Length
    flow.segment(0.03, "c", packets[2][1][2:] + packets[3][1])
    path = tmp_path / "cut.pcapng"
    write(path, flow.frames())
    (session,) = read_capture(path).sessions
    assert [p.name for p in session.packets()] == ["CONNECT", "CONNACK", "PUBLISH", "DISCONNECT"]
    report = check_captures([path])
    assert report.problems() == []
    assert [v.outcome for v in report.verdicts if v.direction == "client"][:2] == ["agree", "explained"]
    assert "Remaining Length" in [v for v in report.verdicts if v.outcome == "explained"][0].detail
