"""max_queued_bytes and max_inflight_bytes over real sockets.

mosquitto.conf(5): max_queued_bytes queues messages beyond those in flight until that many bytes are
queued, then drops them; max_inflight_bytes lets outgoing QoS 1/2 messages be in flight "until this
byte limit is reached" (a message over the limit still goes, alone). Both count payloads.

max_queued_bytes: the same test passes against mosquitto 2.0.11. max_inflight_bytes: refbroker does
what the manual says; mosquitto 2.0.11 does not (seen side by side, with max_inflight_bytes 1000 and
six 400-byte QoS 1 messages unacknowledged it sent five; with thirty 100-byte ones, fifteen), so that
test runs against refbroker only.
"""

from __future__ import annotations

import socket
import time

import pytest

from conformance.targets import MosquittoTarget

from .processes import mosquitto_or_skip
from refbroker.embedded import EmbeddedBroker
from refbroker.protocol import Connect, Publish, StreamDecoder, Subscribe, Subscription


@pytest.fixture(params=["refbroker", pytest.param("mosquitto", marks=pytest.mark.mosquitto)])
def start(request):
    started = []

    def start(config: dict[str, int]) -> tuple[str, int]:
        if request.param == "refbroker":
            broker = EmbeddedBroker(config=config, verbose=False).start()
            started.append(broker.stop)
            return ("127.0.0.1", broker.port)
        mosquitto_or_skip()
        target = MosquittoTarget(extra_config="\n".join(f"{key} {value}" for key, value in config.items()))
        target.start()
        started.append(target.cleanup)
        return target.address

    yield start
    for stop in started:
        stop()


def client(address, client_id: str, clean: bool = True) -> tuple[socket.socket, StreamDecoder]:
    sock = socket.create_connection(address, timeout=5)
    sock.sendall(Connect(client_id=client_id, clean_start=clean).encode(4))
    decoder = StreamDecoder(4)
    assert decoder.feed(sock.recv(100))[0].reason_code == 0
    return sock, decoder


def publishes_within(sock: socket.socket, decoder: StreamDecoder, seconds: float = 1.0) -> list[Publish]:
    sock.settimeout(seconds)
    found = []
    try:
        while data := sock.recv(65536):
            found += [p for p in decoder.feed(data) if isinstance(p, Publish)]
    except TimeoutError:
        pass
    return found


def test_max_inflight_bytes_lets_copies_out_while_their_payloads_are_under_it():
    broker = EmbeddedBroker(config={"max_inflight_bytes": 1000}, verbose=False).start()
    try:
        _inflight_bytes(("127.0.0.1", broker.port))
    finally:
        broker.stop()


def _inflight_bytes(address) -> None:
    subscriber, decoder = client(address, "inflight-sub")
    subscriber.sendall(Subscribe(1, [Subscription("bytes/t", 1)]).encode(4))
    publisher, _ = client(address, "inflight-pub")
    for number in range(1, 7):
        publisher.sendall(Publish("bytes/t", bytes(400), qos=1, packet_id=number).encode(4))
    # 0, 400, 800 bytes in flight are under 1000: three go; the fourth waits for an acknowledgement
    first = publishes_within(subscriber, decoder)
    assert len(first) == 3
    subscriber.sendall(b"\x40\x02" + first[0].packet_id.to_bytes(2, "big"))
    assert len(publishes_within(subscriber, decoder)) == 1


def test_max_queued_bytes_drops_what_finds_the_queue_full(start):
    address = start({"max_queued_bytes": 1000, "max_queued_messages": 0})
    subscriber, decoder = client(address, "queued-sub", clean=False)
    subscriber.sendall(Subscribe(1, [Subscription("bytes/q", 1)]).encode(4))
    time.sleep(0.2)
    subscriber.close()  # offline, its session kept
    time.sleep(0.2)
    publisher, _ = client(address, "queued-pub")
    for number in range(1, 11):
        publisher.sendall(Publish("bytes/q", bytes([number]) * 300, qos=1, packet_id=number).encode(4))
    time.sleep(0.3)
    subscriber, decoder = client(address, "queued-sub", clean=False)
    delivered = publishes_within(subscriber, decoder)
    # Queued while fewer than 1000 bytes were: 0, 300, 600, 900 -> four; the other six dropped
    assert [p.payload[0] for p in delivered] == [1, 2, 3, 4]
