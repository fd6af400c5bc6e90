"""5.0 features that are off by default (mosquitto 2.0 has none of them): topic aliases from the
broker to clients, server redirection, Response Information."""

import pytest

from refbroker.config import parse_config
from refbroker.embedded import EmbeddedBroker
from refbroker.protocol import Properties, Publish, Subscribe, Subscription

from .harness import Harness
from .net import StreamClient


def subscriber(h, alias_maximum=None, **fields):
    client, _ = h.connect("sub", 5, properties=Properties(topic_alias_maximum=alias_maximum), **fields)
    client.subscribe(("#", 0))
    client.take()
    return client


def test_no_aliases_by_default_like_mosquitto_2_0():
    h = Harness()
    client = subscriber(h, alias_maximum=10)
    publisher, _ = h.connect("pub", 5)
    publisher.send(Publish("a/b", b"1"))
    publisher.send(Publish("a/b", b"2"))
    assert [(p.topic, p.properties.topic_alias) for p in client.take()] == [("a/b", None)] * 2


def test_assigned_aliases_up_to_the_clients_maximum():
    h = Harness(assign_topic_aliases=True)
    client = subscriber(h, alias_maximum=2)
    publisher, _ = h.connect("pub", 5)
    for topic in ("a", "b", "a", "c", "b", "c"):
        publisher.send(Publish(topic, topic.encode()))
    received = [(p.topic, p.properties.topic_alias, p.payload) for p in client.take()]
    # first use: topic and alias; later: empty topic and alias [MQTT-3.3.2-11]: never above 2
    assert received == [("a", 1, b"a"), ("b", 2, b"b"), ("", 1, b"a"), ("c", None, b"c"), ("", 2, b"b"),
                        ("c", None, b"c")]


@pytest.mark.parametrize("maximum", [None, 0])
def test_no_aliases_for_a_client_without_topic_alias_maximum(maximum):
    h = Harness(assign_topic_aliases=True)
    client = subscriber(h, alias_maximum=maximum)
    publisher, _ = h.connect("pub", 5)
    publisher.send(Publish("a", b"1"))
    publisher.send(Publish("a", b"2"))
    assert [p.properties.topic_alias for p in client.take()] == [None, None]  # [MQTT-3.1.2-27]


def test_aliases_do_not_outlive_the_connection():
    h = Harness(assign_topic_aliases=True)
    client, _ = h.connect("sub", 5, clean_start=False, properties=Properties(
        topic_alias_maximum=5, session_expiry_interval=100))
    client.subscribe(("t", 1))
    publisher, _ = h.connect("pub", 5)
    publisher.send(Publish("t", b"1", qos=1, packet_id=1))
    assert [(p.topic, p.properties.topic_alias) for p in client.take()] == [("t", 1)]
    client.drop()
    again, _ = h.connect("sub", 5, clean_start=False, properties=Properties(topic_alias_maximum=5))
    # the unacknowledged PUBLISH again, with the topic: a new connection has no mappings [MQTT-3.3.2-7]
    assert [(p.topic, p.properties.topic_alias, p.dup) for p in again.take()] == [("t", 1, True)]


def test_a_publish_too_large_for_the_client_does_not_set_an_alias():
    h = Harness(assign_topic_aliases=True)
    client = subscriber(h, alias_maximum=5)
    h.broker.connections.get(client.id).maximum_packet_size = 30
    publisher, _ = h.connect("pub", 5)
    publisher.send(Publish("topic", b"x" * 40))  # dropped [MQTT-3.1.2-25]
    publisher.send(Publish("topic", b"small"))
    assert [(p.topic, p.properties.topic_alias) for p in client.take()] == [("topic", 1)]


@pytest.mark.parametrize("moved, code", [(False, 0x9C), (True, 0x9D)])
def test_server_redirection(moved, code):
    h = Harness(server_reference="other.example:1883", server_moved=moved)
    client, connack = h.connect("c", 5, expect_ok=False)
    assert connack.reason_code == code and client.closed
    assert connack.properties.server_reference == "other.example:1883"
    client, connack = h.connect("c", 4, expect_ok=False)
    assert connack.reason_code == 3 and client.closed  # 3.1.1 has no redirection: Server unavailable


def test_response_information_only_when_configured_and_requested():
    h = Harness()
    _, connack = h.connect("c", 5, properties=Properties(request_response_information=1))
    assert connack.properties.response_information is None  # mosquitto 2.0: never
    h = Harness(response_information="responses/%c")
    _, connack = h.connect("c", 5, properties=Properties(request_response_information=1))
    assert connack.properties.response_information == "responses/c"
    _, connack = h.connect("d", 5)
    assert connack.properties.response_information is None  # not requested [MQTT-3.1.2-28]


def test_config_keys():
    settings = parse_config("assign_topic_aliases true\nserver_reference a:1 b:2\nserver_moved true\n"
                            "response_information replies/%c/\n")
    assert settings.assign_topic_aliases and settings.server_moved
    assert (settings.server_reference, settings.response_information) == ("a:1 b:2", "replies/%c/")


def test_aliases_end_to_end():
    with EmbeddedBroker(config={"assign_topic_aliases": True}) as broker:
        client = StreamClient(broker.port, 5)
        client.connect("alias", properties=Properties(topic_alias_maximum=3))
        client.send(Subscribe(1, [Subscription("self", 0)]))
        client.receive()
        client.send(Publish("self", b"2"))
        client.send(Publish("self", b"3"))
        first, second = client.receive(), client.receive()
        assert (first.topic, first.properties.topic_alias) == ("self", 1)
        assert (second.topic, second.properties.topic_alias, second.payload) == ("", 1, b"3")
        client.close()
