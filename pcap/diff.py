"""Compare what a broker answered in a recording with what it answered in a replay (sans-IO).

Only the broker's side is compared: the client side is the same bytes by construction. Each broker
packet becomes a list of field=value pairs (every field and property, as `explain` shows them); then
the normalisation rules below remove what may legitimately differ between two runs of the same
conversation. They are explicit, and every report lists them (`RULES`). `--strict` applies none of
them: the broker's packets are compared byte for byte, in arrival order.

Besides the fields, two choices of encoding that the fields do not show are compared, because a broker
that imitates another one byte for byte makes them too: the order of the properties on the wire
("Property order", when a packet has two or more) and, for the packets whose Property Length (or
reason code) may be left out (PUBACK, PUBREC, PUBREL, PUBCOMP, DISCONNECT, AUTH), their Remaining Length.

Kinds of difference (for tables): "missing X" (the recording has a broker packet X the replay lacks),
"extra X", "X field" (same packet, a field differs, e.g. "CONNACK Reason Code"), "X instead of Y",
and "connection close" (the broker closed in one run and not in the other).
"""

from __future__ import annotations

import difflib
from collections import Counter
from dataclasses import dataclass, field

from refbroker.protocol import Disconnect, Publish

from .explain import Field, describe_packet
from .session import BROKER, CLIENT, DecodedPacket, Session

__all__ = ["RULES", "Difference", "SessionDiff", "diff_sessions", "kind_counts"]

RULES = (
    ("assigned client identifier", "the Assigned Client Identifier in CONNACK is the broker's choice: compared as "
                                   "present or absent, not by value"),
    ("broker packet identifiers", "packet identifiers the broker chose (its QoS 1/2 PUBLISHes and its PUBRELs) are "
                                  "compared by order of first use in the session (#1, #2 ...), not by value"),
    ("broker topic aliases", "a broker PUBLISH that uses a Topic Alias is compared by the topic name the alias "
                             "stands for; the alias number and whether the name was repeated are the broker's "
                             "choice"),
    ("message expiry", "the Message Expiry Interval of a forwarded PUBLISH counts down while the broker holds the "
                       "message: values within 2 s of each other are equal"),
    ("$SYS values", "the payload of a PUBLISH on a $SYS/ topic (uptime, counters, load) is not compared"),
    ("timing and interleaving", "packet times are not compared; the broker's answers to the client (CONNACK, "
                                "acknowledgements, PINGRESP, AUTH, DISCONNECT, its close) and its deliveries "
                                "(PUBLISH, PUBREL) are compared as two sequences, each in order: how the two "
                                "interleave depends on timing"),
    ("close after the client's end", "once the client has sent DISCONNECT or closed, which side closes the TCP "
                                     "connection first is not compared"),
)

_EXPIRY_TOLERANCE = 2  # seconds
_EXPIRY_LABEL = "Message Expiry Interval (0x02)"


_DELIVERIES = ("PUBLISH", "PUBREL")
# Packets whose reason code and Property Length may be left out (5.0 3.4.2.1, 3.14.2.1 ...): their length
# tells which form the broker chose
_SHORT_FORMS = ("PUBACK", "PUBREC", "PUBREL", "PUBCOMP", "DISCONNECT", "AUTH")


@dataclass(frozen=True)
class _Norm:
    name: str
    fields: tuple[tuple[str, str], ...]
    expiry: int | None = None  # a Message Expiry Interval set aside by the "message expiry" rule

    def text(self) -> str:
        return " ".join([self.name] + [f"{k}={v}" for k, v in self.fields])

    def key(self):
        return (self.name, self.fields)


@dataclass
class Difference:
    kind: str
    recorded: str  # the recorded broker packet (or "" for an extra one)
    replayed: str


@dataclass
class SessionDiff:
    number: int
    differences: list[Difference] = field(default_factory=list)
    compared: int = 0  # broker packets in the recording

    @property
    def equal(self) -> bool:
        return not self.differences

    def lines(self) -> list[str]:
        out = []
        for difference in self.differences:
            out.append(f"  {difference.kind}:")
            if difference.recorded:
                out.append(f"    - recorded: {difference.recorded}")
            if difference.replayed:
                out.append(f"    + replayed: {difference.replayed}")
        return out


def _flatten(fields: list[Field], prefix: str = "") -> list[tuple[str, str]]:
    """(label, value) of every leaf field; a properties block counts by the properties it holds."""
    out = []
    for item in fields:
        label = f"{prefix}{item.label}"
        if item.label.endswith("Properties") and not item.children:
            continue
        if item.children:
            out += _flatten(item.children, f"{label}/" if item.label.startswith("Topic Filter") else f"{prefix}")
        else:
            out.append((label, item.value))
    return out


def _client_done_time(session: Session) -> float | None:
    """When the client sent DISCONNECT or closed (whichever came first), if it did."""
    for decoded in session.packets():
        if decoded.direction is CLIENT and isinstance(decoded.packet, Disconnect):
            return decoded.time
    return session.side_closed.get(CLIENT)


def _broker_close_time(session: Session) -> float | None:
    if BROKER in session.side_closed:
        return session.side_closed[BROKER]
    return session.closed if session.closed_by is BROKER else None


def _normalise(session: Session, strict: bool) -> list[_Norm]:
    """The broker's packets, normalised; without --strict, its answers first, then its deliveries."""
    out: list[_Norm] = []
    broker_ids: dict[int, int] = {}
    aliases: dict[int, str] = {}
    for packet in (p for p in session.packets() if p.direction is BROKER):
        if strict or packet.packet is None:
            out.append(_Norm(packet.name, (("bytes", packet.raw.hex(" ")),) + (
                (("not decoded", packet.error or ""),) if packet.packet is None and not strict else ())))
            continue
        out.append(_normalised_packet(packet, broker_ids, aliases))
    done, closed = _client_done_time(session), _broker_close_time(session)
    if closed is not None and (done is None or closed < done):
        out.append(_Norm("<broker closed the connection>", ()))
    if not strict:  # two ordered sequences: answers, then deliveries
        out = [p for p in out if p.name not in _DELIVERIES] + [p for p in out if p.name in _DELIVERIES]
    return out


def _normalised_packet(decoded: DecodedPacket, broker_ids: dict[int, int],
                       aliases: dict[int, str]) -> _Norm:
    packet = decoded.packet
    pairs = _flatten(describe_packet(packet, decoded.version))
    name = packet.name
    expiry = None
    result = []
    alias = getattr(getattr(packet, "properties", None), "topic_alias", None)
    if isinstance(packet, Publish) and alias is not None:
        if packet.topic:
            aliases[alias] = packet.topic
    for label, value in pairs:
        if label == "Assigned Client Identifier (0x12)":
            value = "<assigned by the broker>"
        elif label == "Packet Identifier" and name in ("PUBLISH", "PUBREL"):
            number = int(value)
            value = f"#{broker_ids.setdefault(number, len(broker_ids) + 1)}"
        elif label == "Topic Alias (0x23)":
            continue
        elif label == "Topic Name" and isinstance(packet, Publish) and alias is not None:
            value = repr(aliases.get(alias, f"<unknown alias {alias}>"))
        elif label == _EXPIRY_LABEL and name == "PUBLISH":
            expiry = int(value)
            value = "<counting down>"
        elif label == "Payload" and isinstance(packet, Publish) and \
                _resolved_topic(packet, aliases).startswith("$SYS/"):
            value = "<$SYS value>"
        result.append((label, value))
    order = getattr(getattr(packet, "properties", None), "wire_order", ())
    if len(order) > 1:
        result.append(("Property order", " ".join(f"0x{identifier:02X}" for identifier in order)))
    if name in _SHORT_FORMS:
        result.append(("Remaining Length", str(_remaining_length(decoded.raw))))
    return _Norm(name, tuple(result), expiry)


def _remaining_length(raw: bytes) -> int:
    """The Remaining Length of a whole packet's bytes: what follows the fixed header."""
    header = 2
    while header < len(raw) and raw[header - 1] & 0x80:
        header += 1
    return len(raw) - header


def _resolved_topic(packet: Publish, aliases: dict[int, str]) -> str:
    alias = packet.properties.topic_alias
    return packet.topic or (aliases.get(alias, "") if alias is not None else "")


def _pair_kinds(recorded: _Norm, replayed: _Norm) -> list[str]:
    if recorded.name != replayed.name:
        return [f"{replayed.name} instead of {recorded.name}"]
    mine, theirs = dict(recorded.fields), dict(replayed.fields)
    kinds = [f"{recorded.name} {label}" for label in sorted(mine.keys() | theirs.keys())
             if mine.get(label) != theirs.get(label)]
    return kinds or [f"{recorded.name} field order"]


def diff_sessions(recorded: Session, replayed: Session, *, strict: bool = False) -> SessionDiff:
    """The differences between the broker's packets in two runs of one session (see the rules)."""
    before, after = _normalise(recorded, strict), _normalise(replayed, strict)
    result = SessionDiff(recorded.number, compared=len(before))
    matcher = difflib.SequenceMatcher(a=[p.key() for p in before], b=[p.key() for p in after], autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            for a, b in zip(before[i1:i2], after[j1:j2]):
                if a.expiry is not None and b.expiry is not None and abs(a.expiry - b.expiry) > _EXPIRY_TOLERANCE:
                    result.differences.append(Difference(f"{a.name} {_EXPIRY_LABEL}",
                                                         f"{a.text()} ({_EXPIRY_LABEL}={a.expiry})",
                                                         f"{b.text()} ({_EXPIRY_LABEL}={b.expiry})"))
            continue
        old, new = before[i1:i2], after[j1:j2]
        for a, b in zip(old, new):
            for kind in _pair_kinds(a, b):
                result.differences.append(Difference(_close_kind(kind, a, b), a.text(), b.text()))
        for a in old[len(new):]:
            result.differences.append(Difference(_missing_kind(a), a.text(), ""))
        for b in new[len(old):]:
            result.differences.append(Difference(_extra_kind(b), "", b.text()))
    return result


def _close_kind(kind: str, a: _Norm, b: _Norm) -> str:
    return "connection close" if a.name.startswith("<") or b.name.startswith("<") else kind


def _missing_kind(packet: _Norm) -> str:
    return "connection close" if packet.name.startswith("<") else f"missing {packet.name}"


def _extra_kind(packet: _Norm) -> str:
    return "connection close" if packet.name.startswith("<") else f"extra {packet.name}"


def kind_counts(diffs: list[SessionDiff]) -> Counter:
    return Counter(difference.kind for diff in diffs for difference in diff.differences)
