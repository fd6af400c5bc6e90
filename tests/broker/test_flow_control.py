"""Fairness, back-pressure and bounded queues in the sans-IO core (refbroker/core/flow_control.py).

The broker is driven directly here (not through the harness's FakeClient, which performs
ProcessLater at once), so the tests see which actions it asks its host for: how many packets of a
big read it works through before the other connections get a turn, when it stops reading a
publisher, and when it reads it again.
"""

from __future__ import annotations

import pytest

from refbroker.core import Broker, Close, PauseReading, ProcessLater, ResumeReading, Send, Settings
from refbroker.core.flow_control import HOLD_SECONDS, PACKETS_PER_TURN
from refbroker.protocol import Connack, Connect, Puback, Publish, StreamDecoder, Subscribe, Subscription

from .harness import Harness

NOW = 1000.0


class Host:
    """A host that performs nothing by itself: each test decides when the loop 'turns'."""

    def __init__(self, **settings):
        settings.setdefault("sys_interval", 0)
        self.logs: list[tuple[str, str]] = []
        self.broker = Broker(Settings(**settings), now=NOW, log=lambda kind, text: self.logs.append((kind, text)))
        self.now = NOW
        self.received: dict[int, list] = {}
        self.decoders: dict[int, StreamDecoder] = {}
        self.paused: set[int] = set()
        self.later: list[int] = []
        self.closed: set[int] = set()

    def perform(self, actions) -> list:
        for action in actions:
            if isinstance(action, Send):
                self.received[action.connection].extend(self.decoders[action.connection].feed(action.data))
            elif isinstance(action, Close):
                self.closed.add(action.connection)
            elif isinstance(action, PauseReading):
                self.paused.add(action.connection)
            elif isinstance(action, ResumeReading):
                self.paused.discard(action.connection)
                self.later.append(action.connection)
            elif isinstance(action, ProcessLater):
                self.later.append(action.connection)
        return actions

    def connect(self, conn_id: int, client_id: str, version: int = 4, **fields) -> None:
        self.received[conn_id] = []
        self.decoders[conn_id] = StreamDecoder(version)
        self.perform(self.broker.connection_made(conn_id, self.now, f"127.0.0.1:{conn_id}"))
        self.send(conn_id, Connect(client_id=client_id, protocol_level=version, **fields).encode(version))
        assert isinstance(self.take(conn_id)[0], Connack)

    def send(self, conn_id: int, data: bytes) -> list:
        return self.perform(self.broker.data_received(conn_id, data, self.now))

    def turn(self) -> None:
        """One turn of the event loop: everything that asked to be processed later is."""
        waiting, self.later = self.later, []
        for conn_id in waiting:
            self.perform(self.broker.process_buffered(conn_id, self.now))

    def take(self, conn_id: int) -> list:
        packets, self.received[conn_id] = self.received[conn_id], []
        return packets

    def advance(self, seconds: float) -> None:
        self.now += seconds
        self.perform(self.broker.tick(self.now))


def qos1_burst(count: int, topic: str = "t", first_id: int = 1, size: int = 8) -> bytes:
    return b"".join(Publish(topic, bytes(size), qos=1, packet_id=first_id + n).encode(4) for n in range(count))


def subscribed_pair(host: Host, qos: int = 1) -> None:
    host.connect(1, "sub")
    host.send(1, Subscribe(1, [Subscription("t", qos)]).encode(4))
    host.take(1)
    host.connect(2, "pub")


def test_one_big_read_is_worked_through_a_budget_per_turn():
    # Fairness: hundreds of packets in one read do not keep the other connections waiting
    host = Host()
    subscribed_pair(host)
    actions = host.send(2, qos1_burst(PACKETS_PER_TURN * 3 + 5))
    assert PauseReading(2) in actions and ProcessLater(2) in actions  # not read until the backlog is gone
    assert len([p for p in host.take(2) if isinstance(p, Puback)]) == PACKETS_PER_TURN
    for turn in range(3):
        assert 2 in host.paused
        host.turn()
        acknowledged = [p for p in host.take(2) if isinstance(p, Puback)]
        assert len(acknowledged) == (PACKETS_PER_TURN if turn < 2 else 5)
    assert 2 not in host.paused  # ResumeReading once the backlog is worked off


def test_between_two_turns_of_a_publisher_the_subscribers_acknowledgements_are_read():
    host = Host()
    subscribed_pair(host)
    host.send(2, qos1_burst(PACKETS_PER_TURN * 2))
    window = [p for p in host.take(1) if isinstance(p, Publish)]
    assert len(window) == 20  # max_inflight_messages
    # The subscriber's acknowledgements, read before the publisher's next turn, refill its window at once
    host.send(1, b"".join(Puback(p.packet_id).encode(4) for p in window))
    assert len([p for p in host.take(1) if isinstance(p, Publish)]) == 20


def test_a_publisher_waits_for_a_subscriber_that_keeps_up_and_nothing_is_lost():
    host = Host(max_queued_messages=100)  # high-water mark 50, low-water mark 25
    subscribed_pair(host)
    host.send(2, qos1_burst(200))
    for _ in range(5):
        host.turn()
    assert 2 in host.paused  # held: the subscriber's queue reached 50 beyond its window of 20
    in_flight = [p for p in host.take(1) if isinstance(p, Publish)]
    assert len(in_flight) == 20
    delivered = len(in_flight)
    while in_flight:
        host.send(1, b"".join(Puback(p.packet_id).encode(4) for p in in_flight))
        host.turn()
        in_flight = [p for p in host.take(1) if isinstance(p, Publish)]
        delivered += len(in_flight)
    assert delivered == 200
    assert host.broker.ctx.counters.publish_dropped == 0
    assert 2 not in host.paused
    assert len([p for p in host.take(2) if isinstance(p, Puback)]) == 200


def test_a_subscriber_that_does_not_keep_up_is_a_slow_consumer_and_loses_messages_as_in_mosquitto():
    host = Host(max_queued_messages=100)
    subscribed_pair(host)
    host.send(2, qos1_burst(200))
    for _ in range(5):
        host.turn()
    assert 2 in host.paused
    host.advance(HOLD_SECONDS)  # the subscriber acknowledged nothing meanwhile
    for _ in range(5):
        host.turn()
    assert 2 not in host.paused  # publishers no longer wait for it
    outgoing = host.broker.sessions["sub"].outgoing
    assert len(outgoing.inflight) == 20 and len(outgoing.queue) == 100  # max_queued_messages
    assert host.broker.ctx.counters.publish_dropped == 200 - 120
    assert ("notice", "Outgoing messages are being dropped for client sub.") in host.logs
    assert any("sub is not keeping up" in text for _, text in host.logs)
    assert len([p for p in host.take(2) if isinstance(p, Puback)]) == 200  # every PUBLISH acknowledged


def test_a_client_is_never_held_for_its_own_queue():
    host = Host(max_queued_messages=10)
    host.connect(1, "self")
    host.send(1, Subscribe(1, [Subscription("t", 1)]).encode(4))
    host.send(1, qos1_burst(40))
    assert 1 not in host.paused


def test_qos0_waits_in_the_queue_while_the_subscriber_does_not_read_and_the_queue_is_bounded():
    # A QoS 0 subscriber that stops reading: the host's buffer passes its mark (writing_paused). QoS 0
    # copies then wait in the queue (at most max_queued_messages); once the subscriber is a slow
    # consumer the rest is dropped, as mosquitto drops QoS 0 once 1000 packets wait to be written.
    host = Host()
    subscribed_pair(host, qos=0)
    host.perform(host.broker.writing_paused(1, host.now))
    assert 1 in host.paused  # a client that does not read is not read either
    burst = b"".join(Publish("t", bytes(1024)).encode(4) for _ in range(PACKETS_PER_TURN))
    for _ in range(20):
        host.send(2, burst)
        host.turn()
    assert 2 in host.paused  # back-pressure: held at the high-water mark (500)
    host.advance(HOLD_SECONDS)
    for _ in range(30):
        if 2 not in host.paused:
            host.send(2, burst)
        host.turn()
    outgoing = host.broker.sessions["sub"].outgoing
    assert len(outgoing.queue) == 1000 and host.take(1) == []
    assert host.broker.ctx.counters.publish_dropped > 0
    # The subscriber reads again: what waited goes out, in order
    host.perform(host.broker.writing_resumed(1, host.now))
    assert len([p for p in host.take(1) if isinstance(p, Publish)]) == 1000


def test_max_queued_bytes_bounds_the_queue_by_payload_size():
    h = Harness(max_queued_bytes=1000, max_inflight_messages=1)
    subscriber, _ = h.connect("sub", 4, clean_start=False)
    subscriber.subscribe(("t", 1))
    subscriber.drop()
    publisher, _ = h.connect("pub")
    for n in range(10):
        publisher.send(Publish("t", bytes([n]) * 300, qos=1, packet_id=n + 1))
    # Queued while under 1000 bytes: 0, 300, 600, 900 -> four copies, the fifth finds 1200 >= 1000
    outgoing = h.broker.sessions["sub"].outgoing
    assert len(outgoing.queue) == 4 and outgoing.queued_bytes == 1200
    assert h.broker.ctx.counters.publish_dropped == 6


def test_max_inflight_bytes_limits_the_window_by_payload_size():
    h = Harness(max_inflight_bytes=1000)
    subscriber, _ = h.connect("sub")
    subscriber.subscribe(("t", 1))
    publisher, _ = h.connect("pub")
    for n in range(6):
        publisher.send(Publish("t", bytes(400), qos=1, packet_id=n + 1))
    # In flight while under 1000 bytes: 0, 400, 800 -> three; one larger message would still go alone
    first = subscriber.take()
    assert len(first) == 3
    assert len(subscriber.send(Puback(first[0].packet_id))) == 1


def test_max_connections_closes_the_socket_at_once():
    from refbroker.core import Listener
    listener = Listener(1883, max_connections=2)
    broker = Broker(Settings(sys_interval=0))
    assert broker.connection_made(1, NOW, "127.0.0.1:1", listener=listener) == []
    assert broker.connection_made(2, NOW, "127.0.0.1:2", listener=listener) == []
    assert broker.connection_made(3, NOW, "127.0.0.1:3", listener=listener) == [Close(3, "max_connections exceeded")]
    assert broker.connection_made(4, NOW, "127.0.0.1:4", listener=Listener(1884)) == []  # another listener
    broker.connection_lost(1, NOW)
    assert broker.connection_made(5, NOW, "127.0.0.1:5", listener=listener) == []


@pytest.mark.parametrize("first_bytes", [
    b"GET / HTTP/1.1\r\nHost: broker\r\n\r\n",        # HTTP on the MQTT port
    bytes.fromhex("160301020001") + bytes(50),      # a TLS ClientHello on a plain port
    bytes.fromhex("30ffffff7f"),                    # a PUBLISH announcing 256 MB
    bytes.fromhex("11ffffff7f"),                    # CONNECT's type with flags that must be 0 [MQTT-2.2.2-2]
])
def test_a_first_byte_that_cannot_start_a_connect_closes_at_once(first_bytes):
    # [MQTT-3.1.0-1]: the first packet is a CONNECT; nothing else is waited for, nor buffered
    broker = Broker(Settings(sys_interval=0))
    broker.connection_made(1, NOW, "127.0.0.1:1")
    assert broker.data_received(1, first_bytes[:5], NOW) == [Close(1, "first packet is not CONNECT")]


def test_a_connect_announcing_more_than_the_limit_before_authentication_is_refused_from_its_header():
    from refbroker.core.broker import UNAUTHENTICATED_PACKET_LIMIT
    broker = Broker(Settings(sys_interval=0))
    broker.connection_made(1, NOW, "127.0.0.1:1")
    (close,) = broker.data_received(1, bytes.fromhex("10ffffff7f"), NOW)  # 3.1.1: closed without an answer
    assert isinstance(close, Close) and "268435460 bytes exceeds the maximum packet size 1048576" in close.reason
    # A 5.0 CONNECT shows its protocol level: it is told why, with CONNACK 0x95 Packet too large
    broker.connection_made(2, NOW, "127.0.0.1:2")
    header = bytes.fromhex("10") + _remaining_length(UNAUTHENTICATED_PACKET_LIMIT + 1) + b"\x00\x04MQTT\x05"
    actions = broker.data_received(2, header, NOW)
    (connack,) = StreamDecoder(5).feed(actions[0].data)
    assert isinstance(connack, Connack) and connack.reason_code == 0x95
    assert isinstance(actions[-1], Close)
    # A CONNECT just under the limit is read (and its user properties kept) as usual
    broker.connection_made(3, NOW, "127.0.0.1:3")
    from refbroker.protocol import Properties
    big = Connect(client_id="big", protocol_level=5,
                  properties=Properties(user_properties=[("k", "v" * 60_000)] * 10)).encode(5)
    assert len(big) < UNAUTHENTICATED_PACKET_LIMIT
    (connack,) = StreamDecoder(5).feed(broker.data_received(3, big, NOW)[0].data)
    assert connack.reason_code == 0


def _remaining_length(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value % 128, value // 128
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def test_after_connack_the_limit_is_max_packet_size_or_none():
    h = Harness()
    client, _ = h.connect("c")
    assert h.broker.connections.of_client("c").decoder.max_packet_size is None
    h = Harness(max_packet_size=2000)
    client, _ = h.connect("c")
    assert h.broker.connections.of_client("c").decoder.max_packet_size == 2000


def test_a_connect_sent_one_byte_a_second_is_closed_after_the_connect_timeout():
    # As mosquitto 2.0.11 (seen side by side: a silent connection and one sending a CONNECT a byte a
    # second were both closed after about 90 s): bytes that do not complete a packet do not count
    from refbroker.core.lifecycle import CONNECT_TIMEOUT
    h = Harness()
    client = h.open(4)
    data = Connect(client_id="slow" * 50, keep_alive=60).encode(4)  # over 200 bytes: never complete in time
    for index in range(int(CONNECT_TIMEOUT) + 1):
        client.send(data[index:index + 1])
        h.advance(1.0)
        if client.closed:
            break
    assert client.closed and index == int(CONNECT_TIMEOUT) - 1


def test_memory_limit_drops_an_incoming_message_and_disconnects_its_publisher():
    # mosquitto: "If an incoming message is being processed, then the message will be dropped and the
    # publishing client will be disconnected." refbroker counts the payloads it holds.
    from refbroker.protocol import Disconnect
    h = Harness(memory_limit=1000)
    publisher, _ = h.connect("pub", 5)
    for n in range(3):
        publisher.send(Publish(f"keep/{n}", bytes(300), retain=True))
    answer = publisher.send(Publish("keep/3", bytes(300), retain=True))
    assert isinstance(answer[0], Disconnect) and answer[0].reason_code == 0x97 and publisher.closed
    assert len(h.broker.retained) == 3 and h.broker.ctx.counters.publish_dropped == 1


def test_memory_limit_drops_an_outgoing_copy_and_disconnects_its_receiver():
    # "... If an outgoing message is being sent, then the individual message will be dropped and the
    # receiving client will be disconnected."
    h = Harness(memory_limit=1000)
    first, _ = h.connect("first")
    first.subscribe(("t", 1))
    second, _ = h.connect("second")
    second.subscribe(("t", 1))
    publisher, _ = h.connect("pub")
    publisher.send(Publish("t", bytes(300), qos=1, packet_id=1))  # two copies in flight: 600 bytes
    publisher.send(Publish("t", bytes(300), qos=1, packet_id=2))  # 900 with the first copy; the second: no room
    assert len(first.take()) == 2 and not first.closed
    assert len(second.take()) == 1 and second.closed
    assert not publisher.closed and h.broker.ctx.counters.publish_dropped == 1


def test_the_load_keys_of_mosquitto_conf_are_read_and_none_is_ignored():
    from refbroker.config import ConfigError, parse_config
    settings = parse_config("max_queued_bytes 4096\nmax_inflight_bytes 2048\nmemory_limit 1000000\n"
                            "listener 1884 127.0.0.1\nmax_connections 7\n")
    assert (settings.max_queued_bytes, settings.max_inflight_bytes, settings.memory_limit) == (4096, 2048, 1_000_000)
    assert settings.listeners[0].max_connections == 7
    assert not settings.ignored
    # Before any listener, max_connections configures the default listener (port 1883), as in mosquitto
    settings = parse_config("max_connections 5\nlistener 1884\n")
    assert [(listener.port, listener.max_connections) for listener in settings.listeners] == [(1883, 5), (1884, -1)]
    assert parse_config("listener 1884\nmax_connections -7\n").listeners[0].max_connections == -1
    with pytest.raises(ConfigError, match="c.conf:1: expected a whole number"):
        parse_config("max_queued_bytes lots\n", "c.conf")
