"""RecordingProxy in front of a real broker (the embedded refbroker) and Debian's mosquitto."""

from __future__ import annotations

import socket
import threading

import pytest

from conformance.client import RawClient
from conformance.targets import MosquittoTarget, RefbrokerTarget, find_mosquitto, free_port
from pcap.proxy import RecordingProxy
from pcap.session import BROKER, CLIENT
from refbroker.protocol import MQTT_3_1_1, MQTT_5, Connack, Puback, Publish, Suback


@pytest.fixture(scope="module")
def refbroker():
    target = RefbrokerTarget()
    target.start()
    yield target
    target.cleanup()


def _exchange(address, version):
    with RawClient(*address, version, client_id="proxy-test") as client:
        client.connect("proxy-test")
        client.subscribe(("proxy/t", 1))
        client.publish("proxy/t", b"x" * 70_000, qos=1)  # larger than one read: split across chunks
        client.expect_publish()
        client.disconnect()


@pytest.mark.parametrize("version", [MQTT_3_1_1, MQTT_5])
def test_records_both_directions_and_decodes(refbroker, version, tmp_path):
    threads_before = set(threading.enumerate())
    with RecordingProxy(refbroker.address) as proxy:
        _exchange(proxy.address, version)
        assert proxy.wait_closed(5)
        sessions = proxy.sessions()
        path = proxy.write_pcapng(tmp_path / "run.pcapng")
    assert set(threading.enumerate()) <= threads_before  # nothing left running
    assert len(sessions) == 1
    session = sessions[0]
    # after DISCONNECT either side may close first (the server closes too [MQTT-3.14.4-1])
    assert session.closed is not None and session.closed_by in (CLIENT, BROKER)
    packets = session.packets()
    assert all(p.error is None for p in packets), [p.error for p in packets]
    names = [(p.direction, p.name) for p in packets]
    assert names[:2] == [(CLIENT, "CONNECT"), (BROKER, "CONNACK")]
    assert (CLIENT, "DISCONNECT") == names[-1]
    assert {(BROKER, "SUBACK"), (BROKER, "PUBACK"), (BROKER, "PUBLISH")} <= set(names)
    delivered = [p.packet for p in packets if p.direction is BROKER and isinstance(p.packet, Publish)]
    assert delivered[0].payload == b"x" * 70_000
    assert isinstance(packets[1].packet, Connack) and all(p.version == version for p in packets)
    times = [chunk.time for chunk in session.chunks]
    assert times == sorted(times)
    assert b"".join(p.raw for p in packets if p.direction is CLIENT) == session.client_bytes
    assert path.read_bytes()[:4] == b"\x0a\x0d\x0d\x0a"  # pcapng Section Header Block


def test_take_sessions_and_several_sessions(refbroker):
    with RecordingProxy(refbroker.address) as proxy:
        _exchange(proxy.address, MQTT_5)
        assert proxy.wait_closed(5)
        first = proxy.take_sessions()
        _exchange(proxy.address, MQTT_3_1_1)
        _exchange(proxy.address, MQTT_3_1_1)
        assert proxy.wait_closed(5)
        rest = proxy.take_sessions()
        assert proxy.sessions() == []
    assert [s.number for s in first] == [1]
    assert [s.number for s in rest] == [2, 3]


def test_unreachable_broker_closes_the_client_with_a_note():
    port = free_port()  # nothing listens there
    with RecordingProxy(("127.0.0.1", port), connect_timeout=2) as proxy:
        with socket.create_connection(proxy.address, timeout=5) as sock:
            assert sock.recv(10) == b""  # closed by the proxy
        assert proxy.wait_closed(5)
        (session,) = proxy.sessions()
    assert session.chunks == []
    assert "cannot connect to the broker" in session.notes[0]


def test_broker_close_reaches_the_client(refbroker):
    with RecordingProxy(refbroker.address) as proxy:
        with socket.create_connection(proxy.address, timeout=5) as sock:
            sock.sendall(b"\x10\x00")  # a CONNECT with no body: malformed, the broker must close
            sock.settimeout(5)
            assert sock.recv(100) == b""
        assert proxy.wait_closed(5)
        (session,) = proxy.sessions()
    assert session.closed_by is BROKER
    (packet,) = session.packets()
    assert packet.packet is None and "Malformed" in packet.error


@pytest.mark.mosquitto
@pytest.mark.skipif(find_mosquitto() is None, reason="mosquitto not installed: apt-get install mosquitto")
def test_in_front_of_mosquitto(tmp_path):
    target = MosquittoTarget()
    target.start()
    try:
        with RecordingProxy(target.address) as proxy:
            _exchange(proxy.address, MQTT_5)
            assert proxy.wait_closed(5)
            (session,) = proxy.sessions()
    finally:
        target.cleanup()
    packets = session.packets()
    broker_names = [p.name for p in packets if p.direction is BROKER]
    assert broker_names[:2] == ["CONNACK", "SUBACK"]
    assert sorted(broker_names[2:]) == ["PUBACK", "PUBLISH"]  # either order
    assert isinstance(packets[1].packet, Connack)
    assert any(isinstance(p.packet, Suback) for p in packets) and any(isinstance(p.packet, Puback) for p in packets)


def test_stop_is_idempotent_and_start_twice_refused(refbroker):
    proxy = RecordingProxy(refbroker.address).start()
    with pytest.raises(RuntimeError):
        proxy.start()
    proxy.stop()
    proxy.stop()
    with pytest.raises(OSError):
        socket.create_connection(proxy.address, timeout=1)
