"""The raw test client against scripted servers: framing, expectations, closes, invalid bytes, trace."""

from __future__ import annotations

import time

import pytest

from conformance.client import (
    ConformanceFailure,
    ConnectionClosed,
    HarnessError,
    InvalidServerPacket,
    NoPacketReceived,
    RawClient,
    UnexpectedPacket,
)
from conformance.targets import free_port
from refbroker.protocol import Connack, Disconnect, Pingresp, Properties, Publish, Suback

from .scripted_server import ScriptedServer, reset, send_slowly


def _read_packet(server: ScriptedServer, conn) -> bytes:
    """Read one whole packet the client sent (Remaining Length < 128 in these tests)."""
    header = server.read(conn, 2)
    return header + server.read(conn, header[1])


def _client(server: ScriptedServer, version: int = 4, **kwargs) -> RawClient:
    return RawClient(*server.address, version, client_id="harness", **kwargs)


def test_packets_split_byte_by_byte_are_framed():
    connack = Connack().encode(4)
    publish = Publish("a/b", b"payload" * 20, qos=1, packet_id=7).encode(4)
    assert len(publish) > 130  # Remaining Length needs two bytes

    def script(server, conn):
        _read_packet(server, conn)
        send_slowly(conn, connack + publish)
        server.read(conn, 1, timeout=2)

    server = ScriptedServer(script)
    client = _client(server)
    assert client.connect().reason_code == 0
    message = client.expect(Publish)
    assert (message.topic, message.payload, message.packet_id) == ("a/b", b"payload" * 20, 7)
    client.close()
    server.close()
    assert server.error is None


def test_several_packets_in_one_segment_come_out_in_order():
    def script(server, conn):
        _read_packet(server, conn)
        conn.sendall(Connack().encode(4) + Pingresp().encode(4) + Publish("x", b"1").encode(4)
                     + Publish("x", b"2").encode(4))
        time.sleep(0.3)

    server = ScriptedServer(script)
    client = _client(server)
    client.connect()
    client.expect(Pingresp)
    assert [p.payload for p in client.collect_publishes(1.0, until_count=2)] == [b"1", b"2"]
    client.close()
    server.close()


def test_expect_names_what_arrived_instead():
    def script(server, conn):
        _read_packet(server, conn)
        conn.sendall(Connack().encode(4) + Pingresp().encode(4))
        time.sleep(0.3)

    server = ScriptedServer(script)
    client = _client(server)
    client.connect()
    with pytest.raises(UnexpectedPacket, match=r"expected SUBACK, got PINGRESP"):
        client.expect(Suback)
    client.close()
    server.close()


def test_expect_timeout_and_expect_nothing():
    def script(server, conn):
        _read_packet(server, conn)
        conn.sendall(Connack().encode(4))
        time.sleep(0.4)
        conn.sendall(Pingresp().encode(4))
        time.sleep(0.3)

    server = ScriptedServer(script)
    client = _client(server)
    client.connect()
    started = time.monotonic()
    with pytest.raises(NoPacketReceived, match="nothing arrived within 0.1 s"):
        client.expect(Pingresp, timeout=0.1)
    assert time.monotonic() - started < 0.3
    client.expect_nothing(0.1)
    with pytest.raises(UnexpectedPacket, match="expected nothing"):
        client.expect_nothing(1.0)
    client.close()
    server.close()


def test_set_aside_keeps_publishes_that_arrive_before_the_suback():
    def script(server, conn):
        _read_packet(server, conn)
        conn.sendall(Connack().encode(4))
        _read_packet(server, conn)  # SUBSCRIBE, packet id 1
        conn.sendall(Publish("a", b"retained", retain=True).encode(4) + Suback(1, [0]).encode(4))
        time.sleep(0.3)

    server = ScriptedServer(script)
    client = _client(server)
    client.connect()
    assert client.subscribe("a").reason_codes == [0]
    assert client.expect(Publish).payload == b"retained"
    client.close()
    server.close()


def test_expect_disconnect_returns_v5_disconnect():
    def script(server, conn):
        _read_packet(server, conn)
        conn.sendall(Connack().encode(5) + Disconnect(0x82).encode(5))

    server = ScriptedServer(script)
    client = _client(server, version=5)
    client.connect()
    disconnect = client.expect_disconnect(2.0)
    assert isinstance(disconnect, Disconnect) and disconnect.reason_code == 0x82
    server.close()


def test_expect_disconnect_checks_reason_codes():
    def script(server, conn):
        _read_packet(server, conn)
        conn.sendall(Connack().encode(5) + Disconnect(0x8E).encode(5))

    server = ScriptedServer(script)
    client = _client(server, version=5)
    client.connect()
    with pytest.raises(ConformanceFailure, match="reason 0x8E; expected one of 0x81, 0x82"):
        client.expect_disconnect(2.0, reasons=(0x81, 0x82))
    server.close()


def test_connection_reset_counts_as_closed():
    def script(server, conn):
        _read_packet(server, conn)
        conn.sendall(Connack().encode(4))
        server.read(conn, 2)  # the client's PINGREQ
        reset(conn)

    server = ScriptedServer(script)
    client = _client(server)
    client.connect()
    client.send_raw(b"\xc0\x00")
    assert client.expect_disconnect(2.0) is None
    assert client.peer_closed
    assert any(e["type"] == "CLOSED" for e in client.trace)
    client.send_raw(b"\xc0\x00")  # sending after the close is recorded, not raised
    assert client.trace[-1]["type"] == "SEND-FAILED"
    server.close()


def test_expect_disconnect_fails_when_connection_stays_open():
    def script(server, conn):
        _read_packet(server, conn)
        conn.sendall(Connack().encode(4))
        time.sleep(0.5)

    server = ScriptedServer(script)
    client = _client(server)
    client.connect()
    with pytest.raises(ConformanceFailure, match="neither answered nor closed the connection"):
        client.expect_disconnect(0.2)
    client.close()
    server.close()


def test_expect_disconnect_fails_on_another_packet():
    def script(server, conn):
        _read_packet(server, conn)
        conn.sendall(Connack().encode(4) + Pingresp().encode(4))

    server = ScriptedServer(script)
    client = _client(server)
    client.connect()
    with pytest.raises(UnexpectedPacket, match="expected the connection to close, got PINGRESP"):
        client.expect_disconnect(1.0)
    server.close()


def test_closed_while_waiting_is_a_clear_failure():
    def script(server, conn):
        _read_packet(server, conn)

    server = ScriptedServer(script)
    client = _client(server)
    with pytest.raises(ConnectionClosed, match="closed the connection while we waited for CONNACK"):
        client.connect()
    server.close()


def test_invalid_server_bytes_are_recorded_and_raised():
    v5_connack = b"\x20\x03\x00\x84\x00"  # mosquitto's answer to an unknown level, not valid 3.1.1

    def script(server, conn):
        _read_packet(server, conn)
        conn.sendall(v5_connack)
        time.sleep(0.3)

    server = ScriptedServer(script)
    client = _client(server)
    with pytest.raises(InvalidServerPacket, match="20 03 00 84 00") as info:
        client.connect()
    assert info.value.raw == v5_connack
    assert client.trace[-1]["dir"] == "in" and client.trace[-1]["hex"] == "20 03 00 84 00"
    client.close()
    server.close()


def test_expect_raw_returns_undecoded_frames():
    def script(server, conn):
        _read_packet(server, conn)
        send_slowly(conn, b"\x20\x03\x00\x84\x00")

    server = ScriptedServer(script)
    client = _client(server)
    client.send_raw(b"\x10\x0d\x00\x04MQTT\x06\x02\x00\x3c\x00\x01x", note="CONNECT level 6")
    assert client.expect_raw(2.0) == b"\x20\x03\x00\x84\x00"
    client.expect_disconnect(2.0)
    server.close()


def test_trace_records_both_directions_with_hex():
    def script(server, conn):
        _read_packet(server, conn)
        conn.sendall(Connack(properties=Properties(topic_alias_maximum=5)).encode(5))
        time.sleep(0.2)

    server = ScriptedServer(script)
    client = _client(server, version=5, name="traced")
    client.connect()
    client.close()
    server.close()
    kinds = [(e["dir"], e["type"]) for e in client.trace]
    assert kinds == [("event", "OPEN"), ("out", "CONNECT"), ("in", "CONNACK"), ("event", "CLOSE")]
    out, inbound = client.trace[1], client.trace[2]
    assert bytes.fromhex(out["hex"]) == bytes(server.received[:len(bytes.fromhex(out["hex"]))])
    assert inbound["hex"] == Connack(properties=Properties(topic_alias_maximum=5)).encode(5).hex(" ")
    assert "topic_alias_maximum=5" in inbound["summary"]
    assert all(isinstance(e["t"], float) for e in client.trace)


def test_unreachable_broker_is_a_harness_error():
    with pytest.raises(HarnessError, match="cannot connect"):
        RawClient("127.0.0.1", free_port(), 4)


@pytest.mark.parametrize("lower_grant_ok", [False, True])
def test_a_lower_granted_qos_makes_the_test_not_applicable_unless_it_takes_grants(lower_grant_ok):
    # "The Server might grant a lower maximum QoS than the Subscriber requested" (3.8.4): a test that needs
    # QoS 2 must not fail on a broker that grants 1 (a 3.1.1 broker cannot announce it beforehand)
    def script(server, conn):
        _read_packet(server, conn)
        conn.sendall(Connack().encode(4))
        subscribe = _read_packet(server, conn)
        conn.sendall(Suback(int.from_bytes(subscribe[2:4], "big"), [0, 1]).encode(4))
        server.read(conn, 1, timeout=2)

    server = ScriptedServer(script)
    client = _client(server)
    client.connect()
    if lower_grant_ok:
        assert client.subscribe(("a", 0), ("b", 2), lower_grant_ok=True).reason_codes == [0, 1]
    else:
        with pytest.raises(pytest.skip.Exception, match=r"granted QoS 1 for 'b' at QoS 2"):
            client.subscribe(("a", 0), ("b", 2))
    client.close()
    server.close()
    assert server.error is None
