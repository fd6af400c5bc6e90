"""Checks shared by the conformance tests."""

from __future__ import annotations

from refbroker.protocol import MQTT_5, Connack, Disconnect, Properties, decode_packet

from ..client import ConformanceFailure, ConnectionClosed, RawClient, summarize

#: Seconds of silence that show a packet is *not* coming (only used where absence is the point).
QUIET = 0.2

MALFORMED = 0x81
PROTOCOL_ERROR = 0x82
#: What a v5 server may put in the DISCONNECT it sends before closing for a bad packet: 4.13 asks for
#: 0x81 (Malformed Packet) or 0x82 (Protocol Error) unless a more specific code is defined. The close is
#: the MUST [MQTT-4.13.1-1]; the DISCONNECT is a SHOULD, so tests accept either generic code, plus the
#: specific one where the spec names it, and do not fail a server for choosing 0x81 over 0x82.
BAD_PACKET_REASONS = (MALFORMED, PROTOCOL_ERROR)


def session_properties(version: int, expiry: int = 300) -> Properties | None:
    """CONNECT properties that keep the session after the connection closes (5.0); None for 3.1.1."""
    return Properties(session_expiry_interval=expiry) if version == MQTT_5 else None


def check_server_disconnect(disconnect: Disconnect | None) -> None:
    """Rules for any DISCONNECT a server sends: never a Session Expiry Interval [MQTT-3.14.2-2]."""
    if disconnect is not None and disconnect.properties.session_expiry_interval is not None:
        raise ConformanceFailure(f"the server's DISCONNECT carries a Session Expiry Interval: {summarize(disconnect)}")


def expect_close_for_bad_packet(client: RawClient, reasons=BAD_PACKET_REASONS, timeout: float = 3.0):
    """The broker must close the connection; a v5 DISCONNECT before it must carry one of `reasons`."""
    disconnect = client.expect_disconnect(timeout, reasons=reasons if client.version == MQTT_5 else None)
    check_server_disconnect(disconnect)
    return disconnect


def expect_connect_refused(client: RawClient, *, v3_codes=(), v5_codes=(), timeout: float = 3.0) -> Connack | None:
    """After a CONNECT the broker must refuse it: close at once, or send a failure CONNACK and close.

    `v3_codes`/`v5_codes` are the CONNACK codes allowed before the close (empty: no CONNACK allowed).
    Returns the CONNACK if one came. A server must not send DISCONNECT before a successful CONNACK
    [MQTT-3.14.0-1], nor a CONNACK with Session Present set and a failure code [MQTT-3.2.2-4/-6].
    """
    allowed = v5_codes if client.version == MQTT_5 else v3_codes
    try:
        raw = client.expect_raw(timeout)
    except ConnectionClosed:
        return None
    first = raw[0]
    if first >> 4 == 14:
        raise ConformanceFailure(f"the broker sent DISCONNECT before any CONNACK ({raw.hex(' ')}); "
                                 "a server sends DISCONNECT only after a successful CONNACK [MQTT-3.14.0-1]")
    if first != 0x20:
        raise ConformanceFailure(f"expected the broker to refuse the CONNECT, got bytes {raw.hex(' ')}")
    length = 1
    while raw[length] & 0x80:
        length += 1
    connack = decode_packet(first, raw[1 + length:], client.version)
    assert isinstance(connack, Connack)
    if connack.reason_code == 0:
        raise ConformanceFailure(f"the broker accepted a CONNECT it must refuse: {summarize(connack)}")
    if connack.reason_code not in allowed:
        codes = ", ".join(f"0x{c:02X}" for c in allowed) or "none (it must close without a CONNACK)"
        raise ConformanceFailure(f"CONNACK code 0x{connack.reason_code:02X} where the allowed codes are {codes}")
    if connack.session_present:
        raise ConformanceFailure("a refusing CONNACK has Session Present set")
    client.expect_disconnect()
    return connack


def payloads(publishes) -> list[bytes]:
    return [p.payload for p in publishes]


def receive_publishes(client: RawClient, count: int, timeout: float = 3.0, *, ack: bool = True) -> list:
    """Wait for `count` PUBLISHes, then QUIET seconds more: returns all that came, extras included."""
    received = client.collect_publishes(timeout, until_count=count, ack=ack)
    return received + client.collect_publishes(QUIET, ack=ack)


def gather_publishes(clients: list[RawClient], count: int, timeout: float = 3.0) -> list[list]:
    """PUBLISHes arriving at any of `clients` until `count` in total (then QUIET more); one list per client."""
    import time

    results: list[list] = [[] for _ in clients]
    deadline = time.monotonic() + timeout
    while sum(map(len, results)) < count and time.monotonic() < deadline:
        for index, client in enumerate(clients):
            results[index] += client.collect_publishes(0.02)
    for index, client in enumerate(clients):
        results[index] += client.collect_publishes(QUIET)
    return results


# ------------------------------------------------------------- hand-built MQTT 5.0 packets (for errors)
# The codec refuses to encode some broken packets (a property twice, a property in the wrong packet),
# so the tests that need them build the bytes here from encoded pieces.


def property_bytes(**values) -> bytes:
    """The encoded properties of Properties(**values), without their Property Length."""
    from refbroker.protocol.primitives import decode_variable_byte_integer
    from refbroker.protocol.properties import encode_properties

    raw = encode_properties(Properties(**values))
    length, used = decode_variable_byte_integer(raw)
    return raw[used:used + length]


def property_block(*parts: bytes) -> bytes:
    """A Property Length followed by `parts` (e.g. the same property twice)."""
    from refbroker.protocol.primitives import encode_variable_byte_integer

    body = b"".join(parts)
    return encode_variable_byte_integer(len(body)) + body


def twice(**values) -> bytes:
    """A property block carrying the property (or properties) of `values` two times."""
    one = property_bytes(**values)
    return property_block(one, one)


def frame(first_byte: int, body: bytes) -> bytes:
    from ..client import frame_bytes

    return frame_bytes(first_byte, body)


def v5_connect(client_id: str, props: bytes = b"\x00", *, will: tuple[str, bytes, int] | None = None,
               will_props: bytes = b"\x00", clean_start: bool = True, keep_alive: int = 30) -> bytes:
    """A v5 CONNECT with the given (already encoded) property blocks."""
    from refbroker.protocol.primitives import encode_binary, encode_utf8

    flags = (clean_start << 1) | ((0x04 | (will[2] << 3)) if will else 0)
    body = encode_utf8("MQTT") + bytes((5, flags)) + keep_alive.to_bytes(2, "big") + props + encode_utf8(client_id)
    if will:
        body += will_props + encode_utf8(will[0]) + encode_binary(will[1])
    return frame(0x10, body)


def v5_publish(topic: str, payload: bytes = b"x", *, qos: int = 0, packet_id: int | None = None,
               props: bytes = b"\x00", topic_bytes: bytes | None = None) -> bytes:
    """A v5 PUBLISH with an already encoded property block (and optionally raw topic bytes)."""
    from refbroker.protocol.primitives import encode_utf8

    name = encode_utf8(topic) if topic_bytes is None else len(topic_bytes).to_bytes(2, "big") + topic_bytes
    body = name + (packet_id.to_bytes(2, "big") if qos else b"") + props + payload
    return frame(0x30 | (qos << 1), body)


def v5_ack(first_byte: int, packet_id: int, reason: int = 0, props: bytes = b"\x00") -> bytes:
    """PUBACK (0x40), PUBREC (0x50), PUBREL (0x62) or PUBCOMP (0x70) with a reason code and properties."""
    return frame(first_byte, packet_id.to_bytes(2, "big") + bytes((reason,)) + props)


def v5_subscribe(packet_id: int, topic_filter: str, options: int = 0, props: bytes = b"\x00") -> bytes:
    from refbroker.protocol.primitives import encode_utf8

    return frame(0x82, packet_id.to_bytes(2, "big") + props + encode_utf8(topic_filter) + bytes((options,)))


def v5_disconnect(reason: int = 0, props: bytes = b"\x00") -> bytes:
    return frame(0xE0, bytes((reason,)) + props)
