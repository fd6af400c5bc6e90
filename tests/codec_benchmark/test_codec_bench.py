"""Codec benchmarks (pytest-benchmark): how many packets per second refbroker.protocol encodes and decodes.

These are measurements, not timed asserts: nothing fails because a machine is slow. Each benchmark
first checks once that the codec gives the right answer, then times one operation per call, so the
"ops" column is packets per second - except the stream benchmark, where one call feeds 1000 packets
(multiply its ops by 1000). Run with `./run bench` (see tests/bench/README.md).
"""

from __future__ import annotations

import pytest

from refbroker.protocol import Connect, Properties, Publish, StreamDecoder, Will, decode_packet

TOPIC = "sensors/room1/temp"
PAYLOAD = bytes(range(16))
VERSIONS = pytest.mark.parametrize("version", [4, 5], ids=["v3.1.1", "v5.0"])
STREAM_PACKETS = 1000


def split(encoded: bytes) -> tuple[int, bytes]:
    """(first byte, body) of a packet whose Remaining Length fits one byte."""
    assert encoded[1] < 0x80
    return encoded[0], encoded[2:]


def publish_qos0() -> Publish:
    return Publish(TOPIC, PAYLOAD)


def publish_qos1() -> Publish:
    return Publish(TOPIC, PAYLOAD, qos=1, packet_id=4242)


def connect_v5_with_many_properties() -> Connect:
    return Connect(
        client_id="bench-client-0001", protocol_level=5, clean_start=False, keep_alive=30,
        username="bench", password=b"secret",
        properties=Properties(
            session_expiry_interval=3600, receive_maximum=100, maximum_packet_size=1_048_576,
            topic_alias_maximum=16, request_response_information=1, request_problem_information=1,
            authentication_method="SCRAM-SHA-256", authentication_data=b"n,,n=bench,r=abcdefgh",
            user_properties=[(f"key{i}", f"value{i}") for i in range(10)]),
        will=Will("clients/bench-client-0001/status", b"offline", qos=1, retain=True, properties=Properties(
            will_delay_interval=10, payload_format_indicator=1, message_expiry_interval=600,
            content_type="text/plain", response_topic="clients/status/replies", correlation_data=b"\x01\x02",
            user_properties=[("reason", "unexpected")])))


# ---------------------------------------------------------------------------------------- PUBLISH


@VERSIONS
def test_encode_publish_qos0(benchmark, version: int) -> None:
    packet = publish_qos0()
    assert benchmark(packet.encode, version) == packet.encode(version)


@VERSIONS
def test_decode_publish_qos0(benchmark, version: int) -> None:
    packet = publish_qos0()
    first_byte, body = split(packet.encode(version))
    assert benchmark(decode_packet, first_byte, body, version) == packet


@VERSIONS
def test_encode_publish_qos1(benchmark, version: int) -> None:
    packet = publish_qos1()
    assert benchmark(packet.encode, version) == packet.encode(version)


@VERSIONS
def test_decode_publish_qos1(benchmark, version: int) -> None:
    packet = publish_qos1()
    first_byte, body = split(packet.encode(version))
    assert benchmark(decode_packet, first_byte, body, version) == packet


# ---------------------------------------------------------------------------------------- CONNECT


def test_encode_connect_v5_many_properties_and_will(benchmark) -> None:
    packet = connect_v5_with_many_properties()
    encoded = benchmark(packet.encode)
    assert StreamDecoder().feed(encoded) == [packet]


def test_decode_connect_v5_many_properties_and_will(benchmark) -> None:
    packet = connect_v5_with_many_properties()
    encoded = packet.encode()
    # Remaining Length takes two bytes here
    assert 0x80 <= encoded[1] and encoded[2] < 0x80
    first_byte, body = encoded[0], encoded[3:]
    assert benchmark(decode_packet, first_byte, body, None) == packet


# ----------------------------------------------------------------------------------------- stream


@VERSIONS
def test_stream_feed_1000_small_publishes(benchmark, version: int) -> None:
    # alternating QoS 0 and QoS 1, as a subscriber's connection would see them
    packets = [Publish(TOPIC, PAYLOAD, qos=1, packet_id=i + 1) if i % 2 else Publish(TOPIC, PAYLOAD)
               for i in range(STREAM_PACKETS)]
    buffer = b"".join(packet.encode(version) for packet in packets)
    benchmark.extra_info["packets_per_call"] = STREAM_PACKETS
    benchmark.extra_info["bytes_per_call"] = len(buffer)

    def feed() -> list:
        return StreamDecoder(version).feed(buffer)

    assert benchmark(feed) == packets
