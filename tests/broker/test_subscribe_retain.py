"""SUBSCRIBE / UNSUBSCRIBE, wildcards and '$' topics, shared subscriptions, retained messages."""

import pytest

from refbroker.auth import AccessControlList
from refbroker.protocol import Disconnect, Properties, Publish, Subscribe, Subscription, Unsuback, Unsubscribe

from .harness import Harness


@pytest.mark.parametrize("version, answer", [(4, []), (5, [(Disconnect, 0x81)])])
def test_invalid_filter_closes_the_connection_as_mosquitto(version, answer):
    """A filter that breaks the topic rules is a protocol violation: closed [MQTT-4.8.0-1] (3.1.1),
    [MQTT-4.13.1-1] (5.0), 5.0 after DISCONNECT 0x81 as every mosquitto version (a SUBACK failure code
    for that filter would be allowed too)."""
    h = Harness()
    client, _ = h.connect("c", version)
    packets = client.send(Subscribe(3, [Subscription("ok/+", 1), Subscription("a/b#", 1)]))
    assert [(type(p), p.reason_code) for p in packets] == answer
    assert client.closed


def test_granted_qos_is_capped_by_max_qos():
    h = Harness(max_qos=1)
    client, _ = h.connect("c", 5)
    [suback] = client.subscribe(("a", 2), ("b", 0))
    assert suback.reason_codes == [1, 0]


def test_wildcards_do_not_match_dollar_topics():
    h = Harness()
    everything, _ = h.connect("everything")
    everything.subscribe("#", "+/broker/x")
    sys_reader, _ = h.connect("sys")
    sys_reader.subscribe("$SYS/#")
    publisher, _ = h.connect("pub")
    publisher.send(Publish("$SYS/broker/x", b"1"))
    assert everything.take() == []  # [MQTT-4.7.2-1]
    assert [p.topic for p in sys_reader.take()] == ["$SYS/broker/x"]


def test_multi_level_wildcard_matches_the_parent_level():
    h = Harness()
    client, _ = h.connect("c")
    client.subscribe("sport/#")
    received = client.send(Publish("sport", b"1"))
    received += client.send(Publish("sport/tennis/player1", b"2"))
    received += client.send(Publish("sports", b"3"))
    assert [p.payload for p in received] == [b"1", b"2"]


@pytest.mark.parametrize("version", [4, 5])
def test_unsubscribe_stops_delivery_and_answers_with_unsuback(version):
    h = Harness()
    client, _ = h.connect("c", version)
    client.subscribe("a", "b")
    [unsuback] = client.send(Unsubscribe(5, ["a", "nothing"]))
    assert unsuback == Unsuback(5, [0x00, 0x11] if version == 5 else [])
    received = client.send(Publish("a", b"1")) + client.send(Publish("b", b"2"))
    assert [p.payload for p in received] == [b"2"]


def test_resubscribing_replaces_the_subscription():
    h = Harness()
    client, _ = h.connect("c")
    client.subscribe(("t", 2))
    client.subscribe(("t", 0), packet_id=2)
    received = client.send(Publish("t", b"x", qos=2, packet_id=1))
    assert [p.qos for p in received if isinstance(p, Publish)] == [0]
    assert len(h.broker.subscriptions) == 1


def test_shared_subscription_delivers_each_message_to_one_member():
    h = Harness()
    members = [h.connect(f"m{n}", 5)[0] for n in range(3)]
    for member in members:
        member.subscribe(("$share/group/t", 1))
    outsider, _ = h.connect("outsider", 5)
    outsider.subscribe(("t", 0))
    publisher, _ = h.connect("pub", 5)
    for n in range(6):
        publisher.send(Publish("t", str(n).encode(), qos=1, packet_id=n + 1))
    counts = [len(member.take()) for member in members]
    assert counts == [2, 2, 2]
    assert len(outsider.take()) == 6


def test_no_local_on_a_shared_subscription_is_a_protocol_error():
    h = Harness()
    client, _ = h.connect("c", 5)
    packets = client.send(Subscribe(1, [Subscription("$share/g/t", 1, no_local=True)]))
    assert isinstance(packets[-1], Disconnect) and packets[-1].reason_code == 0x82  # [MQTT-3.8.3-4]


def test_retained_message_is_stored_replaced_and_deleted():
    h = Harness()
    publisher, _ = h.connect("pub")
    publisher.send(Publish("r", b"first", retain=True))
    publisher.send(Publish("r", b"second", qos=1, retain=True, packet_id=1))
    client, _ = h.connect("a")
    [retained] = [p for p in client.subscribe(("r", 2)) if isinstance(p, Publish)]
    assert (retained.payload, retained.retain, retained.qos) == (b"second", True, 1)  # [MQTT-3.3.1-8]
    publisher.send(Publish("r", b"", retain=True))  # deletes [MQTT-3.3.1-10]
    [forwarded] = client.take()
    assert forwarded.payload == b"" and not forwarded.retain  # delivered normally, RETAIN 0 [MQTT-3.3.1-9]
    late, _ = h.connect("b")
    assert [p for p in late.subscribe("r") if isinstance(p, Publish)] == []
    assert len(h.broker.retained) == 0


def test_retained_messages_are_downgraded_to_the_granted_qos():
    h = Harness()
    publisher, _ = h.connect("pub")
    publisher.send(Publish("r/1", b"x", qos=2, retain=True, packet_id=1))
    client, _ = h.connect("c")
    packets = client.subscribe(("r/+", 1))
    assert [p.qos for p in packets if isinstance(p, Publish)] == [1]


def test_suback_comes_before_the_retained_messages():
    h = Harness()
    publisher, _ = h.connect("pub")
    publisher.send(Publish("r", b"x", retain=True))
    client, _ = h.connect("c")
    assert [type(p).__name__ for p in client.subscribe("r")] == ["Suback", "Publish"]


@pytest.mark.parametrize("handling, first, again", [(0, 1, 1), (1, 1, 0), (2, 0, 0)])
def test_v5_retain_handling(handling, first, again):
    h = Harness()
    publisher, _ = h.connect("pub", 5)
    publisher.send(Publish("r", b"x", retain=True))
    client, _ = h.connect("c", 5)
    subscription = Subscription("r", 1, retain_handling=handling)
    assert len(client.send(Subscribe(1, [subscription]))) - 1 == first  # [MQTT-3.3.1-9/10/11]
    assert len(client.send(Subscribe(2, [subscription]))) - 1 == again


def test_v5_retain_as_published():
    h = Harness()
    client, _ = h.connect("c", 5)
    client.send(Subscribe(1, [Subscription("kept", 0, retain_as_published=True), Subscription("cleared", 0)]))
    publisher, _ = h.connect("pub", 5)
    publisher.send(Publish("kept", b"1", retain=True))
    publisher.send(Publish("cleared", b"2", retain=True))
    assert [(p.topic, p.retain) for p in client.take()] == [("kept", True), ("cleared", False)]  # [MQTT-3.3.1-12/13]


def test_v5_retained_message_carries_the_subscription_identifier():
    h = Harness()
    publisher, _ = h.connect("pub", 5)
    publisher.send(Publish("r", b"x", retain=True))
    client, _ = h.connect("c", 5)
    packets = client.subscribe(("r", 0), subscription_identifiers=[42])
    assert packets[1].properties.subscription_identifiers == [42]


def test_shared_subscription_gets_no_retained_messages():
    h = Harness()
    publisher, _ = h.connect("pub", 5)
    publisher.send(Publish("r", b"x", retain=True))
    client, _ = h.connect("c", 5)
    assert len(client.subscribe("$share/g/r")) == 1


def test_retained_message_expires():
    h = Harness()
    publisher, _ = h.connect("pub", 5)
    publisher.send(Publish("r", b"x", retain=True, properties=Properties(message_expiry_interval=10)))
    h.advance(4)
    client, _ = h.connect("c", 5)
    [_, retained] = client.subscribe("r")
    assert retained.properties.message_expiry_interval == 6
    h.advance(7)
    late, _ = h.connect("d", 5)
    assert len(late.subscribe("r")) == 1


def test_v5_request_problem_information_0_removes_reason_strings_from_suback():
    h = Harness(reason_strings=True, acl=AccessControlList.parse("topic read open/#\n"))
    client, _ = h.connect("c", 5, properties=Properties(request_problem_information=0))
    [suback] = client.send(Subscribe(1, [Subscription("closed/x", 0)]))
    assert suback.reason_codes == [0x87] and suback.properties.reason_string is None  # [MQTT-3.1.2-29]
    other, _ = h.connect("d", 5)
    [suback] = other.send(Subscribe(1, [Subscription("closed/x", 0)]))
    assert suback.properties.reason_string  # reason_strings true: refbroker says why


def test_v5_no_reason_string_by_default_as_mosquitto():
    h = Harness(acl=AccessControlList.parse("topic read open/#\n"))
    client, _ = h.connect("c", 5)
    [suback] = client.send(Subscribe(1, [Subscription("closed/x", 0)]))
    assert suback.reason_codes == [0x87] and suback.properties.reason_string is None
    assert any("closed/x" in text for _, text in h.logs)  # the explanation is in the log
