"""Differential tests against scapy's MQTT layer (scapy.contrib.mqtt), MQTT 3.1.1 only.

scapy is an independent dissector (it has no MQTT 5.0 properties, so only 3.1.1 is compared):

* our encoded packets parse in scapy to the same field values, and scapy re-serialises them to the
  very same bytes (both encoders are canonical for 3.1.1);
* packets that scapy builds (``bytes(MQTT(...)/MQTTPublish(...))``) decode with our decoder to the
  same fields, alone and concatenated in one stream.

Packets are drawn from conformance.strategies, so every 3.1.1 packet shape is covered.
"""

from __future__ import annotations

import logging

import pytest
from hypothesis import given
from hypothesis import strategies as st

from conformance import strategies as mqtt_st
from refbroker.protocol import (
    MQTT_3_1_1,
    Connack,
    Connect,
    Disconnect,
    Packet,
    Pingreq,
    Pingresp,
    Puback,
    Pubcomp,
    Publish,
    Pubrec,
    Pubrel,
    StreamDecoder,
    Suback,
    Subscribe,
    Subscription,
    Unsuback,
    Unsubscribe,
    Will,
    decode_packet,
)

# scapy logs warnings (missing optional tools, IPv6 routes ...) when it is imported: keep them quiet.
logging.getLogger("scapy").setLevel(logging.ERROR)
from scapy.contrib import mqtt as scapy_mqtt  # noqa: E402
from scapy.packet import Packet as ScapyPacket  # noqa: E402
from scapy.packet import Raw  # noqa: E402

V = MQTT_3_1_1
NAMES = [name for name in mqtt_st.PACKET_STRATEGIES if name != "AUTH"]
ACKS = {4: Puback, 5: Pubrec, 6: Pubrel, 7: Pubcomp}


def utf8(text: str) -> bytes:
    return text.encode("utf-8")


# ---------------------------------------------------------------------------------- scapy -> ours


def from_scapy(frame: ScapyPacket) -> Packet:
    """Read the fields scapy dissected into one of our packets (so they can be compared with ==)."""
    kind, layer = frame.type, frame.payload
    if kind == 1:
        assert layer.protoname == b"MQTT" and layer.reserved == 0
        will = None
        if layer.willflag:
            will = Will(layer.willtopic.decode(), bytes(layer.willmsg), layer.willQOSflag, bool(layer.willretainflag))
        return Connect(client_id=layer.clientId.decode(), protocol_level=layer.protolevel,
                       clean_start=bool(layer.cleansess), keep_alive=layer.klive,
                       username=layer.username.decode() if layer.usernameflag else None,
                       password=bytes(layer.password) if layer.passwordflag else None, will=will)
    if kind == 2:
        return Connack(layer.retcode, bool(layer.sessPresentFlag))
    if kind == 3:
        return Publish(layer.topic.decode(), bytes(layer.value), qos=frame.QOS, retain=bool(frame.RETAIN),
                       dup=bool(frame.DUP), packet_id=layer.msgid if frame.QOS else None)
    if kind in ACKS:
        return ACKS[kind](layer.msgid)
    if kind == 8:
        return Subscribe(layer.msgid, [Subscription(t.topic.decode(), t.QOS) for t in layer.topics])
    if kind == 9:
        return Suback(layer.msgid, list(layer.retcodes))
    if kind == 10:
        return Unsubscribe(layer.msgid, [t.topic.decode() for t in layer.topics])
    if kind == 11:
        return Unsuback(layer.msgid)
    if kind == 12:
        return Pingreq()
    if kind == 13:
        return Pingresp()
    if kind == 14:
        return Disconnect()
    raise AssertionError(f"scapy dissected an unexpected packet type {kind}")


def scapy_frames(data: bytes) -> list[ScapyPacket]:
    """Dissect back-to-back packets with scapy, one frame at a time.

    scapy's SUBSCRIBE, UNSUBSCRIBE and SUBACK layers read their lists to the end of the data rather
    than to the end of the Remaining Length, and PINGREQ/PINGRESP have no layer, so a whole stream
    cannot be handed to scapy at once: each frame is cut using scapy's own reading of the Remaining
    Length, then dissected on its own.
    """
    frames = []
    while data:
        header = scapy_mqtt.MQTT(data)
        size = 1 + len(scapy_mqtt.VariableFieldLenField("len", None).addfield(None, b"", header.len)) + header.len
        frame = scapy_mqtt.MQTT(data[:size])
        assert not frame.haslayer(Raw), "scapy left bytes it could not dissect"
        assert len(bytes(frame)) == size
        frames.append(frame)
        data = data[size:]
    return frames


# ---------------------------------------------------------------------------------- ours -> scapy


def to_scapy(packet: Packet) -> ScapyPacket:
    """Build the same packet with scapy's own layer classes."""
    header = scapy_mqtt.MQTT
    if isinstance(packet, Connect):
        will = packet.will
        fields = dict(protoname=b"MQTT", protolevel=packet.protocol_level, cleansess=int(packet.clean_start),
                      klive=packet.keep_alive, clientId=utf8(packet.client_id),
                      usernameflag=int(packet.username is not None), passwordflag=int(packet.password is not None))
        if will is not None:
            fields.update(willflag=1, willQOSflag=will.qos, willretainflag=int(will.retain),
                          willtopic=utf8(will.topic), willmsg=will.payload)
        if packet.username is not None:
            fields["username"] = utf8(packet.username)
        if packet.password is not None:
            fields["password"] = packet.password
        return header(type=1) / scapy_mqtt.MQTTConnect(**fields)
    if isinstance(packet, Connack):
        return header(type=2) / scapy_mqtt.MQTTConnack(sessPresentFlag=int(packet.session_present),
                                                       retcode=packet.reason_code)
    if isinstance(packet, Publish):
        fields = dict(topic=utf8(packet.topic), value=packet.payload)
        if packet.qos:
            fields["msgid"] = packet.packet_id
        return (header(type=3, QOS=packet.qos, DUP=int(packet.dup), RETAIN=int(packet.retain))
                / scapy_mqtt.MQTTPublish(**fields))
    for kind, cls in ACKS.items():
        if type(packet) is cls:
            layer = {4: scapy_mqtt.MQTTPuback, 5: scapy_mqtt.MQTTPubrec, 6: scapy_mqtt.MQTTPubrel,
                     7: scapy_mqtt.MQTTPubcomp}[kind]
            return header(type=kind, QOS=1 if kind == 6 else 0) / layer(msgid=packet.packet_id)  # PUBREL: 0010
    if isinstance(packet, Subscribe):
        topics = [scapy_mqtt.MQTTTopicQOS(topic=utf8(s.topic_filter), QOS=s.qos) for s in packet.subscriptions]
        return header(type=8, QOS=1) / scapy_mqtt.MQTTSubscribe(msgid=packet.packet_id, topics=topics)
    if isinstance(packet, Suback):
        return header(type=9) / scapy_mqtt.MQTTSuback(msgid=packet.packet_id, retcodes=list(packet.reason_codes))
    if isinstance(packet, Unsubscribe):
        topics = [scapy_mqtt.MQTTTopic(topic=utf8(f)) for f in packet.topic_filters]
        return header(type=10, QOS=1) / scapy_mqtt.MQTTUnsubscribe(msgid=packet.packet_id, topics=topics)
    if isinstance(packet, Unsuback):
        return header(type=11) / scapy_mqtt.MQTTUnsuback(msgid=packet.packet_id)
    if isinstance(packet, Pingreq):
        return header(type=12)
    if isinstance(packet, Pingresp):
        return header(type=13)
    if isinstance(packet, Disconnect):
        return header(type=14) / scapy_mqtt.MQTTDisconnect()
    raise AssertionError(f"no scapy layer for {packet!r}")


def decode_one(data: bytes) -> Packet:
    [packet] = StreamDecoder(V).feed(data)
    return packet


# ============================================================================================ tests


@pytest.mark.parametrize("name", NAMES)
@given(data=st.data())
def test_scapy_dissects_our_packets_to_the_same_fields(name: str, data: st.DataObject) -> None:
    packet = data.draw(mqtt_st.PACKET_STRATEGIES[name](V), label="packet")
    encoded = packet.encode(V)
    [frame] = scapy_frames(encoded)
    assert from_scapy(frame) == packet
    assert bytes(frame) == encoded  # scapy writes back exactly our bytes


@pytest.mark.parametrize("name", NAMES)
@given(data=st.data())
def test_we_decode_scapy_built_packets_to_the_same_fields(name: str, data: st.DataObject) -> None:
    packet = data.draw(mqtt_st.PACKET_STRATEGIES[name](V), label="packet")
    built = bytes(to_scapy(packet))
    assert decode_one(built) == packet
    assert built == packet.encode(V)


@given(st.lists(mqtt_st.packets(V), min_size=2, max_size=6))
def test_streams_of_several_packets_agree(packets: list[Packet]) -> None:
    scapy_stream = b"".join(bytes(to_scapy(packet)) for packet in packets)
    decoder = StreamDecoder(V)
    assert decoder.feed(scapy_stream) == packets
    our_stream = b"".join(packet.encode(V) for packet in packets)
    assert [from_scapy(frame) for frame in scapy_frames(our_stream)] == packets


# ---------------------------------------------------------------------- readable, fixed examples


def test_scapy_connect_with_everything() -> None:
    built = bytes(scapy_mqtt.MQTT() / scapy_mqtt.MQTTConnect(
        protoname=b"MQTT", protolevel=4, usernameflag=1, passwordflag=1, willretainflag=1, willQOSflag=2,
        willflag=1, cleansess=0, klive=300, clientId=b"scapy-1", willtopic=b"last/will", willmsg=b"\x00\xff",
        username=utf8("us\u00e9r"), password=b"pw"))
    assert decode_packet(built[0], built[2:], None) == Connect(
        client_id="scapy-1", protocol_level=4, clean_start=False, keep_alive=300, username="us\u00e9r",
        password=b"pw", will=Will("last/will", b"\x00\xff", qos=2, retain=True))


def test_scapy_publish_qos2_dup_retain() -> None:
    built = bytes(scapy_mqtt.MQTT(type=3, QOS=2, DUP=1, RETAIN=1)
                  / scapy_mqtt.MQTTPublish(topic=utf8("sensors/\u20ac"), msgid=0xBEEF, value=b"21.5"))
    assert decode_one(built) == Publish("sensors/\u20ac", b"21.5", qos=2, retain=True, dup=True, packet_id=0xBEEF)


def test_scapy_reads_our_suback_failure_code() -> None:
    [frame] = scapy_frames(Suback(9, [0, 0x80, 2]).encode(V))
    assert frame.msgid == 9 and frame.retcodes == [0, 0x80, 2]


def test_scapy_reads_our_connack_refusal() -> None:
    [frame] = scapy_frames(Connack(4).encode(V))
    assert frame.retcode == 4 and frame.sessPresentFlag == 0


def test_large_publish_with_three_byte_remaining_length() -> None:
    packet = Publish("big", bytes(range(256)) * 100, qos=1, packet_id=1)  # 25,609 byte body
    encoded = packet.encode(V)
    assert encoded[1] & 0x80 and encoded[2] & 0x80 and not encoded[3] & 0x80
    [frame] = scapy_frames(encoded)
    assert from_scapy(frame) == packet
    assert decode_one(bytes(to_scapy(packet))) == packet
