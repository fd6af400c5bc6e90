"""The data types of MQTT section 1.5: integers, Variable Byte Integers, UTF-8 strings, binary data.

`Reader` walks a packet body and raises `MalformedPacket` when the bytes run out or break a rule;
the `encode_*` functions build bytes. Both are used by every packet, so the rules live here once.
"""

from __future__ import annotations

import struct

from .errors import MalformedPacket, rule_for_version

MAX_VARIABLE_BYTE_INTEGER = 268_435_455  # 0xFF 0xFF 0xFF 0x7F, four bytes (1.5.5)
MAX_TWO_BYTE = 0xFFFF
MAX_FOUR_BYTE = 0xFFFF_FFFF


def encode_variable_byte_integer(value: int) -> bytes:
    """Encode with the fewest bytes possible [MQTT-1.5.5-1] (3.1.1: section 2.2.3)."""
    if not 0 <= value <= MAX_VARIABLE_BYTE_INTEGER:
        raise ValueError(f"{value} does not fit a Variable Byte Integer (0..{MAX_VARIABLE_BYTE_INTEGER})")
    out = bytearray()
    while True:
        digit = value & 0x7F
        value >>= 7
        if value:
            out.append(digit | 0x80)
        else:
            out.append(digit)
            return bytes(out)


def decode_variable_byte_integer(data: bytes | bytearray | memoryview, offset: int = 0, *,
                                 version: int | None = 5) -> tuple[int, int] | None:
    """Decode a Variable Byte Integer at `offset`.

    Returns (value, bytes used), or None when `data` ends before the integer does (the caller
    waits for more bytes). A fifth byte is malformed (1.5.5). A non-minimal encoding such as
    0x80 0x00 breaks [MQTT-1.5.5-1] (5.0); we reject it as malformed in every version, though 3.1.1
    (2.2.3, the Remaining Length) states no such rule, so an error for `version` 3 or 4 cites none.
    """
    value = 0
    for index in range(4):
        if offset + index >= len(data):
            return None
        byte = data[offset + index]
        value |= (byte & 0x7F) << (7 * index)
        if not byte & 0x80:
            if index > 0 and byte == 0:
                raise MalformedPacket("Variable Byte Integer not encoded in the minimum number of bytes",
                                      rule=rule_for_version(version, v311=None, v5="MQTT-1.5.5-1"))
            return value, index + 1
    raise MalformedPacket("Variable Byte Integer longer than four bytes", kind="long Variable Byte Integer")


def encode_utf8(text: str) -> bytes:
    data = text.encode("utf-8")
    if len(data) > MAX_TWO_BYTE:
        raise ValueError(f"string of {len(data)} bytes is longer than 65,535 bytes")
    return struct.pack("!H", len(data)) + data


def encode_binary(data: bytes) -> bytes:
    if len(data) > MAX_TWO_BYTE:
        raise ValueError(f"binary data of {len(data)} bytes is longer than 65,535 bytes")
    return struct.pack("!H", len(data)) + data


def check_utf8_text(text: str, version: int | None = 5) -> None:
    """The character rules shared by 3.1.1 [MQTT-1.5.3-1/2] and 5.0 [MQTT-1.5.4-1/2].

    Python's strict UTF-8 decoder already refuses surrogate code points (U+D800..U+DFFF) and
    overlong forms; this adds the null character. U+FEFF is kept, never stripped [MQTT-1.5.3-3].
    """
    if "\x00" in text:
        raise MalformedPacket("UTF-8 string contains U+0000", kind="U+0000",
                              rule=rule_for_version(version, v311="MQTT-1.5.3-2", v5="MQTT-1.5.4-2"))


class Reader:
    """Sequential reader over one packet body (everything after the fixed header).

    `version` is the protocol level the body is read by (None while a CONNECT's level is unread):
    the statement ids its errors cite follow it."""

    __slots__ = ("data", "pos", "end", "version")

    def __init__(self, data: bytes | memoryview, start: int = 0, end: int | None = None, *,
                 version: int | None = None):
        self.data = data
        self.pos = start
        self.end = len(data) if end is None else end
        self.version = version

    @property
    def remaining(self) -> int:
        return self.end - self.pos

    def _need(self, count: int, what: str) -> None:
        if self.pos + count > self.end:
            raise MalformedPacket(f"packet ends inside {what} (needs {count} bytes, {self.remaining} left)")

    def byte(self, what: str = "a byte") -> int:
        self._need(1, what)
        value = self.data[self.pos]
        self.pos += 1
        return value

    def two_byte_int(self, what: str = "a two byte integer") -> int:
        self._need(2, what)
        value = (self.data[self.pos] << 8) | self.data[self.pos + 1]
        self.pos += 2
        return value

    def four_byte_int(self, what: str = "a four byte integer") -> int:
        self._need(4, what)
        (value,) = struct.unpack_from("!I", self.data, self.pos)
        self.pos += 4
        return value

    def variable_byte_int(self, what: str = "a variable byte integer") -> int:
        # At most four bytes are looked at: no copy of the rest of a (perhaps huge) packet
        decoded = decode_variable_byte_integer(self.data[self.pos:min(self.end, self.pos + 4)], version=self.version)
        if decoded is None:
            raise MalformedPacket(f"packet ends inside {what}")
        value, used = decoded
        self.pos += used
        return value

    def binary(self, what: str = "binary data") -> bytes:
        if self.pos + 2 > self.end:  # checked here so the message is only formatted when it is needed
            self._need(2, f"the length of {what}")
        length = self.two_byte_int()
        self._need(length, what)
        value = bytes(self.data[self.pos:self.pos + length])
        self.pos += length
        return value

    def utf8(self, what: str = "a UTF-8 string") -> str:
        raw = self.binary(what)
        try:
            # strict: refuses surrogates and overlong forms [MQTT-1.5.3-1] (3.1.1), [MQTT-1.5.4-1] (5.0)
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise MalformedPacket(f"{what} is not well-formed UTF-8 ({exc.reason})", kind="ill-formed UTF-8",
                                  rule=rule_for_version(self.version, v311="MQTT-1.5.3-1", v5="MQTT-1.5.4-1")
                                  ) from None
        check_utf8_text(text, self.version)
        return text

    def rest(self) -> bytes:
        value = bytes(self.data[self.pos:self.end])
        self.pos = self.end
        return value
