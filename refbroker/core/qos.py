"""The QoS 1 and QoS 2 flows (section 4.3) and the in-flight window, both directions.

Server to client (`Outgoing`, one per session): each QoS 1/2 copy gets a fresh packet identifier
and stays "in flight" until its PUBACK (QoS 1) or its PUBREC and then PUBCOMP (QoS 2). At most
`window` copies are in flight at once (max_inflight_messages, and the client's Receive Maximum in
5.0 [MQTT-3.3.4-9]); the rest wait in a queue, bounded by max_queued_messages. On reconnect to a
kept session everything in flight is sent again, PUBLISH with DUP=1 or PUBREL, in the original order
[MQTT-4.4.0-1].

Client to server (`Incoming`): a QoS 2 PUBLISH is delivered onward when it arrives and its packet
identifier is remembered until PUBREL, so a repeat of it is answered with PUBREC again but never
delivered twice [MQTT-4.3.3-2] (3.1.1), [MQTT-4.3.3-10] (5.0).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from ..protocol import Packet, Publish, Pubrel
from .messages import Delivery

MAX_PACKET_ID = 65535


@dataclass(slots=True)
class InFlight:
    packet_id: int
    delivery: Delivery
    released: bool = False  # QoS 2: PUBREC arrived and PUBREL went out; waiting for PUBCOMP


class Outgoing:
    def __init__(self) -> None:
        self.inflight: dict[int, InFlight] = {}  # in the order the PUBLISHes were first sent
        self.queue: deque[Delivery] = deque()
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

    def send_or_queue(self, delivery: Delivery, now: float, window: int, queue_limit: int) -> Publish | None:
        """For a connected client: the PUBLISH to send now, or None if the copy was queued (or dropped)."""
        if delivery.qos == 0:
            return delivery.to_publish(None, now)  # QoS 0 is not counted in the window (4.9)
        if not self.queue and len(self.inflight) < window:
            return self._start(delivery, now)
        self.enqueue(delivery, queue_limit)
        return None

    def enqueue(self, delivery: Delivery, queue_limit: int) -> bool:
        """Keep a copy for later; False if the queue is full and the copy is dropped."""
        if queue_limit and len(self.queue) >= queue_limit:
            return False
        self.queue.append(delivery)
        return True

    def _start(self, delivery: Delivery, now: float) -> Publish:
        packet_id = self.next_packet_id()
        self.inflight[packet_id] = InFlight(packet_id, delivery)
        # First transmission: DUP=0 [MQTT-4.3.2-1] (3.1.1), [MQTT-4.3.2-2]/[MQTT-4.3.3-2] (5.0)
        return delivery.to_publish(packet_id, now)

    def fill_window(self, now: float, window: int) -> list[Publish]:
        """Move queued copies into flight while the window has room (and send queued QoS 0 ones)."""
        packets = []
        while self.queue and (self.queue[0].qos == 0 or len(self.inflight) < window):
            delivery = self.queue.popleft()
            if delivery.message.is_expired(now):
                continue  # [MQTT-3.3.2-5]: expired while waiting, this copy is deleted
            if delivery.qos == 0:
                packets.append(delivery.to_publish(None, now))
            else:
                packets.append(self._start(delivery, now))
        return packets

    def acknowledge(self, packet_id: int) -> bool:
        """PUBACK, PUBCOMP, or a failed PUBREC: the flow is over [MQTT-4.4.0-2] (5.0)."""
        return self.inflight.pop(packet_id, None) is not None

    def release(self, packet_id: int) -> bool:
        """PUBREC with success: the QoS 2 flow moves on to PUBREL [MQTT-4.3.3-4] (5.0).

        From now on the PUBLISH is never sent again [MQTT-4.3.3-6] (5.0).
        """
        flight = self.inflight.get(packet_id)
        if flight is None or flight.delivery.qos != 2:
            return False
        flight.released = True
        return True

    def retransmit(self, now: float) -> list[Packet]:
        """Everything in flight, again, in the original order [MQTT-4.4.0-1]: PUBLISH with DUP=1
        [MQTT-3.3.1-1], or PUBREL for QoS 2 flows that had got as far as PUBREC."""
        packets: list[Packet] = []
        for flight in self.inflight.values():
            if flight.released:
                packets.append(Pubrel(flight.packet_id))
            else:
                packets.append(flight.delivery.to_publish(flight.packet_id, now, dup=True))
        return packets

    def __len__(self) -> int:
        return len(self.inflight) + len(self.queue)


class Incoming:
    """Packet identifiers of QoS 2 PUBLISHes received and PUBREC'd, waiting for their PUBREL."""

    def __init__(self) -> None:
        self.awaiting_release: set[int] = set()

    def is_duplicate(self, packet_id: int) -> bool:
        return packet_id in self.awaiting_release

    def received(self, packet_id: int) -> None:
        self.awaiting_release.add(packet_id)

    def released(self, packet_id: int) -> bool:
        """PUBREL: forget the id, so a later PUBLISH with it is a new message [MQTT-4.3.3-12] (5.0)."""
        if packet_id in self.awaiting_release:
            self.awaiting_release.discard(packet_id)
            return True
        return False
