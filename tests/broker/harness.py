"""A deterministic way to drive the sans-IO broker core in tests: fake clients, a fake clock.

Every packet the broker sends is decoded again from its bytes with the protocol package, so the
tests check the wire format as well as the behaviour.
"""

from __future__ import annotations

import itertools

from refbroker.core import Broker, Close, ProcessLater, ResumeReading, Send, Settings
from refbroker.protocol import Connack, Connect, MQTTError, Packet, Properties, StreamDecoder, Subscribe, Subscription


class FakeClient:
    def __init__(self, harness: Harness, conn_id: int, version: int):
        self.harness = harness
        self.id = conn_id
        self.version = version
        self.decoder = StreamDecoder(version)
        self.inbox: list[Packet] = []
        self.closed = False

    def send(self, packet: Packet | bytes) -> list[Packet]:
        """Send a packet (or raw bytes); returns what this client received in answer."""
        data = packet if isinstance(packet, bytes) else packet.encode(self.version)
        self.harness.absorb(self.harness.broker.data_received(self.id, data, self.harness.now))
        return self.take()

    def take(self) -> list[Packet]:
        packets, self.inbox = self.inbox, []
        return packets

    def drop(self) -> None:
        """The network connection fails (no DISCONNECT)."""
        self.harness.absorb(self.harness.broker.connection_lost(self.id, self.harness.now))
        self.closed = True

    def subscribe(self, *filters: str | tuple[str, int], packet_id: int = 1, **properties) -> list[Packet]:
        subscriptions = [Subscription(f, 2) if isinstance(f, str) else Subscription(*f) for f in filters]
        return self.send(Subscribe(packet_id, subscriptions, Properties(**properties)))


class Harness:
    def __init__(self, **settings):
        settings.setdefault("sys_interval", 0)
        self.now = 1000.0
        self.logs: list[tuple[str, str]] = []
        names = (f"auto-{n}" for n in itertools.count(1))
        self.broker = Broker(Settings(**settings), now=self.now, log=self._log,
                             client_id_factory=lambda prefix: next(names))
        self.clients: dict[int, FakeClient] = {}
        self._ids = itertools.count(1)

    def _log(self, kind: str, text: str) -> None:
        self.logs.append((kind, text))
        # The broker turns a bug of its own into a closed connection (broker.py) so that it keeps running; in
        # a test that would hide the bug behind a close the test may even expect, so it fails the test here.
        if kind == "error" and text.startswith("Internal error"):
            raise AssertionError(text)

    def absorb(self, actions) -> None:
        """Perform the broker's actions as a host would; what it asks to read later is read at once
        (as the event loop's next turns would), until nothing is left."""
        later: list[int] = []
        for action in actions:
            client = self.clients[action.connection]
            if isinstance(action, (ProcessLater, ResumeReading)):
                later.append(action.connection)
            elif isinstance(action, Send):
                assert not client.closed, f"sent {action.packet} after Close"
                try:
                    client.inbox.extend(client.decoder.feed(action.data))
                except MQTTError:  # e.g. a 3.1.1 CONNACK sent to a client that spoke another level
                    client.decoder = StreamDecoder(client.version)
                    client.inbox.append(action.packet)
            elif isinstance(action, Close):
                client.closed = True
        for conn_id in later:
            self.absorb(self.broker.process_buffered(conn_id, self.now))

    def open(self, version: int = 4, identity: str | None = None, listener=None) -> FakeClient:
        """A new connection (`listener`: the Listener it came in on, for per-listener settings)."""
        conn_id = next(self._ids)
        client = self.clients[conn_id] = FakeClient(self, conn_id, version)
        self.absorb(self.broker.connection_made(conn_id, self.now, f"127.0.0.1:{40000 + conn_id}", identity,
                                                listener=listener))
        return client

    def connect(self, client_id: str = "c1", version: int = 4, *, expect_ok: bool = True, identity: str | None = None,
                **fields) -> tuple[FakeClient, Connack]:
        client = self.open(version, identity)
        packets = client.send(Connect(client_id=client_id, protocol_level=version, **fields))
        connack = packets[0]
        assert isinstance(connack, Connack), packets
        if expect_ok:
            assert connack.reason_code == 0, connack
        client.inbox = packets[1:]
        return client, connack

    def advance(self, seconds: float) -> None:
        self.now += seconds
        self.absorb(self.broker.tick(self.now))
