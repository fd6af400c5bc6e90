"""Edges of the core that mutation testing (`tox -e mutation`) found unguarded: what the broker answers
to an unknown or refused acknowledgement, the reason codes of its refusals, the timers of CONNECT and Keep
Alive, the Will after a failed re-authentication, the round robin of shared subscriptions."""

import pytest

from refbroker.auth import PasswordFile
from refbroker.core.lifecycle import CONNECT_TIMEOUT
from refbroker.protocol import (
    Connack,
    Connect,
    Disconnect,
    Pingreq,
    Pingresp,
    Properties,
    Publish,
    Pubrec,
    Pubrel,
    Subscribe,
    Subscription,
    Will,
)

from .harness import Harness
from .test_auth import PASSWORDS
from .test_enhanced_auth import USERS, connected, finish, reauthenticate, start


def watcher(h, topic="w", version=5):
    client, _ = h.connect(f"watch-{topic}", version)
    client.subscribe((topic, 2))
    return client


# ------------------------------------------------------------------------------------ PUBREC and PUBREL


@pytest.mark.parametrize("version, code", [(4, 0), (5, 0)])
def test_pubrec_for_an_unknown_packet_id_gets_pubrel(version, code):
    """The PUBREL answers with the same id; 5.0 allows 0x92 Packet Identifier not found (3.7.2.1) and 0x00,
    and every mosquitto version says 0x00 (core/compat.py)."""
    h = Harness()
    client, _ = h.connect("c", version)
    [pubrel] = client.send(Pubrec(0x1234))
    assert pubrel == Pubrel(0x1234, code)


def test_failed_pubrec_ends_the_delivery_and_frees_the_window():
    """PUBREC 0x80 acknowledges a QoS 2 delivery [MQTT-4.4.0-2] (5.0): no PUBREL follows, and the slot of the
    client's Receive Maximum is free for the next message."""
    h = Harness()
    sub, _ = h.connect("sub", 5, properties=Properties(receive_maximum=1))
    sub.subscribe(("t", 2))
    publisher, _ = h.connect("pub", 5)
    publisher.send(Publish("t", b"one", qos=2, packet_id=1))
    publisher.send(Publish("t", b"two", qos=2, packet_id=2))
    [first] = sub.take()
    assert first.payload == b"one"
    answer = sub.send(Pubrec(first.packet_id, 0x80))
    assert [(type(p), getattr(p, "payload", None)) for p in answer] == [(Publish, b"two")]


def test_pubrec_releases_with_the_same_id():
    h = Harness()
    sub, _ = h.connect("sub", 5)
    sub.subscribe(("t", 2))
    publisher, _ = h.connect("pub", 5)
    publisher.send(Publish("t", b"x", qos=2, packet_id=1))
    [message] = sub.take()
    assert sub.send(Pubrec(message.packet_id)) == [Pubrel(message.packet_id)]  # [MQTT-4.3.3-4]


# ------------------------------------------------------------------------------------ refusals


@pytest.mark.parametrize("fields, compat, codes", [
    ({"reserved_flag": True}, "2.1.2", []),  # malformed [MQTT-3.1.2-3]: closed, as every mosquitto
    ({"properties": Properties(receive_maximum=0)}, "2.0.11", []),  # a Protocol Error (3.2.2.3.3): closed ...
    ({"properties": Properties(receive_maximum=0)}, "2.1.2", [0x82]),  # ... after CONNACK 0x82 in 2.1.2 mode
])
def test_v5_bad_connect_gets_the_mosquitto_versions_answer_and_why(fields, compat, codes):
    h = Harness(mosquitto_compat=compat, reason_strings=True)
    client = h.open(5)
    answer = client.send(Connect(client_id="c", protocol_level=5, **fields))
    assert [(type(p), p.reason_code) for p in answer] == [(Connack, code) for code in codes] and client.closed
    assert all(connack.properties.reason_string for connack in answer)  # says why (reason_strings true)


def test_v311_bad_connect_is_closed_without_connack():
    h = Harness()
    client = h.open(4)
    assert client.send(Connect(client_id="c", protocol_level=4, reserved_flag=True)) == [] and client.closed


def test_unsupported_protocol_level_gets_the_311_refusal():
    h = Harness()
    client = h.open(4)
    answer = client.send(Connect(client_id="c", protocol_level=4).encode(4)[:8] + bytes((9,)) +
                         Connect(client_id="c", protocol_level=4).encode(4)[9:])
    assert answer == [Connack(1)] and client.closed  # [MQTT-3.1.2-2]


@pytest.mark.parametrize("reason_strings", [False, True])
def test_v5_refusal_says_why_in_a_reason_string_if_asked(reason_strings):
    h = Harness(passwords=PasswordFile.parse(PASSWORDS), allow_anonymous=False, reason_strings=reason_strings)
    client, connack = h.connect("c", 5, expect_ok=False)
    assert connack.reason_code == 0x87 and client.closed
    assert bool(connack.properties.reason_string) == reason_strings  # mosquitto sends none


def test_v5_protocol_error_disconnect_codes():
    """A malformed packet gets DISCONNECT 0x81, a protocol error 0x82 (4.13), each with a Reason String
    (reason_strings true); a second CONNECT is closed without DISCONNECT, as mosquitto does; the Will is
    published each time (not a normal disconnection)."""
    h = Harness(reason_strings=True)
    watch = watcher(h)
    client, _ = h.connect("a", 5, will=Will("w", b"malformed"))
    [disconnect] = client.send(b"\x36\x05\x00\x01tx\x00")  # PUBLISH with QoS 3
    assert disconnect.reason_code == 0x81 and disconnect.properties.reason_string and client.closed
    client, _ = h.connect("b", 5, will=Will("w", b"protocol error"))
    [disconnect] = client.send(b"\x32\x06\x00\x01t\x00\x00\x00")  # QoS 1 PUBLISH with packet identifier 0
    assert disconnect.reason_code == 0x82 and disconnect.properties.reason_string and client.closed
    client, _ = h.connect("c", 5, will=Will("w", b"second CONNECT"))
    assert client.send(Connect(client_id="c", protocol_level=5)) == [] and client.closed
    assert [p.payload for p in watch.take()] == [b"malformed", b"protocol error", b"second CONNECT"]


# ------------------------------------------------------------------------------------ timers


def test_connect_timeout_is_a_bound_not_a_moment():
    """A connection without CONNECT is closed after CONNECT_TIMEOUT, not before (3.1.4 "a reasonable amount of
    time"); one that is still authenticating gets the time again from its last packet."""
    h = Harness(scram_users=USERS)
    client = h.open(4)
    h.advance(CONNECT_TIMEOUT - 1)
    assert not client.closed
    h.advance(2)
    assert client.closed
    authenticating, _, _ = start(h)
    h.advance(CONNECT_TIMEOUT - 1)
    assert not authenticating.closed
    h.advance(2)
    assert authenticating.closed


@pytest.mark.parametrize("version", [4, 5])
def test_keep_alive_closes_at_one_and_a_half_times_not_before(version):
    h = Harness()
    watch = watcher(h, version=version)
    client, _ = h.connect("c", version, keep_alive=10, will=Will("w", b"silent"))
    h.advance(14.9)
    assert not client.closed
    assert client.send(Pingreq()) == [Pingresp()]  # activity: the clock starts again
    h.advance(14.9)
    assert not client.closed and watch.take() == []
    h.advance(0.2)
    assert client.closed  # [MQTT-3.1.2-24] (3.1.1), [MQTT-3.1.2-22] (5.0)
    # 5.0 may say DISCONNECT 0x8D first; mosquitto does not, so neither does refbroker (core/compat.py)
    assert [p for p in client.inbox if isinstance(p, Disconnect)] == []
    assert [p.payload for p in watch.take()] == [b"silent"]


def test_one_timer_per_connection_whatever_its_deadlines():
    """A connection's CONNECT timeout and its Keep Alive share one timer (memory: a broker holds thousands
    of idle connections): a Keep Alive longer than the CONNECT timeout adds none, a shorter one replaces
    the CONNECT timer, and a timer overtaken by an earlier one goes when it comes."""
    h = Harness()
    long, _ = h.connect("long", keep_alive=600)
    assert len(h.broker.ctx.timers) == 1
    short, _ = h.connect("short", keep_alive=10)  # due long before its CONNECT timer
    none, _ = h.connect("none", keep_alive=0)
    assert len(h.broker.ctx.timers) == 4          # long, short (its CONNECT timer and its own), none
    h.advance(CONNECT_TIMEOUT + 1)                  # short sends nothing: closed after 15 s
    assert short.closed and not long.closed and not none.closed
    assert len(h.broker.ctx.timers) == 1            # long's, moved to its keep alive; none has no deadline
    h.advance(600 * 1.5 - CONNECT_TIMEOUT - 2)
    assert not long.closed
    h.advance(2)
    assert long.closed and not none.closed  # [MQTT-3.1.2-24] (3.1.1), [MQTT-3.1.2-22] (5.0)
    assert len(h.broker.ctx.timers) == 0


def test_keep_alive_shorter_than_the_connect_timeout_keeps_one_timer():
    """A client that keeps its short Keep Alive going is watched by one timer, not by one per period."""
    h = Harness()
    client, _ = h.connect("c", keep_alive=10)
    for _ in range(20):  # 200 s, past the CONNECT timer
        h.advance(10)
        assert client.send(Pingreq()) == [Pingresp()]
    assert not client.closed and len(h.broker.ctx.timers) == 1


# ------------------------------------------------------------------------------------ re-authentication


@pytest.mark.parametrize("username, password", [("alice", "wrong"), ("bob", "hunter2")])
def test_failed_re_authentication_publishes_the_will(username, password):
    """A failed re-authentication ends the connection abnormally: DISCONNECT 0x87 with a reason, and the
    Will is published."""
    h = Harness(scram_users=USERS, reason_strings=True)
    watch = watcher(h)
    client = connected(h, will=Will("w", b"gone"))
    scram, [challenge] = reauthenticate(client, username, password)
    [disconnect] = finish(client, scram, challenge.properties.authentication_data)
    assert isinstance(disconnect, Disconnect) and disconnect.reason_code == 0x87
    assert disconnect.properties.reason_string
    assert [p.payload for p in watch.take()] == [b"gone"]


# ------------------------------------------------------------------------------------ shared subscriptions


def test_shared_subscription_round_robin_skips_offline_members():
    h = Harness()
    members = []
    for n in range(3):
        member, _ = h.connect(f"m{n}", 5, clean_start=False, properties=Properties(session_expiry_interval=60))
        member.subscribe(("$share/g/t", 0))
        members.append(member)
    publisher, _ = h.connect("pub", 5)
    for n in range(3):
        publisher.send(Publish("t", b"%d" % n))
    assert [[p.payload for p in m.take()] for m in members] == [[b"0"], [b"1"], [b"2"]]  # one after another
    members[1].send(Disconnect())
    members[1].drop()
    for n in range(3, 7):
        publisher.send(Publish("t", b"%d" % n))
    got = [[p.payload for p in m.take()] for m in members]
    assert got[1] == [] and sorted(got[0] + got[2]) == [b"3", b"4", b"5", b"6"] and len(got[0]) == 2


# ------------------------------------------------------------------------------------ Will properties


def test_will_keeps_all_its_publish_properties():
    h = Harness()
    watch = watcher(h)
    properties = Properties(payload_format_indicator=1, content_type="text/plain", response_topic="r/t",
                            correlation_data=b"\x01\x02", user_properties=[("k", "v")])
    client, _ = h.connect("c", 5, will=Will("w", b"gone", properties=properties))
    client.drop()
    [will] = watch.take()
    got = will.properties
    assert (got.payload_format_indicator, got.content_type, got.response_topic, got.correlation_data,
            got.user_properties) == (1, "text/plain", "r/t", b"\x01\x02", [("k", "v")])


# ------------------------------------------------------------------------------------ $SYS values


def test_sys_client_counts_and_stored_messages():
    """clients/total counts connected clients and disconnected sessions alike; clients/disconnected only the
    latter; messages/stored counts the retained messages and the ones queued for offline sessions."""
    h = Harness(sys_interval=10)
    h.advance(0)
    offline, _ = h.connect("offline", 4, clean_start=False)
    offline.subscribe(("q", 1))
    offline.drop()
    watcher_client, _ = h.connect("w", 4)
    watcher_client.subscribe("$SYS/broker/#")
    publisher, _ = h.connect("p", 4)
    publisher.send(Publish("r", b"kept", retain=True))
    publisher.send(Publish("q", b"queued", qos=1, packet_id=1))
    watcher_client.take()
    h.advance(10)
    values = {p.topic.removeprefix("$SYS/broker/"): p.payload for p in watcher_client.take()}
    assert values["clients/connected"] == b"2" and values["clients/disconnected"] == b"1"
    assert values["clients/total"] == b"3"
    assert int(values["messages/stored"]) >= 2  # the retained message and the queued one (plus $SYS's own)


# ------------------------------------------------------------------------------------ topic aliases


def test_topic_alias_bounds():
    """1..Topic Alias Maximum are accepted [MQTT-3.3.2-12]; 0 [MQTT-3.3.2-8] and maximum + 1 close the
    connection (5.0: mosquitto 2.0.11's 0x81 for 0, 0x94 above the maximum); an alias never mapped on this
    connection is a Protocol Error (PE-3.3.4-c)."""
    h = Harness()
    sub, _ = h.connect("sub", 5)
    sub.subscribe(("t/#", 0))
    client, connack = h.connect("c", 5)
    maximum = connack.properties.topic_alias_maximum
    for alias in (1, maximum):
        assert client.send(Publish(f"t/{alias}", b"x", properties=Properties(topic_alias=alias))) == []
        assert client.send(Publish("", b"y", properties=Properties(topic_alias=alias))) == []
    assert [p.topic for p in sub.take()] == ["t/1", "t/1", f"t/{maximum}", f"t/{maximum}"]
    for alias, code in ((0, 0x81), (maximum + 1, 0x94)):
        other, _ = h.connect(f"bad{alias}", 5)
        [disconnect] = other.send(Publish("t/x", b"x", properties=Properties(topic_alias=alias)))
        assert disconnect.reason_code == code and other.closed
    unmapped, _ = h.connect("unmapped", 5)
    [disconnect] = unmapped.send(Publish("", b"x", properties=Properties(topic_alias=2)))
    assert disconnect.reason_code == 0x82 and unmapped.closed


# ------------------------------------------------------------------------------------ sessions and wills


def test_persistent_client_expiration_also_bounds_v5_sessions():
    """A v5 Session Expiry Interval longer than persistent_client_expiration ends at the latter."""
    h = Harness(persistent_client_expiration=10)
    client, _ = h.connect("c", 5, clean_start=False, properties=Properties(session_expiry_interval=100))
    client.drop()
    h.advance(9)
    again, connack = h.connect("c", 5, clean_start=False, properties=Properties(session_expiry_interval=100))
    assert connack.session_present
    again.drop()
    h.advance(11)
    _, connack = h.connect("c", 5, clean_start=False, properties=Properties(session_expiry_interval=100))
    assert not connack.session_present


def test_session_of_an_online_client_does_not_expire():
    h = Harness()
    client, _ = h.connect("c", 5, clean_start=False, properties=Properties(session_expiry_interval=5))
    h.advance(60)
    assert not client.closed and client.send(Pingreq()) == [Pingresp()]


@pytest.mark.parametrize("delay, at_once", [(0, True), (1, False)])
def test_will_delay_boundary(delay, at_once):
    h = Harness()
    watch = watcher(h)
    client, _ = h.connect("c", 5, clean_start=False, properties=Properties(session_expiry_interval=60),
                          will=Will("w", b"gone", properties=Properties(will_delay_interval=delay,
                                                                        message_expiry_interval=30)))
    client.drop()
    assert bool(watch.take()) is at_once
    h.advance(1.0)
    if not at_once:
        [will] = watch.take()
        assert will.payload == b"gone"
        assert will.properties.message_expiry_interval == 30  # sent as soon as it is due: no time waited


def test_failure_disconnect_drops_its_reason_string_to_fit_the_client():
    """[MQTT-3.14.2-3]: the Reason String is left out when it would exceed the client's Maximum Packet Size;
    without such a limit it is there (reason_strings true)."""
    h = Harness(reason_strings=True)
    small, _ = h.connect("small", 5, properties=Properties(maximum_packet_size=16))
    [disconnect] = small.send(b"\x36\x05\x00\x01tx\x00")  # PUBLISH with QoS 3
    assert disconnect.reason_code == 0x81 and disconnect.properties.reason_string is None
    large, _ = h.connect("large", 5)
    [disconnect] = large.send(b"\x36\x05\x00\x01tx\x00")
    assert disconnect.properties.reason_string


def test_retained_flag_and_properties_of_a_forwarded_message():
    """A message keeps its RETAIN flag for a new subscription and its properties on the way."""
    h = Harness()
    publisher, _ = h.connect("p", 5)
    publisher.send(Publish("r", b"x", qos=1, packet_id=1, retain=True,
                           properties=Properties(content_type="c", user_properties=[("a", "b")])))
    late, _ = h.connect("late", 5)
    [_, retained] = late.subscribe(("r", 1))
    assert retained.retain and retained.properties.content_type == "c"
    assert retained.properties.user_properties == [("a", "b")]


# ------------------------------------------------------------------------------------ access and counters


def test_acl_denial_for_one_subscriber_does_not_stop_the_others():
    """The router skips a subscriber the ACL does not let read the topic and goes on with the next one."""
    from refbroker.auth import AccessControlList

    h = Harness(acl=AccessControlList.parse("user alice\ntopic readwrite t\n"), allow_anonymous=True)
    denied, _ = h.connect("anonymous", 4)  # no user: the ACL gives it nothing to read
    denied.subscribe(("t", 0))
    allowed, _ = h.connect("alice-client", 4, username="alice")
    allowed.subscribe(("t", 0))
    publisher, _ = h.connect("pub", 4, username="alice")
    publisher.send(Publish("t", b"x"))
    assert denied.take() == [] and [p.payload for p in allowed.take()] == [b"x"]


@pytest.mark.parametrize("username, accepted", [(None, False), ("someone", False)])
def test_without_anonymous_and_without_a_password_file_nobody_gets_in(username, accepted):
    h = Harness(allow_anonymous=False)
    client, connack = h.connect("c", 4, expect_ok=False, username=username)
    assert (connack.reason_code == 0) is accepted and client.closed is not accepted


def test_named_user_without_a_password_file_gets_in_when_anonymous_is_allowed():
    h = Harness(allow_anonymous=True)
    client, connack = h.connect("c", 4, username="someone")
    assert connack.reason_code == 0 and not client.closed


def test_sys_counts_every_publish_received():
    h = Harness(sys_interval=10)
    h.advance(0)
    watch, _ = h.connect("w", 4)
    watch.subscribe("$SYS/broker/publish/messages/received")
    watch.take()
    publisher, _ = h.connect("p", 4)
    for n in range(3):
        publisher.send(Publish("x", b"%d" % n))
    h.advance(10)
    [value] = [p.payload for p in watch.take()]
    assert value == b"3"


def test_next_deadline_is_the_earliest_timer():
    """The I/O shell sleeps until broker.next_deadline(): the keep alive of a client is due at 1.5 x."""
    h = Harness()
    h.connect("c", 4, keep_alive=10)
    deadline = h.broker.next_deadline()
    assert deadline is not None and h.now < deadline <= h.now + 15


def _raw_answer(h, data: bytes) -> bytes:
    """The bytes the broker sends on a new connection after `data` (the harness decodes with the client's
    level and would hide an answer encoded in the wrong format)."""
    conn_id = 10_000 + len(h.clients)
    h.broker.connection_made(conn_id, h.now, "127.0.0.1:1", None)
    return b"".join(getattr(action, "data", b"") for action in h.broker.data_received(conn_id, data, h.now))


def test_v5_bad_connect_is_answered_in_the_5_format_and_an_unknown_level_in_3_1_1():
    """A CONNECT refused as read: mosquitto 2.1.2 answers a 5.0 protocol error with a 5.0 CONNACK (here with
    refbroker's Reason String), a malformed one and every one in 2.0.11 mode with a plain close; an unknown
    protocol level gets the 3.1.1 answer."""
    h = Harness(mosquitto_compat="2.1.2", reason_strings=True)
    bad_v5 = Connect(client_id="c", protocol_level=5, properties=Properties(request_problem_information=2)).encode(5)
    answer = _raw_answer(h, bad_v5)
    assert answer[:4] == b"\x20" + bytes((len(answer) - 2,)) + b"\x00\x82" and len(answer) > 4  # with properties
    assert _raw_answer(h, Connect(client_id="c", protocol_level=5, reserved_flag=True).encode(5)) == b""
    assert _raw_answer(Harness(), bad_v5) == b""
    level_9 = bytearray(Connect(client_id="c", protocol_level=4).encode(4))
    level_9[8] = 9
    assert _raw_answer(h, bytes(level_9)) == b"\x20\x02\x00\x01"


def test_acl_patterns_see_the_client_id_in_the_core():
    """%c in an ACL pattern is the client's id when it publishes, subscribes and receives."""
    from refbroker.auth import AccessControlList

    h = Harness(acl=AccessControlList.parse("pattern readwrite clients/%c/#\n"), allow_anonymous=True)
    owner, _ = h.connect("c1", 4)
    [suback] = owner.subscribe(("clients/c1/#", 1))
    assert suback.reason_codes == [1]
    [suback] = owner.subscribe(("clients/c2/#", 1), packet_id=2)
    assert suback.reason_codes == [0x80]
    other, _ = h.connect("c2", 4)
    other.send(Publish("clients/c1/x", b"not allowed"))
    answer = owner.take() + owner.send(Publish("clients/c1/x", b"mine", qos=1, packet_id=5))
    assert [p.payload for p in answer if isinstance(p, Publish)] == [b"mine"]


def test_failed_re_authentication_will_keeps_its_expiry():
    """The Will of a connection ended by a failed re-authentication is published now, with its own Message
    Expiry Interval."""
    h = Harness(scram_users=USERS)
    watch = watcher(h)
    client = connected(h, will=Will("w", b"gone", properties=Properties(message_expiry_interval=30)))
    scram, [challenge] = reauthenticate(client, "alice", "wrong")
    finish(client, scram, challenge.properties.authentication_data)
    [will] = watch.take()
    assert will.payload == b"gone" and will.properties.message_expiry_interval == 30


# ------------------------------------------------------------------------------------ what a CONNECT asks for


@pytest.mark.parametrize("version", [4, 5])
def test_retained_will_without_retain_support(version):
    """5.0: CONNACK 0x9A Retain not supported [MQTT-3.2.2-13]; 3.1.1 has no code for it: close, no CONNACK."""
    h = Harness(retain_available=False)
    client = h.open(version)
    answer = client.send(Connect(client_id="c", protocol_level=version, will=Will("w", b"x", retain=True)))
    assert client.closed
    assert [p.reason_code for p in answer] == ([0x9A] if version == 5 else [])


@pytest.mark.parametrize("version", [4, 5])
def test_will_qos_above_the_maximum(version):
    """5.0: CONNACK 0x9B QoS not supported [MQTT-3.2.2-12]; 3.1.1: close; a Will at the maximum is fine."""
    h = Harness(max_qos=1)
    client = h.open(version)
    answer = client.send(Connect(client_id="c", protocol_level=version, will=Will("w", b"x", qos=2)))
    assert client.closed
    assert [p.reason_code for p in answer] == ([0x9B] if version == 5 else [])
    ok, connack = h.connect("d", version, will=Will("w", b"x", qos=1))
    assert connack.reason_code == 0 and not ok.closed


@pytest.mark.parametrize("moved, code", [(False, 0x9C), (True, 0x9D)])
def test_server_redirection(moved, code):
    """5.0 4.11: 0x9C Use another server or 0x9D Server moved, with the Server Reference; 3.1.1 knows no
    redirection: return code 3 Server unavailable. Then close."""
    h = Harness(server_reference="other.example:1883", server_moved=moved)
    client, connack = h.connect("c", 5, expect_ok=False)
    assert connack.reason_code == code and connack.properties.server_reference == "other.example:1883"
    assert client.closed
    old, connack = h.connect("d", 4, expect_ok=False)
    assert connack == Connack(3) and old.closed


def test_session_found_expired_at_connect_is_gone_even_before_its_timer():
    """A session whose expiry has passed is not resumed, even when the CONNECT comes before the timer ran."""
    h = Harness()
    properties = Properties(session_expiry_interval=10)
    client, _ = h.connect("c", 5, clean_start=False, properties=properties)
    client.subscribe(("t", 1))
    client.drop()
    h.now += 10  # exactly the expiry; the broker's timers have not run (no tick)
    _, connack = h.connect("c", 5, clean_start=False, properties=properties)
    assert not connack.session_present


def test_malformed_packet_during_authentication_is_connack_0x81():
    """Before CONNACK, a malformed packet is answered with CONNACK 0x81 (a protocol error with 0x82: see
    test_enhanced_auth), then close (5.0 4.13.1)."""
    h = Harness(scram_users=USERS)
    client, _, _ = start(h)
    [connack] = client.send(b"\xf0\x03\x18\x01\x00")  # AUTH 0x18 whose property block runs past the packet
    assert isinstance(connack, Connack) and connack.reason_code == 0x81 and client.closed


def test_sys_counts_messages_and_bytes_every_second():
    """sys_interval 1 publishes $SYS every second; messages/received and bytes/received count every packet
    and every byte a client sent."""
    h = Harness(sys_interval=1)
    h.advance(0)
    watch, _ = h.connect("w", 4)
    watch.subscribe("$SYS/broker/messages/received", packet_id=2)
    watch.subscribe("$SYS/broker/bytes/received", packet_id=3)
    watch.take()
    publisher, _ = h.connect("p", 4)
    sent = [Publish("x", b"%d" % n).encode(4) for n in range(3)]
    for data in sent:
        publisher.send(data)
    h.advance(1)
    values = {p.topic.rsplit("/", 2)[-2]: int(p.payload) for p in watch.take()}
    # the watcher's CONNECT and 2 SUBSCRIBEs, the publisher's CONNECT and 3 PUBLISHes
    assert values["messages"] == 7
    connects = len(Connect(client_id="w", protocol_level=4).encode(4)) + len(Connect(client_id="p", protocol_level=4).encode(4))
    subscribes = len(Subscribe(2, [Subscription("$SYS/broker/messages/received", 2)]).encode(4)) + \
        len(Subscribe(3, [Subscription("$SYS/broker/bytes/received", 2)]).encode(4))
    assert values["bytes"] == connects + subscribes + sum(map(len, sent))
