"""Property tests against the live broker: random topic names, filters and publish sequences, checked
against what the specification allows (section 4.7 matching, overlapping subscriptions, minimum QoS,
the retained store, per-topic ordering).

Every example works in its own topic namespace; topics and filters are written as templates in which
"{P}" stands for the example's plain root and "{D}" for its '$' root, so a failing example reads like
"{D}/a subscribed as +/a". Profiles and helpers: conformance/tests/hypothesis_support.py.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from conformance import known_deviation
from conformance.checks import fail_statements, statements_named_in
from conformance.client import ConformanceFailure
from conformance.strategies import topic_filters, topic_names
from refbroker.protocol import MQTT_5, Properties, Puback, Publish

from .helpers import QOS_MIN
from .hypothesis_support import (
    ExampleClients,
    Matching,
    Namespace,
    check_copies,
    is_deviation_104,
    settle,
    suite_settings,
    topic_matches,
)

# A few short levels collide often, which is what makes matching interesting. "" is an empty level;
# "$c" starts with '$' but is not a first level, where '$' means nothing special.
LEVELS = st.sampled_from(["a", "b", "", "$c"])


def _rest_of_name():
    return st.one_of(st.none(), topic_names(levels=LEVELS, max_levels=3, dollar=False))


def _rest_of_filter():
    return st.one_of(st.none(), topic_filters(levels=LEVELS, max_levels=3, dollar=False))


@st.composite
def name_templates(draw, dollar: bool = True) -> str:
    """A topic name under the example's plain root "{P}" or its '$' root "{D}"."""
    root = draw(st.sampled_from(["{P}", "{D}"] if dollar else ["{P}"]))
    rest = draw(_rest_of_name())
    return root if rest is None else f"{root}/{rest}"


@st.composite
def filter_templates(draw) -> str:
    """A topic filter: rooted at "{P}" or "{D}", or starting with a wildcard ("#", "+/...")."""
    root = draw(st.sampled_from(["{P}", "{D}", "+", "#"]))
    if root == "#":
        return "#"
    rest = draw(_rest_of_filter())
    return root if rest is None else f"{root}/{rest}"


def render(template: str, namespace: Namespace) -> str:
    return template.replace("{P}", namespace.plain).replace("{D}", namespace.dollar)


# ---------------------------------------------------------------------------------- delivery sets


@dataclass(frozen=True)
class SubscriptionSpec:
    filter_template: str
    qos: int
    identifier: int | None  # a Subscription Identifier (5.0, when the broker offers them)


@dataclass(frozen=True)
class DeliveryCase:
    subscribers: tuple[tuple[SubscriptionSpec, ...], ...]
    publishes: tuple[tuple[str, int], ...]  # (topic template, QoS)


subscription_specs = st.builds(SubscriptionSpec, filter_templates(), st.integers(0, 2),
                               st.one_of(st.none(), st.integers(1, 9)))
delivery_cases = st.builds(
    DeliveryCase,
    st.lists(st.lists(subscription_specs, min_size=1, max_size=4, unique_by=lambda s: s.filter_template)
             .map(tuple), min_size=1, max_size=2).map(tuple),
    st.lists(st.tuples(name_templates(), st.integers(0, 2)), min_size=1, max_size=6).map(tuple),
)


@pytest.mark.spec("MQTT-3.3.2-3", "MQTT-4.7.2-1", "MQTT-3.3.5-1", "MQTT-3.8.4-6", "MQTT-4.5.0-1", "MQTT-3.3.1-9",
                  "MQTT-3.3.1-3", version="3.1.1")
@pytest.mark.spec("MQTT-3.3.2-3", "MQTT-4.7.2-1", "MQTT-3.3.4-2", "MQTT-3.3.4-3", "MQTT-3.3.4-4", "MQTT-3.3.4-5",
                  "MQTT-3.8.4-8", "MQTT-4.5.0-1", "MQTT-3.3.1-12", "MQTT-3.3.1-3", version="5.0")
def test_deliveries_equal_matching_subscriptions(client_factory, version, broker):
    """Each subscriber gets exactly the messages that match one of its filters (section 4.7 read by
    the test's own matcher; wildcard-first filters never match '$' topics), one copy at the highest
    granted QoS or one copy per matching subscription, each at min(published QoS, granted QoS),
    carrying (5.0) the right Subscription Identifiers, with the publisher's topic name, RETAIN 0 and
    DUP 0. '$' topics are optional deliveries even to explicit filters: a server "SHOULD prevent
    Clients from using such Topic Names to exchange messages" (4.7.2)."""
    deviations: list[str] = []

    clients = ExampleClients(client_factory)  # shared by the examples of this test

    @suite_settings()
    @given(case=delivery_cases)
    @example(case=DeliveryCase(((SubscriptionSpec("#", 1, 1), SubscriptionSpec("{P}", 0, 2)),), (("{P}", 1),)))
    def examples(case):
        _delivery_example(clients, version, broker, case, deviations)

    examples()
    if deviations:
        known_deviation(104, deviations[0] + (f" (and in {len(deviations) - 1} more examples)" if len(deviations) > 1
                                              else ""))


def _delivery_example(clients: ExampleClients, version, broker, case, deviations):
    clients.start()  # a fresh set of clients for each example
    namespace = Namespace.new(dollar_topics=broker.profile.feature("dollar_topics") is not False)
    try:
        publisher = clients("publisher")
        use_ids = version == MQTT_5 and publisher.connack.properties.subscription_identifier_available in (None, 1) \
            and broker.profile.feature("subscription_identifiers") is not False
        wildcards = version != MQTT_5 or publisher.connack.properties.wildcard_subscription_available in (None, 1)
        subscribers = []  # (client, [(filter, Matching)])
        for index, specs in enumerate(case.subscribers):
            client = clients(f"subscriber{index}")
            client.subscribe((namespace.barrier, 1))
            granted = []
            for spec in specs:
                topic_filter = render(spec.filter_template, namespace)
                if not wildcards and ("+" in topic_filter or "#" in topic_filter):
                    continue
                identifier = spec.identifier if use_ids else None
                props = Properties(subscription_identifiers=[identifier]) if identifier else None
                code = client.subscribe((topic_filter, spec.qos), properties=props, lower_grant_ok=True).reason_codes[0]
                if code < 0x80:
                    if code > spec.qos:
                        raise ConformanceFailure(f"{topic_filter!r}: granted QoS {code} above the requested {spec.qos}")
                    granted.append((topic_filter, Matching(code, identifier)))
            subscribers.append((client, granted))

        messages = []  # (topic, payload, qos, accepted)
        for number, (template, qos) in enumerate(case.publishes):
            topic = render(template, namespace)
            payload = b"m%d" % number
            ack = publisher.publish(topic, payload, qos=qos)
            accepted = not (version == MQTT_5 and ack is not None and ack.reason_code >= 0x80)
            messages.append((topic, payload, qos, accepted))

        def expectations(granted):
            for topic, payload, qos, accepted in messages:
                matching = [m for f, m in granted if topic_matches(f, topic)] if accepted else []
                required = accepted and not topic.startswith("$")
                yield topic, payload, qos, matching, required

        plans = {client.name: list(expectations(granted)) for client, granted in subscribers}

        def enough(client, received):  # every required message has come at least once (the QoS is judged below)
            got = {p.payload for p in received}
            return all(payload in got for _, payload, _, matching, required in plans[client.name]
                       if matching and required)

        boxes = settle(publisher, [c for c, _ in subscribers], namespace, enough=enough)
        problems: list[tuple[str, str]] = []
        where = f" (namespace {namespace.plain})"
        retain_cleared = "MQTT-3.3.1-12" if version == MQTT_5 else "MQTT-3.3.1-9"
        for client, granted in subscribers:
            received = boxes[client.name].received
            known = {payload for _, payload, _, _ in messages}
            for packet in received:
                if packet.payload not in known:
                    problems.append(("MQTT-3.3.2-3", (f"{client.name}: unexpected delivery {packet.topic!r} "
                                                     f"{packet.payload!r}{where}")))
            for topic, payload, qos, matching, required in plans[client.name]:
                copies = [p for p in received if p.payload == payload]
                for copy in copies:
                    if copy.topic != topic:
                        problems.append(("MQTT-3.3.2-3", (f"{client.name}: {payload!r} published to {topic!r} arrived "
                                                         f"as {copy.topic!r}{where}")))
                    if copy.retain:
                        problems.append((retain_cleared, (f"{client.name}: {payload!r} (RETAIN 0) arrived at an "
                                                         f"existing subscription with RETAIN 1{where}")))
                    if copy.dup:
                        problems.append(("MQTT-3.3.1-3", (f"{client.name}: {payload!r} arrived with DUP 1 on its first "
                                                         f"delivery{where}")))
                error = check_copies(copies, qos, matching, required=required, check_identifiers=use_ids,
                                     version=version)
                if error and is_deviation_104(version, copies, qos, matching) and broker.deviation_applies(104):
                    deviations.append(f"{client.name}: QoS {qos} message to {topic!r} matching subscriptions "
                                      f"{[f for f, m in granted if topic_matches(f, topic)]} granted "
                                      f"{[m.qos for m in matching]} was delivered once, at QoS {copies[0].qos}")
                    continue
                if error:
                    filters = [f for f, _ in granted]
                    named = statements_named_in(error)  # check_copies ends each description with its statement
                    problems.append((named[-1] if named else "MQTT-3.3.2-3",
                                     (f"{client.name}: message {payload!r} to {topic!r} at QoS {qos}: {error} "
                                     f"(subscriptions {filters}, granted {[m.qos for _, m in granted]}){where}")))
        fail_statements(problems)
    finally:
        clients.close()


# ---------------------------------------------------------------------------------- retained store


@dataclass(frozen=True)
class RetainedOp:
    topic: int  # index into RETAINED_TOPICS
    empty: bool
    qos: int
    retain: bool


RETAINED_TOPICS = ("{P}/r/0", "{P}/r/1", "{P}/r/1/x")
retained_ops = st.builds(RetainedOp, st.integers(0, len(RETAINED_TOPICS) - 1), st.booleans(), st.integers(0, 2),
                         st.booleans())


@pytest.mark.spec("MQTT-3.3.1-5", "MQTT-3.3.1-6", "MQTT-3.3.1-7", "MQTT-3.3.1-8", "MQTT-3.3.1-10",
                  "MQTT-3.3.1-11", "MQTT-3.3.1-12", "MQTT-3.8.4-6", version="3.1.1")
@pytest.mark.spec("MQTT-3.3.1-5", "MQTT-3.3.1-6", "MQTT-3.3.1-7", "MQTT-3.3.1-8", "MQTT-3.3.1-9", "MQTT-3.8.4-8",
                  version="5.0")
def test_retained_store_equals_model(client_factory, version, broker):
    """After any sequence of publishes (retained or not, empty payloads deleting), a new subscription
    receives exactly the retained messages of a dict model {topic: (payload, QoS)}, with RETAIN 1 and
    QoS min(stored QoS, granted QoS). A retained QoS 0 message may be missing: the server "SHOULD
    store the new QoS 0 message ... but MAY choose to discard it at any time" (3.3.1.3 in both
    versions); what was retained before it must still never come back."""

    clients = ExampleClients(client_factory)  # shared by the examples of this test

    @suite_settings()
    @given(ops=st.lists(retained_ops, min_size=1, max_size=8), sub_qos=st.integers(0, 2))
    def examples(ops, sub_qos):
        _retained_example(clients, version, broker, ops, sub_qos)

    examples()


def _retained_example(clients: ExampleClients, version, broker, ops, sub_qos):
    clients.start()  # a fresh set of clients for each example
    namespace = Namespace.new()
    topics = [render(t, namespace) for t in RETAINED_TOPICS]
    publisher = clients("publisher")
    broker.require("retain", publisher.connack if version == MQTT_5 else None)
    v5 = version == MQTT_5
    # the statements each kind of difference from the model breaks, per protocol version
    stores = "MQTT-3.3.1-5"  # RETAIN 1: stored, replacing the earlier retained message
    sent_on_subscribe = "MQTT-3.3.1-9" if v5 else "MQTT-3.3.1-6"
    retain_flag_set = "MQTT-3.3.1-9" if v5 else "MQTT-3.3.1-8"
    empty_deletes = "MQTT-3.3.1-6" if v5 else "MQTT-3.3.1-10"
    empty_not_stored = "MQTT-3.3.1-7" if v5 else "MQTT-3.3.1-11"
    not_retained_kept_out = "MQTT-3.3.1-8" if v5 else "MQTT-3.3.1-12"
    model: dict[str, tuple[bytes, int]] = {}
    deleted: set[str] = set()  # topics whose last retained PUBLISH had an empty payload
    try:
        for number, op in enumerate(ops):
            topic = topics[op.topic]
            payload = b"" if op.empty else b"r%d" % number
            publisher.publish(topic, payload, qos=op.qos, retain=op.retain)
            if op.retain:
                if op.empty:
                    model.pop(topic, None)
                    deleted.add(topic)
                else:
                    model[topic] = (payload, op.qos)
                    deleted.discard(topic)
        # A broker reads one connection's packets in order: once the PINGRESP is back, the QoS 0 PUBLISHes
        # above have been handled, so none of them can reach the subscription below as a live message
        # (without this, an empty RETAIN 0 PUBLISH still on its way was judged a stored empty message)
        publisher.ping()
        subscriber = clients("subscriber")
        subscriber.subscribe((namespace.barrier, 1))
        granted = subscriber.subscribe((f"{namespace.plain}/#", sub_qos), lower_grant_ok=True).reason_codes[0]
        if granted >= 0x80:
            raise ConformanceFailure(f"subscription to {namespace.plain}/# refused: 0x{granted:02X}")
        required = {topic: entry for topic, entry in model.items() if entry[1] > 0}

        def enough(client, received):
            return {p.topic for p in received} >= set(required)

        received = settle(publisher, [subscriber], namespace, enough=enough)["subscriber"].received
        got = defaultdict(list)
        for packet in received:
            got[packet.topic].append(packet)
        problems: list[tuple[str, str]] = []
        where = f" (granted QoS {granted}, namespace {namespace.plain})"
        for topic, packets in got.items():
            if topic not in model:
                arrived = [p.payload for p in packets]
                if b"" in arrived:
                    problems.append((empty_not_stored, f"{topic!r}: an empty retained message was sent{where}"))
                elif topic in deleted:
                    problems.append((empty_deletes, (f"{topic!r}: {arrived} arrived after an empty retained PUBLISH "
                                                    f"deleted it{where}")))
                else:
                    problems.append((not_retained_kept_out, (f"{topic!r}: {arrived} arrived, but only RETAIN 0 "
                                                            f"PUBLISHes went to the topic{where}")))
                continue
            payload, qos = model[topic]
            expected_qos = min(qos, granted)
            allowed = 1 if not (qos == 1 and granted == 0) else len(packets)  # 3.8.4: duplicates of QoS 1 at 0
            copies = [p for p in packets if p.payload == payload]  # other payloads are judged below
            if len(copies) > allowed:
                problems.append((sent_on_subscribe, f"{topic!r}: {len(copies)} copies of the retained message{where}"))
            for packet in packets:
                if packet.payload != payload:
                    problems.append((stores, (f"{topic!r}: got payload {packet.payload!r}, the newest retained "
                                             f"message is {payload!r}{where}")))
                if packet.qos != expected_qos:
                    problems.append((QOS_MIN[version], (f"{topic!r}: got QoS {packet.qos}, expected min(stored QoS "
                                                       f"{qos}, granted {granted}) = {expected_qos}{where}")))
                if not packet.retain:
                    problems.append((retain_flag_set, (f"{topic!r}: a retained message sent on subscription with "
                                                      f"RETAIN 0{where}")))
        for topic in required:
            if topic not in got:
                problems.append((sent_on_subscribe, (f"{topic!r}: retained message {model[topic][0]!r} (QoS "
                                                    f"{model[topic][1]}) not sent{where}")))
        fail_statements(problems)
    finally:
        for topic in topics:
            if not publisher.closed and not publisher.peer_closed:
                publisher.publish(topic, b"", qos=0, retain=True)
        clients.close()


# ------------------------------------------------------------------------------------------ ordering


@pytest.mark.spec("MQTT-4.6.0-5", "MQTT-4.6.0-6", "MQTT-3.3.1-1", version="3.1.1")
@pytest.mark.spec("MQTT-4.6.0-5", "MQTT-4.6.0-6", "MQTT-3.3.1-1", version="5.0")
def test_per_topic_order_of_qos1_messages(client_factory, version, broker):
    """QoS 1 messages from one publisher, sent back to back on up to three topics without waiting for
    PUBACKs, reach a subscriber in publishing order per topic (4.6: "for the same Topic and QoS").
    Redelivered copies are allowed only with DUP 1."""

    clients = ExampleClients(client_factory)  # shared by the examples of this test

    @suite_settings()
    @given(sequence=st.lists(st.integers(0, 2), min_size=2, max_size=20), sub_qos=st.integers(1, 2))
    def examples(sequence, sub_qos):
        _ordering_example(clients, version, sequence, sub_qos)

    examples()


def _ordering_example(clients: ExampleClients, version, sequence, sub_qos):
    clients.start()  # a fresh set of clients for each example
    namespace = Namespace.new()
    topics = [f"{namespace.plain}/o/{n}" for n in range(3)]
    try:
        subscriber = clients("subscriber")
        subscriber.subscribe((namespace.barrier, 1))
        granted = subscriber.subscribe((f"{namespace.plain}/o/+", sub_qos), lower_grant_ok=True).reason_codes[0]
        if granted >= 0x80:
            raise ConformanceFailure(f"subscription refused: 0x{granted:02X}")
        publisher = clients("publisher")
        window = 10
        if version == MQTT_5 and publisher.connack.properties.receive_maximum:
            window = min(window, publisher.connack.properties.receive_maximum)  # [MQTT-3.3.4-7]
        published = defaultdict(list)
        for start in range(0, len(sequence), window):
            ids = []
            for number in range(start, min(start + window, len(sequence))):
                topic, payload = topics[sequence[number]], b"%03d" % number
                packet_id = publisher.next_packet_id()
                publisher.send(Publish(topic, payload, 1, packet_id=packet_id))
                published[topic].append(payload)
                ids.append(packet_id)
            acked = sorted(publisher.expect(Puback).packet_id for _ in ids)
            if acked != sorted(ids):
                raise ConformanceFailure(f"PUBACKs for {acked}, published {sorted(ids)} "
                                         f"[{'MQTT-2.2.1-5' if version == MQTT_5 else 'MQTT-2.3.1-6'}]")
        total = len(sequence)

        def enough(client, received):
            return len({p.payload for p in received}) >= total

        received = settle(publisher, [subscriber], namespace, enough=enough)["subscriber"].received
        problems: list[tuple[str, str]] = []
        # 3.1.1: -6 forwards ordered topics in send order; 5.0 numbers it -5
        ordering = "MQTT-4.6.0-5" if version == MQTT_5 else "MQTT-4.6.0-6"
        for topic in topics:
            firsts, seen = [], set()
            for packet in (p for p in received if p.topic == topic):
                if packet.payload in seen:
                    if not packet.dup and granted != 0:
                        problems.append(("MQTT-3.3.1-1", (f"{topic!r}: {packet.payload!r} delivered again without "
                                                         f"DUP (namespace {namespace.plain})")))
                    continue
                seen.add(packet.payload)
                firsts.append(packet.payload)
            if firsts != published[topic]:
                if sorted(firsts) == sorted(published[topic]):
                    problems.append((ordering, (f"{topic!r}: published {published[topic]}, delivered {firsts} "
                                               f"(namespace {namespace.plain})")))
                else:  # a QoS 1 message lost: the delivery itself failed
                    raise ConformanceFailure(f"{topic!r}: published {published[topic]} at QoS 1, delivered {firsts} "
                                             f"(namespace {namespace.plain})")
        fail_statements(problems)
    finally:
        clients.close()
