"""Round trips through the codec: decode(encode(p)) == p for every packet type and protocol level.

Packets come from conformance.strategies (valid packets only). Each is decoded twice: whole, through
`decode_packet`, and as part of a byte stream cut at arbitrary points and fed to `StreamDecoder`,
which must give back the same packets whatever the chunking (TCP gives no packet boundaries).
"""

from __future__ import annotations

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from conformance import strategies as mqtt_st
from refbroker.protocol import MQTT_5, Connect, Packet, Pingresp, Publish, StreamDecoder, decode_packet
from refbroker.protocol.primitives import (
    MAX_VARIABLE_BYTE_INTEGER,
    decode_variable_byte_integer,
    encode_variable_byte_integer,
)

VERSIONS = (3, 4, 5)
PACKET_VERSION_PAIRS = [(name, version) for name in mqtt_st.PACKET_STRATEGIES for version in VERSIONS
                        if name != "AUTH" or version == MQTT_5]


def split_frame(data: bytes) -> tuple[int, bytes]:
    """(first byte, body) of one encoded packet, checking the Remaining Length against the data."""
    remaining_length, used = decode_variable_byte_integer(data, 1)
    body = data[1 + used:]
    assert len(body) == remaining_length, "Remaining Length does not match the body"
    return data[0], body


def decode_whole(data: bytes, version: int) -> Packet:
    first_byte, body = split_frame(data)
    return decode_packet(first_byte, body, version)


def chunked(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({0, len(data), *(c % (len(data) + 1) for c in cuts)})
    return [data[a:b] for a, b in zip(points, points[1:])]


# ------------------------------------------------------------------------------------ single packets


@pytest.mark.parametrize("name,version", PACKET_VERSION_PAIRS, ids=[f"{n}-v{v}" for n, v in PACKET_VERSION_PAIRS])
@given(data=st.data())
def test_decode_of_encode_is_identity(name: str, version: int, data: st.DataObject) -> None:
    packet = data.draw(mqtt_st.PACKET_STRATEGIES[name](version), label="packet")
    encoded = packet.encode(version)
    assert decode_whole(encoded, version) == packet
    # Re-encoding the decoded packet gives the same bytes: the encoding is canonical.
    assert decode_whole(encoded, version).encode(version) == encoded


@pytest.mark.parametrize("name,version", PACKET_VERSION_PAIRS, ids=[f"{n}-v{v}" for n, v in PACKET_VERSION_PAIRS])
@given(data=st.data())
def test_stream_decoder_with_any_chunking(name: str, version: int, data: st.DataObject) -> None:
    packet = data.draw(mqtt_st.PACKET_STRATEGIES[name](version), label="packet")
    encoded = packet.encode(version)
    cuts = data.draw(st.lists(st.integers(0, len(encoded)), max_size=8), label="cuts")
    decoder = StreamDecoder(version)
    received = [p for chunk in chunked(encoded, cuts) for p in decoder.feed(chunk)]
    assert received == [packet]
    assert decoder.buffered == 0


@pytest.mark.parametrize("name,version", PACKET_VERSION_PAIRS, ids=[f"{n}-v{v}" for n, v in PACKET_VERSION_PAIRS])
@given(data=st.data())
def test_stream_decoder_one_byte_at_a_time(name: str, version: int, data: st.DataObject) -> None:
    packet = data.draw(mqtt_st.PACKET_STRATEGIES[name](version), label="packet")
    encoded = packet.encode(version)
    decoder = StreamDecoder(version)
    received = []
    for index in range(len(encoded)):
        received += decoder.feed(encoded[index:index + 1])
        if index < len(encoded) - 1:
            assert received == [], "a packet came out before its last byte"
    assert received == [packet]


# ------------------------------------------------------------------------------------------ streams


@pytest.mark.parametrize("version", VERSIONS, ids=[f"v{v}" for v in VERSIONS])
@given(data=st.data())
def test_concatenated_packets_give_the_same_list(version: int, data: st.DataObject) -> None:
    sent = data.draw(st.lists(mqtt_st.packets(version, include_connect=False), min_size=1, max_size=8),
                     label="packets")
    stream = b"".join(packet.encode(version) for packet in sent)
    cuts = data.draw(st.lists(st.integers(0, len(stream)), max_size=12), label="cuts")
    decoder = StreamDecoder(version)
    received = [p for chunk in chunked(stream, cuts) for p in decoder.feed(chunk)]
    assert received == sent
    assert decoder.buffered == 0


@pytest.mark.parametrize("version", VERSIONS, ids=[f"v{v}" for v in VERSIONS])
@given(data=st.data())
def test_server_side_stream_learns_the_version_from_connect(version: int, data: st.DataObject) -> None:
    """A server-side decoder starts without a version; CONNECT's protocol level sets it."""
    connect = data.draw(mqtt_st.connects(version), label="connect")
    rest = data.draw(st.lists(mqtt_st.packets(version, include_connect=False), max_size=5), label="packets")
    stream = connect.encode() + b"".join(packet.encode(version) for packet in rest)
    cuts = data.draw(st.lists(st.integers(0, len(stream)), max_size=10), label="cuts")
    decoder = StreamDecoder()
    received = [p for chunk in chunked(stream, cuts) for p in decoder.feed(chunk)]
    assert received == [connect, *rest]
    assert isinstance(received[0], Connect)
    assert decoder.version == version


def test_stream_keeps_a_partial_packet_until_it_is_complete() -> None:
    decoder = StreamDecoder(4)
    assert decoder.feed(b"\xd0") == []          # PINGRESP, fixed header byte only
    assert decoder.buffered == 1
    assert decoder.feed(b"\x00\xd0") == [Pingresp()]
    assert decoder.buffered == 1
    assert decoder.feed(b"\x00") == [Pingresp()]
    assert decoder.buffered == 0


@pytest.mark.parametrize("version", VERSIONS, ids=[f"v{v}" for v in VERSIONS])
@pytest.mark.parametrize("payload_size,length_bytes", [(200, 2), (20_000, 3), (2_100_000, 4)],
                         ids=["2-byte-length", "3-byte-length", "4-byte-length"])
def test_large_publish_round_trips(version: int, payload_size: int, length_bytes: int) -> None:
    packet = Publish("big/payload", bytes(range(256)) * (payload_size // 256) + b"x" * (payload_size % 256),
                     qos=1, packet_id=9)
    encoded = packet.encode(version)
    assert decode_variable_byte_integer(encoded, 1)[1] == length_bytes
    assert decode_whole(encoded, version) == packet
    decoder = StreamDecoder(version)
    step = 65_536
    received = [p for start in range(0, len(encoded), step) for p in decoder.feed(encoded[start:start + step])]
    assert received == [packet]


# -------------------------------------------------------------------------------- Variable Byte Integer

VBI_BOUNDARIES = [(0, "00"), (127, "7f"), (128, "8001"), (16_383, "ff7f"), (16_384, "808001"),
                  (2_097_151, "ffff7f"), (2_097_152, "80808001"), (268_435_455, "ffffff7f")]


@pytest.mark.parametrize("value,hex_bytes", VBI_BOUNDARIES, ids=[str(v) for v, _ in VBI_BOUNDARIES])
def test_variable_byte_integer_boundaries(value: int, hex_bytes: str) -> None:
    encoded = encode_variable_byte_integer(value)
    assert encoded == bytes.fromhex(hex_bytes)  # 1.5.5: the fewest bytes [MQTT-1.5.5-1]
    assert decode_variable_byte_integer(encoded) == (value, len(encoded))


@given(st.integers(0, MAX_VARIABLE_BYTE_INTEGER))
@example(0)
@example(127)
@example(128)
@example(16_383)
@example(16_384)
@example(2_097_151)
@example(2_097_152)
@example(268_435_455)
def test_variable_byte_integer_round_trip(value: int) -> None:
    encoded = encode_variable_byte_integer(value)
    assert 1 <= len(encoded) <= 4
    assert decode_variable_byte_integer(encoded + b"\xaa") == (value, len(encoded))
    # Every prefix is "not complete yet", never an error or a wrong value.
    for end in range(len(encoded)):
        assert decode_variable_byte_integer(encoded[:end]) is None


@pytest.mark.parametrize("value", [268_435_456, 2**32, -1])
def test_variable_byte_integer_encode_refuses_out_of_range(value: int) -> None:
    with pytest.raises(ValueError):
        encode_variable_byte_integer(value)


@given(st.data(), st.sampled_from(VERSIONS), st.integers(1, 65535))
def test_a_publish_encoded_around_its_packet_id_is_the_publish_with_any_id(data, version: int,
                                                                            packet_id: int) -> None:
    packet = data.draw(mqtt_st.publishes(version))
    before, after = packet.encode_around_packet_id(version)
    if packet.qos == 0:
        assert (before, after) == (packet.encode(version), b"")
        return
    packet.packet_id = packet_id
    assert before + packet_id.to_bytes(2, "big") + after == packet.encode(version)
