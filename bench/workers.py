"""The load generator's processes: one publisher, and subscriber processes holding N connections each.

They run in their own processes (multiprocessing, "spawn") so neither shares a GIL with the other or
with the orchestrator, and they talk to the target over raw blocking sockets with pre-encoded packets
(wire.py). Everything they report goes into one queue as a tagged tuple:

    ("ready", group)                    a subscriber process has connected and subscribed everything
    ("publisher", {...})                the publisher is done: counts and send times
    ("subscribers", {...})              a subscriber process is done: counts, receive times, latencies
    ("error", who, text)                something went wrong; the scenario fails with this text

Times are time.monotonic_ns(), which is one clock for every process of the machine, so a receive
time minus the send time written into the payload is the end-to-end latency.
"""

from __future__ import annotations

import os
import select
import selectors
import socket
import time
import traceback
from dataclasses import dataclass

from . import wire

NS = 1_000_000_000


@dataclass(frozen=True)
class LoadSpec:
    """What one scenario sends, shared by the publisher and the subscribers."""

    host: str
    port: int
    topic: str
    qos: int
    version: int                 # MQTT protocol level: 4 (3.1.1) or 5 (5.0)
    messages: int                # PUBLISHes the publisher sends
    window: int                  # QoS 1/2 PUBLISHes the publisher may have unacknowledged
    rate: float | None           # PUBLISHes per second; None: as fast as flow control allows
    time_cap: float              # seconds; the publisher stops sending then, whatever is left
    collect_latency: bool
    payload_size: int = wire.PAYLOAD_SIZE
    cpus: frozenset[int] | None = None  # CPUs the load generator's processes run on (None: any)
    publishers: int = 1          # publisher connections (one process); each sends `messages`
    unpaced: bool = False        # publishers never wait: as fast as the socket takes the bytes

    @property
    def expected(self) -> int:
        """Distinct messages each subscriber should receive."""
        return self.messages * self.publishers


@dataclass(frozen=True)
class SubscriberGroup:
    load: LoadSpec
    group: int                   # which subscriber process this is
    connections: int             # subscriber connections in this process
    # Seconds without data, after the publisher is done, before giving up on the rest. Generous: a
    # broker may route a whole read of PUBLISHes (thousands, times the fan-out) before it writes a byte.
    grace: float = 5.0


def _report_errors(events, who: str, function, load: LoadSpec, *args) -> None:
    try:
        if load.cpus:
            os.sched_setaffinity(0, load.cpus)
        function(load, *args)
    except BaseException as error:  # noqa: BLE001 - reported to the orchestrator, which shows it
        # A traceback helps only for our own bugs, not for a refused connection
        detail = "" if isinstance(error, (OSError, wire.HandshakeError)) else "\n" + traceback.format_exc()
        events.put(("error", who, f"{type(error).__name__}: {error}{detail}"))


# ------------------------------------------------------------------------------------------ publisher


def run_publisher(load: LoadSpec, events) -> None:
    _report_errors(events, "publisher", _publisher, load, events)


def _publisher(load: LoadSpec, events) -> None:
    if load.unpaced:
        events.put(("publisher", _publish_unpaced(load)))
        return
    sock = wire.open_connection(load.host, load.port, f"bench-pub-{os.getpid()}", load.version)
    sock.settimeout(load.time_cap + 10)
    template = wire.publish_template(load.topic, load.qos, load.version, load.payload_size)
    try:
        if load.qos == 0:
            result = _publish_qos0(sock, load, template)
        else:
            result = _publish_windowed(sock, load, template)
        sock.sendall(wire.DISCONNECT_PACKET)
    finally:
        sock.close()
    events.put(("publisher", result))


def _wait_until(when_ns: int) -> int:
    """Sleep until `when_ns` (monotonic) and return the time then."""
    now = time.monotonic_ns()
    if now < when_ns:
        time.sleep((when_ns - now) / NS)
        now = time.monotonic_ns()
    return now


def _publish_qos0(sock: socket.socket, load: LoadSpec, template: wire.PublishTemplate) -> dict:
    """QoS 0 needs no acknowledgement: write batches of PUBLISHes; TCP's own flow control slows us down."""
    batch = 1 if load.rate else 128
    size, payload_offset = template.size, template.payload_offset
    buffer = bytearray(template.data * batch)
    view = memoryview(buffer)
    interval = NS / load.rate if load.rate else 0
    first = time.monotonic_ns()
    deadline = first + int(load.time_cap * NS)
    sent, capped, now = 0, False, first
    while sent < load.messages:
        if load.rate:
            now = _wait_until(first + int(sent * interval))
        else:
            now = time.monotonic_ns()
        if now >= deadline:
            capped = True
            break
        count = min(batch, load.messages - sent)
        for index in range(count):
            wire.STAMP.pack_into(buffer, index * size + payload_offset, now, sent + index)
        sock.sendall(view[:count * size])
        sent += count
    return {"sent": sent, "acknowledged": 0, "refused": 0, "first_send_ns": first, "last_send_ns": now,
            "done_ns": time.monotonic_ns(), "capped": capped}


def _publish_windowed(sock: socket.socket, load: LoadSpec, template: wire.PublishTemplate) -> dict:
    """QoS 1 and 2: at most `window` PUBLISHes unacknowledged (PUBACK, or PUBREC then PUBCOMP)."""
    window = load.window
    size, payload_offset, id_offset = template.size, template.payload_offset, template.packet_id_offset
    buffer = bytearray(template.data * window)
    view = memoryview(buffer)
    interval = NS / load.rate if load.rate else 0
    inflight: set[int] = set()
    last_id = 0
    sent = acknowledged = refused = 0
    pending = b""
    first = time.monotonic_ns()
    deadline = first + int(load.time_cap * NS)
    next_send = first
    last_send = first
    capped = False
    while acknowledged + refused < load.messages:
        now = time.monotonic_ns()
        if now >= deadline:
            capped = True
            break
        room = window - len(inflight)
        count = 0
        if sent < load.messages and room > 0:
            if not load.rate:
                count = min(room, load.messages - sent)
            elif now >= next_send:
                count = 1
                next_send += interval
        for index in range(count):
            last_id = last_id % 65535 + 1
            while last_id in inflight:  # never reuse an identifier still in flight [MQTT-2.2.1-3]
                last_id = last_id % 65535 + 1
            inflight.add(last_id)
            base = index * size
            wire.PACKET_ID.pack_into(buffer, base + id_offset, last_id)
            wire.STAMP.pack_into(buffer, base + payload_offset, now, sent + index)
        if count:
            sock.sendall(view[:count * size])
            sent += count
            last_send = now
        # Wait for acknowledgements, or until the next paced send is due
        if load.rate and sent < load.messages and len(inflight) < window:
            timeout = max(0.0, (next_send - time.monotonic_ns()) / NS)
        else:
            timeout = max(0.0, min(1.0, (deadline - now) / NS))
        readable, _, _ = select.select([sock], [], [], timeout)
        if not readable:
            continue
        data = sock.recv(65536)
        if not data:
            raise ConnectionError(f"the target closed the publisher's connection after {sent} PUBLISHes")
        if pending:
            data = pending + data
        position, answers = 0, []
        for first_byte, body, body_size, position in wire.frames(data):
            kind = first_byte >> 4
            if not wire.PUBACK <= kind <= wire.PUBCOMP or body_size < 2:
                continue  # nothing else concerns the publisher
            packet_id = (data[body] << 8) | data[body + 1]
            failed = body_size > 2 and data[body + 2] >= 0x80  # 5.0 reason code: the flow ends here
            if kind == wire.PUBACK or kind == wire.PUBCOMP or (kind == wire.PUBREC and failed):
                if packet_id in inflight:
                    inflight.discard(packet_id)
                    if failed:
                        refused += 1
                    else:
                        acknowledged += 1
            elif kind == wire.PUBREC:
                answers.append(wire.PUBREL_HEADER + data[body:body + 2])
        pending = data[position:]
        if answers:
            sock.sendall(b"".join(answers))
    return {"sent": sent, "acknowledged": acknowledged, "refused": refused, "first_send_ns": first,
            "last_send_ns": last_send, "done_ns": time.monotonic_ns(), "capped": capped}


class _Flooder:
    """One unpaced publisher connection: what it has sent, what is still to be written, what is acknowledged."""

    __slots__ = ("acknowledged", "index", "inflight", "last_id", "pending", "sent", "sock", "unread")

    def __init__(self, index: int, sock: socket.socket):
        self.index = index
        self.sock = sock
        self.sent = self.acknowledged = 0
        self.inflight: set[int] = set()
        self.last_id = 0
        self.pending = memoryview(b"")  # encoded PUBLISHes not yet taken by the socket
        self.unread = b""


UNPACED_BATCH = 64       # PUBLISHes encoded per write
MAX_UNACKNOWLEDGED = 65000  # QoS 1: packet identifiers are 16 bits; an unpaced publisher never waits otherwise


def _publish_unpaced(load: LoadSpec) -> dict:
    """`load.publishers` connections in one process, each writing PUBLISHes whenever its socket takes
    them, never waiting for an acknowledgement (QoS 1: PUBACKs are read as they come, and counted).
    The payload's sequence number is publisher index x messages + n, so subscribers can tell every
    message apart."""
    flooders = []
    try:
        for index in range(load.publishers):
            sock = wire.open_connection(load.host, load.port, f"bench-pub-{os.getpid()}-{index}", load.version)
            sock.setblocking(False)
            flooders.append(_Flooder(index, sock))
        return _flood(load, flooders)
    finally:
        for flooder in flooders:
            try:
                flooder.sock.setblocking(True)
                flooder.sock.settimeout(1)
                flooder.sock.sendall(wire.DISCONNECT_PACKET)
            except OSError:
                pass
            flooder.sock.close()


def _flood(load: LoadSpec, flooders: list[_Flooder]) -> dict:
    template = wire.publish_template(load.topic, load.qos, load.version, load.payload_size)
    size, payload_offset, id_offset = template.size, template.payload_offset, template.packet_id_offset
    buffers = {flooder.index: bytearray(template.data * UNPACED_BATCH) for flooder in flooders}
    selector = selectors.DefaultSelector()
    for flooder in flooders:
        selector.register(flooder.sock, selectors.EVENT_READ | selectors.EVENT_WRITE, flooder)
    first = time.monotonic_ns()
    deadline = first + int(load.time_cap * NS)
    last_send = first
    capped = False
    busy = len(flooders)  # not yet done: still sending, or (QoS 1) waiting for acknowledgements
    while busy:
        now = time.monotonic_ns()
        if now >= deadline:
            capped = True
            break
        for key, mask in selector.select(timeout=min(1.0, (deadline - now) / NS)):
            flooder: _Flooder = key.data
            if mask & selectors.EVENT_READ:
                try:
                    data = flooder.sock.recv(65536)
                except BlockingIOError:
                    data = None
                if data == b"":
                    raise ConnectionError(f"the target closed publisher {flooder.index}'s connection after "
                                          f"{flooder.sent} PUBLISHes")
                if data:
                    _count_acknowledgements(flooder, data)
            if mask & selectors.EVENT_WRITE:
                if not flooder.pending and flooder.sent < load.messages:
                    room = UNPACED_BATCH if load.qos == 0 else min(UNPACED_BATCH,
                                                                   MAX_UNACKNOWLEDGED - len(flooder.inflight))
                    count = min(room, load.messages - flooder.sent)
                    if count > 0:
                        buffer = buffers[flooder.index]
                        stamp_ns = time.monotonic_ns()
                        base_sequence = flooder.index * load.messages + flooder.sent
                        for position in range(count):
                            if load.qos:
                                flooder.last_id = flooder.last_id % 65535 + 1
                                while flooder.last_id in flooder.inflight:  # never reuse an id in flight
                                    flooder.last_id = flooder.last_id % 65535 + 1
                                flooder.inflight.add(flooder.last_id)
                                wire.PACKET_ID.pack_into(buffer, position * size + id_offset, flooder.last_id)
                            wire.STAMP.pack_into(buffer, position * size + payload_offset, stamp_ns,
                                                 base_sequence + position)
                        flooder.pending = memoryview(bytes(buffer[:count * size]))
                        flooder.sent += count
                if flooder.pending:
                    try:
                        written = flooder.sock.send(flooder.pending)
                    except BlockingIOError:
                        written = 0
                    flooder.pending = flooder.pending[written:]
                    last_send = time.monotonic_ns()
            if flooder.sent >= load.messages and not flooder.pending:
                if load.qos == 0 or not flooder.inflight:
                    selector.unregister(flooder.sock)
                    busy -= 1
                elif mask & selectors.EVENT_WRITE:
                    selector.modify(flooder.sock, selectors.EVENT_READ, flooder)
    selector.close()
    return {"sent": sum(f.sent for f in flooders), "acknowledged": sum(f.acknowledged for f in flooders),
            "refused": 0, "first_send_ns": first, "last_send_ns": last_send, "done_ns": time.monotonic_ns(),
            "capped": capped}


def _count_acknowledgements(flooder: _Flooder, data: bytes) -> None:
    if flooder.unread:
        data = flooder.unread + data
    position = 0
    for first_byte, body, body_size, position in wire.frames(data):
        if first_byte >> 4 == wire.PUBACK and body_size >= 2:
            packet_id = (data[body] << 8) | data[body + 1]
            if packet_id in flooder.inflight:
                flooder.inflight.discard(packet_id)
                flooder.acknowledged += 1
    flooder.unread = data[position:]


# ---------------------------------------------------------------------------------------- subscribers


class _Subscriber:
    """One subscriber connection: its unread bytes and which sequence numbers it has seen."""

    __slots__ = ("done", "duplicates", "last_ns", "pending", "received", "seen", "sock", "unique", "unreleased")

    def __init__(self, sock: socket.socket, expected: int):
        self.sock = sock
        self.pending = b""
        self.seen = bytearray(expected)
        self.unique = self.received = self.duplicates = 0
        self.unreleased = 0  # QoS 2 PUBLISHes answered with PUBREC whose PUBREL has not come yet
        self.last_ns = 0
        self.done = expected == 0


def run_subscribers(group: SubscriberGroup, events, publisher_done) -> None:
    _report_errors(events, f"subscriber process {group.group}", _subscribers, group.load, group, events,
                   publisher_done)


def _subscribers(load: LoadSpec, group: SubscriberGroup, events, publisher_done) -> None:
    subscribers = []
    try:
        for index in range(group.connections):
            sock = wire.open_connection(load.host, load.port, f"bench-sub-{os.getpid()}-{index}", load.version)
            subscribers.append(_Subscriber(sock, load.expected))
            wire.subscribe(sock, load.topic, load.qos, load.version)
            sock.settimeout(load.time_cap + 10)
        events.put(("ready", group.group))
        result = _receive(group, subscribers, publisher_done)
        for subscriber in subscribers:
            try:
                subscriber.sock.sendall(wire.DISCONNECT_PACKET)
            except OSError:
                pass
    finally:
        for subscriber in subscribers:
            subscriber.sock.close()
    events.put(("subscribers", result))


def _receive(group: SubscriberGroup, subscribers: list[_Subscriber], publisher_done) -> dict:
    load = group.load
    v5 = wire.is_v5(load.version)
    latencies: list[int] | None = [] if load.collect_latency else None
    selector = selectors.DefaultSelector()
    for subscriber in subscribers:
        selector.register(subscriber.sock, selectors.EVENT_READ, subscriber)
    # The publisher starts after every subscriber process is ready, so its time cap starts later
    hard_deadline = time.monotonic() + load.time_cap + 15
    waiting = sum(1 for subscriber in subscribers if not subscriber.done)
    last_activity = time.monotonic()
    capped = False
    while waiting:
        ready = selector.select(timeout=0.2)
        now = time.monotonic()
        if not ready:
            if now > hard_deadline:
                capped = True
                break
            if publisher_done.is_set() and now - last_activity > group.grace:
                break  # the rest is lost (the count says how much)
            continue
        last_activity = now
        now_ns = time.monotonic_ns()
        for key, _ in ready:
            subscriber = key.data
            data = subscriber.sock.recv(262144)
            if not data:
                raise ConnectionError(f"the target closed a subscriber connection after "
                                      f"{subscriber.received} PUBLISHes")
            _consume(subscriber, data, now_ns, v5, latencies)
            # Done when everything arrived and no QoS 2 flow is half way (so the publisher's flows end too)
            if not subscriber.done and subscriber.unique == len(subscriber.seen) and not subscriber.unreleased:
                subscriber.done = True
                waiting -= 1
        if now > hard_deadline:
            capped = True
            break
    selector.close()
    return {
        "group": group.group,
        "connections": len(subscribers),
        "received": sum(s.received for s in subscribers),
        "unique": sum(s.unique for s in subscribers),
        "duplicates": sum(s.duplicates for s in subscribers),
        "last_receive_ns": max((s.last_ns for s in subscribers), default=0),
        "latencies_ns": latencies or [],
        "capped": capped,
    }


def _consume(subscriber: _Subscriber, data: bytes, now_ns: int, v5: bool, latencies: list[int] | None) -> None:
    """Walk the packets in `data`: count PUBLISHes, and acknowledge them as their QoS asks."""
    if subscriber.pending:
        data = subscriber.pending + data
    seen = subscriber.seen
    expected = len(seen)
    position = 0
    answers = []
    received = unique = duplicates = unreleased = 0
    for first_byte, body, body_size, position in wire.frames(data):
        kind = first_byte >> 4
        if kind == wire.PUBLISH:
            received += 1
            offset = body + 2 + ((data[body] << 8) | data[body + 1])  # after the topic name
            qos = (first_byte >> 1) & 0x03
            if qos == 1:
                answers.append(wire.PUBACK_HEADER + data[offset:offset + 2])
                offset += 2
            elif qos == 2:
                answers.append(wire.PUBREC_HEADER + data[offset:offset + 2])
                unreleased += 1
                offset += 2
            if v5:
                offset = offset + 1 if data[offset] == 0 else wire.skip_properties(data, offset)
            sent_ns, sequence = wire.STAMP.unpack_from(data, offset)
            if sequence < expected:
                if seen[sequence]:
                    duplicates += 1
                else:
                    seen[sequence] = 1
                    unique += 1
            if latencies is not None:
                latencies.append(now_ns - sent_ns)
        elif kind == wire.PUBREL:
            answers.append(wire.PUBCOMP_HEADER + data[body:body + 2])
            unreleased -= 1
    subscriber.pending = data[position:]
    subscriber.unreleased += unreleased
    if received:
        subscriber.received += received
        subscriber.unique += unique
        subscriber.duplicates += duplicates
        subscriber.last_ns = now_ns
    if answers:
        subscriber.sock.sendall(b"".join(answers))
