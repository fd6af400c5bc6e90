"""Replay the client side of recorded sessions against a broker and record what it answers (I/O shell).

    replay_sessions(sessions, (host, port), pace="fast"|"original", strict=False) -> ReplayResult

The plan (pcap/replay_plan.py) says what to send and what the broker had answered before each step.
Pacing:

* `fast` (default): a step is taken as soon as the broker has sent, in every session, at least as many
  packets as it had in the recording before that step (and closed the connections it had closed). A
  broker that stays silent costs at most the wait `answer_timeout` + 1.5 x the recorded gap; the
  missing answers are then forgiven for the following steps (and show up in the diff).
* `original`: the same, and never earlier than the recorded time of the step (timers such as Keep
  Alive, Will Delay or Message Expiry see the original delays).

Steps on different connections are taken at least `session_gap` seconds apart (default 5 ms), so the
broker reads them in the recorded order even through a proxy (Docker's port forwarding, say): two
clients whose packets followed each other within a millisecond would otherwise race.

After the last step the replay waits for the outstanding answers, then `settle` seconds more for
packets the recording did not have, then closes every connection it still holds.

The result holds one `Session` per recorded session (same numbers): the client bytes it sent (after
packet-id patches, see replay_plan) and the broker's bytes, with their times.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

from refbroker.protocol import MQTTError, Publish, decode_packet
from refbroker.protocol.primitives import decode_variable_byte_integer

from .replay_plan import Patch, Plan, Step, make_plan
from .session import BROKER, CLIENT, Chunk, Framer, Session, decode_session

__all__ = ["ReplayResult", "replay_sessions"]


@dataclass
class ReplayResult:
    recorded: list[Session]
    replayed: list[Session]
    notes: list[str] = field(default_factory=list)
    pace: str = "fast"
    strict: bool = False
    seconds: float = 0.0


class _Live:
    """One replayed connection: the socket, what went both ways, and the broker's packet count."""

    def __init__(self, recorded: Session, patches: list[Patch], version: int | None):
        self.recorded = recorded
        self.stream = bytearray(recorded.client_bytes)  # what the client sent, patched as we go
        self.patches = list(patches)
        self.version = version
        self.session = Session(recorded.number, client=("0.0.0.0", 0), broker=recorded.broker)
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None
        self.framer = Framer()
        self.count = 0  # broker packets received
        self.publish_ids: list[int] = []  # packet ids of the broker's QoS>0 PUBLISHes, in order
        self.broker_closed = False
        self.client_closed = False
        self.failed = False
        self.read_task: asyncio.Task | None = None

    def received(self, data: bytes) -> None:
        self.session.chunks.append(Chunk(time.time(), BROKER, data))
        for raw in self.framer.frames(data):
            self.count += 1
            if raw[0] >> 4 == 3 and (raw[0] >> 1) & 0x03:
                _, used = decode_variable_byte_integer(raw, 1)
                try:
                    packet = decode_packet(raw[0], raw[1 + used:], self.version or 4)
                except MQTTError:
                    continue
                if isinstance(packet, Publish) and packet.packet_id is not None:
                    self.publish_ids.append(packet.packet_id)


async def _read(live: _Live, wake: asyncio.Event) -> None:
    try:
        while True:
            data = await live.reader.read(65536)
            if not data:
                break
            live.received(data)
            wake.set()
    except (ConnectionError, OSError):
        pass
    live.broker_closed = True
    live.session.side_closed.setdefault(BROKER, time.time())
    if live.session.closed is None:
        live.session.closed = time.time()
        live.session.closed_by = CLIENT if live.client_closed else BROKER
    wake.set()


class _Runner:
    def __init__(self, plan: Plan, address: tuple[str, int], pace: str, answer_timeout: float, settle: float,
                 session_gap: float):
        self.plan = plan
        self.session_gap = session_gap
        self.address = address
        self.pace = pace
        self.answer_timeout = answer_timeout
        self.settle = settle
        self.notes: list[str] = list(plan.notes)
        self.wake = asyncio.Event()
        versions = {s.number: next((p.version for p in decode_session(s)), None) for s in plan.sessions}
        self.live = {s.number: _Live(s, plan.patches.get(s.number, []), versions[s.number]) for s in plan.sessions}
        self.forgiven: dict[int, int] = {}  # session -> broker packets given up on
        self.forgiven_closes: set[int] = set()

    def _satisfied(self, step: Step) -> bool:
        for number, count in step.expect:
            if self.live[number].count + self.forgiven.get(number, 0) < count and not self.live[number].failed:
                return False
        return all(self.live[n].broker_closed or n in self.forgiven_closes or self.live[n].failed
                   for n in step.expect_closed)

    async def _wait_for_answers(self, step: Step, timeout: float, what: str) -> None:
        deadline = asyncio.get_running_loop().time() + timeout
        while not self._satisfied(step):
            remaining = deadline - asyncio.get_running_loop().time()
            if remaining <= 0:
                for number, count in step.expect:
                    missing = count - self.live[number].count - self.forgiven.get(number, 0)
                    if missing > 0:
                        self.forgiven[number] = self.forgiven.get(number, 0) + missing
                        self.notes.append(f"session {number}: {missing} broker packet(s) the recording had "
                                          f"{what} did not come within {timeout:.1f} s")
                for number in step.expect_closed:
                    if not self.live[number].broker_closed and number not in self.forgiven_closes:
                        self.forgiven_closes.add(number)
                        self.notes.append(f"session {number}: the broker closed the connection {what} in the "
                                          f"recording; it did not within {timeout:.1f} s")
                return
            self.wake.clear()
            try:
                await asyncio.wait_for(self.wake.wait(), remaining)
            except asyncio.TimeoutError:
                pass

    async def _open(self, live: _Live) -> None:
        try:
            live.reader, live.writer = await asyncio.wait_for(asyncio.open_connection(*self.address),
                                                              self.answer_timeout + 5)
        except (OSError, asyncio.TimeoutError) as error:
            live.failed = True
            self.notes.append(f"session {live.session.number}: cannot connect to {self.address[0]}:"
                              f"{self.address[1]}: {error}")
            return
        local = live.writer.get_extra_info("sockname")
        live.session.client = tuple(local[:2]) if local else ("0.0.0.0", 0)
        peer = live.writer.get_extra_info("peername")
        live.session.broker = tuple(peer[:2]) if peer else self.address
        live.session.opened = time.time()
        live.read_task = asyncio.create_task(_read(live, self.wake))

    def _patched(self, live: _Live, step: Step) -> bytes:
        end = step.offset + len(step.data)
        for patch in list(live.patches):
            if patch.offset < end and patch.offset + 2 > step.offset:
                live.patches.remove(patch)
                if patch.ordinal < len(live.publish_ids):
                    live.stream[patch.offset:patch.offset + 2] = live.publish_ids[patch.ordinal].to_bytes(2, "big")
                else:
                    self.notes.append(f"session {live.session.number}: the acknowledgement of the broker's "
                                      f"PUBLISH #{patch.ordinal + 1} went out with the recorded id "
                                      f"{patch.recorded_id} (the replayed broker sent no such PUBLISH)")
        return bytes(live.stream[step.offset:end])

    async def _send(self, live: _Live, step: Step) -> None:
        if live.writer is None or live.failed:
            return
        data = self._patched(live, step)
        if live.broker_closed or live.writer.is_closing():
            self.notes.append(f"session {live.session.number}: {len(data)} bytes not sent, the broker had "
                              "closed the connection")
            return
        try:
            live.writer.write(data)
            await live.writer.drain()
        except (ConnectionError, OSError) as error:
            self.notes.append(f"session {live.session.number}: sending {len(data)} bytes failed: {error}")
            return
        live.session.chunks.append(Chunk(time.time(), CLIENT, data))

    async def _close(self, live: _Live) -> None:
        if live.writer is None or live.failed or live.client_closed:
            return
        live.client_closed = True
        live.session.side_closed.setdefault(CLIENT, time.time())
        if live.session.closed is None:
            live.session.closed_by = CLIENT
        try:
            if live.writer.can_write_eof() and not live.writer.is_closing():
                live.writer.write_eof()
        except (ConnectionError, OSError):
            pass

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        steps = self.plan.steps
        if not steps:
            return
        t0, started = steps[0].time, loop.time()
        previous, previous_session, previous_taken = t0, steps[0].session, loop.time()
        for step in steps:
            if self.pace == "original":
                delay = started + (step.time - t0) - loop.time()
                if delay > 0:
                    await asyncio.sleep(delay)
            await self._wait_for_answers(step, self.answer_timeout + 1.5 * (step.time - previous),
                                         f"sent before this step ({step.kind} session {step.session})")
            if step.session != previous_session:
                delay = previous_taken + self.session_gap - loop.time()
                if delay > 0:
                    await asyncio.sleep(delay)
            live = self.live[step.session]
            if step.kind == "open":
                await self._open(live)
            elif step.kind == "send":
                await self._send(live, step)
            else:
                await self._close(live)
            previous, previous_session, previous_taken = step.time, step.session, loop.time()
        final = Step(time=previous, session=0, kind="end",
                     expect=tuple((n, len([p for p in decode_session(live.recorded) if p.direction is BROKER]))
                                  for n, live in self.live.items()),
                     expect_closed=frozenset(n for n, live in self.live.items() if live.recorded.closed_by is BROKER))
        end_time = max(s.closed if s.closed is not None else s.chunks[-1].time if s.chunks else s.start_time
                       for s in self.plan.sessions)
        await self._wait_for_answers(final, self.answer_timeout + 1.5 * max(0.0, end_time - previous),
                                     "sent by the end of the capture")
        await asyncio.sleep(self.settle)
        for live in self.live.values():
            if live.writer is not None:
                if live.session.closed is None:
                    live.session.closed = time.time()
                    live.session.closed_by = CLIENT
                live.session.side_closed.setdefault(CLIENT, time.time())
                live.writer.close()
            if live.read_task is not None:
                live.read_task.cancel()
                try:
                    await live.read_task
                except asyncio.CancelledError:
                    pass


def replay_sessions(sessions: list[Session], address: tuple[str, int], *, pace: str = "fast", strict: bool = False,
                    answer_timeout: float = 1.0, settle: float = 0.05, session_gap: float = 0.005) -> ReplayResult:
    """Replay `sessions` (one capture) against the broker at `address`; see the module docstring."""
    if pace not in ("fast", "original"):
        raise ValueError(f"pace must be 'fast' or 'original', not {pace!r}")
    plan = make_plan(sessions, strict=strict)
    started = time.monotonic()

    async def main() -> _Runner:
        runner = _Runner(plan, address, pace, answer_timeout, settle, session_gap)
        await runner.run()
        return runner

    runner = asyncio.run(main())
    replayed = [runner.live[s.number].session for s in sessions]
    return ReplayResult(list(sessions), replayed, runner.notes, pace, strict, time.monotonic() - started)
