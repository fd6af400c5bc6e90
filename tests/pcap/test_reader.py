"""Reading captures made elsewhere: TCP reassembly (split, merged, out of order, repeated segments),
several sessions, any port, link types, pcap/pcapng/gzip, and clear errors for bad or cut files."""

from __future__ import annotations

import gzip
import os
import shutil
import signal
import subprocess
import time

import pytest

from conformance.client import RawClient
from conformance.targets import MosquittoTarget, find_mosquitto
from pcap.reader import CaptureError, read_capture
from pcap.session import BROKER, CLIENT
from refbroker.protocol import MQTT_3_1_1, MQTT_5, Publish

from .frames import Flow, conversation, stream_flow, write

EXPECTED = ["C->B CONNECT", "B->C CONNACK", "C->B SUBSCRIBE", "B->C SUBACK", "C->B PUBLISH", "B->C PUBACK",
            "B->C PUBLISH", "C->B PUBACK", "C->B DISCONNECT"]


def _names(session):
    packets = session.packets()
    assert all(p.error is None for p in packets), [p.error for p in packets]
    return [f"{p.direction.arrow} {p.name}" for p in packets]


@pytest.mark.parametrize("cut", [None, 1, 3, 7, 100], ids=lambda c: f"segments-of-{c}")
def test_packets_split_across_segments(tmp_path, cut):
    path = tmp_path / "split.pcapng"
    write(path, stream_flow(conversation(), cut=cut).frames())
    (session,) = read_capture(path).sessions
    assert _names(session) == EXPECTED
    assert session.client == ("10.0.0.1", 40001) and session.broker == ("10.0.0.2", 1883)


def test_packets_merged_in_one_segment(tmp_path):
    flow = Flow()
    packets = conversation()
    client = b"".join(data for side, data in packets if side == "c")
    broker = b"".join(data for side, data in packets if side == "b")
    flow.segment(0.01, "c", client[:40])  # CONNECT + part of SUBSCRIBE
    flow.segment(0.02, "b", broker)  # every broker packet in one segment
    flow.segment(0.03, "c", client[40:])
    write(tmp_path / "merged.pcapng", flow.frames())
    (session,) = read_capture(tmp_path / "merged.pcapng").sessions
    decoded = session.packets()
    assert [p.name for p in decoded if p.direction is BROKER] == ["CONNACK", "SUBACK", "PUBACK", "PUBLISH"]
    assert [p.name for p in decoded if p.direction is CLIENT] == ["CONNECT", "SUBSCRIBE", "PUBLISH", "PUBACK",
                                                                   "DISCONNECT"]


def test_out_of_order_and_retransmitted_segments(tmp_path):
    data = b"".join(d for side, d in conversation() if side == "c")
    flow = Flow()
    flow.segment(0.05, "c", data[10:60], offset=11)  # arrives first, before the bytes it follows
    flow.segment(0.06, "c", data[:10], offset=1)
    flow.segment(0.07, "c", data[:30], offset=1)  # a retransmission overlapping both
    flow.segment(0.08, "c", data[60:], offset=61)
    write(tmp_path / "reordered.pcapng", flow.frames())
    (session,) = read_capture(tmp_path / "reordered.pcapng").sessions
    assert session.client_bytes == data
    assert [p.name for p in session.packets()] == ["CONNECT", "SUBSCRIBE", "PUBLISH", "PUBACK", "DISCONNECT"]
    times = [chunk.time for chunk in session.chunks]
    assert times == sorted(times)  # bytes are "there" when the hole is filled, never earlier


def test_sequence_numbers_wrap_around(tmp_path):
    flow = stream_flow(conversation(), cut=50, broker_isn=2**32 - 20)
    write(tmp_path / "wrap.pcapng", flow.frames())
    (session,) = read_capture(tmp_path / "wrap.pcapng").sessions
    assert _names(session) == EXPECTED


def test_several_sessions_any_port_and_ipv6(tmp_path):
    first = stream_flow(conversation(client_id="one"), cut=5, client=("10.0.0.1", 40001))
    second = stream_flow(conversation(MQTT_3_1_1, client_id="two"), client=("10.0.0.3", 40002),
                         broker=("10.0.0.2", 11883), start=1_700_000_000.002)  # not 1883: found by its CONNECT
    third = stream_flow(conversation(client_id="three"), client=("fd00::1", 40003), broker=("fd00::2", 1883),
                        start=1_700_000_000.004)
    not_mqtt = Flow(client=("10.0.0.9", 50000), broker=("10.0.0.2", 8080))
    not_mqtt.segment(0.01, "c", b"GET / HTTP/1.1\r\n\r\n")
    write(tmp_path / "many.pcapng", first.frames() + second.frames() + third.frames() + not_mqtt.frames())
    capture = read_capture(tmp_path / "many.pcapng")
    assert [s.client[0] for s in capture.sessions] == ["10.0.0.1", "10.0.0.3", "fd00::1"]
    assert [s.broker[1] for s in capture.sessions] == [1883, 11883, 1883]
    assert [s.packets()[0].packet.client_id for s in capture.sessions] == ["one", "two", "three"]
    assert capture.sessions[1].packets()[1].version == MQTT_3_1_1
    assert len(capture.skipped) == 1 and "10.0.0.9:50000" in capture.skipped[0] and "not MQTT" in capture.skipped[0]
    # --port decodes a port as MQTT even without a CONNECT
    assert len(read_capture(tmp_path / "many.pcapng", ports=(8080,)).sessions) == 4


def test_capture_started_after_the_handshake_and_the_connect(tmp_path):
    packets = conversation()[2:]  # from SUBSCRIBE on: no SYN, no CONNECT
    flow = stream_flow(packets, handshake=False, client_isn=5000, broker_isn=9000)
    write(tmp_path / "late.pcapng", flow.frames())
    (session,) = read_capture(tmp_path / "late.pcapng").sessions
    assert [p.name for p in session.packets()] == [name.split()[1] for name in EXPECTED[2:]]
    assert any("handshake" in note for note in session.notes)
    assert any("no CONNECT" in note for note in session.notes)  # the version was guessed, and it says so
    assert session.packets()[2].version == MQTT_5


def test_a_hole_in_the_stream_is_reported(tmp_path):
    data = b"".join(d for side, d in conversation() if side == "c")
    flow = Flow()
    flow.segment(0.01, "c", data[:40], offset=1)
    flow.segment(0.02, "c", data[60:], offset=61)  # bytes 40..60 were never captured
    write(tmp_path / "hole.pcapng", flow.frames())
    (session,) = read_capture(tmp_path / "hole.pcapng").sessions
    assert any("20 bytes missing" in note for note in session.notes)
    assert session.packets()[0].name == "CONNECT"


@pytest.mark.parametrize("kind", ["pcap", "pcapng"])
@pytest.mark.parametrize("link", ["ether", "cooked"])
def test_file_formats_link_types_and_gzip(tmp_path, kind, link):
    path = tmp_path / f"x.{kind}"
    write(path, stream_flow(conversation(), cut=9, link=link).frames(), kind=kind)
    zipped = tmp_path / f"x.{kind}.gz"
    zipped.write_bytes(gzip.compress(path.read_bytes()))
    for candidate in (path, zipped):
        (session,) = read_capture(candidate).sessions
        assert _names(session) == EXPECTED


@pytest.mark.parametrize("content, message", [
    (b"", "the file is empty"),
    (b"hello, world\n", "not a pcap or pcapng file"),
    (b"\x1f\x8b\x08\x00garbage", "gzip file that does not decompress"),
])
def test_bad_files_are_refused_with_a_clear_message(tmp_path, content, message):
    path = tmp_path / "bad.pcapng"
    path.write_bytes(content)
    with pytest.raises(CaptureError, match=message):
        read_capture(path)


@pytest.mark.parametrize("kind", ["pcap", "pcapng"])
@pytest.mark.parametrize("cut", [1, 10, 30])
def test_truncated_files_are_refused(tmp_path, kind, cut):
    path = tmp_path / f"full.{kind}"
    write(path, stream_flow(conversation()).frames(), kind=kind)
    data = path.read_bytes()
    cut_path = tmp_path / f"cut.{kind}"
    cut_path.write_bytes(data[:-cut])
    with pytest.raises(CaptureError, match="truncated"):
        read_capture(cut_path)


def test_missing_file_and_directory(tmp_path):
    with pytest.raises(CaptureError, match="no such file"):
        read_capture(tmp_path / "nothing.pcapng")
    with pytest.raises(CaptureError, match="is a directory"):
        read_capture(tmp_path)


@pytest.mark.mosquitto
@pytest.mark.skipif(find_mosquitto() is None, reason="mosquitto not installed: apt-get install mosquitto")
@pytest.mark.skipif(shutil.which("dumpcap") is None, reason="dumpcap not installed: apt-get install tshark")
@pytest.mark.skipif(os.geteuid() != 0, reason="a live capture on loopback needs root")
def test_a_real_dumpcap_capture_of_mosquitto(tmp_path):
    """A capture made by Wireshark's own capture engine (real kernel segments, not ours) reads the same."""
    target = MosquittoTarget()
    target.start()
    path = tmp_path / "live.pcapng"
    try:
        port = target.address[1]
        dumpcap = subprocess.Popen(["dumpcap", "-q", "-i", "lo", "-f", f"tcp port {port}", "-w", str(path)],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 10
        while not path.exists() and time.monotonic() < deadline:  # dumpcap creates the file once it captures
            time.sleep(0.05)
        time.sleep(0.5)
        with RawClient(*target.address, MQTT_5, client_id="dumpcap-test") as client:
            client.connect("dumpcap-test")
            client.subscribe(("live/#", 1))
            client.publish("live/x", b"y" * 5000, qos=1)
            client.expect_publish()
            client.disconnect()
        time.sleep(0.5)
        dumpcap.send_signal(signal.SIGINT)
        dumpcap.wait(timeout=10)
    finally:
        target.cleanup()
    (session,) = read_capture(path).sessions
    packets = session.packets()
    assert all(p.error is None for p in packets), [p.error for p in packets]
    assert [p.name for p in packets if p.direction is CLIENT] == ["CONNECT", "SUBSCRIBE", "PUBLISH", "PUBACK",
                                                                   "DISCONNECT"]
    delivered = [p.packet for p in packets if p.direction is BROKER and isinstance(p.packet, Publish)]
    assert delivered[0].payload == b"y" * 5000
    assert session.broker[1] == port  # any port: found by the CONNECT


@pytest.mark.mosquitto
@pytest.mark.skipif(find_mosquitto() is None, reason="mosquitto not installed: apt-get install mosquitto")
@pytest.mark.skipif(os.geteuid() != 0, reason="a live capture on loopback needs root")
def test_live_capture_command(tmp_path):
    """`python -m pcap record --live` (root): a real capture of loopback, read back like any other."""
    import sys

    target = MosquittoTarget()
    target.start()
    out = tmp_path / "live.pcapng"
    try:
        port = target.address[1]
        process = subprocess.Popen([sys.executable, "-m", "pcap", "record", "--live", "--interface", "lo", "--port",
                                    str(port), "-o", str(out), "--duration", "30"], stderr=subprocess.PIPE, text=True)
        assert process.stderr.readline().startswith(f"capturing TCP port(s) {port} on lo")
        time.sleep(1.5)  # the sniffer starts in a thread
        with RawClient(*target.address, MQTT_3_1_1, client_id="live-test") as client:
            client.connect("live-test")
            client.publish("live/x", b"z" * 3000, qos=1)
            client.disconnect()
        time.sleep(0.5)
        process.send_signal(signal.SIGINT)
        _, rest = process.communicate(timeout=30)
    finally:
        target.cleanup()
    assert process.returncode == 0 and "wrote" in rest, rest
    (session,) = read_capture(out).sessions
    assert _names(session)[:2] == ["C->B CONNECT", "B->C CONNACK"]
    assert [p.name for p in session.packets() if p.direction is CLIENT] == ["CONNECT", "PUBLISH", "DISCONNECT"]
