"""The byte stream: packets split across and packed into TCP segments, the exact encoding of what the
server sends (fixed-header flags, minimal Variable Byte Integers, 5.0 Property Length), the DISCONNECT
a server sends, and WebSocket (section 6).

The encoding test reads the socket itself, with its own small parser, instead of the raw client: the
client re-frames what it reads and its decoder rejects some of what is checked here, so the test would
otherwise lean on the very codec it is meant to check independently.
"""

from __future__ import annotations

import select
import socket
import time
import uuid

import pytest

from conformance import check, fail_statement, known_deviation, not_applicable, statement
from conformance.client import ConformanceFailure, ConnectionClosed, summarize
from refbroker.protocol import (
    MQTT_5,
    Connack,
    Connect,
    Disconnect,
    Pingreq,
    Properties,
    Puback,
    Pubcomp,
    Publish,
    Pubrec,
    Subscribe,
    Subscription,
    Unsubscribe,
    decode_packet,
)
from refbroker.protocol.primitives import encode_variable_byte_integer

# ------------------------------------------------------------------------------------------ transport


@pytest.mark.spec("MQTT-7.1.1-1", version="3.1.1")
@pytest.mark.spec("MQTT-4.2.0-1", version="5.0")
def test_packets_split_and_packed_in_tcp_segments(client_factory, version, topic):
    """The server reads MQTT as a byte stream: a CONNECT sent one byte per segment, then SUBSCRIBE,
    PUBLISH and PINGREQ packed into one segment, are all understood, in order."""
    client = client_factory(connect=False)
    connect = client.connect_packet(keep_alive=30).encode(version)
    for index in range(len(connect)):
        client.send_raw(connect[index:index + 1], note=f"CONNECT byte {index + 1} of {len(connect)}")
        time.sleep(0.001)
    connack = client.expect_raw()
    assert connack[0] == 0x20 and connack[3] == 0, f"CONNECT sent byte by byte was not accepted: {connack.hex(' ')}"
    # QoS 1 where the broker offers it (a v5 Maximum QoS 0 makes a QoS 1 PUBLISH a Protocol Error [MQTT-3.2.2-11])
    qos = 1 if client.server_limits.maximum_qos != 0 else 0
    packed = (Subscribe(1, [Subscription(f"{topic}/t", qos)]).encode(version)
              + Publish(f"{topic}/t", b"packed", qos=qos, packet_id=2 if qos else None).encode(version)
              + Pingreq().encode(version))
    client.send_raw(packed, note="SUBSCRIBE + PUBLISH + PINGREQ in one segment")
    kinds = []
    deadline = time.monotonic() + 3.0
    expected = sorted(["PINGRESP", "PUBLISH", "SUBACK"] + ["PUBACK"] * qos)
    while len(kinds) < len(expected) and time.monotonic() < deadline:
        packet = client.receive(max(0.0, deadline - time.monotonic()))
        if packet is None:
            break
        kinds.append(packet.packet_type.name)
        if isinstance(packet, Publish):
            client.acknowledge(packet)
    # Every packet of the segment is understood and answered. Their order across packet types is not
    # checked: the specs order acknowledgements only among PUBLISH flows (4.6), not a SUBACK against a
    # PUBACK or PINGRESP, and the PUBLISH forwarded to us may come before or after our PUBACK.
    assert sorted(kinds) == expected, f"answers: {kinds}"


@pytest.mark.spec("MQTT-6.0.0-1", "MQTT-6.0.0-2", "MQTT-6.0.0-4")
def test_websocket_transport(client_factory, version, broker, topic):
    """MQTT over WebSocket: the server selects the 'mqtt' subprotocol [MQTT-6.0.0-4]; a packet split across
    two binary frames and two packets in one binary frame both work [MQTT-6.0.0-2]; a text frame makes the
    server close the connection [MQTT-6.0.0-1]."""
    client = client_factory("ws", websocket=True, connect=False)
    check("MQTT-6.0.0-4", client.ws.subprotocol == "mqtt",
          f"the server selected the WebSocket subprotocol {client.ws.subprotocol!r}, not 'mqtt'")

    connect = client.connect_packet().encode(version)
    with statement("MQTT-6.0.0-2"):
        client.send_websocket_message(connect[:3], note="CONNECT, first 3 bytes")
        client.send_websocket_message(connect[3:], note="CONNECT, the rest")
        connack = client.expect(Connack)
        check("MQTT-6.0.0-2", connack.reason_code == 0, f"CONNECT split across two binary frames was refused: {connack}")

        client.subscribe(f"{topic}/ws", qos=0)
        both = Publish(topic=f"{topic}/ws", payload=b"two-in-one").encode(version) + Pingreq().encode(version)
        client.send_websocket_message(both, note="PUBLISH QoS 0 and PINGREQ in one binary frame")
        kinds = sorted(p.packet_type.name for p in client.collect(3.0, until_count=2))
        check("MQTT-6.0.0-2", kinds == ["PINGRESP", "PUBLISH"], f"answers to two packets in one binary frame: {kinds}")

    client.send_websocket_message("this is not MQTT", note="a text frame")
    if client.is_open(within=3.0):
        client.send(Pingreq())
        answer = client.receive(2.0)
        known_deviation(112, "the server kept the connection open 3 s after a WebSocket text frame "
                             f"[MQTT-6.0.0-1]; a PINGREQ then got {summarize(answer) if answer else 'no answer'}")


# --------------------------------------------------------------------------- encoding of server packets

#: fixed-header flags a server must use, per packet type (PUBLISH is checked separately)
FIXED_FLAGS = {2: 0, 4: 0, 5: 0, 6: 2, 7: 0, 9: 0, 11: 0, 13: 0, 14: 0, 15: 0}


class _Wire:
    """A bare socket and a parser that keeps every byte the server sent, exactly as sent."""

    def __init__(self, host: str, port: int, version: int, client_id: str, traced: list):
        self.version = version
        self.name, self.client_id = "wire", client_id
        #: the packet trace in the results file's shape (the raw client's), so the connection is traced too
        self.trace: list[dict] = []
        self._t0 = time.monotonic()
        self.closed = self.peer_closed = False
        self.connack = None  # (the client factory closes it without DISCONNECT)
        traced.append(self)  # the test's clients: their traces go to the results file
        self.sock = socket.create_connection((host, port), timeout=5)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._record("event", "OPEN", f"bare TCP connection to {host}:{port}", b"")
        self.buffer = b""
        self.frames: list[tuple[int, bytes, bytes]] = []  # (first byte, length bytes, body)

    def _record(self, direction: str, kind: str, summary: str, raw: bytes) -> None:
        entry = {"t": round(time.time(), 6), "elapsed": round(time.monotonic() - self._t0, 6), "dir": direction,
                 "type": kind, "summary": summary}
        if raw:
            entry["hex"] = raw[:4096].hex(" ")
        self.trace.append(entry)

    def send(self, packet) -> None:
        data = packet.encode(self.version)
        self._record("out", packet.packet_type.name, summarize(packet), data)
        self.sock.sendall(data)

    def next(self, timeout: float = 3.0) -> tuple[int, bytes, bytes]:
        deadline = time.monotonic() + timeout
        while True:
            frame = self._frame()
            if frame is not None:
                self.frames.append(frame)
                raw = bytes((frame[0],)) + frame[1] + frame[2]
                try:
                    packet = decode_packet(frame[0], frame[2], self.version)
                    kind, summary = packet.packet_type.name, summarize(packet)
                except Exception as exc:  # noqa: BLE001 - judged by the test from the bytes
                    kind, summary = f"TYPE{frame[0] >> 4}", f"not decodable: {exc}"
                self._record("in", kind, summary, raw)
                return frame
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not select.select([self.sock], [], [], remaining)[0]:
                raise ConformanceFailure(f"no complete packet from the server within {timeout} s "
                                         f"(buffered: {self.buffer.hex(' ')})")
            data = self.sock.recv(65536)
            if not data:
                self._record("event", "CLOSED", "the broker closed the connection", b"")
                raise ConnectionClosed("the server closed the connection")
            self.buffer += data

    def _frame(self):
        if len(self.buffer) < 2:
            return None
        length, multiplier, index = 0, 1, 1
        while True:
            if index >= len(self.buffer):
                return None
            byte = self.buffer[index]
            length += (byte & 0x7F) * multiplier
            multiplier *= 128
            index += 1
            if not byte & 0x80:
                break
            if index > 4:
                raise ConformanceFailure(f"a Remaining Length of more than four bytes: {self.buffer[:8].hex(' ')}")
        if len(self.buffer) < index + length:
            return None
        frame = (self.buffer[0], self.buffer[1:index], self.buffer[index:index + length])
        self.buffer = self.buffer[index + length:]
        return frame

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.sock.close()
            self._record("event", "CLOSE", "the test closed the socket", b"")


def _vbi_problem(encoded: bytes, what: str) -> str | None:
    value, multiplier = 0, 1
    for byte in encoded:
        value += (byte & 0x7F) * multiplier
        multiplier *= 128
    if encoded != encode_variable_byte_integer(value):
        return f"{what} {value} encoded as {encoded.hex(' ')}, not in the fewest bytes"
    return None


def _property_length_at(body: bytes, offset: int) -> tuple[int, bytes]:
    """The Property Length (value, encoded bytes) starting at body[offset]."""
    end = offset
    while body[end] & 0x80:
        end += 1
    encoded = body[offset:end + 1]
    value, multiplier = 0, 1
    for byte in encoded:
        value += (byte & 0x7F) * multiplier
        multiplier *= 128
    return value, encoded


def _check_frame(first: int, length_bytes: bytes, body: bytes, version: int) -> list[str]:
    kind, flags = first >> 4, first & 0x0F
    name = {2: "CONNACK", 3: "PUBLISH", 4: "PUBACK", 5: "PUBREC", 6: "PUBREL", 7: "PUBCOMP", 9: "SUBACK",
            11: "UNSUBACK", 13: "PINGRESP", 14: "DISCONNECT", 15: "AUTH"}.get(kind, f"type {kind}")
    problems = []
    problem = _vbi_problem(length_bytes, f"{name} Remaining Length")
    if problem:
        problems.append(problem)
    if kind == 3:
        qos = (flags >> 1) & 3
        if qos == 3 or (qos == 0 and flags & 0x08):
            problems.append(f"PUBLISH with flags {flags:04b} (QoS 3, or DUP with QoS 0)")
    elif kind in FIXED_FLAGS:
        if flags != FIXED_FLAGS[kind]:
            problems.append(f"{name} with fixed-header flags {flags:04b}, must be {FIXED_FLAGS[kind]:04b}")
    else:
        problems.append(f"the server sent packet type {kind}")
    if version != MQTT_5:
        return problems
    offset = None  # where the Property Length must be, if the packet has one
    if kind == 2 or kind in (9, 11):
        offset = 2
    elif kind == 3:
        topic_length = int.from_bytes(body[:2], "big")
        offset = 2 + topic_length + (2 if (flags >> 1) & 3 else 0)
    elif kind in (4, 5, 6, 7) and len(body) > 3:
        offset = 3
    elif kind == 14 and len(body) > 1:
        offset = 1
    if offset is not None:
        if offset >= len(body):
            problems.append(f"{name} without a Property Length ({body.hex(' ')}) [MQTT-2.2.2-1]")
        else:
            value, encoded = _property_length_at(body, offset)
            problem = _vbi_problem(encoded, f"{name} Property Length")
            if problem:
                problems.append(problem)
            if offset + len(encoded) + value > len(body):
                problems.append(f"{name} Property Length {value} runs past the packet")
    return problems


def _answer(wire, first_byte: int, name: str) -> None:
    """The next frame must be `name` (its first byte exactly: flags included); the frame's own encoding is
    judged afterwards with all the others."""
    first, _, body = wire.next()
    if first >> 4 != first_byte >> 4:
        raise ConformanceFailure(f"expected {name}, got {first:02x} {body.hex(' ')}")


@pytest.mark.spec("MQTT-2.2.2-1", "MQTT-2.3.1-5", version="3.1.1")
@pytest.mark.spec("MQTT-2.1.3-1", "MQTT-1.5.5-1", "MQTT-2.2.2-1", "MQTT-2.2.1-2", version="5.0")
def test_server_packets_are_encoded_exactly(client_factory, version, topic, broker):
    """Every packet the server sends in a session with all flows (CONNACK, SUBACK, PUBLISH at QoS 0/1/2
    incl. one over 127 bytes, PUBREL, PINGRESP, UNSUBACK) has the fixed-header flags of its type, a
    Remaining Length (and 5.0 Property Length) in the fewest bytes, and in 5.0 a Property Length even
    where there are no properties."""
    wire = _Wire(broker.host, broker.port, version, "w" + uuid.uuid4().hex[:12], client_factory.clients)
    try:
        username, password = broker.profile.credentials or (None, None)  # a broker that wants them gets them
        wire.send(Connect(client_id=wire.client_id, protocol_level=version, keep_alive=30, username=username,
                          password=password.encode("utf-8") if password is not None else None))
        _answer(wire, 0x20, "CONNACK")
        wire.send(Subscribe(1, [Subscription(f"{topic}/e", 2)]))
        _answer(wire, 0x90, "SUBACK")
        publisher = client_factory("publisher")
        publisher.publish(f"{topic}/e", b"0" * 200, qos=0)
        publisher.publish(f"{topic}/e", b"one", qos=1)
        publisher.publish(f"{topic}/e", b"two", qos=2)
        pending: list = []  # PUBLISHes read while waiting for a PUBREL
        for _ in range(3):
            first, _, body = pending.pop(0) if pending else wire.next()
            if first >> 4 != 3:
                raise ConformanceFailure(f"expected a PUBLISH, got {first:02x} {body.hex(' ')}")
            qos = (first >> 1) & 3
            if qos == 0:  # no Packet Identifier: topic, (5.0) an empty Property Length, then the payload
                expected = len(f"{topic}/e".encode()).to_bytes(2, "big") + f"{topic}/e".encode()
                expected += (b"\x00" if version == MQTT_5 else b"") + b"0" * 200
                if body != expected and not (version == MQTT_5 and body.endswith(b"0" * 200)):
                    raise ConformanceFailure(f"QoS 0 PUBLISH body {body[:40].hex(' ')}... is not topic, "
                                             "properties, payload (a QoS 0 PUBLISH has no Packet Identifier)")
            if qos:
                topic_length = int.from_bytes(body[:2], "big")
                packet_id = int.from_bytes(body[2 + topic_length:4 + topic_length], "big")
                if qos == 1:
                    wire.send(Puback(packet_id))
                else:
                    wire.send(Pubrec(packet_id))
                    answer = wire.next()
                    while answer[0] >> 4 == 3:  # another of the PUBLISHes may come before the PUBREL
                        pending.append(answer)
                        answer = wire.next()
                    if answer[0] >> 4 != 6:
                        raise ConformanceFailure(f"expected PUBREL, got {answer[0]:02x}")
                    wire.send(Pubcomp(packet_id))
        wire.send(Pingreq())
        _answer(wire, 0xD0, "PINGRESP")
        wire.send(Unsubscribe(2, [f"{topic}/e"]))
        _answer(wire, 0xB0, "UNSUBACK")
        problems = [p for frame in wire.frames for p in _check_frame(*frame, version)]
        if problems:
            raise ConformanceFailure("; ".join(problems))
    finally:
        wire.close()


# ------------------------------------------------------------------------- the server's DISCONNECT


DISCONNECT_CODES = {0x00, 0x04, 0x80, 0x81, 0x82, 0x83, 0x87, 0x89, 0x8B, 0x8C, 0x8D, 0x8E, 0x8F, 0x90, 0x93, 0x94,
                    0x95, 0x96, 0x97, 0x98, 0x99, 0x9A, 0x9B, 0x9C, 0x9D, 0x9E, 0x9F, 0xA0, 0xA1, 0xA2}  # 3.14.2.1

PROVOCATIONS = [
    ("PUBLISH with QoS 3", lambda topic: Publish(f"{topic}/x", b"x", qos=3, packet_id=1).encode(5)),
    ("PUBLISH with Topic Alias 0", lambda topic: Publish(f"{topic}/x", b"x",
                                                         properties=Properties(topic_alias=0)).encode(5)),
    ("SUBSCRIBE with Retain Handling 3", lambda topic: Subscribe(1, [Subscription(f"{topic}/x", 0,
                                                                                  retain_handling=3)]).encode(5)),
    ("second CONNECT", lambda topic: Connect(client_id="again", protocol_level=5).encode(5)),
]


@pytest.mark.spec("MQTT-3.14.2-1", "MQTT-3.14.4-1", "MQTT-3.14.4-2", "MQTT-4.13.2-1", "MQTT-3.14.2-2", version="5.0")
def test_server_disconnect_uses_valid_code_and_is_last(client_factory, version, topic):
    """Four protocol errors, each while messages stream to the offending client: if the server sends a
    DISCONNECT, its reason code is one of the DISCONNECT table, 0x80 or above, it carries no Session
    Expiry Interval, nothing follows it, and the connection closes."""
    seen = []
    publisher = client_factory("publisher")
    for note, build in PROVOCATIONS:
        client = client_factory("offender")
        client.subscribe((f"{topic}/stream", 0))
        for n in range(10):
            publisher.publish(f"{topic}/stream", b"%d" % n)
        client.send_raw(build(topic), note=note)
        frames = []
        stayed_open: ConformanceFailure | None = None
        try:
            while True:
                frames.append(client.expect_raw(3.0))
        except ConnectionClosed:
            pass
        except ConformanceFailure as exc:
            stayed_open = exc
        disconnects = [i for i, raw in enumerate(frames) if raw[0] >> 4 == 14]
        if stayed_open is not None:
            # after its DISCONNECT the server closes [MQTT-3.14.4-2]; without one, the protocol error's reason
            # (0x80 or above) still means the connection is closed [MQTT-4.13.2-1]
            fail_statement("MQTT-3.14.4-2" if disconnects else "MQTT-4.13.2-1",
                           f"{note}: the connection stayed open after "
                           f"{'its DISCONNECT' if disconnects else 'the error'} ({stayed_open})")
        if not disconnects:
            continue
        first = disconnects[0]
        raw = frames[first]
        if first != len(frames) - 1:
            raise ConformanceFailure(f"{note}: the server sent {[f[:2].hex() for f in frames[first + 1:]]} after its "
                                     f"DISCONNECT {raw.hex(' ')} [MQTT-3.14.4-1]")
        code = raw[2] if len(raw) > 2 else 0x00  # (raw frames from the client have a one-byte length here)
        if code not in DISCONNECT_CODES:
            raise ConformanceFailure(f"{note}: DISCONNECT reason 0x{code:02X} is not in the DISCONNECT table")
        if code < 0x80:
            raise ConformanceFailure(f"{note}: DISCONNECT for a protocol error with reason 0x{code:02X}")
        # Any failure code of the table is allowed: 4.13 names 0x81/0x82 "unless a more specific Reason Code
        # has been defined", so the test does not demand one of them.
        disconnect = client.decode_raw(raw)
        if not isinstance(disconnect, Disconnect):  # pragma: no cover - the first byte said DISCONNECT
            raise ConformanceFailure(f"{note}: not a DISCONNECT: {raw.hex(' ')}")
        if disconnect.properties.session_expiry_interval is not None:
            raise ConformanceFailure(f"{note}: the server's DISCONNECT carries a Session Expiry Interval "
                                     "[MQTT-3.14.2-2]")
        seen.append(f"{note}: 0x{code:02X}")
    if not seen:
        not_applicable("the server closed without DISCONNECT every time; there is no DISCONNECT to check")
