"""A trivial stand-in for a broker, to measure the load generator's own ceiling.

    python -m bench.relay --port PORT [--host 127.0.0.1]

It answers CONNECT with CONNACK and SUBSCRIBE with SUBACK (decoded and encoded with
refbroker.protocol), and after that does only the least a broker must: it walks the fixed headers
of what the publisher sends, answers each QoS 1 PUBLISH with PUBACK and each QoS 2 one with PUBREC
(and PUBREL with PUBCOMP), and copies the PUBLISHes' bytes as they are to every subscriber; a
subscriber's PUBREC gets its PUBREL, its other acknowledgements are dropped. No topic matching, no
sessions, no queues, no re-encoding. So every QoS flow works as with a real broker (the publisher's
window is acknowledged by the relay, the subscribers' by the subscribers) while almost nothing is
done per message. What the generator measures through it is its own limit, plus one socket hop: a
broker result close to it means the generator, not the broker, was the bottleneck.

One scenario at a time: the publisher is the connection whose client id starts with "bench-pub";
every subscribed connection gets what it publishes.
"""

from __future__ import annotations

import argparse
import selectors
import signal
import socket
import sys

from refbroker.protocol import MQTT_3_1_1, Connack, Connect, Disconnect, MQTTError, StreamDecoder, Suback, Subscribe
from refbroker.protocol.primitives import decode_variable_byte_integer

PUBLISHER_PREFIX = "bench-pub"
PUBLISH, PUBREC_KIND, PUBREL_KIND = 3, 5, 6
# Acknowledgements, without their packet identifier (3.1.1 layout, valid in 5.0 too: reason 0 left out)
PUBACK, PUBREC, PUBREL, PUBCOMP = b"\x40\x02", b"\x50\x02", b"\x62\x02", b"\x70\x02"


class _Peer:
    __slots__ = ("decoder", "pending", "role", "sock", "version")

    def __init__(self, sock: socket.socket):
        self.sock = sock
        self.decoder = StreamDecoder()
        self.role = "new"  # then "publisher" or "subscriber" (once subscribed)
        self.version = MQTT_3_1_1
        self.pending = b""  # the start of a packet whose end has not arrived yet


class Relay:
    def __init__(self, host: str = "127.0.0.1", port: int = 0):
        self.listener = socket.create_server((host, port), reuse_port=False)
        self.port = self.listener.getsockname()[1]
        self.selector = selectors.DefaultSelector()
        self.selector.register(self.listener, selectors.EVENT_READ, None)
        self.publisher: _Peer | None = None
        self.subscribers: list[_Peer] = []
        self.running = True

    def serve_forever(self) -> None:
        while self.running:
            for key, _ in self.selector.select(timeout=0.5):
                if key.data is None:
                    sock, _ = self.listener.accept()
                    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                    self.selector.register(sock, selectors.EVENT_READ, _Peer(sock))
                else:
                    self._readable(key.data)
        self.selector.close()
        self.listener.close()

    def _readable(self, peer: _Peer) -> None:
        try:
            data = peer.sock.recv(262144)
        except OSError:
            data = b""
        if not data:
            self._drop(peer)
            return
        try:
            if peer.role == "new":
                self._handshake(peer, data)
                return
            forward, answers = _walk(peer, data)
            if answers:
                peer.sock.sendall(b"".join(answers))
            if forward and peer.role == "publisher":
                for subscriber in self.subscribers:
                    subscriber.sock.sendall(forward)
        except (OSError, MQTTError):
            self._drop(peer)

    def _handshake(self, peer: _Peer, data: bytes) -> None:
        for packet in peer.decoder.feed(data):
            if isinstance(packet, Connect):
                peer.version = packet.protocol_level
                peer.sock.sendall(Connack().encode(peer.version))
                if packet.client_id.startswith(PUBLISHER_PREFIX):
                    peer.role = "publisher"
                    self.publisher = peer
                    return
            elif isinstance(packet, Subscribe):
                codes = [subscription.qos for subscription in packet.subscriptions]
                peer.sock.sendall(Suback(packet.packet_id, codes).encode(peer.version))
                peer.role = "subscriber"
                self.subscribers.append(peer)
                return
            elif isinstance(packet, Disconnect):
                self._drop(peer)
                return

    def _drop(self, peer: _Peer) -> None:
        try:
            self.selector.unregister(peer.sock)
        except (KeyError, ValueError):
            pass
        peer.sock.close()
        if peer is self.publisher:
            self.publisher = None
        if peer in self.subscribers:
            self.subscribers.remove(peer)

    def stop(self, *_args) -> None:
        self.running = False


def _walk(peer: _Peer, data: bytes) -> tuple[bytes, list[bytes]]:
    """(the complete PUBLISH packets in `data`, to forward; the answers to send back to `peer`)."""
    if peer.pending:
        data = peer.pending + data
    position, end = 0, len(data)
    publishes: list[bytes] = []
    answers: list[bytes] = []
    run_start = 0  # PUBLISHes next to each other are forwarded as one slice
    while end - position >= 2:
        decoded = decode_variable_byte_integer(data, position + 1)
        if decoded is None:
            break
        body_size, length_bytes = decoded
        body = position + 1 + length_bytes
        if body + body_size > end:
            break
        first_byte = data[position]
        kind = first_byte >> 4
        if kind == PUBLISH:
            qos = (first_byte >> 1) & 0x03
            if qos:
                topic_end = body + 2 + ((data[body] << 8) | data[body + 1])
                answers.append((PUBACK if qos == 1 else PUBREC) + data[topic_end:topic_end + 2])
        else:
            if run_start < position:
                publishes.append(data[run_start:position])
            if kind == PUBREL_KIND:
                answers.append(PUBCOMP + data[body:body + 2])
            elif kind == PUBREC_KIND:
                answers.append(PUBREL + data[body:body + 2])
            run_start = body + body_size
        position = body + body_size
    if run_start < position:
        publishes.append(data[run_start:position])
    peer.pending = data[position:]
    return b"".join(publishes), answers


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.relay", description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("-p", "--port", type=int, default=0)
    arguments = parser.parse_args(argv)
    relay = Relay(arguments.host, arguments.port)
    signal.signal(signal.SIGTERM, relay.stop)
    signal.signal(signal.SIGINT, relay.stop)
    print(f"relay listening on {arguments.host}:{relay.port}", file=sys.stderr, flush=True)
    relay.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
