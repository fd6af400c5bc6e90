"""explain: every packet, field and property with the statements that govern it; text and HTML; the CLI."""

from __future__ import annotations

import subprocess
import sys

import pytest

from pcap.explain import describe_packet, explain_capture, render_text
from pcap.explain_html import render_html
from pcap.reader import read_capture
from refbroker.protocol import (MQTT_3_1_1, MQTT_5, Auth, Connack, Connect, Disconnect, Properties, Publish,
                                Suback, Subscribe, Subscription, Will)

from .frames import conversation, stream_flow, write


def _flat(fields, prefix=""):
    out = {}
    for item in fields:
        out[prefix + item.label] = item
        out.update(_flat(item.children, prefix + item.label + "/"))
    return out


def test_publish_fields_and_their_statements():
    packet = Publish("a/b", b"hello", 1, True, False, 7,
                     Properties(message_expiry_interval=60, topic_alias=3, user_properties=[("k", "v")]))
    fields = _flat(describe_packet(packet, MQTT_5))
    assert fields["QoS"].value == "1"
    assert "MQTT-3.3.1-4" in fields["QoS"].ids  # the QoS bits [MQTT-3.3.1-4]
    assert "MQTT-4.3.2-1" in fields["QoS"].ids  # QoS 1 brings in the QoS 1 flow (4.3.2)
    assert "MQTT-3.3.1-5" in fields["RETAIN"].ids
    assert "MQTT-3.3.2-1" in fields["Topic Name"].ids and "MQTT-4.7.3-1" in fields["Topic Name"].ids
    assert fields["Packet Identifier"].value == "7" and "MQTT-2.2.1-3" in fields["Packet Identifier"].ids
    assert fields["Properties/Message Expiry Interval (0x02)"].value == "60"
    assert "MQTT-3.3.2-5" in fields["Properties/Message Expiry Interval (0x02)"].ids
    assert "MQTT-3.3.2-8" in fields["Properties/Topic Alias (0x23)"].ids
    assert fields["Properties/User Property (0x26)"].value == "'k': 'v'"
    assert fields["Payload"].value == "'hello' (5 bytes)"


def test_version_specific_statements():
    """3.1.1 and 5.0 number their statements differently; each packet gets its own version's ids."""
    v3 = _flat(describe_packet(Connect(client_id="c", protocol_level=MQTT_3_1_1), MQTT_3_1_1))
    v5 = _flat(describe_packet(Connect(client_id="c", protocol_level=MQTT_5), MQTT_5))
    assert "Connect Flags/Clean Session" in v3 and "Connect Flags/Clean Start" in v5
    assert v3["Keep Alive"].ids == ("MQTT-3.1.2-23", "MQTT-3.1.2-24")  # 3.1.1 numbering
    assert v5["Keep Alive"].ids[0] == "MQTT-3.1.2-20"  # 5.0 numbering
    assert "Properties" in v5 and "Properties" not in v3


def test_every_packet_type_has_its_fields():
    connect = Connect(client_id="c", protocol_level=MQTT_5, username="u", password=b"p",
                      will=Will("w/t", b"bye", 1, True, Properties(will_delay_interval=5)),
                      properties=Properties(session_expiry_interval=10))
    fields = _flat(describe_packet(connect, MQTT_5))
    assert fields["Will/Will Properties/Will Delay Interval (0x18)"].ids == ("MQTT-3.1.3-9", "PE-3.1.3.2.2-a")
    assert fields["Will/Will Topic"].value == "'w/t'" and fields["Password"].value == "(1 bytes)"
    assert _flat(describe_packet(Connack(0x87, False), MQTT_5))["Reason Code"].value == "0x87 Not authorized"
    assert _flat(describe_packet(Connack(5, False), MQTT_3_1_1))["Return Code"].value == "0x05 not authorized"
    suback = _flat(describe_packet(Suback(3, [1, 0x80]), MQTT_3_1_1))
    assert suback["Return Codes/#2"].value == "0x80 failure"
    subscribe = _flat(describe_packet(Subscribe(3, [Subscription("$share/g/t", 1)]), MQTT_5))
    assert "MQTT-4.8.2-1" in subscribe["Topic Filter"].ids  # a shared subscription's rules
    assert _flat(describe_packet(Disconnect(0x8E), MQTT_5))["Reason Code"].value == "0x8E Session taken over"
    auth = _flat(describe_packet(Auth(0x18, Properties(authentication_method="SCRAM-SHA-256")), MQTT_5))
    assert "MQTT-4.12.0-1" in auth["Reason Code"].ids


def test_text_explanation_of_a_capture(tmp_path):
    path = tmp_path / "c.pcapng"
    write(path, stream_flow(conversation(), cut=4).frames())
    capture = read_capture(path)
    text = render_text(explain_capture(capture), source=str(path))
    lines = text.splitlines()
    assert lines[0] == f"capture {path}: 1 MQTT session(s)"
    assert "session 1: client 10.0.0.1:40001 -> broker 10.0.0.2:1883, MQTT 5.0" in text
    packet_lines = [line for line in lines if " s  C->B " in line or " s  B->C " in line]
    assert len(packet_lines) == 9
    # the 26-byte CONNECT came in 7 segments of 4 bytes, 10 us apart: its time is the last one's
    assert "+0.000060 s  C->B  CONNECT (26 bytes" in packet_lines[0] and "[MQTT-3.1.0-1" in packet_lines[0]
    assert any("User Property (0x26): 'k': 'v'" in line and "MQTT-3.3.2-17" in line for line in lines)


def test_an_undecodable_packet_is_shown_with_the_reason_and_bytes(tmp_path):
    packets = conversation()[:2] + [("c", b"\x32\x03\x00\x01a")]  # a QoS 1 PUBLISH cut short: malformed
    path = tmp_path / "bad.pcapng"
    write(path, stream_flow(packets).frames())
    text = render_text(explain_capture(read_capture(path)))
    assert "NOT DECODED: MalformedPacket" in text
    assert "bytes: 32 03 00 01 61" in text


def test_html_explanation(tmp_path):
    path = tmp_path / "c.pcapng"
    write(path, stream_flow(conversation()).frames())
    capture = read_capture(path)
    html = render_html(explain_capture(capture), source=str(path))
    assert html.startswith("<!DOCTYPE html>") and "Session 1: client 10.0.0.1:40001" in html
    assert 'title="' in html and "MQTT-3.3.1-4" in html  # ids with their summaries as tooltips
    assert html.count('class="name">') == 9


def _cli(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "pcap", *map(str, args)], capture_output=True, text=True,
                          timeout=120, cwd=cwd)


def test_cli_explain_text_and_html(tmp_path):
    path = tmp_path / "c.pcapng"
    write(path, stream_flow(conversation()).frames())
    result = _cli("explain", path)
    assert result.returncode == 0, result.stderr
    assert "C->B  CONNECT" in result.stdout and "B->C  PUBLISH" in result.stdout
    result = _cli("explain", path, "--html", tmp_path / "out.html")
    assert result.returncode == 0 and (tmp_path / "out.html").read_text().startswith("<!DOCTYPE html>")


@pytest.mark.parametrize("content, message", [
    (b"junk", "not a pcap or pcapng file"),
    (None, "truncated"),
])
def test_cli_errors_are_one_line_without_traceback(tmp_path, content, message):
    path = tmp_path / "c.pcapng"
    write(path, stream_flow(conversation()).frames())
    path.write_bytes(content if content is not None else path.read_bytes()[:-5])
    result = _cli("explain", path)
    assert result.returncode == 2
    assert message in result.stderr and "Traceback" not in result.stderr
    assert result.stderr.startswith("python -m pcap explain: ")


@pytest.mark.parametrize("command", [[], ["record"], ["explain"], ["replay"], ["corpus"], ["corpus", "build"],
                                     ["corpus", "check-tshark"], ["corpus", "upgrade-table"]])
def test_every_command_has_help(command):
    result = _cli(*command, "--help")
    assert result.returncode == 0 and "usage: python -m pcap" in result.stdout


def test_mqtt_3_1_packets(tmp_path):
    """MQTT 3.1 (protocol name MQIsdp, level 3): the session says 3.1, packets carry the catalogue's 3.1
    statements and their fields the 3.1.1 ones that restate them."""
    from refbroker.protocol import MQTT_3_1

    path = tmp_path / "v31.pcapng"
    write(path, stream_flow(conversation(MQTT_3_1, client_id="old-client")).frames())
    (session,) = explain_capture(read_capture(path))
    assert session.version == "3.1"
    connect = session.packets[0]
    assert connect.name == "CONNECT" and "V31-3.1-a" in connect.ids
    assert _flat(connect.fields)["Protocol Name"].value == "'MQIsdp'"
    assert "V31-3.2-a" in session.packets[1].ids  # the CONNACK
