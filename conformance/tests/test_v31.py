"""MQTT 3.1 (protocol name "MQIsdp", level 3): what a server does differently from 3.1.1, and the basic flows.

The 3.1 specification numbers none of its sentences, so these tests name the catalogue's ids of our own,
V31-<section>-<letter> (conformance/catalogue/statements.csv quotes each rule in our words). Every test
here runs only for `--mqtt-version=3.1` (or `all`); a broker that does not speak 3.1 refuses the first
CONNECT and every test fails or errors at that point.
"""

from __future__ import annotations

import pytest

from conformance import check, known_deviation, not_applicable, statement
from conformance.client import ConformanceFailure, ConnectionClosed, HarnessError
from refbroker.protocol import (
    MQTT_3_1,
    Connect,
    Pingreq,
    Pingresp,
    Subscribe,
    Subscription,
    Unsuback,
    Unsubscribe,
    Will,
)

from .helpers import describe_closes, receive_publishes, silent_connections_close_times

V31 = "3.1"
#: CONNACK return codes of 3.1 [V31-3.2-b]
ACCEPTED, UNACCEPTABLE_VERSION, IDENTIFIER_REJECTED = 0, 1, 2


def _connack_bytes(client, timeout: float = 3.0, *, v5_answer_deviation: int | None = None,
                   close_allowed: str | None = None) -> bytes:
    """The raw CONNACK that answers the CONNECT just sent; fails on anything else. `close_allowed`: a close
    without CONNACK is allowed here, and makes the test not applicable with this reason."""
    try:
        raw = client.expect_raw(timeout)
    except ConnectionClosed:
        if close_allowed is not None:
            not_applicable(close_allowed)
        raise ConformanceFailure("the broker closed the connection without a CONNACK") from None
    if raw[0] != 0x20:
        raise ConformanceFailure(f"expected CONNACK (20 02 ..), got {raw.hex(' ')}")
    if v5_answer_deviation is not None and raw == b"\x20\x03\x00\x84\x00":
        known_deviation(v5_answer_deviation, f"answered with the MQTT 5.0 CONNACK {raw.hex(' ')}")
    # remaining length 2: a reserved byte and the return code
    check("V31-3.2-a", len(raw) == 4 and raw[1] == 2, f"a 3.1 CONNACK has remaining length 2, got {raw.hex(' ')}")
    # codes above 5 are reserved
    check("V31-3.2-b", raw[3] <= 5, f"CONNACK return code {raw[3]} is reserved in MQTT 3.1 (0-5 are defined)")
    return raw


def _check_refusal(raw: bytes, code: int, what: str, why: str | None = None) -> None:
    """`why`: the rule the acceptance breaks, when it is not "3.1 requires return code N"."""
    if raw[3] == ACCEPTED:
        why = why or f"MQTT 3.1 requires CONNACK return code {code}"
        raise ConformanceFailure(f"the broker accepted {what}; {why}")
    if raw[3] != code:  # the test's principal statement names the code this refusal needs
        raise ConformanceFailure(f"{what}: expected CONNACK return code {code}, got {raw[3]} ({raw.hex(' ')})")
    # a refusal resumes no session: the reserved byte stays 0
    check("V31-3.2-a", raw[2] == 0, f"the first CONNACK byte is reserved in 3.1 and must be 0, got 0x{raw[2]:02X}")


@pytest.mark.spec("V31-3.1-a", "V31-3.2-a", "V31-3.2-b", "V31-3.13-a", version=V31)
def test_mqisdp_level_3_is_accepted(client_factory, version):
    """CONNECT "MQIsdp" level 3 gets CONNACK 20 02 00 00, and the connection answers PINGREQ."""
    client = client_factory(connect=False)
    data = client.send(Connect(client_id=client.client_id, protocol_level=MQTT_3_1, clean_start=True, keep_alive=30))
    if data[4:10] != b"MQIsdp" or data[10] != 3:
        raise HarnessError(f"the harness must send MQIsdp level 3, sent {data.hex(' ')}")
    raw = _connack_bytes(client)
    check("V31-3.1-a", raw[3] == ACCEPTED, f"expected CONNACK 20 02 00 00 (accepted), got {raw.hex(' ')}")
    check("V31-3.2-a", raw == b"\x20\x02\x00\x00", f"expected CONNACK 20 02 00 00 (accepted), got {raw.hex(' ')}")
    with statement("V31-3.13-a"):
        client.send(Pingreq())
        client.expect(Pingresp)


@pytest.mark.spec("V31-3.1-b", "V31-3.2-b", version=V31)
def test_client_identifier_longer_than_23_is_rejected(client_factory):
    """A 24-character Client Identifier: CONNACK return code 2 (identifier rejected)."""
    client = client_factory(connect=False)
    client_id = (client.client_id + "x" * 24)[:24]
    client.send(Connect(client_id=client_id, protocol_level=MQTT_3_1, clean_start=True))
    raw = _connack_bytes(client)
    if raw[3] == ACCEPTED:
        known_deviation(110, f"a 24-character client identifier was accepted with CONNACK {raw.hex(' ')}")
    _check_refusal(raw, IDENTIFIER_REJECTED, "a 24-character client identifier")


@pytest.mark.spec("V31-3.1-b", version=V31)
def test_client_identifier_of_23_is_accepted(client_factory):
    """23 characters is the longest identifier 3.1 allows: accepted."""
    client = client_factory(connect=False)
    client_id = (client.client_id + "Az09" * 6)[:23]
    client.send(Connect(client_id=client_id, protocol_level=MQTT_3_1, clean_start=True))
    raw = _connack_bytes(client)
    assert raw[3] == ACCEPTED, f"a 23-character identifier must be accepted, got return code {raw[3]}"
    client.ping()


@pytest.mark.spec("V31-3.1-c", "V31-3.2-b", version=V31)
@pytest.mark.parametrize("clean_session", [True, False], ids=["clean1", "clean0"])
def test_empty_client_identifier_is_rejected(client_factory, clean_session):
    """An empty Client Identifier, with either Clean Session (3.1 assigns no ids): a refusal is return code 2.

    3.1 gives the identifier 1 to 23 characters and names the answer to a longer one (return code 2,
    identifier rejected); it says nothing of what a server does with an empty one. So a refusal must use
    the code that says why, and an acceptance breaks no sentence of 3.1: not applicable, not a failure."""
    client = client_factory(connect=False)
    client.send(Connect(client_id="", protocol_level=MQTT_3_1, clean_start=clean_session))
    raw = _connack_bytes(client)
    if raw[3] == ACCEPTED:
        not_applicable("the broker accepted an empty 3.1 client identifier: 3.1 names a refusal only for one longer "
                       "than 23 characters (the spec allows it)")
    _check_refusal(raw, IDENTIFIER_REJECTED, "an empty client identifier")


@pytest.mark.spec("V31-3.1-d", "V31-3.2-b", version=V31)
@pytest.mark.parametrize("level", [4, 0x7F])
def test_mqisdp_with_another_level_is_refused(client_factory, level):
    """Protocol name MQIsdp with a level other than 3: never accepted; a CONNACK that refuses it says return
    code 1 (unacceptable protocol version).

    3.1 defines only level 3 and has return code 1 for a version the server does not accept, but no sentence
    that a CONNACK must come before the close; and to 3.1.1 "MQIsdp" is not its protocol name, on which a
    server MAY disconnect [MQTT-3.1.2-1]. So a close without CONNACK is allowed (not applicable). Accepting
    it is not: 3.1 knows no level but 3, and a server that treats it as 3.1.1 "MUST NOT continue to process
    the CONNECT packet in line with this specification" [MQTT-3.1.2-1]."""
    client = client_factory(connect=False)
    client.send_raw(client.connect_packet(protocol_level=level, protocol_name="MQIsdp").encode(MQTT_3_1),
                    note=f"CONNECT MQIsdp with protocol level {level}")
    raw = _connack_bytes(client, v5_answer_deviation=111, close_allowed=(
        f"the broker closed the connection without a CONNACK on CONNECT MQIsdp level {level} (the spec allows it: "
        "no sentence of 3.1 requires the CONNACK, and 3.1.1 may disconnect [MQTT-3.1.2-1])"))
    _check_refusal(raw, UNACCEPTABLE_VERSION, f"CONNECT MQIsdp level {level}",
                   "3.1 defines only level 3, and a 3.1.1 server must not process a CONNECT whose protocol name is "
                   "not 'MQTT' as 3.1.1 [MQTT-3.1.2-1]")


@pytest.mark.spec("V31-3.2-a", "V31-3.1-h", version=V31)
def test_connack_has_no_session_present(client_factory, topic):
    """Resuming a stored session (Clean Session 0 twice) still gets a CONNACK whose first byte is 0."""
    first = client_factory("first", clean_start=False)
    first.subscribe((f"{topic}/s", 1))
    first.disconnect()
    again = client_factory("again", connect=False, client_id=first.client_id)
    again.send(Connect(client_id=first.client_id, protocol_level=MQTT_3_1, clean_start=False))
    raw = _connack_bytes(again)
    check("V31-3.1-h", raw[3] == ACCEPTED, f"the reconnection was refused with return code {raw[3]}")
    check("V31-3.2-a", raw[2] == 0, f"CONNACK byte 1 is 0x{raw[2]:02X}: 3.1 has no Session Present flag, the byte is "
          "reserved (a 3.1.1 server would set it here)")
    again.disconnect()
    client_factory("tidy", client_id=first.client_id, clean_start=True).disconnect()  # drop the stored session


@pytest.mark.spec("V31-3.1-e", version=V31)
def test_new_connection_with_same_identifier_closes_the_old(client_factory):
    """A new CONNECT with a connected client's identifier: the server closes the older connection (without
    a DISCONNECT packet, which servers never send in 3.1) and accepts the new one."""
    old = client_factory("old")
    new = client_factory("new", client_id=old.client_id)
    assert new.connack.reason_code == ACCEPTED
    try:
        raw = old.expect_raw(timeout=3.0)
    except ConnectionClosed:
        new.ping()
        return
    raise ConformanceFailure(f"the older connection got {raw.hex(' ')} instead of being closed")


@pytest.mark.spec("V31-3.1-f", version=V31)
def test_keep_alive_silence_closes_the_connection(client_factory):
    """Keep Alive 1 s: PINGREQs keep the connection open; silence closes it within 1.5 x Keep Alive (plus
    1 s of scheduling slack), judged on several silent connections (helpers.silent_connections_close_times)."""
    client = client_factory(keep_alive=1)
    for _ in range(3):
        client.expect_nothing(0.5)
        client.ping()
    limit, closed_after = silent_connections_close_times(client_factory, client, 1)
    if any(after is None for after in closed_after):
        known_deviation(101, f"Keep Alive 1 s (MQTT 3.1): {sum(a is None for a in closed_after)} of "
                             f"{len(closed_after)} silent connections were still open {limit:g} s after their last "
                             f"packet; closes seen after {describe_closes(closed_after)}")
    early = [after for after in closed_after if after is not None and after < 0.9]
    assert not early, f"the server closed after only {early} s of silence, less than the Keep Alive of 1 s"


@pytest.mark.spec("V31-3.1-g", version=V31)
def test_will_published_on_lost_connection_not_after_disconnect(client_factory, topic):
    """The Will of a client whose connection drops is published; the Will of one that sends DISCONNECT is not."""
    watcher = client_factory("watcher")
    watcher.subscribe((f"{topic}/#", 0))
    polite = client_factory("polite", will=Will(f"{topic}/polite", b"polite-will", 0, False))
    polite.disconnect()
    dropped = client_factory("dropped", will=Will(f"{topic}/dropped", b"dropped-will", 0, False))
    dropped.close()
    received = receive_publishes(watcher, 1)
    payloads = [p.payload for p in received]
    assert b"dropped-will" in payloads, f"the Will of the dropped client was not published (got {payloads})"
    assert b"polite-will" not in payloads, "the Will of a client that sent DISCONNECT was published"


@pytest.mark.spec("V31-3.1-h", version=V31)
def test_clean_session_0_keeps_subscriptions_and_queues_messages(client_factory, topic):
    """Clean Session 0: the subscription outlives the connection; a QoS 1 message published while the client
    is away is delivered when it comes back."""
    sleeper = client_factory("sleeper", clean_start=False)
    sleeper.subscribe((f"{topic}/q", 1))
    sleeper.disconnect()
    publisher = client_factory("publisher")
    publisher.publish(f"{topic}/q", b"while-away", qos=1)
    back = client_factory("back", client_id=sleeper.client_id, clean_start=False)
    received = receive_publishes(back, 1)
    assert [p.payload for p in received] == [b"while-away"], (
        f"expected the queued QoS 1 message on reconnection, got {[p.payload for p in received]}")
    assert received[0].qos == 1
    # tidy up: a clean session drops what the broker keeps for this identifier
    back.disconnect()
    client_factory("tidy", client_id=sleeper.client_id, clean_start=True).disconnect()


@pytest.mark.spec("V31-3.3-a", "V31-3.9-a", version=V31)
@pytest.mark.parametrize("granted", [0, 1, 2])
def test_delivery_qos_is_the_lower_of_published_and_granted(client_factory, topic, granted):
    """Messages published at QoS 0, 1 and 2 to a subscription granted QoS g arrive at QoS <= min(published, g)."""
    subscriber = client_factory("subscriber")
    suback = subscriber.subscribe((f"{topic}/d", granted), lower_grant_ok=True)
    code = suback.reason_codes[0]
    check("V31-3.9-a", code in (0, 1, 2) and code <= granted, f"SUBACK granted {code:#04x} for a request of QoS {granted}")
    publisher = client_factory("publisher")
    for qos in (0, 1, 2):
        publisher.publish(f"{topic}/d", f"q{qos}".encode(), qos=qos)
    received = receive_publishes(subscriber, 3)
    if sorted(p.payload for p in received) != [b"q0", b"q1", b"q2"]:
        raise ConformanceFailure(f"messages at QoS 0, 1, 2 to a matching subscription: got "
                                 f"{[p.payload for p in received]}")
    for publish in received:
        published = int(publish.payload[1:])
        check("V31-3.3-a", publish.qos <= min(published, code),
              f"a QoS {published} message reached a QoS {code} subscription at QoS {publish.qos}")


@pytest.mark.spec("V31-3.9-a", version=V31)
def test_suback_grants_one_qos_per_topic_in_order(client_factory, topic):
    """SUBSCRIBE with three topics: the SUBACK (read as bytes) echoes the Message ID and has three granted
    QoS values of 0-2, in order."""
    client = client_factory()
    client.send(Subscribe(0x1234, [Subscription(f"{topic}/a", 2), Subscription(f"{topic}/+", 0),
                                   Subscription(f"{topic}/#", 1)]))
    raw = client.expect_raw()
    assert raw[0] == 0x90, f"expected SUBACK, got {raw.hex(' ')}"
    assert raw[1] == 5 and raw[2:4] == b"\x12\x34", f"SUBACK must echo Message ID 0x1234 with 3 codes: {raw.hex(' ')}"
    codes = list(raw[4:])
    assert all(code in (0, 1, 2) for code in codes), f"3.1 SUBACK codes are granted QoS 0-2, got {codes}"
    assert codes[1] == 0 and codes[2] <= 1, f"granted QoS above the requested one: {codes}"


@pytest.mark.spec("V31-3.9-a", version=V31)
def test_invalid_filter_gets_no_failure_code(client_factory):
    """A filter with "#" before its end: 3.1 has no SUBACK failure code, so the server closes the connection
    (or grants a QoS); a 0x80 return code is a 3.1.1 answer a 3.1 client cannot read."""
    client = client_factory()
    client.send(Subscribe(7, [Subscription("a/#/b", 0)]))
    try:
        raw = client.expect_raw(timeout=3.0)
    except ConnectionClosed:
        return
    assert raw[0] == 0x90 and raw[2:4] == b"\x00\x07", f"expected SUBACK for Message ID 7 or a close, got {raw.hex(' ')}"
    assert raw[4] in (0, 1, 2), (f"SUBACK return code 0x{raw[4]:02X} for 'a/#/b': MQTT 3.1 defines only granted QoS "
                                 "0-2 (0x80 is 3.1.1's failure code)")


@pytest.mark.spec("V31-3.11-a", version=V31)
def test_unsuback_echoes_message_id(client_factory, topic):
    client = client_factory()
    client.subscribe((f"{topic}/u", 0))
    client.send(Unsubscribe(0x0BCD, [f"{topic}/u"]))
    unsuback = client.expect(Unsuback)
    assert unsuback.packet_id == 0x0BCD, f"UNSUBACK has Message ID {unsuback.packet_id:#06x}, expected 0x0bcd"


@pytest.mark.spec("V31-4.1-a", version=V31)
@pytest.mark.parametrize("qos", [1, 2])
def test_qos_flow_acknowledgements(client_factory, topic, qos):
    """QoS 1: PUBACK; QoS 2: PUBREC, PUBREL, PUBCOMP; each with the PUBLISH's Message ID (the raw client
    checks the ids and fails on any other answer)."""
    client = client_factory()
    ack = client.publish(f"{topic}/f", b"flow", qos=qos, packet_id=0x0A0B)
    assert ack is not None and ack.packet_id == 0x0A0B


@pytest.mark.spec("V31-3.3-b", version=V31)
def test_retained_message_goes_to_later_subscriber(client_factory, topic):
    publisher = client_factory("publisher")
    publisher.publish(f"{topic}/r", b"kept", qos=1, retain=True)
    subscriber = client_factory("subscriber")
    subscriber.subscribe((f"{topic}/r", 1))
    publish = subscriber.expect_publish()
    assert (publish.payload, publish.retain) == (b"kept", True), f"got {publish!r}"
    # tidy up: a zero-length retained PUBLISH clears the message on the brokers we know (3.1 leaves it open)
    publisher.publish(f"{topic}/r", b"", qos=1, retain=True)
