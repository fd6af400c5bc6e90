"""replay: the client side of recorded sessions against real brokers (refbroker embedded, Debian's
mosquitto), the broker's answers recorded and diffed; broker-chosen packet ids patched; the CLI."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest

from conformance.client import RawClient
from conformance.targets import MosquittoTarget, RefbrokerTarget, find_mosquitto
from pcap.corpus_replay import replay_files
from pcap.pcapng import write_pcapng
from pcap.proxy import RecordingProxy
from pcap.reader import read_capture
from pcap.replay import replay_sessions
from pcap.diff import diff_sessions
from pcap.session import BROKER, CLIENT, Chunk, Session
from refbroker.protocol import (MQTT_5, Connack, Connect, Disconnect, Properties, Pubcomp, Publish, Pubrec,
                                Pubrel, StreamDecoder, Suback, Subscribe, Subscription)

needs_mosquitto = [pytest.mark.mosquitto,
                   pytest.mark.skipif(find_mosquitto() is None,
                                      reason="mosquitto not installed: apt-get install mosquitto")]


@pytest.fixture
def refbroker():
    target = RefbrokerTarget()
    target.start()
    yield target
    target.cleanup()


def _scenario(address, version=MQTT_5, topic="replay/t"):
    """Two clients: a QoS 2 subscriber and a publisher; the broker chooses the delivery's packet id."""
    with RawClient(*address, version, client_id="replay-sub") as sub, \
            RawClient(*address, version, client_id="replay-pub") as pub:
        sub.connect("replay-sub")
        sub.subscribe((f"{topic}/#", 2))
        pub.connect("replay-pub")
        pub.publish(f"{topic}/a", b"one", qos=2)
        sub.expect_publish()  # acknowledges it (PUBREC, then PUBCOMP after the PUBREL)
        pub.publish(f"{topic}/b", b"two", qos=1)
        sub.expect_publish()
        pub.disconnect()
        sub.disconnect()


def _record(target, tmp_path, name="rec.pcapng", scenario=_scenario):
    with RecordingProxy(target.address) as proxy:
        scenario(proxy.address)
        assert proxy.wait_closed(5)
        return proxy.write_pcapng(tmp_path / name)


def test_replay_against_the_same_broker_shows_no_difference(refbroker, tmp_path):
    path = _record(refbroker, tmp_path)
    capture = read_capture(path)
    fresh = RefbrokerTarget()
    fresh.start()
    try:
        result = replay_sessions(capture.sessions, fresh.address)
    finally:
        fresh.cleanup()
    assert [s.number for s in result.replayed] == [1, 2]
    for recorded, replayed in zip(result.recorded, result.replayed):
        assert diff_sessions(recorded, replayed).equal, diff_sessions(recorded, replayed).lines()
        assert replayed.client_bytes == recorded.client_bytes  # same broker, same ids: nothing patched


def _session(number, events, client_id):
    chunks = [Chunk(100.0 + number * 0.001 + i * 0.02, CLIENT if side == "c" else BROKER, p.encode(MQTT_5))
              for i, (side, p) in enumerate(events)]
    return Session(number, ("127.0.0.1", 40000 + number), ("127.0.0.1", 1883), chunks, opened=99.9 + number * 0.001)


def test_acknowledgements_carry_the_packet_id_the_replayed_broker_chose(refbroker):
    """A recording from a broker that numbered its delivery 500: the replayed subscriber must answer the
    replayed broker's own id, or the QoS 2 flow would stop (no PUBREL for an unknown PUBREC)."""
    subscriber = _session(1, [
        ("c", Connect(client_id="ids-sub", protocol_level=MQTT_5)), ("b", Connack(0, False)),
        ("c", Subscribe(1, [Subscription("ids/#", 2)])), ("b", Suback(1, [2])),
        ("b", Publish("ids/a", b"x", 2, False, False, 500)), ("c", Pubrec(500)), ("b", Pubrel(500)),
        ("c", Pubcomp(500)), ("c", Disconnect())], "ids-sub")
    publisher = _session(2, [
        ("c", Connect(client_id="ids-pub", protocol_level=MQTT_5)), ("b", Connack(0, False)),
        ("c", Publish("ids/a", b"x", 2, False, False, 1)), ("b", Pubrec(1)), ("c", Pubrel(1)), ("b", Pubcomp(1)),
        ("c", Disconnect())], "ids-pub")
    # the publisher's PUBLISH comes after the SUBACK (100.061) and before the delivery (100.081)
    publisher.chunks = [Chunk(100.065 + i * 0.002, c.direction, c.data) for i, c in enumerate(publisher.chunks)]
    publisher.opened = 100.064
    result = replay_sessions([subscriber, publisher], refbroker.address)
    kinds = {d.kind for d in diff_sessions(subscriber, result.replayed[0]).differences}
    assert all(kind.startswith("CONNACK ") for kind in kinds), kinds  # our hand-made CONNACK has no properties
    sent = StreamDecoder().feed(result.replayed[0].client_bytes)
    assert [p.name for p in sent] == ["CONNECT", "SUBSCRIBE", "PUBREC", "PUBCOMP", "DISCONNECT"]
    received = StreamDecoder(MQTT_5).feed(result.replayed[0].broker_bytes)
    chosen = next(p.packet_id for p in received if isinstance(p, Publish))
    assert [p.name for p in received] == ["CONNACK", "SUBACK", "PUBLISH", "PUBREL"]
    assert sent[2].packet_id == sent[3].packet_id == chosen != 500  # patched to the replayed broker's id
    strict = replay_sessions([subscriber, publisher], refbroker.address, strict=True)
    strict_kinds = {d.kind for d in diff_sessions(subscriber, strict.replayed[0]).differences}
    # unpatched, PUBREC 500 names no message: the broker answers PUBREL 500 (0x00 as mosquitto; 5.0 also
    # allows 0x92 Packet Identifier not found), not the PUBREL of its delivery
    assert "PUBREL Packet Identifier" in strict_kinds


def test_original_pacing_keeps_the_recorded_delays(refbroker):
    sessions = [_session(1, [("c", Connect(client_id="pace", protocol_level=MQTT_5)), ("b", Connack(0, False)),
                             ("c", Disconnect())], "pace")]
    sessions[0].chunks[2] = Chunk(100.6, CLIENT, sessions[0].chunks[2].data)  # DISCONNECT 0.6 s later
    started = time.monotonic()
    replay_sessions(sessions, refbroker.address, pace="original")
    assert time.monotonic() - started >= 0.55
    started = time.monotonic()
    replay_sessions(sessions, refbroker.address, pace="fast")
    assert time.monotonic() - started < 0.5


@pytest.mark.parametrize("marks", [needs_mosquitto])
def test_refbroker_recording_replayed_against_mosquitto_differs(refbroker, tmp_path, marks):
    """A v5 PUBLISH carrying a Subscription Identifier is a Protocol Error [MQTT-3.3.4-6]: refbroker closes
    with DISCONNECT 0x82; mosquitto 2.0.11 acknowledges it (a known deviation). The replay must say so."""
    def offending(address):
        with RawClient(*address, MQTT_5, client_id="offender") as client:
            client.connect("offender")
            client.send_raw(Publish("x/y", b"p", 1, False, False, 1,
                                    Properties(subscription_identifiers=[5])).encode(MQTT_5))
            try:
                client.receive(2.0)
            except Exception:  # noqa: BLE001 - the broker may close at once
                pass
    path = _record(refbroker, tmp_path, scenario=offending)
    mosquitto = MosquittoTarget()
    mosquitto.start()
    try:
        outcome = replay_files([(path, read_capture(path))], mosquitto.address)
    finally:
        mosquitto.cleanup()
    assert not outcome.equal
    kinds = outcome.kind_counts()
    assert kinds["PUBACK instead of DISCONNECT"] == 1, kinds
    assert "PUBACK instead of DISCONNECT" in outcome.text()


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "pcap", *map(str, args)], capture_output=True, text=True,
                          timeout=300)


def test_cli_replay_exit_status_json_and_output(refbroker, tmp_path):
    path = _record(refbroker, tmp_path)
    result = _cli("replay", path, "--broker", "refbroker", "--json", tmp_path / "out.json",
                  "--output", tmp_path / "replays")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "normalisation rules" in result.stdout and "0 session(s) in 0 capture(s) differ" in result.stdout
    document = json.loads((tmp_path / "out.json").read_text())
    assert document["differing_captures"] == 0 and len(document["files"][0]["sessions"]) == 2
    assert len(read_capture(tmp_path / "replays" / "rec.pcapng").sessions) == 2
    strict = _cli("replay", path, "--broker", "refbroker", "--strict")
    assert strict.returncode == 0 and "normalisation: none (--strict)" in strict.stdout


def test_cli_replay_errors(tmp_path):
    result = _cli("replay", tmp_path / "none.pcapng", "--broker", "refbroker")
    assert result.returncode == 2 and "no such file" in result.stderr
    write_pcapng([], tmp_path / "empty.pcapng")
    result = _cli("replay", tmp_path / "empty.pcapng", "--broker", "nonsense")
    assert result.returncode == 2 and "unknown --broker" in result.stderr and "Traceback" not in result.stderr


def test_cli_record_through_the_proxy(refbroker, tmp_path):
    out = tmp_path / "recorded.pcapng"
    process = subprocess.Popen([sys.executable, "-m", "pcap", "record", "--target",
                                f"{refbroker.address[0]}:{refbroker.address[1]}", "-o", str(out), "--duration", "30",
                                "--server-port", "1883"], stderr=subprocess.PIPE, text=True)
    try:
        line = process.stderr.readline()
        assert line.startswith("recording: connect clients to 127.0.0.1:"), line
        port = int(line.split("127.0.0.1:")[1].split(";")[0])
        _scenario(("127.0.0.1", port))
        time.sleep(0.5)
        process.send_signal(2)  # Ctrl-C: write the file and stop
        _, rest = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, rest
    assert "wrote 2 session(s)" in rest
    capture = read_capture(out)
    assert [s.broker[1] for s in capture.sessions] == [1883, 1883]  # --server-port
    assert [p.name for p in capture.sessions[0].packets()][:2] == ["CONNECT", "CONNACK"]
