"""CONNECT and CONNACK: the first packet, refusals, client identifiers."""

from __future__ import annotations

import pytest

from conformance import check, fail_statement, known_deviation, not_applicable, statement
from conformance.client import ConformanceFailure, HarnessError, NoPacketReceived
from refbroker.protocol import MQTT_5, Connect, Pingreq, Properties, Publish, Subscribe, Subscription, Will

from .helpers import QUIET, ConnectAccepted, expect_close_for_bad_packet, expect_connect_refused

BAD_CONNECT_V5 = (0x80, 0x81, 0x82)


@pytest.mark.spec("MQTT-3.2.0-1", "MQTT-3.2.2-1", "MQTT-3.1.4-4", version="3.1.1")
@pytest.mark.spec("MQTT-3.2.0-1", "MQTT-3.2.2-2", "MQTT-3.1.4-5", "MQTT-3.2.2-1", "MQTT-3.2.2-8",
                  "MQTT-2.2.2-1", version="5.0")
def test_connect_is_accepted_with_connack(client_factory, version):
    """A well-formed CONNECT with Clean Start gets CONNACK 0x00, Session Present 0, as the first packet."""
    client = client_factory(connect=False)
    client.send(Connect(client_id=client.client_id, protocol_level=version, clean_start=True, keep_alive=30))
    raw = client.expect_raw()
    check("MQTT-3.2.0-1", raw[0] == 0x20, f"the first packet from the server must be CONNACK, got {raw.hex(' ')}")
    check("MQTT-3.2.2-1", len(raw) >= 4, f"CONNACK too short: {raw.hex(' ')}")
    # Acknowledge flags: bits 7-1 reserved (0); Session Present 0 for Clean Start; return/reason code 0
    flags, code = raw[2], raw[3]
    if version == MQTT_5:
        check("MQTT-3.2.2-1", flags & 0xFE == 0, f"CONNACK acknowledge flags bits 7-1 are reserved, got 0x{flags:02X}")
        check("MQTT-3.2.2-2", flags & 0x01 == 0 and code == 0x00,
              f"Clean Start 1 is accepted with Session Present 0 and reason 0x00, got flags 0x{flags:02X} code 0x{code:02X}")
        check("MQTT-3.1.4-5", code == 0x00, f"CONNACK code must be 0x00 (accepted), got 0x{code:02X}")
        # A v5 CONNACK always carries a Property Length, even when there are no properties [MQTT-2.2.2-1]
        check("MQTT-2.2.2-1", len(raw) >= 5, f"v5 CONNACK without Property Length: {raw.hex(' ')}")
    else:
        check("MQTT-3.2.2-1", flags == 0x00, f"CONNACK acknowledge flags must be 0x00 for Clean Session, got 0x{flags:02X}")
        check("MQTT-3.1.4-4", code == 0x00, f"CONNACK return code must be 0x00 (accepted), got 0x{code:02X}")
        check("MQTT-3.2.2-1", raw == b"\x20\x02\x00\x00", f"3.1.1 CONNACK must be 20 02 00 00, got {raw.hex(' ')}")
    with statement("MQTT-3.1.4-4" if version != MQTT_5 else "MQTT-3.1.4-5"):
        client.ping()  # the connection is usable


@pytest.mark.spec("MQTT-4.8.0-1", "MQTT-3.1.0-1", version="3.1.1")
@pytest.mark.spec("MQTT-4.13.1-1", "MQTT-3.1.0-1", "MQTT-3.14.0-1", version="5.0")
@pytest.mark.parametrize("first", ["PINGREQ", "SUBSCRIBE"])
def test_first_packet_must_be_connect(client_factory, version, first):
    """A connection that starts with anything but CONNECT is closed, without an answer."""
    client = client_factory(connect=False)
    if first == "PINGREQ":
        client.send(Pingreq())
    else:
        client.send(Subscribe(1, [Subscription("a/b", 0)]))
    raw = client.raw_answer_or_close(3.0)
    if raw is None:
        return
    if version == MQTT_5 and raw[0] >> 4 == 14:
        fail_statement("MQTT-3.14.0-1", f"the broker answered a {first} sent before CONNECT with DISCONNECT "
                                        f"{raw.hex(' ')}; a server sends DISCONNECT only after a successful CONNACK")
    raise ConformanceFailure(f"the broker answered a {first} sent before CONNECT with {raw.hex(' ')}; "
                             "it must close the connection")


@pytest.mark.spec("MQTT-3.1.0-2", "MQTT-4.8.0-1", version="3.1.1")
@pytest.mark.spec("MQTT-3.1.0-2", "MQTT-4.13.1-1", version="5.0")
def test_second_connect_closes_connection(client_factory, version):
    """A second CONNECT on the same connection is a protocol violation: the server closes."""
    client = client_factory()
    client.send(Connect(client_id=client.client_id, protocol_level=version))
    expect_close_for_bad_packet(client)


@pytest.mark.spec("MQTT-3.1.2-3", "MQTT-3.1.4-1", "MQTT-3.2.2-6", version="3.1.1")
@pytest.mark.spec("MQTT-3.1.2-3", "MP-3.1.2.3-a", "MQTT-3.1.4-1", version="5.0")
def test_reserved_connect_flag_closes(client_factory, version):
    """CONNECT with the reserved flag set: close (5.0: optionally after CONNACK 0x81)."""
    client = client_factory(connect=False)
    client.send(Connect(client_id=client.client_id, protocol_level=version, reserved_flag=True))
    expect_connect_refused(client, v3_codes=(), v5_codes=BAD_CONNECT_V5)


@pytest.mark.spec("MQTT-3.1.2-2", "MQTT-3.2.2-4", "MQTT-3.2.2-5", version="3.1.1")
@pytest.mark.spec("MQTT-3.1.2-2", "MQTT-3.2.2-6", "MQTT-3.2.2-7", version="5.0")
@pytest.mark.parametrize("level", [6, 0xFF])
def test_unsupported_protocol_level(client_factory, version, level):
    """An unknown protocol level: 3.1.1 requires CONNACK 0x01 then close; 5.0 allows CONNACK 0x84 or none."""
    client = client_factory(connect=False)
    # The body follows the session's version: a 3.1.1-style CONNECT for 3.1.1, a v5-style one for 5.0.
    client.send_raw(client.connect_packet(protocol_level=level, protocol_name="MQTT").encode(version),
                    note=f"CONNECT with protocol level {level}")
    raw = client.raw_answer_or_close(3.0)
    if raw is None:
        if version == MQTT_5:
            return  # 5.0: the CONNACK is optional [MQTT-3.1.2-2]
        fail_statement("MQTT-3.1.2-2", "the broker closed without CONNACK; 3.1.1 requires CONNACK return code 0x01 "
                                       "(unacceptable protocol version) before closing")
    v3_answer, v5_answer = b"\x20\x02\x00\x01", b"\x20\x03\x00\x84\x00"
    close_after = "MQTT-3.2.2-5" if version != MQTT_5 else "MQTT-3.2.2-7"
    if version == MQTT_5:
        # The server cannot know which format the client reads; either refusal is fine, then close.
        check("MQTT-3.1.2-2", raw in (v3_answer, v5_answer), f"expected CONNACK 0x84 (or 3.1.1's 0x01), got {raw.hex(' ')}")
        with statement(close_after):
            client.expect_disconnect()
        return
    if raw == v3_answer:
        with statement(close_after):
            client.expect_disconnect()
        return
    if raw == v5_answer:
        with statement(close_after):
            client.expect_disconnect()
        known_deviation(1, f"CONNECT level {level} (3.1.1 format) answered with v5-format CONNACK {raw.hex(' ')}")
    fail_statement("MQTT-3.1.2-2", f"expected CONNACK 20 02 00 01 then close, got {raw.hex(' ')}")


@pytest.mark.spec("MQTT-3.1.2-1", version="3.1.1")
@pytest.mark.spec("MQTT-3.1.2-1", "MQTT-3.1.4-1", version="5.0")
def test_wrong_protocol_name_is_not_treated_as_mqtt(client_factory, version):
    """Protocol name "MQTX": the server must not accept it as MQTT (close, or 5.0 CONNACK 0x84)."""
    client = client_factory(connect=False)
    client.send_raw(client.connect_packet(protocol_name="MQTX").encode(version),
                    note="CONNECT with protocol name MQTX")
    # A server that does not know the protocol cannot tell which CONNACK format the client reads: 5.0
    # allows it to answer "in accordance with some other specification" [MQTT-3.1.2-1], e.g. 3.1.1's refusal
    try:
        expect_connect_refused(client, v3_codes=(0x01,), v5_codes=(0x84, 0x81, 0x82, 0x80),
                               other_answers=(b"\x20\x02\x00\x01",) if version == MQTT_5 else ())
    except NoPacketReceived:
        # "it MAY continue processing the CONNECT packet in accordance with some other specification"
        # [MQTT-3.1.2-1]: one that has it wait for more shows nothing either way
        not_applicable("the broker neither answered nor closed a CONNECT with protocol name MQTX: it may be "
                       "processing it under another specification (the spec allows it [MQTT-3.1.2-1])")


@pytest.mark.spec("MQTT-3.1.3-5", "MQTT-3.1.4-4", version="3.1.1")
@pytest.mark.spec("MQTT-3.1.3-5", "MQTT-3.1.4-5", version="5.0")
def test_client_id_of_23_alphanumerics_accepted(client_factory, version):
    client = client_factory(connect=False)
    client_id = (client.client_id + "Az09" * 6)[:23]
    connack = client.connect(client_id=client_id)  # a refusal fails [MQTT-3.1.3-5]
    check("MQTT-3.1.4-4" if version != MQTT_5 else "MQTT-3.1.4-5", connack.reason_code == 0, f"{connack}")
    client.ping()


@pytest.mark.spec("MQTT-3.1.3-6", "MQTT-3.1.3-9", "MQTT-3.2.2-4", version="3.1.1")
@pytest.mark.spec("MQTT-3.1.3-6", "MQTT-3.1.3-7", "MQTT-3.2.2-16", "MQTT-3.1.3-8", version="5.0")
def test_empty_client_id_with_clean_start(client_factory, version):
    """A zero-length client id: the server assigns a unique one (5.0: returned in CONNACK) or refuses it."""
    first = client_factory(connect=False)
    connack = first.connect(client_id="", clean_start=True, expect_success=False)
    if connack.reason_code != 0:  # refusing an empty client id is allowed, with the identifier-rejected code
        refusal = "MQTT-3.1.3-9" if version != MQTT_5 else "MQTT-3.1.3-8"
        allowed = (0x85,) if version == MQTT_5 else (0x02,)
        check(refusal, connack.reason_code in allowed, f"refusing an empty client id needs code {allowed}, got {connack}")
        check("MQTT-3.2.2-4" if version != MQTT_5 else "MQTT-3.2.2-6", not connack.session_present,
              f"a refusing CONNACK has Session Present set: {connack}")
        with statement(refusal):
            first.expect_disconnect()
        return
    second = client_factory(connect=False)
    connack2 = second.connect(client_id="", clean_start=True)
    if version == MQTT_5:
        assigned = [c.properties.assigned_client_identifier for c in (connack, connack2)]
        check("MQTT-3.1.3-7", all(assigned),
              f"CONNACK for an empty client id must carry an Assigned Client Identifier: {assigned}")
        check("MQTT-3.2.2-16", assigned[0] != assigned[1], f"two clients got the same assigned identifier {assigned[0]!r}")
    # Both connections stay usable: the second did not take over the first one's session (a unique id)
    with statement("MQTT-3.1.3-6"):
        first.ping()
        second.ping()


@pytest.mark.spec("MQTT-3.1.3-8", "MQTT-3.2.2-4", "MQTT-3.2.2-5", version="3.1.1")
def test_empty_client_id_without_clean_session_rejected(client_factory, version):
    """3.1.1: zero-length client id with CleanSession 0 gets CONNACK 0x02 and the connection closes."""
    client = client_factory(connect=False)
    client.send(Connect(client_id="", protocol_level=version, clean_start=False))
    connack = expect_connect_refused(client, v3_codes=(0x02,))
    check("MQTT-3.1.3-8", connack is not None, "3.1.1 requires CONNACK 0x02 (identifier rejected) before closing")


@pytest.mark.spec("MQTT-3.1.3-6", "MQTT-3.1.3-7", "MQTT-3.2.2-16", "MQTT-3.2.2-3", version="5.0")
def test_empty_client_id_without_clean_start_v5(client_factory, version):
    """5.0 allows Clean Start 0 with an empty id: assigned id, Session Present 0; or refusal 0x85."""
    client = client_factory(connect=False)
    connack = client.connect(client_id="", clean_start=False, expect_success=False)
    if connack.reason_code:  # refusing it is allowed: 0x85 (Client Identifier not valid), then close
        check("MQTT-3.1.3-6", connack.reason_code == 0x85, f"expected 0x00 or 0x85, got 0x{connack.reason_code:02X}")
        with statement("MQTT-3.1.3-6"):
            client.expect_disconnect()
        return
    check("MQTT-3.1.3-7", connack.properties.assigned_client_identifier, "no Assigned Client Identifier in CONNACK")
    check("MQTT-3.2.2-3", not connack.session_present, "a new assigned id cannot have a stored session")


@pytest.mark.spec("MQTT-3.2.0-2", version="5.0")
def test_only_one_connack_per_connection(client_factory, version):
    """After the CONNACK, nothing else arrives unprompted; a PINGREQ gets a PINGRESP, not a CONNACK."""
    client = client_factory()
    client.ping()
    client.expect_nothing(QUIET)


@pytest.mark.spec("MQTT-3.1.4-1")
def test_connect_with_truncated_payload_closes(client_factory, version):
    """A CONNECT whose Remaining Length ends inside the client id is malformed: close, no success CONNACK."""
    client = client_factory(connect=False)
    good = client.connect_packet().encode(version)
    # Claim two fewer bytes, so the client identifier string runs past the end of the packet.
    bad = bytes((good[0], good[1] - 2)) + good[2:-2]
    client.send_raw(bad, note="CONNECT whose last field runs past the Remaining Length")
    expect_connect_refused(client, v3_codes=(), v5_codes=BAD_CONNECT_V5)


@pytest.mark.spec("MQTT-3.1.4-1", "MQTT-3.1.2-14", version="3.1.1")
@pytest.mark.spec("MP-3.1.2.6-a", "MQTT-3.1.4-1", version="5.0")
def test_will_qos_3_closes(client_factory, version):
    """Will Flag 1 with Will QoS 3 is malformed: close (5.0: optionally after CONNACK 0x81)."""
    client = client_factory(connect=False)
    good = client.connect_packet(will=Will("w/t", b"x", 0)).encode(version)
    flags_at = 2 + 2 + 4 + 1  # fixed header (2), name length (2), "MQTT" (4), level (1)
    bad = bytearray(good)
    bad[flags_at] |= 0x18  # Will QoS bits = 3
    client.send_raw(bytes(bad), note="CONNECT with Will QoS 3")
    expect_connect_refused(client, v3_codes=(), v5_codes=BAD_CONNECT_V5)


@pytest.mark.spec("MQTT-3.1.4-5", version="3.1.1")
@pytest.mark.spec("MQTT-3.1.4-6", version="5.0")
def test_packets_after_refused_connect_are_ignored(client_factory, version, topic):
    """After a refused CONNECT, a PUBLISH sent right behind it is not processed (nobody receives it)."""
    watcher = client_factory("watcher")
    watcher.subscribe(f"{topic}/#", qos=0)
    client = client_factory(connect=False)
    bad_connect = client.connect_packet(reserved_flag=True).encode(version)
    client.send_raw(bad_connect + Publish(f"{topic}/leak", b"must not be delivered").encode(version),
                    note="bad CONNECT followed by a PUBLISH")
    try:
        expect_connect_refused(client, v3_codes=(), v5_codes=BAD_CONNECT_V5)
    except ConnectAccepted:
        # Nothing was refused, so what follows a refusal cannot be checked here; the acceptance itself
        # fails MQTT-3.1.2-3 in test_reserved_connect_flag_closes (a failure counts once, where it belongs)
        not_applicable("the broker accepted the CONNECT with the reserved flag set (see "
                       "test_reserved_connect_flag_closes): there is no refused CONNECT to build on")
    watcher.expect_nothing(QUIET)  # the PUBLISH behind the refused CONNECT was not processed


@pytest.mark.spec("MQTT-3.1.2-28", "MQTT-4.12.0-6", "PE-3.2.2.3.3-a", "PE-3.2.2.3.4-a", "PE-3.2.2.3.6-a",
                  version="5.0")
def test_v5_connack_properties_are_sane(client_factory, version):
    """CONNACK properties have legal values, and there is no Response Information nor auth method unasked."""
    client = client_factory(connect=False)
    connack = client.connect()
    props = connack.properties
    check("MQTT-3.1.2-28", props.response_information is None, "Response Information sent although not requested")
    check("MQTT-4.12.0-6", props.authentication_method is None and props.authentication_data is None,
          "Authentication Method or Data in CONNACK without an Authentication Method in CONNECT")
    # values a client must treat as a Protocol Error, so a server never sends them
    check("PE-3.2.2.3.3-a", props.receive_maximum != 0, "CONNACK with Receive Maximum 0")
    check("PE-3.2.2.3.4-a", props.maximum_qos in (None, 0, 1), f"CONNACK with Maximum QoS {props.maximum_qos}")
    check("PE-3.2.2.3.6-a", props.maximum_packet_size != 0, "CONNACK with Maximum Packet Size 0")


@pytest.mark.spec("PE-3.1.2.11.3-a", "MQTT-3.1.4-1", version="5.0")
def test_v5_receive_maximum_zero_refused(client_factory, version):
    """CONNECT with Receive Maximum 0 is a Protocol Error: close, optionally after CONNACK 0x82."""
    client = client_factory(connect=False)
    client.send(Connect(client_id=client.client_id, protocol_level=version,
                        properties=Properties(receive_maximum=0)))
    expect_connect_refused(client, v5_codes=BAD_CONNECT_V5)


@pytest.mark.spec("PE-3.1.2.11.2-a", "MQTT-3.1.4-1", version="5.0")
def test_v5_duplicate_connect_property_refused(client_factory, version):
    """CONNECT carrying Session Expiry Interval twice is a Protocol Error: close (CONNACK 0x82 optional)."""
    client = client_factory(connect=False)
    good = client.connect_packet(properties=Properties(session_expiry_interval=10)).encode(version)
    # properties start after: header(2) + name(6) + level(1) + flags(1) + keep alive(2) = 12
    props_at = 12
    if good[props_at:props_at + 2] != b"\x05\x11":  # our own encoding changed: the test must be updated
        raise HarnessError(f"unexpected CONNECT encoding {good.hex(' ')}")
    prop = good[props_at + 1:props_at + 6]
    bad_body = good[2:props_at] + bytes((10,)) + prop + prop + good[props_at + 6:]
    client.send_raw(bytes((0x10, len(bad_body))) + bad_body, note="CONNECT with Session Expiry Interval twice")
    expect_connect_refused(client, v5_codes=BAD_CONNECT_V5)
