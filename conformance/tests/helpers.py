"""Checks shared by the conformance tests."""

from __future__ import annotations

from refbroker.protocol import MQTT_5, Connack, Disconnect, Properties

from ..checks import check, statement
from ..client import ConformanceFailure, RawClient, summarize

#: Seconds of silence that show a packet is *not* coming (only used where absence is the point).
QUIET = 0.2

#: "The QoS of Payload Messages sent in response to a Subscription MUST be the minimum of the QoS of the
#: originally published message and the maximum QoS granted by the Server" -- its id per protocol level
QOS_MIN = {4: "MQTT-3.8.4-6", 5: "MQTT-3.8.4-8"}

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
        raise ConformanceFailure(f"the server's DISCONNECT carries a Session Expiry Interval: {summarize(disconnect)} "
                                 "[MQTT-3.14.2-2]")


def expect_close_for_bad_packet(client: RawClient, reasons=BAD_PACKET_REASONS, timeout: float = 3.0):
    """The broker must close the connection; a v5 DISCONNECT before it must carry one of `reasons`."""
    disconnect = client.expect_disconnect(timeout, reasons=reasons if client.version == MQTT_5 else None)
    check_server_disconnect(disconnect)
    return disconnect


#: "If a Server sends a CONNACK packet containing a non-zero return/reason code it MUST set Session Present
#: to 0" and "... MUST then close the Network Connection", per protocol level
REFUSAL_SESSION_PRESENT = {4: "MQTT-3.2.2-4", 5: "MQTT-3.2.2-6"}
REFUSAL_CLOSE = {4: "MQTT-3.2.2-5", 5: "MQTT-3.2.2-7"}


class ConnectAccepted(ConformanceFailure):
    """The broker accepted (CONNACK 0) a CONNECT it must refuse: a failure of the test whose statement is
    that refusal; a test that only builds on the refusal can say it could not check its own statement."""


def expect_connect_refused(client: RawClient, *, v3_codes=(), v5_codes=(), timeout: float = 3.0,
                           code_statement: str | None = None, other_answers: tuple[bytes, ...] = ()) -> Connack | None:
    """After a CONNECT the broker must refuse it: close at once, or send a failure CONNACK and close.

    `v3_codes`/`v5_codes` are the CONNACK codes allowed before the close (empty: no CONNACK allowed);
    `other_answers` are exact byte strings also allowed before the close (e.g. the 3.1.1 refusal
    20 02 00 01 to a CONNECT whose protocol the server cannot tell);
    a code outside them fails `code_statement` (default: the test's principal statement, like a CONNECT
    that is accepted or left open). Returns the CONNACK if one came. A server must not send DISCONNECT
    before a successful CONNACK [MQTT-3.14.0-1], nor a CONNACK with Session Present set and a failure
    code [MQTT-3.2.2-4 (3.1.1), MQTT-3.2.2-6 (5.0)], and closes after a refusing CONNACK [MQTT-3.2.2-5
    (3.1.1), MQTT-3.2.2-7 (5.0)].
    """
    allowed = v5_codes if client.version == MQTT_5 else v3_codes
    raw = client.raw_answer_or_close(timeout)
    if raw is None:
        return None
    if raw in other_answers:
        with statement(REFUSAL_CLOSE[client.version]):
            client.expect_disconnect()
        return None
    first = raw[0]
    if first >> 4 == 14:
        raise ConformanceFailure(f"the broker sent DISCONNECT before any CONNACK ({raw.hex(' ')}); "
                                 "a server sends DISCONNECT only after a successful CONNACK [MQTT-3.14.0-1]")
    if first != 0x20:
        raise ConformanceFailure(f"expected the broker to refuse the CONNECT, got bytes {raw.hex(' ')}")
    connack = client.decode_raw(raw)
    if not isinstance(connack, Connack):  # pragma: no cover - the first byte said CONNACK
        raise ConformanceFailure(f"expected a CONNACK, got {summarize(connack)}")
    if connack.reason_code == 0:
        raise ConnectAccepted(f"the broker accepted a CONNECT it must refuse: {summarize(connack)}")
    if connack.reason_code not in allowed:
        codes = ", ".join(f"0x{c:02X}" for c in allowed) or "none (it must close without a CONNACK)"
        message = f"CONNACK code 0x{connack.reason_code:02X} where the allowed codes are {codes}"
        if code_statement is None:
            raise ConformanceFailure(message)
        check(code_statement, False, message)
    check(REFUSAL_SESSION_PRESENT[client.version], not connack.session_present,
          f"a refusing CONNACK has Session Present set: {summarize(connack)}")
    with statement(REFUSAL_CLOSE[client.version]):
        client.expect_disconnect()
    return connack


#: seconds of scheduling slack allowed beyond the spec's 1.5 x Keep Alive bound (a loaded machine delays both
#: the broker's timer and our reading of the close)
KEEP_ALIVE_TOLERANCE = 1.0
#: silent connections sampled per Keep Alive test, spread over four seconds, so that a broker whose check runs
#: on a coarse periodic timer is caught at several phases of it in every run: one sample, or five within a
#: second, passed or failed by luck on mosquitto 2.0.11 (its closes come after 1.2 to 7 s with Keep Alive 1)
KEEP_ALIVE_SAMPLES = 9


def silent_connections_close_times(client_factory, first: RawClient, keep_alive: float, *, name: str = "silent",
                                   samples: int = KEEP_ALIVE_SAMPLES, spacing: float = 0.5,
                                   **connect_kwargs) -> tuple[float, list[float | None]]:
    """Let `first` and `samples - 1` more connections (Keep Alive `keep_alive`) fall silent `spacing` s apart
    and measure when the broker closes each: all of them are watched together (every few hundredths of a
    second), so a close is timed when it happens, not when the test gets round to looking.

    Returns (bound, [seconds from the connection's last packet to its close, or None if it was still open at
    the bound 1.5 x Keep Alive + KEEP_ALIVE_TOLERANCE]). [MQTT-3.1.2-24] (3.1.1), [MQTT-3.1.2-22] (5.0):
    "within one and a half times the Keep Alive time period ... MUST disconnect"."""
    import time

    bound = 1.5 * keep_alive + KEEP_ALIVE_TOLERANCE
    silent = [(first, time.monotonic())]
    closed_at: dict[int, float] = {}

    def watch(seconds: float) -> None:
        end = time.monotonic() + seconds
        while True:
            for index, (client, _) in enumerate(silent):
                if index not in closed_at and not client.is_open(within=0.005):
                    closed_at[index] = time.monotonic()
            if time.monotonic() >= end:
                return

    for index in range(samples - 1):
        watch(spacing)
        extra = client_factory(f"{name}{index + 2}", keep_alive=int(keep_alive), **connect_kwargs)
        silent.append((extra, time.monotonic()))
    while any(index not in closed_at and time.monotonic() < since + bound for index, (_, since) in enumerate(silent)):
        watch(0.02)
    closed_after: list[float | None] = []
    for index, (_, since) in enumerate(silent):
        after = closed_at[index] - since if index in closed_at else None
        closed_after.append(after if after is not None and after <= bound else None)
    return bound, closed_after


def describe_closes(closed_after: list[float | None]) -> str:
    return ", ".join("-" if after is None else f"{after:.2f} s" for after in closed_after)


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
               will_props: bytes = b"\x00", clean_start: bool = True, keep_alive: int = 30,
               credentials: tuple[str, str] | None = None) -> bytes:
    """A v5 CONNECT with the given (already encoded) property blocks (and the target's credentials)."""
    from refbroker.protocol.primitives import encode_binary, encode_utf8

    flags = (clean_start << 1) | ((0x04 | (will[2] << 3)) if will else 0) | (0xC0 if credentials else 0)
    body = encode_utf8("MQTT") + bytes((5, flags)) + keep_alive.to_bytes(2, "big") + props + encode_utf8(client_id)
    if will:
        body += will_props + encode_utf8(will[0]) + encode_binary(will[1])
    if credentials:
        body += encode_utf8(credentials[0]) + encode_binary(credentials[1].encode("utf-8"))
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
