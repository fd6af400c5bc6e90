"""A fuzz campaign against refbroker over real sockets: mutated 3.1.1 and 5.0 packet streams, each on
a fresh connection, while a healthy pair of clients exchanges QoS 1 messages through the same broker.

Each example is a valid stream (a CONNECT and a few packets from conformance.strategies) with some
bytes flipped, set, inserted, deleted, cut off, or a length field bent. What must hold:

- the broker never crashes and never logs an internal error (which would carry a traceback);
- everything it answers decodes as MQTT (it never sends a malformed packet itself);
- a first byte that cannot start a CONNECT gets no answer at all, and the connection is closed [MQTT-3.1.0-1];
- a stream with a malformed packet (as the project's codec judges it) is closed
  [MQTT-4.8.0-1] (3.1.1), [MQTT-4.13.1-1] (5.0); before that, the broker's last word may only be a
  CONNACK or DISCONNECT with a failure reason code (5.0);
- the healthy pair loses nothing: every message acknowledged to its publisher reaches its subscriber.

Bounded: HYPOTHESIS_PROFILE=ci (the default) runs 60 streams; HYPOTHESIS_PROFILE=thorough 1000.
"""

from __future__ import annotations

import socket
import threading
import time

import pytest
from hypothesis import given, note
from hypothesis import strategies as st

from conformance.strategies import connects, packets
from refbroker.embedded import EmbeddedBroker
from refbroker.protocol import (
    MQTT_5,
    Connack,
    Connect,
    Disconnect,
    MQTTError,
    Puback,
    Publish,
    StreamDecoder,
    Subscribe,
    Subscription,
)

PAIR_TOPIC = "fuzz/pair/messages"
SILENCE = 0.25      # seconds without a byte from the broker: it has said what it had to say
CLOSE_WITHIN = 3.0  # seconds a broker has to close a connection that sent something malformed


class HealthyPair:
    """A subscriber and a publisher on their own connections: QoS 1 messages one after the other,
    each acknowledged before the next, for as long as the campaign runs."""

    def __init__(self, port: int):
        self.port = port
        self.acknowledged: list[int] = []
        self.received: set[int] = set()
        self.errors: list[str] = []
        self._stop = threading.Event()
        self._subscribed = threading.Event()
        self._threads = [threading.Thread(target=self._subscribe, daemon=True),
                         threading.Thread(target=self._publish, daemon=True)]

    def _connect(self, client_id: str) -> tuple[socket.socket, StreamDecoder]:
        sock = socket.create_connection(("127.0.0.1", self.port), timeout=10)
        sock.sendall(Connect(client_id=client_id).encode(4))
        decoder = StreamDecoder(4)
        packets_in = []
        while not packets_in:
            packets_in = decoder.feed(sock.recv(4096))
        assert isinstance(packets_in[0], Connack) and packets_in[0].reason_code == 0
        return sock, decoder

    def start(self) -> None:
        self._threads[0].start()
        assert self._subscribed.wait(10)
        self._threads[1].start()

    def _subscribe(self) -> None:
        try:
            sock, decoder = self._connect("fuzz-pair-subscriber")
            sock.sendall(Subscribe(1, [Subscription(PAIR_TOPIC, 1)]).encode(4))
            sock.settimeout(0.5)
            while not self._stop.is_set() or len(self.received) < len(self.acknowledged):
                try:
                    data = sock.recv(65536)
                except TimeoutError:
                    if self._stop.is_set():
                        return
                    continue
                if not data:
                    self.errors.append("the broker closed the pair's subscriber")
                    return
                for packet in decoder.feed(data):
                    if isinstance(packet, Publish):
                        self.received.add(int(packet.payload))
                        sock.sendall(Puback(packet.packet_id).encode(4))
                    else:
                        self._subscribed.set()
        except Exception as error:  # reported by the test
            self.errors.append(f"subscriber: {error!r}")
            self._subscribed.set()

    def _publish(self) -> None:
        try:
            sock, decoder = self._connect("fuzz-pair-publisher")
            number = 0
            while not self._stop.is_set():
                number += 1
                sock.sendall(Publish(PAIR_TOPIC, str(number).encode(), qos=1, packet_id=number % 65535 + 1).encode(4))
                acknowledged = False
                while not acknowledged:
                    data = sock.recv(4096)
                    if not data:
                        self.errors.append("the broker closed the pair's publisher")
                        return
                    acknowledged = any(isinstance(p, Puback) for p in decoder.feed(data))
                self.acknowledged.append(number)
                time.sleep(0.002)
            sock.sendall(Disconnect().encode(4))
        except Exception as error:
            self.errors.append(f"publisher: {error!r}")

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(15)


@pytest.fixture(scope="module")
def campaign():
    broker = EmbeddedBroker(config={"sys_interval": 1}, verbose=False).start()
    pair = HealthyPair(broker.port)
    pair.start()
    yield broker
    pair.stop()
    broker.stop()
    # The broker's own view: nothing went wrong inside it
    assert "Internal error" not in broker.logs() and "Traceback" not in broker.logs(), broker.logs()[-3000:]
    # The pair kept going all along, and lost nothing
    assert not pair.errors, pair.errors
    assert len(pair.acknowledged) > 10
    missing = set(pair.acknowledged) - pair.received
    assert not missing, f"the healthy pair lost {len(missing)} acknowledged messages"


@st.composite
def mutated_streams(draw) -> tuple[int, bytes, list[str]]:
    """(protocol level, bytes to send, what was done to them)."""
    version = draw(st.sampled_from([4, MQTT_5]))
    stream = [draw(connects(version))] + draw(st.lists(packets(version, include_connect=False), max_size=3))
    data = bytearray(b"".join(packet.encode(version) for packet in stream))
    done = [type(packet).__name__ for packet in stream]
    for _ in range(draw(st.integers(0, 3))):
        if not data:
            break
        where = draw(st.integers(0, len(data) - 1))
        how = draw(st.sampled_from(["flip", "set", "insert", "delete", "cut", "length"]))
        if how == "flip":
            data[where] ^= 1 << draw(st.integers(0, 7))
        elif how == "set":
            data[where] = draw(st.integers(0, 255))
        elif how == "insert":
            data[where:where] = draw(st.binary(min_size=1, max_size=8))
        elif how == "delete":
            del data[where:where + draw(st.integers(1, 8))]
        elif how == "cut":
            del data[where:]
        else:  # a Remaining Length (the second byte of a packet, often) set to something else
            data[min(where, 1) if where < 2 else where] = draw(st.sampled_from([0x00, 0x7F, 0x80, 0xFF]))
        done.append(f"{how}@{where}")
    return version, bytes(data), done


def _converse(port: int, data: bytes, expect_close: bool) -> tuple[bytes, bool]:
    """Send `data` on a fresh connection; (everything the broker answered, whether it closed). With
    `expect_close`, a silent broker gets up to CLOSE_WITHIN seconds to close."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    answer = bytearray()
    closed = False
    try:
        try:
            sock.sendall(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # closed already, and told so: what it said before is still read below
        sock.settimeout(SILENCE)
        deadline = time.monotonic() + CLOSE_WITHIN
        while time.monotonic() < deadline:
            try:
                chunk = sock.recv(65536)
            except TimeoutError:
                break
            except ConnectionResetError:
                closed = True
                break
            if not chunk:
                closed = True
                break
            answer += chunk
        if not closed and expect_close:
            # Silent, but perhaps about to close: give it the rest of the time
            sock.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                closed = sock.recv(65536) == b""
            except ConnectionResetError:
                closed = True
            except TimeoutError:
                pass
    finally:
        sock.close()
    return bytes(answer), closed


def _connect_level(data: bytes) -> int:
    """The protocol level a CONNECT at the start of `data` claims: how the broker's answers are framed
    (any other level is answered in the 3.1.1 format)."""
    header = 2
    while header <= 5 and header <= len(data) and data[header - 1] & 0x80:
        header += 1
    if len(data) < header + 2:
        return 4
    index = header + 2 + ((data[header] << 8) | data[header + 1])
    return data[index] if index < len(data) and data[index] in (3, 4, 5) else 4


def _first_problem(data: bytes) -> MQTTError | None:
    """What the project's codec finds wrong with the stream a server receives (None: nothing yet)."""
    try:
        StreamDecoder().feed(data)
    except MQTTError as error:
        return error
    return None


@given(mutated_streams())
def test_mutated_packets_never_hurt_the_broker_and_are_answered_as_the_spec_says(campaign, stream):
    version, data, done = stream
    note(f"sent {data.hex()} ({', '.join(done)})")
    problem = _first_problem(data)
    not_connect = bool(data) and data[:1] != b"\x10"
    answer, closed = _converse(campaign.port, data, expect_close=not_connect or problem is not None)
    note(f"answered {answer.hex()}, closed: {closed}")
    answers = StreamDecoder(_connect_level(data)).feed(answer)  # the broker never sends what does not decode
    if not_connect:
        assert not answers and closed  # [MQTT-3.1.0-1]
        return
    level = _connect_level(data)
    if problem is not None:
        # A malformed packet or a protocol error closes the connection [MQTT-4.8.0-1], [MQTT-4.13.1-1]
        assert closed, f"still open after {problem}"
        if answers and isinstance(answers[-1], (Connack, Disconnect)) and level == MQTT_5:
            assert answers[-1].reason_code == 0 or answers[-1].reason_code >= 0x80
    for index, packet in enumerate(answers):
        if isinstance(packet, Connack):
            assert index == 0  # only ever the first answer [MQTT-3.2.0-1]
