"""Differential tests against paho-mqtt 2.x, an independent MQTT implementation.

Two directions:

* paho ENCODES, we decode: a real `paho.mqtt.client.Client` talks to one end of a
  `socket.socketpair()` (its `_create_socket` is replaced so `connect()` opens no network connection);
  we read what it wrote from the other end and decode it with our `StreamDecoder`, as a broker would.
* we ENCODE, paho decodes: we write our packets into the socketpair and run paho's own read path
  (`loop_read`), then check that its callbacks (on_connect, on_message, on_subscribe, ...) fire with
  the same fields, and that paho answers the way the protocol says (PUBACK, PUBREC, PUBCOMP ...).

Known paho deviations are pinned by tests named `test_paho_deviation_*`: they assert what paho does
today, with the sentence of the specification it departs from, so that a paho upgrade that fixes
them makes the test fail loudly instead of silently changing what the other tests cover.
"""

from __future__ import annotations

import select
import socket
from dataclasses import replace
from typing import Any

import paho.mqtt.client as paho
import pytest
from hypothesis import given
from hypothesis import strategies as st
from paho.mqtt import _packet as paho_packet
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode
from paho.mqtt.exception import MalformedPacket as PahoMalformedPacket
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties as PahoProperties
from paho.mqtt.reasoncodes import ReasonCode as PahoReasonCode
from paho.mqtt.subscribeoptions import SubscribeOptions

from conformance import strategies as mqtt_st
from refbroker.protocol import (
    Connack,
    Connect,
    Disconnect,
    Packet,
    Pingreq,
    Pingresp,
    Properties,
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
)
from refbroker.protocol.properties import PROPERTY_TABLE, PROPERTIES_BY_ATTRIBUTE

PAHO_PROTOCOLS = {3: paho.MQTTv31, 4: paho.MQTTv311, 5: paho.MQTTv5}
PAHO_PACKET_TYPES = {
    "CONNECT": PacketTypes.CONNECT, "CONNACK": PacketTypes.CONNACK, "PUBLISH": PacketTypes.PUBLISH,
    "WILL": PacketTypes.WILLMESSAGE, "PUBACK": PacketTypes.PUBACK, "PUBREC": PacketTypes.PUBREC,
    "PUBREL": PacketTypes.PUBREL, "PUBCOMP": PacketTypes.PUBCOMP, "SUBSCRIBE": PacketTypes.SUBSCRIBE,
    "SUBACK": PacketTypes.SUBACK, "UNSUBSCRIBE": PacketTypes.UNSUBSCRIBE, "UNSUBACK": PacketTypes.UNSUBACK,
    "DISCONNECT": PacketTypes.DISCONNECT, "AUTH": PacketTypes.AUTH,
}

# ------------------------------------------------------------------------------- properties mapping


def to_paho(properties: Properties, packet_name: str) -> PahoProperties:
    """Our Properties as paho's: paho names properties like the spec without spaces ("TopicAlias")."""
    result = PahoProperties(PAHO_PACKET_TYPES[packet_name])
    for attribute, value in properties.items():
        definition = PROPERTIES_BY_ATTRIBUTE[attribute]
        setattr(result, definition.name.replace(" ", ""), list(value) if definition.repeatable else value)
    return result


def from_paho(properties: PahoProperties | None) -> Properties:
    result = Properties()
    if properties is None:
        return result
    for definition in PROPERTY_TABLE:
        name = definition.name.replace(" ", "")
        if hasattr(properties, name):
            value = getattr(properties, name)
            if definition.repeatable:
                value = [tuple(item) if isinstance(item, (list, tuple)) else item for item in value]
            setattr(result, definition.attribute, value)
    return result


def without_bom(properties: Properties) -> Properties:
    """Drop U+FEFF from property strings: paho refuses it there (see test_paho_deviation_bom...)."""
    def clean(value: Any) -> Any:
        if isinstance(value, str):
            return value.replace("\ufeff", "")
        if isinstance(value, tuple):
            return tuple(clean(item) for item in value)
        if isinstance(value, list):
            return [clean(item) for item in value]
        return value
    result = properties.copy()
    for attribute, value in properties.items():
        setattr(result, attribute, clean(value))
    return result


def reason_values(codes: list[PahoReasonCode]) -> list[int]:
    return [code.value for code in codes]


# ------------------------------------------------------------------------------------------- harness


class PahoPeer:
    """A paho Client wired to one end of a socketpair; we are the broker at the other end."""

    def __init__(self, version: int, **client_kwargs: Any) -> None:
        self.version = version
        self.broker_end, client_end = socket.socketpair()
        self.broker_end.setblocking(False)
        client_end.setblocking(False)
        self.client = paho.Client(CallbackAPIVersion.VERSION2, protocol=PAHO_PROTOCOLS[version], **client_kwargs)
        self.client._create_socket = lambda: client_end  # connect() uses our socket: no network
        self.decoder = StreamDecoder()  # server side: CONNECT tells it the version
        self.events: list[tuple] = []
        self.messages: list[paho.MQTTMessage] = []
        c = self.client
        c.on_connect = lambda _c, _u, flags, reason, props: self.events.append(("connect", flags, reason, props))
        c.on_disconnect = lambda _c, _u, flags, reason, props: self.events.append(("disconnect", reason, props))
        c.on_publish = lambda _c, _u, mid, reason, props: self.events.append(("publish", mid, reason, props))
        c.on_subscribe = lambda _c, _u, mid, reasons, props: self.events.append(("subscribe", mid, reasons, props))
        c.on_unsubscribe = lambda _c, _u, mid, reasons, props: self.events.append(("unsubscribe", mid, reasons,
                                                                                    props))
        c.on_message = lambda _c, _u, message: self.messages.append(message)

    def __enter__(self) -> "PahoPeer":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        if self.client._sock is not None:
            self.client._sock.close()
            self.client._sock = None
        self.broker_end.close()

    def received(self) -> list[Packet]:
        """Decode everything paho has written so far."""
        data = b""
        while True:
            try:
                chunk = self.broker_end.recv(65536)
            except BlockingIOError:
                break
            if not chunk:
                break
            data += chunk
        return self.decoder.feed(data)

    def send(self, *packets: Packet, closes: bool = False) -> None:
        """Write our encoding of `packets` to paho and let paho read all of it.

        With `closes`, paho is expected to end the connection after reading (a refusing CONNACK);
        otherwise every read must succeed.
        """
        self.broker_end.sendall(b"".join(packet.encode(self.version) for packet in packets))
        for _ in range(1000):
            sock = self.client._sock
            if sock is None:
                assert closes, "paho closed the connection"
                return
            if not select.select([sock], [], [], 0)[0]:
                assert not closes, "paho kept the connection open"
                return
            rc = self.client.loop_read()
            if not closes:
                assert rc == MQTTErrorCode.MQTT_ERR_SUCCESS, f"paho refused our bytes: {paho.error_string(rc)}"
        raise AssertionError("paho did not consume the data")

    def connect(self, keepalive: int = 60, **kwargs: Any) -> Connect:
        self.client.connect("paho-peer.invalid", 1883, keepalive, **kwargs)
        [connect] = self.received()
        assert isinstance(connect, Connect)
        return connect

    def handshake(self) -> None:
        self.connect()
        self.send(Connack(0))
        assert self.events.pop(0)[0] == "connect"


# ===================================================================== paho encodes, we decode


@pytest.mark.parametrize("version", [3, 4], ids=["v31", "v311"])
def test_paho_connect_v3_with_will_user_password(version: int) -> None:
    with PahoPeer(version, client_id="sensor-17", clean_session=False) as peer:
        peer.client.username_pw_set("alice", "s3cr\u00e9t")
        peer.client.will_set("clients/sensor-17/state", b"gone", qos=1, retain=True)
        connect = peer.connect(keepalive=25)
    assert connect == Connect(client_id="sensor-17", protocol_level=version, clean_start=False, keep_alive=25,
                              username="alice", password="s3cr\u00e9t".encode(),
                              will=Will("clients/sensor-17/state", b"gone", qos=1, retain=True))


def test_paho_connect_v311_minimal() -> None:
    with PahoPeer(4, client_id="c") as peer:
        connect = peer.connect(keepalive=0)
    assert connect == Connect(client_id="c", protocol_level=4, clean_start=True, keep_alive=0)


def test_paho_connect_v5_with_properties_and_will_properties() -> None:
    connect_properties = Properties(
        session_expiry_interval=3600, receive_maximum=20, maximum_packet_size=268_435_455,
        topic_alias_maximum=10, request_response_information=1, request_problem_information=0,
        authentication_method="SCRAM-SHA-1", authentication_data=b"client-first",
        user_properties=[("region", "eu"), ("region", "us"), ("\u00e9", "")])
    will_properties = Properties(
        will_delay_interval=30, payload_format_indicator=1, message_expiry_interval=600,
        content_type="text/plain", response_topic="replies/1", correlation_data=b"\x00\x01",
        user_properties=[("k", "v")])
    with PahoPeer(5, client_id="v5-client") as peer:
        peer.client.username_pw_set("bob", "pw")
        peer.client.will_set("wills/v5", "bye", qos=2, retain=False, properties=to_paho(will_properties, "WILL"))
        connect = peer.connect(keepalive=30, clean_start=False,
                               properties=to_paho(connect_properties, "CONNECT"))
    assert connect == Connect(client_id="v5-client", protocol_level=5, clean_start=False, keep_alive=30,
                              username="bob", password=b"pw",
                              will=Will("wills/v5", b"bye", qos=2, properties=will_properties),
                              properties=connect_properties)


def publish_for_paho(version: int) -> st.SearchStrategy[Publish]:
    return mqtt_st.publishes(version)


def paho_can_send(connect: Connect) -> bool:
    """paho sends a password only with a user name, and caps Maximum Packet Size (see deviations)."""
    if connect.password is not None and connect.username is None:
        return False
    size = connect.properties.maximum_packet_size
    return size is None or size <= 268_435_455


@pytest.mark.parametrize("version", [3, 4, 5], ids=["v31", "v311", "v5"])
@given(data=st.data())
def test_paho_connect_decodes_to_the_same_fields(version: int, data: st.DataObject) -> None:
    connect = data.draw(mqtt_st.connects(version).filter(paho_can_send), label="connect")
    kwargs = {"clean_session": connect.clean_start} if version != 5 else {}
    with PahoPeer(version, client_id=connect.client_id, **kwargs) as peer:
        if connect.username is not None:
            peer.client.username_pw_set(connect.username, connect.password)
        will = connect.will
        if will is not None:
            peer.client.will_set(will.topic, will.payload, will.qos, will.retain,
                                 properties=to_paho(will.properties, "WILL") if will.properties else None)
        connect_kwargs: dict[str, Any] = {}
        if version == 5:
            connect_kwargs["clean_start"] = connect.clean_start
            if connect.properties:
                connect_kwargs["properties"] = to_paho(connect.properties, "CONNECT")
        assert peer.connect(keepalive=connect.keep_alive, **connect_kwargs) == connect


@pytest.mark.parametrize("version", [3, 4, 5], ids=["v31", "v311", "v5"])
@given(data=st.data())
def test_paho_publish_decodes_to_the_same_fields(version: int, data: st.DataObject) -> None:
    packet = data.draw(mqtt_st.publishes(version), label="publish")
    with PahoPeer(version) as peer:
        peer.handshake()
        properties = to_paho(packet.properties, "PUBLISH") if packet.properties else None
        info = peer.client.publish(packet.topic, packet.payload, packet.qos, packet.retain, properties=properties)
        assert info.rc == MQTTErrorCode.MQTT_ERR_SUCCESS
        [received] = peer.received()
    # paho picks the Packet Identifier itself and never sets DUP on a first delivery.
    assert received == replace(packet, packet_id=info.mid if packet.qos else None, dup=False)


@pytest.mark.parametrize("version", [4, 5], ids=["v311", "v5"])
def test_paho_subscribe_with_options(version: int) -> None:
    with PahoPeer(version) as peer:
        peer.handshake()
        if version == 5:
            properties = Properties(subscription_identifiers=[42], user_properties=[("app", "x")])
            rc, mid = peer.client.subscribe(
                [("sport/+/score", SubscribeOptions(qos=1, noLocal=True, retainAsPublished=True, retainHandling=2)),
                 ("$share/g/jobs/#", SubscribeOptions(qos=2, retainHandling=1)),
                 ("a", SubscribeOptions(qos=0))],
                properties=to_paho(properties, "SUBSCRIBE"))
            expected = [Subscription("sport/+/score", 1, no_local=True, retain_as_published=True, retain_handling=2),
                        Subscription("$share/g/jobs/#", 2, retain_handling=1), Subscription("a", 0)]
        else:
            properties = Properties()
            rc, mid = peer.client.subscribe([("sport/+/score", 1), ("$SYS/#", 2), ("a", 0)])
            expected = [Subscription("sport/+/score", 1), Subscription("$SYS/#", 2), Subscription("a", 0)]
        assert rc == MQTTErrorCode.MQTT_ERR_SUCCESS
        [received] = peer.received()
    assert received == Subscribe(mid, expected, properties)


@pytest.mark.parametrize("version", [4, 5], ids=["v311", "v5"])
def test_paho_unsubscribe(version: int) -> None:
    properties = Properties(user_properties=[("why", "done")]) if version == 5 else Properties()
    with PahoPeer(version) as peer:
        peer.handshake()
        rc, mid = peer.client.unsubscribe(["sport/+/score", "#"],
                                          properties=to_paho(properties, "UNSUBSCRIBE") if properties else None)
        assert rc == MQTTErrorCode.MQTT_ERR_SUCCESS
        [received] = peer.received()
    assert received == Unsubscribe(mid, ["sport/+/score", "#"], properties)


@pytest.mark.parametrize("version", [3, 4, 5], ids=["v31", "v311", "v5"])
def test_paho_pingreq(version: int) -> None:
    with PahoPeer(version) as peer:
        peer.handshake()
        peer.client._send_pingreq()  # what paho's keep-alive timer calls
        assert peer.received() == [Pingreq()]
        peer.send(Pingresp())  # and paho takes our PINGRESP as the answer
        assert peer.client._ping_t == 0


def test_paho_disconnect_v5_with_reason_and_properties() -> None:
    properties = Properties(session_expiry_interval=0, reason_string="bye now", user_properties=[("a", "b")])
    with PahoPeer(5) as peer:
        peer.handshake()
        peer.client.disconnect(PahoReasonCode(PacketTypes.DISCONNECT, identifier=0x04),
                               to_paho(properties, "DISCONNECT"))
        assert peer.received() == [Disconnect(0x04, properties)]


@pytest.mark.parametrize("version", [4, 5], ids=["v311", "v5"])
def test_paho_disconnect_plain(version: int) -> None:
    with PahoPeer(version) as peer:
        peer.handshake()
        peer.client.disconnect()
        assert peer.received() == [Disconnect()]


# ===================================================================== we encode, paho decodes


@pytest.mark.parametrize("version", [4, 5], ids=["v311", "v5"])
def test_paho_accepts_our_connack_session_present(version: int) -> None:
    with PahoPeer(version) as peer:
        peer.connect()
        peer.send(Connack(0, session_present=True))
        [(kind, flags, reason, _props)] = peer.events
        assert peer.client.is_connected()
    assert kind == "connect" and flags.session_present is True and reason.value == 0


def test_paho_accepts_our_refusing_connack_v311() -> None:
    with PahoPeer(4) as peer:
        peer.connect()
        peer.send(Connack(5), closes=True)  # 3.1.1 return code 5: not authorized
        (kind, flags, reason, _props), (after, *_rest) = peer.events
    assert kind == "connect" and flags.session_present is False
    assert reason.getName() == "Not authorized"
    assert after == "disconnect"


def test_paho_accepts_our_connack_v5_with_properties() -> None:
    properties = Properties(
        session_expiry_interval=120, receive_maximum=5, maximum_qos=1, retain_available=0,
        maximum_packet_size=65_536, assigned_client_identifier="auto-1f3a", topic_alias_maximum=3,
        reason_string="welcome", user_properties=[("node", "n1"), ("node", "n2")],
        wildcard_subscription_available=1, subscription_identifier_available=0, shared_subscription_available=1,
        server_keep_alive=45, response_information="resp/", server_reference="other:1883",
        authentication_method="SCRAM-SHA-1", authentication_data=b"server-final")
    with PahoPeer(5) as peer:
        peer.connect()
        peer.send(Connack(0, session_present=True, properties=properties))
        [(kind, flags, reason, props)] = peer.events
        assert peer.client._keepalive == 45  # paho obeys Server Keep Alive (3.2.2.3.14)
    assert kind == "connect" and flags.session_present is True and reason.value == 0
    assert from_paho(props) == properties


def test_paho_accepts_our_refusing_connack_v5() -> None:
    with PahoPeer(5) as peer:
        peer.connect()
        peer.send(Connack(0x87, properties=Properties(reason_string="no")), closes=True)
        (kind, _flags, reason, props), (after, *_rest) = peer.events
    assert kind == "connect" and reason.value == 0x87 and props.ReasonString == "no"
    assert after == "disconnect"


PAHO_CAN_PARSE = st.data()


@pytest.mark.parametrize("version", [3, 4, 5], ids=["v31", "v311", "v5"])
@given(data=st.data())
def test_our_publish_reaches_paho_on_message(version: int, data: st.DataObject) -> None:
    packet = data.draw(mqtt_st.publishes(version), label="publish")
    # paho has no incoming Topic Alias table, and refuses U+FEFF in property strings (see deviations).
    packet = replace(packet, topic=packet.topic or "alias/target", properties=without_bom(packet.properties))
    with PahoPeer(version) as peer:
        peer.handshake()
        peer.send(packet)
        if packet.qos == 1:
            assert peer.received() == [Puback(packet.packet_id)]
        elif packet.qos == 2:
            assert peer.received() == [Pubrec(packet.packet_id)]
            assert peer.messages == []  # paho delivers QoS 2 on PUBREL
            peer.send(Pubrel(packet.packet_id))
            assert peer.received() == [Pubcomp(packet.packet_id)]
        [message] = peer.messages
    assert message.topic == packet.topic
    assert message.payload == packet.payload
    assert message.qos == packet.qos
    assert message.retain == packet.retain
    assert message.dup == packet.dup
    assert message.mid == (packet.packet_id or 0)
    assert from_paho(message.properties) == packet.properties


@pytest.mark.parametrize("version,codes", [(4, [0, 1, 2, 0x80]), (5, [0, 1, 2, 0x80, 0x87, 0x8F, 0x9E, 0xA1, 0xA2])],
                         ids=["v311", "v5"])
def test_paho_accepts_our_suback(version: int, codes: list[int]) -> None:
    properties = Properties(reason_string="partly", user_properties=[("x", "y")]) if version == 5 else Properties()
    with PahoPeer(version) as peer:
        peer.handshake()
        _rc, mid = peer.client.subscribe([(f"t/{i}", 1) for i in range(len(codes))])
        peer.received()
        peer.send(Suback(mid, codes, properties))
        [(kind, got_mid, reasons, props)] = peer.events
    assert kind == "subscribe" and got_mid == mid
    assert reason_values(reasons) == codes
    assert from_paho(props) == properties


@pytest.mark.parametrize("version", [4, 5], ids=["v311", "v5"])
def test_paho_accepts_our_unsuback(version: int) -> None:
    codes = [0x00, 0x11, 0x87] if version == 5 else []
    properties = Properties(reason_string="ok", user_properties=[("u", "v")]) if version == 5 else Properties()
    with PahoPeer(version) as peer:
        peer.handshake()
        _rc, mid = peer.client.unsubscribe(["a", "b", "c"])
        peer.received()
        peer.send(Unsuback(mid, codes, properties))
        [(kind, got_mid, reasons, props)] = peer.events
    assert kind == "unsubscribe" and got_mid == mid
    assert reason_values(reasons) == codes
    if version == 5:
        assert from_paho(props) == properties


@pytest.mark.parametrize("version", [4, 5], ids=["v311", "v5"])
def test_paho_accepts_our_puback(version: int) -> None:
    reason, properties = (0x10, Properties(reason_string="nobody", user_properties=[("a", "1")])) \
        if version == 5 else (0, Properties())
    with PahoPeer(version) as peer:
        peer.handshake()
        info = peer.client.publish("t", b"x", qos=1)
        peer.received()
        peer.send(Puback(info.mid, reason, properties))
        [(kind, mid, got_reason, props)] = peer.events
    assert kind == "publish" and mid == info.mid
    if version == 5:
        assert got_reason.value == reason
        assert from_paho(props) == properties


@pytest.mark.parametrize("version", [4, 5], ids=["v311", "v5"])
def test_paho_follows_our_pubrec_and_pubcomp(version: int) -> None:
    with PahoPeer(version) as peer:
        peer.handshake()
        info = peer.client.publish("t", b"x", qos=2)
        peer.received()
        peer.send(Pubrec(info.mid))
        assert peer.received() == [Pubrel(info.mid)]
        assert peer.events == []
        peer.send(Pubcomp(info.mid))
        [(kind, mid, _reason, _props)] = peer.events
    assert kind == "publish" and mid == info.mid


@pytest.mark.parametrize("cls,decode", [(Puback, paho_packet.decode_puback), (Pubrec, paho_packet.decode_pubrec),
                                        (Pubrel, paho_packet.decode_pubrel), (Pubcomp, paho_packet.decode_pubcomp)],
                         ids=["PUBACK", "PUBREC", "PUBREL", "PUBCOMP"])
@given(data=st.data())
def test_paho_parser_reads_our_v5_acknowledgements(cls: type, decode: Any, data: st.DataObject) -> None:
    """paho's client ignores PUBREC/PUBREL reason codes, so ask its packet parser directly."""
    packet = data.draw(mqtt_st.PACKET_STRATEGIES[cls.packet_type.name](5), label="packet")
    packet = replace(packet, properties=without_bom(packet.properties))
    encoded = packet.encode(5)
    body = encoded[2:] if encoded[1] < 0x80 else encoded[3:]
    result = decode(encoded[0], body, paho.MQTTv5)
    assert result.mid == packet.packet_id
    assert result.reason.value == packet.reason_code
    assert from_paho(result.properties) == packet.properties


def test_paho_accepts_our_pingresp_v311() -> None:
    with PahoPeer(4) as peer:
        peer.handshake()
        peer.client._send_pingreq()
        peer.received()
        assert peer.client._ping_t != 0
        peer.send(Pingresp())
        assert peer.client._ping_t == 0


def test_paho_accepts_our_disconnect_v5() -> None:
    properties = Properties(reason_string="maintenance", server_reference="backup:1883", user_properties=[("a", "b")])
    with PahoPeer(5) as peer:
        peer.handshake()
        peer.send(Disconnect(0x8B, properties), closes=True)  # Server shutting down
        [(kind, reason, props)] = peer.events
        assert peer.client._sock is None  # paho closed the connection
    assert kind == "disconnect" and reason.value == 0x8B
    assert from_paho(props) == properties


# ========================================================================= known paho deviations


def test_paho_deviation_bom_in_property_strings_is_refused() -> None:
    """paho treats U+FEFF in a v5 property string as malformed; the spec says the opposite:

    "A UTF-8 encoded sequence 0xEF 0xBB 0xBF is always interpreted as U+FEFF ("ZERO WIDTH NO-BREAK
    SPACE") wherever it appears in a string and MUST NOT be skipped over or stripped off by a packet
    receiver [MQTT-1.5.4-3]."  Our decoder keeps it (tests/protocol/test_malformed.py).
    """
    packet = Publish("t", b"", properties=Properties(content_type="\ufefftext"))
    encoded = packet.encode(5)
    with pytest.raises(PahoMalformedPacket, match="FEFF"):
        paho_packet.decode_publish(encoded[0], encoded[2:], paho.MQTTv5)
    assert StreamDecoder(5).feed(encoded) == [packet]


def test_paho_deviation_maximum_packet_size_above_vbi_limit() -> None:
    """paho limits Maximum Packet Size to 268,435,455, but it is a Four Byte Integer (3.2.2.3.6):
    any value from 1 to 4,294,967,295 is allowed. Our decoder accepts the whole range."""
    packet = Connack(0, properties=Properties(maximum_packet_size=0xFFFF_FFFF))
    encoded = packet.encode(5)
    with pytest.raises(PahoMalformedPacket, match="MaximumPacketSize"):
        paho_packet.decode_connack(encoded[0], encoded[2:], paho.MQTTv5)
    assert StreamDecoder(5).feed(encoded) == [packet]
