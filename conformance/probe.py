"""What a broker says about itself before any test runs: the protocol versions it speaks, the limits its
MQTT 5.0 CONNACK announces, and its name and version where it publishes them.

`probe_broker(host, port, versions)` opens one connection per protocol version with a plain CONNECT
(Clean Start, Keep Alive 30) and reads the answer:

* MQTT 3.1.1 (and 3.1, protocol name "MQIsdp" at level 3): CONNACK return code 0x00 means the broker
  speaks it; 0x01 (unacceptable protocol level) or a close without CONNACK means it does not [MQTT-3.1.2-2];
* MQTT 5.0: a successful v5 CONNACK means it speaks it; a CONNACK 0x84 (Unsupported Protocol Version),
  a 3.1.1-format refusal `20 02 00 01` (what a 3.1.1-only server owes an unknown level [MQTT-3.1.2-2])
  or a close without CONNACK means it does not.

Any other answer (e.g. Not authorized) counts as speaking the version: the tests then report what
happens. No answer at all (some brokers ignore a CONNECT of a version they do not speak) means "not
spoken" when the broker answers another version's CONNECT (see `probe_broker`). The v5 CONNACK's
properties are the broker's announced limits (`ServerLimits`), which the raw client uses to keep its
packets within them (see `RawClient.server_limits`).

`read_identity` subscribes to `$SYS/broker/version` (a topic mosquitto and several other brokers
publish as a retained message, e.g. "mosquitto version 2.0.11") and returns (name, version) when a
message arrives within a second; brokers that do not publish it are simply not identified.
"""

from __future__ import annotations

import re
import socket
import time
from dataclasses import dataclass, field

from refbroker.protocol import (
    MQTT_3_1,
    MQTT_3_1_1,
    MQTT_5,
    Connack,
    Connect,
    MQTTError,
    Properties,
    Publish,
    StreamDecoder,
    Suback,
    Subscribe,
    Subscription,
    decode_packet,
)

__all__ = ["ServerLimits", "VersionSupport", "parse_identity", "probe_broker", "probe_version", "read_identity"]

PROBE_TIMEOUT = 3.0
IDENTITY_TOPIC = "$SYS/broker/version"


@dataclass(frozen=True)
class ServerLimits:
    """The limits and optional features a v5 CONNACK announces; None where it says nothing (the default
    applies: no limit, or the feature is available)."""

    maximum_packet_size: int | None = None
    receive_maximum: int | None = None
    topic_alias_maximum: int | None = None
    maximum_qos: int | None = None
    retain_available: bool | None = None
    wildcard_subscription_available: bool | None = None
    subscription_identifier_available: bool | None = None
    shared_subscription_available: bool | None = None

    @classmethod
    def from_properties(cls, props: Properties | None) -> ServerLimits:
        if props is None:
            return cls()

        def flag(value):
            return None if value is None else bool(value)

        return cls(maximum_packet_size=props.maximum_packet_size, receive_maximum=props.receive_maximum,
                   topic_alias_maximum=props.topic_alias_maximum, maximum_qos=props.maximum_qos,
                   retain_available=flag(props.retain_available),
                   wildcard_subscription_available=flag(props.wildcard_subscription_available),
                   subscription_identifier_available=flag(props.subscription_identifier_available),
                   shared_subscription_available=flag(props.shared_subscription_available))

    def announced(self) -> dict[str, object]:
        """The limits the CONNACK set, for the results header."""
        return {name: value for name, value in self.__dict__.items() if value is not None}


@dataclass
class VersionSupport:
    version: str
    supported: bool
    #: what the broker answered, in words and bytes (the evidence for "does not support")
    answer: str
    limits: ServerLimits = field(default_factory=ServerLimits)
    #: the broker refused the probe's CONNECT as not authorised (3.1/3.1.1 return code 4 or 5, 5.0 0x86 or
    #: 0x87): it admits no client without credentials the probe did not have
    needs_credentials: bool = False
    #: nothing came back within PROBE_TIMEOUT, neither an answer nor a close
    silent: bool = False
    #: the probe could not connect at all
    unreachable: bool = False

    @property
    def responsive(self) -> bool:
        """The broker answered this CONNECT (a CONNACK, another packet, or a close) within PROBE_TIMEOUT."""
        return not (self.silent or self.unreachable)

    def reason(self) -> str:
        if self.needs_credentials:
            return (f"the broker admits no MQTT {self.version} client without a user name and password ({self.answer}); "
                    "give them in the target profile: [credentials] username = ..., password = ...")
        return f"the broker does not support MQTT {self.version}: {self.answer}"


def _read_frame(sock: socket.socket, version: int, deadline: float) -> bytes | None:
    """The first complete frame the server sends, b"" if it closes first, None on timeout."""
    decoder = StreamDecoder(version)
    received = b""
    while time.monotonic() < deadline:
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            data = sock.recv(4096)
        except TimeoutError:
            return None
        except OSError:
            return b""
        if not data:
            return b""
        received += data
        try:
            frame = decoder.next_raw_frame(data)
        except MQTTError:
            return received
        if frame is not None:
            return received[: len(received) - decoder.buffered]
    return None


def _connack_of(raw: bytes, version: int) -> Connack | None:
    length = 1
    while length < len(raw) and raw[length] & 0x80:
        length += 1
    try:
        packet = decode_packet(raw[0], raw[1 + length:], version)
    except (MQTTError, KeyError, ValueError, IndexError):
        return None
    return packet if isinstance(packet, Connack) else None


_LEVELS = {"3.1": MQTT_3_1, "3.1.1": MQTT_3_1_1, "5.0": MQTT_5}


#: CONNACK codes that refuse a client as not authorised: 3.1/3.1.1 (bad user name or password, not
#: authorized) and 5.0 (the same two)
_AUTH_REFUSALS = {MQTT_3_1: (0x04, 0x05), MQTT_3_1_1: (0x04, 0x05), MQTT_5: (0x86, 0x87)}


def _connect(client_id: str, level: int, credentials: tuple[str, str] | None) -> Connect:
    username, password = credentials if credentials is not None else (None, None)
    return Connect(client_id=client_id, protocol_level=level, keep_alive=30, username=username,
                   password=password.encode("utf-8") if password is not None else None)


def probe_version(host: str, port: int, version: str, client_id: str,
                  credentials: tuple[str, str] | None = None) -> VersionSupport:
    level = _LEVELS[version]
    try:
        sock = socket.create_connection((host, port), timeout=PROBE_TIMEOUT)
    except OSError as exc:
        return VersionSupport(version, True, f"not probed: cannot connect ({exc})", unreachable=True)
    with sock:
        sock.sendall(_connect(client_id, level, credentials).encode(level))
        raw = _read_frame(sock, level, time.monotonic() + PROBE_TIMEOUT)
        if raw is None:
            return VersionSupport(version, True, f"no answer within {PROBE_TIMEOUT:g} s to a CONNECT "
                                                 "(assumed supported)", silent=True)
        if raw == b"":
            return VersionSupport(version, False, f"it closed the connection without CONNACK after an MQTT {version} "
                                                  "CONNECT")
        shown = raw[:16].hex(" ")
        if raw[0] != 0x20:
            return VersionSupport(version, True, f"answered a CONNECT with {shown} (not a CONNACK; assumed supported)")
        if level == MQTT_5 and raw[:4] == b"\x20\x02\x00\x01":
            return VersionSupport(version, False, f"it answered an MQTT 5.0 CONNECT with the MQTT 3.1.1 refusal "
                                                  f"{shown} (unacceptable protocol level)")
        connack = _connack_of(raw, level)
        if connack is None:
            return VersionSupport(version, True, f"answered with a CONNACK our decoder refuses ({shown})")
        if connack.reason_code == 0:
            limits = ServerLimits.from_properties(connack.properties if level == MQTT_5 else None)
            try:
                sock.sendall(b"\xe0\x00")  # DISCONNECT (valid in both versions)
            except OSError:
                pass
            return VersionSupport(version, True, f"CONNACK {shown}", limits)
        # 3.1 and 3.1.1: return code 1 (unacceptable protocol version); 5.0: 0x84
        if (level != MQTT_5 and connack.reason_code == 0x01) or (level == MQTT_5 and connack.reason_code == 0x84):
            return VersionSupport(version, False, f"it refused an MQTT {version} CONNECT with CONNACK {shown}")
        if connack.reason_code in _AUTH_REFUSALS[level] and credentials is None:
            return VersionSupport(version, True, f"it refused the probe's CONNECT (no user name) with CONNACK {shown}",
                                  needs_credentials=True)
        return VersionSupport(version, True, f"it refused the probe's CONNECT with CONNACK {shown} "
                                             "(not a version refusal)")


def probe_broker(host: str, port: int, versions: tuple[str, ...], client_id: str,
                 credentials: tuple[str, str] | None = None) -> dict[str, VersionSupport]:
    """Probe each of `versions`. Some brokers ignore a CONNECT of a version they do not speak instead of
    refusing it; so a version whose CONNECT gets no answer at all (neither a packet nor a close) is not
    spoken when the broker does answer another version's CONNECT (one of `versions`, or else one probed
    only as this reference) and the silent one, asked a second time, is silent again. A broker silent to
    every version stays "assumed supported", and the tests report what happens."""
    def probe(version: str, attempt: str = "") -> VersionSupport:
        return probe_version(host, port, version, f"{client_id}v{version.replace('.', '')}{attempt}", credentials)

    found = {version: probe(version) for version in versions}
    silent = [version for version, support in found.items() if support.silent]
    if not silent:
        return found
    reference = next((support for support in found.values() if support.responsive), None)
    for other in ("5.0", "3.1.1", "3.1"):
        if reference is None and other not in found:
            support = probe(other)
            reference = support if support.responsive else None
    if reference is None:
        return found
    for version in silent:
        again = probe(version, "b")  # a second chance: the first connection may have met a broker warming up
        found[version] = again if not again.silent else VersionSupport(
            version, False, f"no answer within {PROBE_TIMEOUT:g} s to an MQTT {version} CONNECT, twice, where it "
                            f"answered an MQTT {reference.version} CONNECT ({reference.answer})")
    return found


_IDENTITY = re.compile(r"^\s*(?P<name>[A-Za-z][\w.+-]*?)(?:\s+version)?[\s/:-]+v?(?P<version>\d+(?:\.\d+)+\S*)")


def parse_identity(text: str) -> tuple[str, str] | None:
    """"mosquitto version 2.0.11" -> ("mosquitto", "2.0.11"); None when the text has no name and version."""
    match = _IDENTITY.match(text or "")
    if not match:
        return None
    return match.group("name").lower(), match.group("version")


def read_identity(host: str, port: int, version: str, client_id: str, wait: float = 1.0,
                  credentials: tuple[str, str] | None = None) -> tuple[str, str] | None:
    """(name, version) from the broker's retained `$SYS/broker/version`, or None."""
    level = _LEVELS.get(version, MQTT_3_1_1)
    try:
        sock = socket.create_connection((host, port), timeout=PROBE_TIMEOUT)
    except OSError:
        return None
    with sock:
        try:
            sock.sendall(_connect(client_id, level, credentials).encode(level))
            sock.sendall(Subscribe(1, [Subscription(IDENTITY_TOPIC, 0)]).encode(level))
        except OSError:
            return None
        decoder = StreamDecoder(level)
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            sock.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                data = sock.recv(4096)
            except (TimeoutError, OSError):
                return None
            if not data:
                return None
            try:
                frames = _frames(decoder, data)
            except MQTTError:
                return None
            for first, body in frames:
                try:
                    packet = decode_packet(first, body, level)
                except (MQTTError, KeyError, ValueError):
                    return None
                if isinstance(packet, Connack) and packet.reason_code != 0:
                    return None
                if isinstance(packet, Suback) and all(code >= 0x80 for code in packet.reason_codes):
                    return None
                if isinstance(packet, Publish) and packet.topic == IDENTITY_TOPIC:
                    try:
                        sock.sendall(b"\xe0\x00")
                    except OSError:
                        pass
                    return parse_identity(packet.payload.decode("utf-8", "replace"))
    return None


def _frames(decoder: StreamDecoder, data: bytes) -> list[tuple[int, bytes]]:
    frames = []
    frame = decoder.next_raw_frame(data)
    while frame is not None:
        frames.append(frame)
        frame = decoder.next_raw_frame()
    return frames
