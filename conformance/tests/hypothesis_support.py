"""Hypothesis for the conformance suite: profiles, per-example clients, a topic matcher and a barrier.

Profiles
--------
Two settings profiles apply to the suite's property tests and state machine (and only to them: the
global Hypothesis profile of the session is left alone, so a project's own tests keep theirs):

* ``ci`` (default) -- few examples, so that the whole suite against one broker for both protocol
  versions stays under a minute;
* ``thorough`` -- many more examples and longer state-machine runs, for a hunt before a release.

Choose with ``MQTT_CONFORMANCE_PROFILE=ci|thorough``; when that is not set, ``HYPOTHESIS_PROFILE``
is honoured if it names one of the two (tox sets ``HYPOTHESIS_PROFILE=ci``). Both profiles have no
deadline (every example talks to a broker over TCP), suppress the health checks that network tests
trip without being wrong (too slow, function-scoped fixtures: the broker and the client factory are
deliberately shared by the examples of one test) and use no example database, so running the suite
leaves no ``.hypothesis`` directory behind; a failure prints the ``@reproduce_failure`` blob instead.
The ci profile does not shrink failing examples (see below); the thorough one does.

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

import os
import select
import socket
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from hypothesis import HealthCheck, Phase, settings

from conformance.client import ConnectionClosed, RawClient
from refbroker.protocol import Publish

PROFILE_ENV = "MQTT_CONFORMANCE_PROFILE"
PROFILES = ("ci", "thorough")

_HEALTH = [HealthCheck.too_slow, HealthCheck.function_scoped_fixture, HealthCheck.data_too_large,
           HealthCheck.filter_too_much]
_COMMON = dict(deadline=None, suppress_health_check=_HEALTH, database=None, print_blob=True)

# CI does not shrink: against a live broker every shrink step costs network round trips, and shrinking a
# failing state-machine run takes minutes. The failure report still shows the failing example (and the
# blob to replay it with @reproduce_failure); the thorough profile shrinks to a minimal one.
NO_SHRINK_PHASES = (Phase.explicit, Phase.reuse, Phase.generate, Phase.target)
settings.register_profile("mqtt-conformance-ci", max_examples=25, stateful_step_count=15, phases=NO_SHRINK_PHASES,
                          **_COMMON)
settings.register_profile("mqtt-conformance-thorough", max_examples=300, stateful_step_count=40, **_COMMON)


def profile_name() -> str:
    """"ci" or "thorough": MQTT_CONFORMANCE_PROFILE, else HYPOTHESIS_PROFILE if it names one, else "ci"."""
    chosen = os.environ.get(PROFILE_ENV, "").strip()
    if chosen:
        if chosen not in PROFILES:
            raise ValueError(f"{PROFILE_ENV}={chosen!r}: expected one of {', '.join(PROFILES)}")
        return chosen
    fallback = os.environ.get("HYPOTHESIS_PROFILE", "").strip()
    return fallback if fallback in PROFILES else "ci"


def suite_settings(**overrides) -> settings:
    """The settings of the selected profile, with per-test `overrides` (e.g. fewer examples for a slow test).

    Overrides of `max_examples` are scaled: the thorough profile multiplies them by 25.
    """
    name = profile_name()
    base = settings.get_profile(f"mqtt-conformance-{name}")
    if "max_examples" in overrides and name == "thorough":
        overrides["max_examples"] *= 25
    if "stateful_step_count" in overrides and name == "thorough":
        overrides["stateful_step_count"] = max(overrides["stateful_step_count"] * 3, 40)
    return settings(base, **overrides)


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


def check_copies(copies: list[Publish], publish_qos: int, matching: list[Matching], *,
                 required: bool = True, check_identifiers: bool = False) -> str | None:
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
    """
    if not matching:
        return None if not copies else f"delivered {len(copies)} time(s) but matches no subscription"
    levels = [min(publish_qos, m.qos) for m in matching]
    top = max(levels)
    if not copies:
        return "not delivered although it matches a subscription" if required else None
    bad_qos = [c.qos for c in copies if c.qos not in levels]
    if bad_qos:
        return (f"delivered at QoS {bad_qos}, but the matching subscriptions allow only "
                f"{sorted(set(levels))} (min of published QoS {publish_qos} and granted QoS)")
    if required and not any(c.qos == top for c in copies):
        return f"no copy at the highest QoS of the matching subscriptions ({top}): got {[c.qos for c in copies]}"
    all_ids = sorted(m.identifier for m in matching if m.identifier is not None)
    if len(copies) == 1 and len(matching) > 1:
        copy = copies[0]
        if copy.qos != top:
            return f"a single copy must have the highest QoS {top}, got QoS {copy.qos}"
        if check_identifiers and sorted(copy.properties.subscription_identifiers) != all_ids:
            return (f"a single copy must carry the identifiers of all matching subscriptions {all_ids}, "
                    f"got {copy.properties.subscription_identifiers}")
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
        return (f"{len(copies)} copies (QoS, identifiers) {described} cannot be one per matching subscription "
                f"(QoS, identifier) {wanted}")
    return None


def is_deviation_104(version: int, copies: list[Publish], publish_qos: int, matching: list[Matching]) -> bool:
    """The shape of known deviation #104: MQTT 3.1.1, several matching subscriptions, one copy sent at the
    QoS of one of them, but not the highest."""
    levels = [min(publish_qos, m.qos) for m in matching]
    return (version == 4 and len(copies) == 1 and len(matching) > 1 and copies[0].qos in levels
            and copies[0].qos < max(levels))
