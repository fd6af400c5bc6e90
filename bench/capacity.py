"""Capacity and memory figures, refbroker beside mosquitto: what a broker costs per connection and per
retained message, how fast it hands a new subscriber 100,000 retained messages, whether it carries
10 MB and 100 MB payloads intact and refuses one above message_size_limit, and whether it enforces
max_connections.

Memory is the broker process's resident set (VmRSS of /proc/PID/status), read before and after, so
only brokers we start have memory figures. Everything runs from this process over blocking sockets
to 127.0.0.1: nothing here is about speed except the two timings, which are end to end.
"""

from __future__ import annotations

import hashlib
import resource
import socket
import time
from dataclasses import dataclass

from refbroker.protocol import (
    MQTT_5,
    Connack,
    Connect,
    Disconnect,
    MQTTError,
    Pingreq,
    Pingresp,
    Puback,
    Publish,
    StreamDecoder,
    Subscribe,
    Subscription,
)

from .report import format_table
from .targets import MAX_CONNECTIONS, MESSAGE_SIZE_LIMIT, LoopFloorTarget, RefbrokerTarget, Target, TargetError

IDLE_COUNTS = (1_000, 5_000)
FLOOR_KEY = "idle_floor_bytes"  # refbroker's column only: what its event loop costs per connection
RETAINED_COUNT = 100_000
RETAINED_PAYLOAD = bytes(64)
LARGE_PAYLOADS = (10_000_000, 100_000_000)
STALLED_MESSAGES = 200_000  # 1 KB QoS 0 messages for a subscriber that never reads
STALLED_PAYLOAD = bytes(1024)
TIMEOUT = 120.0


class CapacityError(Exception):
    """A figure could not be taken; the message says why."""


@dataclass(frozen=True)
class Check:
    key: str
    label: str
    unit: str           # "B", "s", or "" for a yes/no check
    lower_is_better: bool = True


def checks() -> list[Check]:
    """The figures, in the order of the table."""
    return [
        *(Check(f"idle_bytes_{count}", f"bytes per idle connection ({count:,} clients)", "B") for count in IDLE_COUNTS),
        Check(FLOOR_KEY, f"of which refbroker's event loop and transport alone ({IDLE_COUNTS[0]:,} clients; "
                         "bench/loop_floor.py)", "B"),
        Check("retained_bytes", f"bytes per retained message ({RETAINED_COUNT:,}, {len(RETAINED_PAYLOAD)}-byte "
                                f"payloads)", "B"),
        Check("retained_seconds", f"{RETAINED_COUNT:,} retained messages to a new subscriber", "s"),
        *(Check(f"payload_seconds_{size}", f"{size / 1_000_000:g} MB payload delivered intact (QoS 1)", "s")
          for size in LARGE_PAYLOADS),
        Check("payload_refused", f"payload above message_size_limit ({MESSAGE_SIZE_LIMIT:,} B) refused", ""),
        Check("stalled_growth", f"memory growth, a QoS 0 subscriber that never reads sent {STALLED_MESSAGES:,} x "
                                f"{len(STALLED_PAYLOAD)} B", "B"),
        Check("max_connections", f"max_connections {MAX_CONNECTIONS} enforced", ""),
    ]


def rss_bytes(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise CapacityError(f"no VmRSS for process {pid}")


def _raise_file_limit(needed: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < needed:
        if hard != resource.RLIM_INFINITY and hard < needed:
            raise CapacityError(f"{needed} open files are needed, the hard limit is {hard} (ulimit -Hn)")
        resource.setrlimit(resource.RLIMIT_NOFILE, (needed, hard))


class _Client:
    """A blocking MQTT client over one socket, with the project's codec."""

    def __init__(self, address: tuple[str, int], client_id: str, version: int = 4, timeout: float = TIMEOUT):
        self.version = version
        self.sock = socket.create_connection(address, timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.decoder = StreamDecoder(version)
        self.waiting: list = []
        self.sock.sendall(Connect(client_id=client_id, protocol_level=version, keep_alive=600).encode(version))
        connack = self.next()
        if not isinstance(connack, Connack) or connack.reason_code != 0:
            raise CapacityError(f"{client_id}: CONNECT answered with {connack!r}")

    def send(self, packet) -> None:
        self.sock.sendall(packet.encode(self.version))

    def next(self):
        while not self.waiting:
            data = self.sock.recv(1 << 20)
            if not data:
                raise CapacityError("the broker closed the connection")
            try:
                self.waiting = self.decoder.feed(data)
            except MQTTError as error:
                raise CapacityError(f"the broker sent a bad packet: {error}") from None
        return self.waiting.pop(0)

    def close(self) -> None:
        try:
            self.sock.sendall(Disconnect().encode(self.version))
        except OSError:
            pass
        self.sock.close()


def _settle(pid: int) -> int:
    """The RSS once the broker has caught up (two equal readings 0.2 s apart, at most 3 s)."""
    last = rss_bytes(pid)
    for _ in range(15):
        time.sleep(0.2)
        now = rss_bytes(pid)
        if now == last:
            return now
        last = now
    return last


def idle_connections(target: Target, prefix: str, counts: tuple[int, ...] | None = None) -> dict[str, float]:
    counts = counts or IDLE_COUNTS
    _raise_file_limit(max(counts) + 1000)
    address = (target.host, target.port)
    figures: dict[str, float] = {}
    clients: list[_Client] = []
    try:
        before = _settle(target.pid)
        for count in counts:
            while len(clients) < count:
                clients.append(_Client(address, f"{prefix}-idle-{len(clients)}"))
            figures[f"idle_bytes_{count}"] = round((_settle(target.pid) - before) / count)
    finally:
        for client in clients:
            client.sock.close()
    return figures


def retained(target: Target, prefix: str) -> dict[str, float]:
    address = (target.host, target.port)
    publisher = _Client(address, f"{prefix}-retainer")
    topic = f"bench/retained/{prefix}"
    try:
        before = _settle(target.pid) if target.pid else None
        batch = []
        for index in range(RETAINED_COUNT):
            batch.append(Publish(f"{topic}/{index:06d}", RETAINED_PAYLOAD, retain=True).encode(4))
            if len(batch) == 1000:
                publisher.sock.sendall(b"".join(batch))
                batch = []
        publisher.sock.sendall(b"".join(batch))
        publisher.send(Pingreq())  # answered once everything before it is handled
        while not isinstance(publisher.next(), Pingresp):
            pass
        figures: dict[str, float] = {}
        if before is not None:
            figures["retained_bytes"] = round((_settle(target.pid) - before) / RETAINED_COUNT)
        subscriber = _Client(address, f"{prefix}-retained-reader")
        started = time.monotonic()
        subscriber.send(Subscribe(1, [Subscription(f"{topic}/#", 0)]))
        subscriber.sock.settimeout(10)
        received = _count_publishes(subscriber.sock, RETAINED_COUNT)
        seconds = time.monotonic() - started
        subscriber.close()
        if received < RETAINED_COUNT:
            figures["retained_seconds"] = f"{received:,} of {RETAINED_COUNT:,} delivered"
        else:
            figures["retained_seconds"] = round(seconds, 3)
        # Leave no retained messages behind for the scenarios that follow
        publisher.sock.sendall(b"".join(Publish(f"{topic}/{index:06d}", b"", retain=True).encode(4)
                                        for index in range(RETAINED_COUNT)))
        publisher.send(Pingreq())
        while not isinstance(publisher.next(), Pingresp):
            pass
        return figures
    finally:
        publisher.close()


def _count_publishes(sock: socket.socket, wanted: int) -> int:
    """Read until `wanted` PUBLISH packets have arrived, walking fixed headers only (decoding each
    packet in Python would make this reader, not the broker, the slow end)."""
    received = 0
    pending = b""
    while received < wanted:
        try:
            data = sock.recv(1 << 20)
        except TimeoutError:
            break
        if not data:
            break
        data = pending + data if pending else data
        position, end = 0, len(data)
        while end - position >= 2:
            length, shift, index = 0, 0, position + 1
            while index < end and index < position + 5:
                byte = data[index]
                length |= (byte & 0x7F) << shift
                shift += 7
                index += 1
                if not byte & 0x80:
                    break
            else:
                break  # the Remaining Length is not complete yet
            if index + length > end:
                break
            if data[position] >> 4 == 3:
                received += 1
            position = index + length
        pending = data[position:]
    return received


def large_payloads(target: Target, prefix: str) -> dict[str, float | str]:
    address = (target.host, target.port)
    topic = f"bench/large/{prefix}"
    subscriber = _Client(address, f"{prefix}-large-sub", MQTT_5)
    publisher = _Client(address, f"{prefix}-large-pub", MQTT_5)
    figures: dict[str, float | str] = {}
    try:
        subscriber.send(Subscribe(1, [Subscription(topic, 1)]))
        subscriber.next()
        for number, size in enumerate(LARGE_PAYLOADS, start=1):
            payload = hashlib.sha256(str(size).encode()).digest() * (size // 32) + bytes(size % 32)
            started = time.monotonic()
            publisher.send(Publish(topic, payload, qos=1, packet_id=number))
            message = subscriber.next()
            seconds = time.monotonic() - started
            if not isinstance(message, Publish) or message.payload != payload:
                figures[f"payload_seconds_{size}"] = "not intact"
                continue
            subscriber.send(Puback(message.packet_id))
            acknowledgement = publisher.next()
            if not isinstance(acknowledgement, Puback) or acknowledgement.reason_code >= 0x80:
                figures[f"payload_seconds_{size}"] = f"refused ({acknowledgement!r})"[:60]
                continue
            figures[f"payload_seconds_{size}"] = round(seconds, 3)
        # One byte above message_size_limit: refused (5.0: a PUBACK with a failure code) and not delivered
        publisher.send(Publish(topic, bytes(MESSAGE_SIZE_LIMIT + 1), qos=1, packet_id=9))
        try:
            acknowledgement = publisher.next()
            answer = f"PUBACK 0x{acknowledgement.reason_code:02X}" if isinstance(acknowledgement, Puback) else \
                repr(acknowledgement)[:40]
            failed = isinstance(acknowledgement, Puback) and acknowledgement.reason_code >= 0x80
        except CapacityError as error:
            # mosquitto 2.0 answers PUBACK 0x95, a code PUBACK may not carry: still a refusal
            answer, failed = str(error)[:60], "reason code 0x" in str(error)
        subscriber.sock.settimeout(3)
        try:
            delivered = subscriber.next()
        except (TimeoutError, CapacityError):
            delivered = None
        refused = failed and delivered is None
        figures["payload_refused"] = f"yes ({answer})" if refused else f"no ({answer})"
    finally:
        subscriber.close()
        publisher.close()
    return figures


def stalled_subscriber(target: Target, prefix: str) -> dict[str, int | str]:
    """How much more memory the broker holds once a QoS 0 subscriber that never reads has been sent
    STALLED_MESSAGES messages (what it cannot write must be dropped, not kept)."""
    address = (target.host, target.port)
    topic = f"bench/stalled/{prefix}"
    stalled = socket.socket()
    stalled.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
    stalled.settimeout(TIMEOUT)
    stalled.connect(address)
    stalled.sendall(Connect(client_id=f"{prefix}-stalled", keep_alive=600).encode(4)
                    + Subscribe(1, [Subscription(topic, 0)]).encode(4))
    publisher = _Client(address, f"{prefix}-stalled-pub")
    try:
        time.sleep(0.3)
        before = _settle(target.pid)
        packet = Publish(topic, STALLED_PAYLOAD).encode(4)
        for _ in range(STALLED_MESSAGES // 100):
            publisher.sock.sendall(packet * 100)
        publisher.send(Pingreq())
        while not isinstance(publisher.next(), Pingresp):
            pass
        return {"stalled_growth": _settle(target.pid) - before}
    finally:
        publisher.close()
        stalled.close()


def max_connections(target: Target, prefix: str) -> dict[str, str]:
    if not target.limited_port:
        raise CapacityError("no listener with max_connections")
    address = (target.host, target.limited_port)
    clients = [_Client(address, f"{prefix}-limited-{n}") for n in range(MAX_CONNECTIONS)]
    try:
        extra = socket.create_connection(address, timeout=5)
        extra.sendall(Connect(client_id=f"{prefix}-limited-extra").encode(4))
        try:
            closed = extra.recv(100) == b""
        except ConnectionResetError:
            closed = True
        except TimeoutError:
            closed = False
        extra.close()
    finally:
        for client in clients:
            client.close()
    return {"max_connections": "yes" if closed else f"no: client {MAX_CONNECTIONS + 1} was served"}


def measure(target: Target, progress) -> dict[str, float | str]:
    """Every figure of checks() for one target ("error: ..." in place of a figure that failed).

    A broker we run is restarted before each step that reads its memory: memory it freed earlier
    (after other scenarios, or the previous step) is used again before its resident set grows, which
    would make the figure too small."""
    prefix = f"cap{int(time.time() * 1000) % 1_000_000}"
    figures: dict[str, float | str] = {}
    steps = [("max_connections", max_connections), ("large payloads", large_payloads), ("retained", retained)]
    if target.pid:
        steps.insert(0, ("idle connections", idle_connections))
        steps.append(("a subscriber that never reads", stalled_subscriber))
    for name, step in steps:
        if target.pid and step in (idle_connections, retained, stalled_subscriber):
            target.stop()
            target.start()
        progress(f"{target.name}: {name} ...")
        started = time.monotonic()
        try:
            figures.update(step(target, prefix))
        except (CapacityError, OSError, MQTTError) as error:
            for check in checks():
                figures.setdefault(check.key, f"error: {error}"[:80])
        progress(f"{target.name}: {name} done in {time.monotonic() - started:.1f} s")
    if isinstance(target, RefbrokerTarget) and target.pid:
        figures[FLOOR_KEY] = _loop_floor(prefix, progress)
    return figures


def _loop_floor(prefix: str, progress) -> float | str:
    """Bytes per idle connection of a server on refbroker's event loop that keeps no MQTT state."""
    floor = LoopFloorTarget()
    progress("refbroker: its event loop alone ...")
    try:
        floor.start()
        return idle_connections(floor, prefix + "f", IDLE_COUNTS[:1])[f"idle_bytes_{IDLE_COUNTS[0]}"]
    except (CapacityError, OSError, MQTTError, TargetError) as error:
        return f"error: {error}"[:80]
    finally:
        floor.stop()


def table(results: dict[str, dict], names: list[str]) -> str:
    """The capacity figures of each target side by side, with the ratio of the first two."""

    compare = names[:2] if len(names) >= 2 else None
    head = ["capacity and memory"] + names + ([f"ratio {compare[0]}/{compare[1]}"] if compare else [])
    rows = [head]
    for check in checks():
        row = [check.label + (f" ({check.unit})" if check.unit else "")]
        values = [results.get(name, {}).get(check.key, "-") for name in names]
        for value in values:
            row.append(f"{value:,}" if isinstance(value, int) else f"{value:g}" if isinstance(value, float)
                       else str(value))
        if compare:
            first, second = values[:2]
            numeric = isinstance(first, (int, float)) and isinstance(second, (int, float)) and second
            row.append(f"{first / second:.2f}" if numeric else "-")
        rows.append(row)
    return format_table(rows)
