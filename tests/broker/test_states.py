"""The connection state table (refbroker/core/states.py) and the broker's dispatch agree, and the
packets a state refuses are refused with the statement the table names."""

from __future__ import annotations

import pytest

from refbroker.core.broker import Broker
from refbroker.core.states import (
    AUTHENTICATING,
    AWAITING_CONNECT,
    CLOSED,
    CONNECTED,
    PACKET_RULES,
    TRANSITIONS,
    Event,
    check_packet,
    next_state,
)
from refbroker.protocol import Connect, Pingreq, ProtocolError, Publish, Subscribe, Subscription

from .harness import Harness


def test_every_allowed_packet_has_a_handler_and_every_handler_an_allowed_packet():
    allowed = {(state, packet) for state, row in PACKET_RULES.items() for packet in row}
    assert allowed == set(Broker.handlers)


@pytest.mark.parametrize("state, packet, statement", [
    (AWAITING_CONNECT, Publish("a", b"x"), "MQTT-3.1.0-1"),
    (AUTHENTICATING, Subscribe(1, [Subscription("a", 0)]), "MQTT-3.1.2-30"),
    (AUTHENTICATING, Connect(client_id="c"), "MQTT-3.1.0-2"),
    (CONNECTED, Connect(client_id="c"), "MQTT-3.1.0-2"),
])
def test_a_packet_its_state_does_not_accept_is_a_protocol_error(state, packet, statement):
    with pytest.raises(ProtocolError) as raised:
        check_packet(state, packet)
    assert raised.value.rule == statement


def test_every_state_but_closed_can_be_closed_and_closed_stays_closed():
    for state in (AWAITING_CONNECT, AUTHENTICATING, CONNECTED):
        assert TRANSITIONS[(state, Event.CLOSED)] is CLOSED
    assert next_state(CLOSED, Event.CLOSED) is CLOSED
    with pytest.raises(RuntimeError):
        next_state(CLOSED, Event.ACCEPTED)


def test_a_packet_before_connect_closes_the_connection_without_an_answer():
    h = Harness()
    client = h.open(version=4)
    assert client.send(Pingreq()) == []
    assert client.closed


def test_the_connected_count_follows_the_state_table():
    h = Harness()
    first, _ = h.connect("a")
    h.connect("b")
    assert h.broker.connections.connected == 2 and h.broker.connections.connected_max == 2
    first.drop()
    assert h.broker.connections.connected == 1 and h.broker.connections.connected_max == 2
    h.connect("b")  # takes over b's session: still one connection for b
    assert h.broker.connections.connected == 1
