"""Hypothesis for the conformance suite: profiles, per-example clients, a topic matcher and a barrier.

Profiles
--------
`suite_settings` and `profile_name` come from `conformance.hypothesis_profiles` (choose with
``HYPOTHESIS_PROFILE=ci|thorough``; ci is derandomized, so identical runs draw identical examples).

Examples and clients
--------------------
Every example works under its own topic namespace (`Namespace`), so examples never see each other's
messages, and `ExampleClients` closes the clients of the previous example when the next one starts:
only the clients of the last example that ran (the minimal failing one, when a test fails) keep their
packet traces in the results file.

Model helpers
-------------
`topic_matches` is the suite's own, deliberately naive reading of section 4.7 (it does not use the
broker's or the codec's matcher), including the rule that filters starting with a wildcard do not
match topic names starting with '$' [MQTT-4.7.2-1]. `settle` waits for deliveries: it publishes a
barrier message after the messages under test and reads each subscriber until the barrier and every
required delivery have arrived. Required deliveries are always awaited in full, so a broker that
orders messages of different topics differently never makes a test fail; the barrier only bounds
how long the test waits for deliveries that must *not* come.
"""

from __future__ import annotations

import select
import socket
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from conformance.client import ConnectionClosed, RawClient
from conformance.hypothesis_profiles import profile_name, suite_settings  # noqa: F401 - re-exported for the tests
from refbroker.protocol import Publish

# ------------------------------------------------------------------------------------------- topics


@dataclass(frozen=True)
class Namespace:
    """Unique topic roots for one example: `plain` ("ct1a2b3c4d"), `dollar` ("$ct1a2b3c4d") and a
    barrier topic under a third root, so that no filter of the example can be confused with it."""

    plain: str
    dollar: str
    barrier: str

    @classmethod
    def new(cls, dollar_topics: bool = True) -> Namespace:
        tag = "ct" + uuid.uuid4().hex[:10]
        return cls(tag, ("$" if dollar_topics else "d") + tag, tag + "sync/barrier")

    def owns(self, topic: str) -> bool:
        """Does `topic` belong to this example's data (not the barrier, not another test's traffic)?"""
        first = topic.split("/", 1)[0]
        return first in (self.plain, self.dollar)


def topic_matches(topic_filter: str, topic_name: str) -> bool:
    """Section 4.7.1/4.7.2, read directly: '+' one whole level, '#' the rest including the parent
    level, exact comparison of everything else, and no wildcard first level for '$' topics."""
    filter_levels = topic_filter.split("/")
    name_levels = topic_name.split("/")
    if name_levels[0].startswith("$") and filter_levels[0] in ("+", "#"):
        return False  # [MQTT-4.7.2-1]
    for index, level in enumerate(filter_levels):
        if level == "#":
            return True
        if index >= len(name_levels):
            return False
        if level != "+" and level != name_levels[index]:
            return False
    return len(filter_levels) == len(name_levels)


# ------------------------------------------------------------------------------------------ clients


class ExampleClients:
    """Clients for one example, made through the test's `client_factory` (so traces reach the results).

    `start()` closes and forgets the clients of the previous example; `close()` ends the current
    example's connections (DISCONNECT where still connected) but keeps their traces.
    """

    def __init__(self, factory):
        self.factory = factory
        self._base = len(factory.clients)
        self.current: list[RawClient] = []

    def start(self) -> None:
        for client in self.factory.clients[self._base:]:
            client.close()
        del self.factory.clients[self._base:]
        self.current = []

    def __call__(self, name: str, **kwargs) -> RawClient:
        client = self.factory(name, **kwargs)
        self.current.append(client)
        return client

    def close(self) -> None:
        for client in self.current:
            if client.closed:
                continue
            try:
                if not client.peer_closed and client.connack is not None and client.connack.reason_code == 0:
                    client.disconnect()
                else:
                    client.close()
            except Exception:  # noqa: BLE001 - cleanup must not hide the example's own outcome
                client.close()


# --------------------------------------------------------------------------------- waiting for mail


@dataclass
class Mailbox:
    """What one subscriber received in one settle: the example's own PUBLISHes, barrier excluded."""

    client: RawClient
    received: list[Publish] = field(default_factory=list)
    barrier_seen: bool = False


def settle(publisher: RawClient, subscribers: Iterable[RawClient], namespace: Namespace, *,
           enough: Callable[[RawClient, list[Publish]], bool] = lambda client, got: True,
           timeout: float = 3.0, extra_quiet: float = 0.0, barrier_to: Iterable[RawClient] | None = None,
           ) -> dict[str, Mailbox]:
    """Publish a barrier (QoS 1) from `publisher`, then read every subscriber until it has seen the
    barrier and `enough(client, received)` is true, or until `timeout`. Returns {client name: Mailbox}.

    Every subscriber (or every client in `barrier_to`) must be subscribed to `namespace.barrier`.
    PUBLISHes are acknowledged as they arrive; anything but a PUBLISH fails the test. `extra_quiet`
    seconds of further reading follow (for the end of a state-machine run).
    """
    subscribers = list(subscribers)
    waiting_for_barrier = {c.name for c in (subscribers if barrier_to is None else barrier_to)}
    nonce = uuid.uuid4().hex.encode()
    publisher.publish(namespace.barrier, nonce, qos=1)
    boxes = {client.name: Mailbox(client) for client in subscribers}
    deadline = time.monotonic() + timeout
    pending = set(boxes)
    while pending and time.monotonic() < deadline:
        if not _drain_all(boxes.values(), namespace, nonce):
            _wait_for_data([boxes[name].client for name in pending], min(0.05, deadline - time.monotonic()))
        for name in list(pending):
            box = boxes[name]
            done_barrier = box.barrier_seen or name not in waiting_for_barrier
            if done_barrier and enough(box.client, box.received):
                pending.discard(name)
    end = time.monotonic() + extra_quiet
    while time.monotonic() < end:
        if not _drain_all(boxes.values(), namespace, nonce):
            _wait_for_data([box.client for box in boxes.values()], end - time.monotonic())
    _drain_all(boxes.values(), namespace, nonce)
    return boxes


def _drain_all(boxes: Iterable[Mailbox], namespace: Namespace, nonce: bytes) -> bool:
    """Read what each client has (waiting at most a millisecond each); True if anything came."""
    progressed = False
    for box in boxes:
        before = len(box.received), box.barrier_seen
        _drain(box, namespace, nonce, 0.001)
        progressed |= (len(box.received), box.barrier_seen) != before
    return progressed


def _wait_for_data(clients: list[RawClient], seconds: float) -> None:
    sockets = [c.sock for c in clients if not (c.closed or c.peer_closed)]
    for sock in sockets:
        quick_ack(sock)
    if sockets and seconds > 0:
        select.select(sockets, [], [], seconds)


def quick_ack(sock: socket.socket) -> None:
    """Acknowledge received TCP segments at once (Linux TCP_QUICKACK, which the kernel resets by itself).

    A broker that does not set TCP_NODELAY (mosquitto's default) holds a small packet back until its
    previous one is acknowledged; with delayed acknowledgements on our side every such exchange waits
    about 40 ms. Quick acknowledgements keep the examples fast without changing what is on the wire.
    """
    option = getattr(socket, "TCP_QUICKACK", None)
    if option is not None:
        try:
            sock.setsockopt(socket.IPPROTO_TCP, option, 1)
        except OSError:
            pass


def _drain(box: Mailbox, namespace: Namespace, nonce: bytes, for_seconds: float) -> None:
    client = box.client
    if client.closed or client.peer_closed:
        return
    quick_ack(client.sock)
    try:
        packets = client.collect_publishes(for_seconds)
    except ConnectionClosed:
        raise ConnectionClosed(f"{client.name}: the broker closed the connection while the test waited "
                               "for deliveries") from None
    for packet in packets:
        if packet.topic == namespace.barrier:
            if packet.payload == nonce:
                box.barrier_seen = True
            continue  # an older barrier (queued for an offline session) or a copy via a wildcard
        if namespace.owns(packet.topic):
            box.received.append(packet)


# ------------------------------------------------------------------ overlapping-subscription rules


@dataclass(frozen=True)
class Matching:
    """One subscription of a client that matches a message: its granted QoS and (5.0) identifier."""

    qos: int
    identifier: int | None = None


#: the statement each rule of `check_copies` enforces, per protocol level (3.1.1 = 4, 5.0 = 5)
COPY_RULES = {
    4: {"match": "MQTT-3.3.2-3", "qos": "MQTT-3.8.4-6", "highest": "MQTT-3.3.5-1", "ids-one": None, "ids-each": None},
    5: {"match": "MQTT-3.3.2-3", "qos": "MQTT-3.8.4-8", "highest": "MQTT-3.3.4-2", "ids-one": "MQTT-3.3.4-4",
        "ids-each": "MQTT-3.3.4-5"},
}


def check_copies(copies: list[Publish], publish_qos: int, matching: list[Matching], *,
                 required: bool = True, check_identifiers: bool = False, version: int | None = None) -> str | None:
    """Are `copies` (the PUBLISHes of one message to one client) what the spec allows? None if so,
    else a description of what is wrong.

    With no matching subscription nothing may arrive. Otherwise one copy at the highest granted QoS
    (each QoS being min(published, granted)) must arrive [MQTT-3.3.5-1] (3.1.1) [MQTT-3.3.4-2] (5.0),
    unless `required` is False (QoS 0 messages queued for an offline session, which a server may
    drop); the server MAY send further copies, one per additional matching subscription at that
    subscription's QoS; and "the server is permitted to send duplicate copies of a message to a
    subscriber in the case where the original message was published with QoS 1 and the maximum QoS
    granted was QoS 0" (3.1.1 3.8.4 [MQTT-3.8.4-6], 5.0 3.8.4). With `check_identifiers` (5.0), a
    single copy carries the Subscription Identifiers of all matching subscriptions [MQTT-3.3.4-4]
    and each of several copies the identifier of its own subscription [MQTT-3.3.4-5].

    With `version` (4 or 5) each description ends with the id of the statement it breaks, in brackets
    (`COPY_RULES`), so that only that statement fails.
    """
    rules = COPY_RULES.get(version or 0, {})

    def broke(rule: str, text: str) -> str:
        statement = rules.get(rule)
        return f"{text} [{statement}]" if statement else text

    if not matching:
        return None if not copies else broke("match", f"delivered {len(copies)} time(s) but matches no subscription")
    levels = [min(publish_qos, m.qos) for m in matching]
    top = max(levels)
    if not copies:
        return broke("highest", "not delivered although it matches a subscription") if required else None
    bad_qos = [c.qos for c in copies if c.qos not in levels]
    if bad_qos:
        return broke("qos", f"delivered at QoS {bad_qos}, but the matching subscriptions allow only "
                            f"{sorted(set(levels))} (min of published QoS {publish_qos} and granted QoS)")
    if required and not any(c.qos == top for c in copies):
        return broke("highest", f"no copy at the highest QoS of the matching subscriptions ({top}): "
                                f"got {[c.qos for c in copies]}")
    all_ids = sorted(m.identifier for m in matching if m.identifier is not None)
    if len(copies) == 1 and len(matching) > 1:
        copy = copies[0]
        if copy.qos != top:
            return broke("highest", f"a single copy must have the highest QoS {top}, got QoS {copy.qos}")
        if check_identifiers and sorted(copy.properties.subscription_identifiers) != all_ids:
            return broke("ids-one", f"a single copy must carry the identifiers of all matching subscriptions "
                                    f"{all_ids}, got {copy.properties.subscription_identifiers}")
        return None

    def fits(copy: Publish, m: Matching) -> bool:
        if copy.qos != min(publish_qos, m.qos):
            return False
        if check_identifiers:
            return list(copy.properties.subscription_identifiers) == ([m.identifier] if m.identifier else [])
        return True

    repeatable = [publish_qos == 1 and m.qos == 0 for m in matching]

    def assign(index: int, used: frozenset[int]) -> bool:
        if index == len(copies):
            return True
        for j, m in enumerate(matching):
            if (j not in used or repeatable[j]) and fits(copies[index], m) and assign(index + 1, used | {j}):
                return True
        return False

    if not assign(0, frozenset()):
        described = [(c.qos, list(c.properties.subscription_identifiers)) for c in copies]
        wanted = [(min(publish_qos, m.qos), m.identifier) for m in matching]
        return broke("ids-each" if check_identifiers else "highest",
                     f"{len(copies)} copies (QoS, identifiers) {described} cannot be one per matching "
                     f"subscription (QoS, identifier) {wanted}")
    return None


def is_deviation_104(version: int, copies: list[Publish], publish_qos: int, matching: list[Matching]) -> bool:
    """The shape of known deviation #104: MQTT 3.1.1, several matching subscriptions, one copy sent at the
    QoS of one of them, but not the highest."""
    levels = [min(publish_qos, m.qos) for m in matching]
    return (version == 4 and len(copies) == 1 and len(matching) > 1 and copies[0].qos in levels
            and copies[0].qos < max(levels))
