"""CONNECT / CONNACK, client ids, sessions present, takeover, keep alive (sans-IO core)."""

import pytest

from refbroker.core import Listener
from refbroker.protocol import (
    Connack,
    Connect,
    Disconnect,
    Pingreq,
    Pingresp,
    Properties,
    Publish,
    Will,
)

from .harness import Harness


def test_v311_connect_is_accepted_with_session_present_0():
    h = Harness()
    client, connack = h.connect("c1", 4)
    assert connack == Connack(0, False)
    assert not client.closed


def test_v5_connack_properties_are_mosquitto_2_0_defaults():
    h = Harness()
    _, connack = h.connect("c1", 5)
    # mosquitto 2.0.11 sends exactly these two by default
    assert connack.properties == Properties(receive_maximum=20, topic_alias_maximum=10)


def test_v5_connack_announces_configured_limits():
    h = Harness(max_inflight_messages=5, max_qos=1, retain_available=False, max_packet_size=1000, max_keepalive=30)
    _, connack = h.connect("c1", 5, keep_alive=60)
    assert connack.properties == Properties(server_keep_alive=30, receive_maximum=5, topic_alias_maximum=10,
                                            maximum_qos=1, retain_available=0, maximum_packet_size=1000)


def test_v5_keep_alive_0_gets_server_keep_alive_like_mosquitto():
    h = Harness()
    _, connack = h.connect("c1", 5, keep_alive=0)
    assert connack.properties.server_keep_alive == 65535


def test_v5_zero_length_client_id_is_assigned():
    h = Harness()
    _, connack = h.connect("", 5)
    assert connack.properties.assigned_client_identifier == "auto-1"
    assert "auto-1" in h.broker.sessions


def test_v311_zero_length_client_id_with_clean_session_is_accepted():
    h = Harness()
    _, connack = h.connect("", 4, clean_start=True)
    assert connack.reason_code == 0
    assert connack.properties == Properties()  # no properties in 3.1.1


def test_v311_zero_length_client_id_without_clean_session_is_rejected():
    h = Harness()
    client, connack = h.connect("", 4, clean_start=False, expect_ok=False)
    assert connack == Connack(0x02, False)  # [MQTT-3.1.3-8]
    assert client.closed


def test_v31_client_id_must_be_1_to_23_characters():
    h = Harness()
    for client_id in ("", "x" * 24):
        client, connack = h.connect(client_id, 3, expect_ok=False)
        assert connack.reason_code == 0x02 and client.closed
    _, connack = h.connect("x" * 23, 3)


def test_zero_length_client_ids_can_be_refused():
    h = Harness(allow_zero_length_clientid=False)
    client, connack = h.connect("", 5, expect_ok=False)
    assert connack.reason_code == 0x85 and client.closed
    client, connack = h.connect("", 4, expect_ok=False)
    assert connack.reason_code == 0x02 and client.closed


def test_anonymous_clients_are_refused_once_a_listener_is_configured():
    h = Harness(listeners=[Listener(1883)])
    client, connack = h.connect("c1", 4, expect_ok=False)
    assert connack.reason_code == 0x05 and client.closed
    client, connack = h.connect("c2", 5, expect_ok=False)
    assert connack.reason_code == 0x87 and client.closed
    h = Harness(listeners=[Listener(1883)], allow_anonymous=True)
    h.connect("c1", 4)


def test_unsupported_protocol_level_gets_3_1_1_connack_0x01_then_close():
    h = Harness()
    client = h.open(4)
    packets = client.send(Connect(client_id="c", protocol_level=6, protocol_name="MQTT"))
    assert packets == [Connack(0x01, False)]  # [MQTT-3.1.2-2]
    assert client.closed


def test_unknown_protocol_name_is_closed_without_connack():
    h = Harness()
    client = h.open(4)
    assert client.send(Connect(client_id="c", protocol_level=4, protocol_name="MQTX")) == []
    assert client.closed


def test_first_packet_must_be_connect():
    h = Harness()
    client = h.open(4)
    assert client.send(Pingreq()) == []
    assert client.closed


@pytest.mark.parametrize("compat", ["2.0.11", "2.0.21", "2.1.2"])
def test_v5_malformed_connect_is_closed_without_connack_as_mosquitto(compat):
    h = Harness(mosquitto_compat=compat)
    client = h.open(5)
    data = bytearray(Connect(client_id="c", protocol_level=5).encode())
    data[9] |= 0x01  # the reserved connect flag [MQTT-3.1.2-3]
    assert client.send(bytes(data)) == []  # a CONNACK 0x81 is allowed, no mosquitto sends one
    assert client.closed


@pytest.mark.parametrize("compat, answers", [("2.0.11", []), ("2.0.21", []), ("2.1.2", [0x82])])
def test_v5_connect_protocol_error_gets_the_mosquitto_versions_answer(compat, answers):
    """A property twice in CONNECT: mosquitto 2.1 answers CONNACK 0x82 before the close, 2.0 just closes."""
    h = Harness(mosquitto_compat=compat)
    client = h.open(5)
    data = Connect(client_id="c", protocol_level=5, properties=Properties(receive_maximum=5)).encode()
    assert data[12:16] == b"\x03\x21\x00\x05"  # Property Length 3: Receive Maximum 5
    twice = bytes([0x10, data[1] + 3]) + data[2:12] + b"\x06\x21\x00\x05\x21\x00\x05" + data[16:]
    packets = client.send(twice)
    assert [p.reason_code for p in packets] == answers and client.closed
    assert all(p.properties.reason_string is None for p in packets)  # mosquitto sends none


def test_v5_reason_strings_explain_a_refused_connect():
    h = Harness(mosquitto_compat="2.1.2", reason_strings=True)
    client = h.open(5)
    data = Connect(client_id="c", protocol_level=5, properties=Properties(request_problem_information=2)).encode()
    [connack] = client.send(data)
    assert connack.reason_code == 0x82 and "Request Problem Information" in connack.properties.reason_string


def test_v311_malformed_connect_is_closed_without_connack():
    h = Harness()
    client = h.open(4)
    data = bytearray(Connect(client_id="c", protocol_level=4).encode())
    data[9] |= 0x01
    assert client.send(bytes(data)) == []  # [MQTT-3.1.4-1]
    assert client.closed


def test_second_connect_is_a_protocol_error():
    h = Harness()
    client, _ = h.connect("c1", 5)
    # Closed [MQTT-3.1.0-2]; a DISCONNECT 0x82 first is recommended (4.13.1), no mosquitto version sends it
    assert client.send(Connect(client_id="c1", protocol_level=5)) == []
    assert client.closed
    client, _ = h.connect("c2", 4)
    assert client.send(Connect(client_id="c2")) == [] and client.closed


def test_unsupported_authentication_method_is_refused():
    h = Harness()
    client, connack = h.connect("c1", 5, properties=Properties(authentication_method="SCRAM-SHA-1"),
                                expect_ok=False)
    assert connack.reason_code == 0x8C and client.closed


def test_will_above_maximum_qos_or_retained_without_retain_support_is_refused():
    h = Harness(max_qos=1, retain_available=False)
    client, connack = h.connect("a", 5, will=Will("w", b"x", qos=2), expect_ok=False)
    assert connack.reason_code == 0x9B and client.closed
    client, connack = h.connect("b", 5, will=Will("w", b"x", retain=True), expect_ok=False)
    assert connack.reason_code == 0x9A and client.closed
    client = h.open(4)
    assert client.send(Connect(client_id="c", will=Will("w", b"x", qos=2))) == [] and client.closed


def test_session_present_follows_clean_session():
    h = Harness()
    client, connack = h.connect("c1", 4, clean_start=False)
    assert not connack.session_present
    client.drop()
    client, connack = h.connect("c1", 4, clean_start=False)
    assert connack.session_present  # [MQTT-3.2.2-2]
    client.drop()
    client, connack = h.connect("c1", 4, clean_start=True)
    assert not connack.session_present  # [MQTT-3.2.2-1]
    client.drop()
    client, connack = h.connect("c1", 4, clean_start=False)
    assert not connack.session_present  # the clean session discarded the old one


def test_v5_takeover_sends_disconnect_0x8e_to_the_old_connection():
    h = Harness()
    old, _ = h.connect("c1", 5)
    new, connack = h.connect("c1", 5, clean_start=False, properties=Properties(session_expiry_interval=60))
    packets = old.take()
    assert isinstance(packets[0], Disconnect) and packets[0].reason_code == 0x8E
    assert old.closed and not new.closed
    assert new.send(Pingreq()) == [Pingresp()]


def test_v311_takeover_closes_the_old_connection_and_keeps_the_session():
    h = Harness()
    old, _ = h.connect("c1", 4, clean_start=False)
    old.subscribe(("a", 1))
    new, connack = h.connect("c1", 4, clean_start=False)
    assert old.closed and old.take() == []
    assert connack.session_present
    publisher, _ = h.connect("p", 4)
    publisher.send(Publish("a", b"1", qos=1, packet_id=1))
    assert [p.payload for p in new.take()] == [b"1"]


def test_keep_alive_closes_after_one_and_a_half_times_the_interval():
    h = Harness()
    client, _ = h.connect("c1", 4, keep_alive=10)
    h.advance(14.9)
    assert not client.closed
    client.send(Pingreq())  # any packet restarts the count
    h.advance(14.9)
    assert not client.closed
    h.advance(0.2)
    assert client.closed  # [MQTT-3.1.2-24]


def test_v5_keep_alive_timeout_closes_without_disconnect_as_mosquitto():
    h = Harness()
    client, _ = h.connect("c1", 5, keep_alive=2)
    h.advance(2.9)
    assert not client.closed
    h.advance(0.2)
    assert client.take() == [] and client.closed  # DISCONNECT 0x8D would be allowed too


def test_keep_alive_0_never_times_out():
    h = Harness()
    client, _ = h.connect("c1", 4, keep_alive=0)
    h.advance(10**6)
    assert not client.closed


def test_v5_server_keep_alive_is_what_the_broker_enforces():
    h = Harness(max_keepalive=10)
    client, connack = h.connect("c1", 5, keep_alive=100)
    assert connack.properties.server_keep_alive == 10
    h.advance(15.1)
    assert client.closed


def test_a_connection_that_never_sends_connect_is_closed():
    h = Harness()
    client = h.open(4)
    h.advance(89)
    assert not client.closed
    h.advance(1)
    assert client.closed
