"""The QoS 1 and QoS 2 flows (section 4.3) and the in-flight window, both directions.

Server to client (`Outgoing`, one per session): each QoS 1/2 copy gets a fresh packet identifier
and stays "in flight" until its PUBACK (QoS 1) or its PUBREC and then PUBCOMP (QoS 2). At most
`window` copies are in flight at once (max_inflight_messages, and the client's Receive Maximum in
5.0 [MQTT-3.3.4-9]; and, with max_inflight_bytes, payloads adding up to less than that); the rest
wait in a queue, bounded by max_queued_messages and max_queued_bytes. QoS 0 copies wait in the queue
too while the client does not read what was sent already (router.py). On reconnect to a
kept session everything in flight is sent again, PUBLISH with DUP=1 or PUBREL, in the original order
[MQTT-4.4.0-1]. Both the queue and the retransmission take a `may_deliver(delivery)` check from the
router: a copy the client connected now may not read is dropped instead of sent (access.py).

Client to server (`Incoming`): a QoS 2 PUBLISH is delivered onward when it arrives and its packet
identifier is remembered until PUBREL, so a repeat of it is answered with PUBREC again but never
delivered twice [MQTT-4.3.3-2] (3.1.1), [MQTT-4.3.3-10] (5.0).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType

from ..protocol import Packet, Publish, Pubrel
from .messages import Delivery

MAX_PACKET_ID = 65535
# Most sessions never queue anything, many never receive QoS 1/2 and most clients never send QoS 2:
# their queue, their copies in flight and their set of ids awaiting PUBREL stay these shared empty,
# read-only values (an empty deque alone costs 600 bytes, an empty dict 64) until needed.
_NO_QUEUE: tuple = ()
_NO_FLIGHTS: Mapping = MappingProxyType({})
_NO_IDS: frozenset = frozenset()


@dataclass(slots=True)
class InFlight:
    packet_id: int
    delivery: Delivery
    released: bool = False  # QoS 2: PUBREC arrived and PUBREL went out; waiting for PUBCOMP


class Outgoing:
    __slots__ = ("inflight", "queue", "inflight_bytes", "queued_bytes", "_last_packet_id")

    def __init__(self) -> None:
        self.inflight: dict[int, InFlight] | Mapping = _NO_FLIGHTS  # in the order the PUBLISHes were first sent
        self.queue: deque[Delivery] | tuple = _NO_QUEUE
        self.inflight_bytes = 0  # payload bytes of the copies in flight (for max_inflight_bytes)
        self.queued_bytes = 0    # payload bytes of the copies queued (for max_queued_bytes)
        self._last_packet_id = 0

    def next_packet_id(self) -> int:
        """Like mosquitto: 1, 2, 3 ... per client, wrapping after 65535, skipping ids still in use.

        A packet identifier is never 0 [MQTT-2.3.1-1] (3.1.1), [MQTT-2.2.1-3] (5.0), and is unused
        while its flow is unfinished [MQTT-4.3.2-1] (3.1.1), [MQTT-4.3.2-1]/[MQTT-4.3.3-1] (5.0).
        """
        for _ in range(MAX_PACKET_ID):
            self._last_packet_id = self._last_packet_id % MAX_PACKET_ID + 1
            if self._last_packet_id not in self.inflight:
                return self._last_packet_id
        raise RuntimeError("all 65535 packet identifiers are in use")

    def has_room(self, qos: int, window: int, window_bytes: int = 0) -> bool:
        """May a copy of this QoS go out now? QoS 0 is not counted in the window (4.9); QoS 1/2 while
        fewer than `window` are in flight [MQTT-3.3.4-9] (5.0) and, with max_inflight_bytes
        (`window_bytes`), while their payloads add up to less than that (one large copy still goes)."""
        if qos == 0:
            return True
        return len(self.inflight) < window and (not window_bytes or self.inflight_bytes < window_bytes)

    def start(self, delivery: Delivery, now: float) -> Publish:
        """The PUBLISH of a copy that goes out now: QoS 1/2 get a packet identifier and are in flight."""
        if delivery.qos == 0:
            return delivery.to_publish(None, now)
        packet_id = self.next_packet_id()
        self._fly(InFlight(packet_id, delivery))
        # First transmission: DUP=0 [MQTT-4.3.2-1] (3.1.1), [MQTT-4.3.2-2]/[MQTT-4.3.3-2] (5.0)
        return delivery.to_publish(packet_id, now)

    def enqueue(self, delivery: Delivery, max_messages: int = 0, max_bytes: int = 0) -> bool:
        """Keep a copy for later; False if the queue is full and the copy is dropped.

        Full, as in mosquitto: `max_messages` copies (max_queued_messages) or, with `max_bytes`
        (max_queued_bytes), payloads adding up to that many bytes already; 0 is no limit.
        """
        if (max_messages and len(self.queue) >= max_messages) or (max_bytes and self.queued_bytes >= max_bytes):
            return False
        if self.queue is _NO_QUEUE:
            self.queue = deque()
        self.queue.append(delivery)
        self.queued_bytes += len(delivery.message.payload)
        return True

    def put_in_flight(self, packet_id: int, delivery: Delivery, released: bool = False) -> None:
        """Restore a flow that was in flight when the broker stopped (persistence): it is sent again,
        as PUBLISH with DUP 1 or as PUBREL, when the client comes back [MQTT-4.4.0-1]."""
        self._fly(InFlight(packet_id, delivery, released))

    def _fly(self, flight: InFlight) -> None:
        if self.inflight is _NO_FLIGHTS:
            self.inflight = {}
        self.inflight[flight.packet_id] = flight
        self.inflight_bytes += len(flight.delivery.message.payload)

    def fill_window(self, now: float, window: int, window_bytes: int = 0,
                    may_deliver: Callable[[Delivery], bool] | None = None) -> list[Publish]:
        """Move queued copies into flight while the window has room (and send queued QoS 0 ones);
        a copy `may_deliver` refuses is dropped."""
        packets = []
        queue = self.queue
        while queue and self.has_room(queue[0].qos, window, window_bytes):
            delivery = queue.popleft()
            self.queued_bytes -= len(delivery.message.payload)
            if delivery.message.is_expired(now):
                continue  # [MQTT-3.3.2-5]: expired while waiting, this copy is deleted
            if may_deliver is not None and not may_deliver(delivery):
                continue
            packets.append(self.start(delivery, now))
        return packets

    def acknowledge(self, packet_id: int) -> bool:
        """PUBACK, PUBCOMP, or a failed PUBREC: the flow is over [MQTT-4.4.0-2] (5.0)."""
        flight = self.inflight.get(packet_id)
        if flight is None:
            return False
        del self.inflight[packet_id]
        self.inflight_bytes -= len(flight.delivery.message.payload)
        return True

    def release(self, packet_id: int) -> bool:
        """PUBREC with success: the QoS 2 flow moves on to PUBREL [MQTT-4.3.3-4] (5.0).

        From now on the PUBLISH is never sent again [MQTT-4.3.3-6] (5.0).
        """
        flight = self.inflight.get(packet_id)
        if flight is None or flight.delivery.qos != 2:
            return False
        flight.released = True
        return True

    def retransmit(self, now: float, may_deliver: Callable[[Delivery], bool] | None = None) -> list[Packet]:
        """Everything in flight, again, in the original order [MQTT-4.4.0-1]: PUBLISH with DUP=1
        [MQTT-3.3.1-1], or PUBREL for QoS 2 flows that had got as far as PUBREC (it carries no
        message). A PUBLISH `may_deliver` refuses is forgotten instead of sent again."""
        packets: list[Packet] = []
        for flight in list(self.inflight.values()):
            if flight.released:
                packets.append(Pubrel(flight.packet_id))
            elif may_deliver is not None and not may_deliver(flight.delivery):
                del self.inflight[flight.packet_id]
            else:
                packets.append(flight.delivery.to_publish(flight.packet_id, now, dup=True))
        return packets

    def __len__(self) -> int:
        return len(self.inflight) + len(self.queue)


class Incoming:
    """Packet identifiers of QoS 2 PUBLISHes received and PUBREC'd, waiting for their PUBREL."""

    __slots__ = ("awaiting_release",)

    def __init__(self) -> None:
        self.awaiting_release: set[int] | frozenset = _NO_IDS

    def is_duplicate(self, packet_id: int) -> bool:
        return packet_id in self.awaiting_release

    def received(self, packet_id: int) -> None:
        if self.awaiting_release is _NO_IDS:
            self.awaiting_release = set()
        self.awaiting_release.add(packet_id)

    def released(self, packet_id: int) -> bool:
        """PUBREL: forget the id, so a later PUBLISH with it is a new message [MQTT-4.3.3-12] (5.0)."""
        if packet_id in self.awaiting_release:
            self.awaiting_release.discard(packet_id)
            return True
        return False
