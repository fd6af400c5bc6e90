"""What a replay sends and when (sans-IO): recorded sessions in, an ordered list of steps out.

Every session of a capture is replayed at once, in the capture's global order, because sessions talk
to each other through the broker (one client's PUBLISH is another's delivery). A step is: open a
session's connection, send one chunk of the client's bytes (exactly as recorded, so malformed packets
and packets split over several writes stay as they were), or close the client side.

Each step carries what the broker had sent before it in the recording: the number of broker packets
per session, and which sessions the broker had closed. The runner waits for those before taking the
step ("as fast as allowed": never ahead of the answers the client had seen), and, with the original
pacing, also for the recorded time.

Packet identifiers the broker chose (in its PUBLISHes to the client) differ from run to run; the
client's PUBACK / PUBREC / PUBCOMP echo them. A `Patch` says where such an id sits in the client's
stream and which broker PUBLISH it answers (the k-th QoS>0 PUBLISH of the session), so the runner can
write the id the replayed broker chose instead. `--strict` replays turn patches off.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from refbroker.protocol import Publish
from refbroker.protocol.primitives import decode_variable_byte_integer

from .session import BROKER, CLIENT, Session

__all__ = ["Patch", "Plan", "Step", "make_plan"]

_ECHOING_ACKS = {4, 5, 7}  # PUBACK, PUBREC, PUBCOMP from the client carry the broker's packet id


@dataclass(frozen=True)
class Step:
    time: float  # recorded time (seconds since the epoch)
    session: int
    kind: str  # "open" | "send" | "close"
    data: bytes = b""
    offset: int = 0  # where `data` starts in the session's client stream
    expect: tuple[tuple[int, int], ...] = ()  # (session, broker packets sent by then), for sessions that sent any
    expect_closed: frozenset[int] = frozenset()  # sessions the broker had closed by then


@dataclass(frozen=True)
class Patch:
    offset: int  # of the two packet-id bytes in the client stream
    ordinal: int  # the answered broker PUBLISH is the ordinal-th with QoS > 0 in this session (0-based)
    recorded_id: int


@dataclass
class Plan:
    sessions: list[Session]  # the recorded sessions, by number
    steps: list[Step]
    patches: dict[int, list[Patch]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def duration(self) -> float:
        return self.steps[-1].time - self.steps[0].time if self.steps else 0.0


def _patches(session: Session) -> tuple[list[Patch], list[str]]:
    """Client acknowledgements that echo a packet id chosen by the broker."""
    patches, notes = [], []
    offset = 0
    broker_publishes: list[tuple[float, int]] = []  # (time, packet id) of the broker's QoS>0 PUBLISHes
    for decoded in session.packets():
        if decoded.direction is BROKER:
            if isinstance(decoded.packet, Publish) and decoded.packet.qos:
                broker_publishes.append((decoded.time, decoded.packet.packet_id))
            continue
        raw = decoded.raw
        if decoded.packet is not None and raw[0] >> 4 in _ECHOING_ACKS and len(raw) >= 4:
            _, used = decode_variable_byte_integer(raw, 1)
            recorded_id = int.from_bytes(raw[1 + used:3 + used], "big")
            # the latest broker PUBLISH with this id before the acknowledgement answers it
            ordinal = next((k for k in range(len(broker_publishes) - 1, -1, -1)
                            if broker_publishes[k][1] == recorded_id and broker_publishes[k][0] <= decoded.time), None)
            if ordinal is None:
                notes.append(f"session {session.number}: the client's {decoded.name} {recorded_id} answers no "
                             "broker PUBLISH of the capture; sent unchanged")
            else:
                patches.append(Patch(offset + 1 + used, ordinal, recorded_id))
        offset += len(raw)
    return patches, notes


def make_plan(sessions: list[Session], *, strict: bool = False) -> Plan:
    plan = Plan(sessions=list(sessions), steps=[])
    broker_times: dict[int, list[float]] = {}
    for session in sessions:
        broker_times[session.number] = [p.time for p in session.packets() if p.direction is BROKER]
        if not strict:
            patches, notes = _patches(session)
            if patches:
                plan.patches[session.number] = patches
            plan.notes += notes
    closes = {s.number: s.closed for s in sessions if s.closed is not None and s.closed_by is BROKER}

    raw_steps: list[tuple[float, int, int, str, bytes, int]] = []  # (time, order, session, kind, data, offset)
    order = 0
    for session in sessions:
        raw_steps.append((session.start_time, order, session.number, "open", b"", 0))
        order += 1
        offset = 0
        for chunk in session.chunks:
            if chunk.direction is CLIENT:
                raw_steps.append((chunk.time, order, session.number, "send", chunk.data, offset))
                offset += len(chunk.data)
                order += 1
        if session.closed is not None and session.closed_by is CLIENT:
            raw_steps.append((session.closed, order, session.number, "close", b"", 0))
            order += 1
    raw_steps.sort(key=lambda step: (step[0], step[1]))

    for time, _, number, kind, data, offset in raw_steps:
        expect = tuple((n, count) for n, count in ((n, sum(1 for t in times if t <= time))
                                                   for n, times in broker_times.items()) if count)
        closed = frozenset(n for n, when in closes.items() if when <= time)
        plan.steps.append(Step(time, number, kind, data, offset, expect, closed))
    return plan
