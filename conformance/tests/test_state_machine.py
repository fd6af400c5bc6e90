"""A Hypothesis state machine: several clients connect (clean or with a session that outlives the
connection), subscribe, unsubscribe, publish at QoS 0/1/2 (retained or not, empty retained payloads
deleting), disconnect cleanly or abruptly (socket closed without DISCONNECT, which publishes the Will)
and reconnect with or without their session. After every step the deliveries each connected client
received are compared with a small model written here, independent of any broker code:

* sessions: Session Present on CONNACK; subscriptions kept in a session that survives the connection
  (3.1.1 Clean Session 0, 5.0 Session Expiry Interval > 0) and dropped otherwise or on Clean Start;
* deliveries: every message goes to each connected client with a matching subscription (at the
  QoS and copy counts the overlapping-subscription rules allow), never to a filter that was
  unsubscribed; QoS 1 and 2 messages published while a session is offline are delivered when it
  reconnects (QoS 0 ones may be, or may be dropped: the spec lets a server store them or not, and
  mosquitto does not by default);
* wills: published on an abrupt close, never after DISCONNECT;
* retained messages: a dict {topic: (payload, QoS)} sent on subscription (QoS 0 ones optional, as a
  server MAY discard them).

Sessions left behind are cleaned up at the end of each run (Clean Start, Session Expiry 0), as are
retained messages. Profiles: conformance/tests/hypothesis_support.py.
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from dataclasses import dataclass, field

import pytest
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, precondition, rule, run_state_machine_as_test

from conformance import known_deviation
from conformance.checks import fail_statements, statements_named_in
from conformance.client import ConformanceFailure
from refbroker.protocol import MQTT_5, Properties, Publish, Will

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

# Few topics and filters that overlap a lot, so that short runs still hit matches, overlaps and misses.
TOPICS = ("{P}/a", "{P}/b/c")
FILTERS = ("{P}/a", "{P}/+", "{P}/#", "{P}/+/c")
IDENTITIES = ("alice", "bob", "carol")
SESSION_EXPIRY = 300  # 5.0: seconds a persistent session outlives its connection


@dataclass
class Expected:
    """One message one client must (or may) receive in the current step."""

    topic: str
    payload: bytes
    qos: int  # as published
    matching: list[Matching]
    required: bool
    retain: bool  # the RETAIN flag it must arrive with
    queued: bool = False  # waited in an offline session: may come with DUP 1 (resent after a close)


@dataclass
class Session:
    persistent: bool
    subscriptions: dict[str, int] = field(default_factory=dict)  # filter -> granted QoS
    queued: list[Expected] = field(default_factory=list)


@dataclass
class Identity:
    name: str
    client_id: str
    client: object | None = None  # the RawClient while connected
    session: Session | None = None
    will: tuple[str, bytes, int, bool] | None = None


class DeliveryModel(RuleBasedStateMachine):
    def __init__(self, clients: ExampleClients, version: int, broker, observations: list[str]):
        super().__init__()
        self.clients = clients
        self.version = version
        self.broker = broker
        self.observations = observations  # known deviations seen (mosquitto #104)
        clients.start()
        self.ns = Namespace.new()
        self.topics = [t.replace("{P}", self.ns.plain) for t in TOPICS]
        self.filters = [f.replace("{P}", self.ns.plain) for f in FILTERS]
        self.observer = clients("observer")
        # 3.1.1 announces nothing: what the broker told MQTT 5.0 clients (or its profile) stands for it
        self.retain_supported = broker.limits(version).retain_available is not False if version != MQTT_5 else \
            self.observer.connack.properties.retain_available in (None, 1)
        self.identities = {name: Identity(name, f"{self.ns.plain}{name}") for name in IDENTITIES}
        self.retained: dict[str, tuple[bytes, int]] = {}
        self.counter = itertools.count()
        self.log: list[str] = []

    # ----------------------------------------------------------------------------- model helpers

    def online(self) -> list[str]:
        return [n for n, i in self.identities.items() if i.client is not None]

    def offline(self) -> list[str]:
        return [n for n, i in self.identities.items() if i.client is None]

    def _message(self, topic: str, payload: bytes, qos: int, retain: bool) -> dict[str, list[Expected]]:
        """Model a message the server accepted: who must get it now, who gets it queued, the retained store."""
        now: dict[str, list[Expected]] = defaultdict(list)
        for name, identity in self.identities.items():
            session = identity.session
            if session is None:
                continue
            matching = [Matching(q) for f, q in session.subscriptions.items() if topic_matches(f, topic)]
            if not matching:
                continue
            top = max(min(qos, m.qos) for m in matching)
            if identity.client is not None:
                now[name].append(Expected(topic, payload, qos, matching, True, False))
            else:  # offline, persistent: QoS > 0 queued [MQTT-3.1.2-5] / [MQTT-3.1.2-23], QoS 0 MAY be
                session.queued.append(Expected(topic, payload, qos, matching, top > 0, False, queued=True))
        if retain:
            if payload:
                self.retained[topic] = (payload, qos)
            else:
                self.retained.pop(topic, None)
        return now

    def _settle(self, expected: dict[str, list[Expected]], step: str, extra_quiet: float = 0.0) -> None:
        online = [self.identities[n] for n in self.online()]
        keys = {i.client.name: {(e.topic, e.payload) for e in expected.get(i.name, []) if e.required}
                for i in online}

        def enough(client, received):
            return keys[client.name] <= {(p.topic, p.payload) for p in received}

        boxes = settle(self.observer, [i.client for i in online], self.ns, enough=enough, extra_quiet=extra_quiet)
        problems: list[tuple[str, str]] = []
        for identity in online:
            received = boxes[identity.client.name].received
            problems += self._verify(identity, received, expected.get(identity.name, []))
        if problems:
            context = f" (after {step}; namespace {self.ns.plain}; steps: {' | '.join(self.log)})"
            fail_statements([(problems[0][0], problems[0][1] + context), *problems[1:]])

    def _verify(self, identity: Identity, received: list[Publish], expected: list[Expected]) -> list[tuple[str, str]]:
        """What differs from the model, each with the statement it breaks."""
        v5 = self.version == MQTT_5
        problems: list[tuple[str, str]] = []
        wanted: dict[tuple[str, bytes], list[Expected]] = defaultdict(list)
        for e in expected:
            wanted[(e.topic, e.payload)].append(e)
        got: dict[tuple[str, bytes], list[Publish]] = defaultdict(list)
        for p in received:
            got[(p.topic, p.payload)].append(p)
        for key, packets in got.items():
            if key not in wanted:
                # a Will payload ("w..."): published although DISCONNECT or an earlier publication deleted it
                rule = "MQTT-3.1.2-10" if key[1].startswith(b"w") else "MQTT-3.3.2-3"
                problems.append((rule, (f"{identity.name} received {key[1]!r} on {key[0]!r}, which the model does not "
                                       f"deliver to it (subscriptions {self._subs(identity)})")))
        for key, exps in wanted.items():
            packets = got.get(key, [])
            for p in packets:
                if p.retain not in {e.retain for e in exps}:
                    rule = ("MQTT-3.3.1-9" if v5 else "MQTT-3.3.1-8") if p.retain is False else \
                        ("MQTT-3.3.1-12" if v5 else "MQTT-3.3.1-9")
                    problems.append((rule, (f"{identity.name}: {key[1]!r} on {key[0]!r} arrived with RETAIN "
                                           f"{int(p.retain)}")))
                if p.dup and not any(e.queued for e in exps):
                    problems.append(("MQTT-3.3.1-3", (f"{identity.name}: {key[1]!r} on {key[0]!r} arrived with DUP 1 "
                                                     "on first delivery")))
            if len(exps) == 1:
                e = exps[0]
                error = check_copies(packets, e.qos, e.matching, required=e.required, version=self.version)
                if error and is_deviation_104(self.version, packets, e.qos, e.matching) \
                        and self.broker.deviation_applies(104):
                    self.observations.append(f"{identity.name}: QoS {e.qos} message on {e.topic!r}, subscriptions "
                                             f"{self._subs(identity)}: one copy at QoS {packets[0].qos}")
                    continue
            else:  # identical (topic, payload) pairs: empty retained payloads; judge them together
                needed = sum(e.required for e in exps)
                levels = {min(e.qos, m.qos) for e in exps for m in e.matching}
                error = None
                if len(packets) < needed:
                    error = f"{len(packets)} copies, at least {needed} expected"
                elif any(p.qos not in levels for p in packets):
                    error = f"copies at QoS {[p.qos for p in packets]}, allowed {sorted(levels)}"
            if error:
                named = statements_named_in(error)  # check_copies ends each description with its statement
                problems.append((named[-1] if named else "MQTT-4.5.0-1",
                                 (f"{identity.name}: {key[1]!r} on {key[0]!r}: {error} "
                                 f"(subscriptions {self._subs(identity)})")))
        return problems

    @staticmethod
    def _subs(identity: Identity) -> dict[str, int]:
        return dict(identity.session.subscriptions) if identity.session else {}

    # ------------------------------------------------------------------------------------ rules

    _wills = st.one_of(st.none(), st.tuples(st.integers(0, len(TOPICS) - 1), st.integers(0, 2), st.booleans()))

    @initialize(persistent=st.lists(st.booleans(), min_size=len(IDENTITIES), max_size=len(IDENTITIES)),
                filters=st.lists(st.integers(0, len(FILTERS) - 1), min_size=len(IDENTITIES),
                                 max_size=len(IDENTITIES)),
                wills=st.lists(_wills, min_size=len(IDENTITIES), max_size=len(IDENTITIES)))
    def start(self, persistent, filters, wills):
        """Every client starts connected, with one subscription (so that short runs are busy)."""
        for name, keep, which, will in zip(IDENTITIES, persistent, filters, wills):
            self._connect(name, not keep, keep, will)
            self._subscribe(name, which, 1)

    @precondition(lambda self: self.offline())
    @rule(data=st.data(), clean=st.booleans(), persistent=st.booleans(), will=_wills)
    def connect(self, data, clean, persistent, will):
        """CONNECT (3.1.1: Clean Session; 5.0: Clean Start and Session Expiry Interval 0 or 300)."""
        self._connect(data.draw(st.sampled_from(self.offline()), label="who"), clean, persistent, will)

    def _connect(self, name, clean, persistent, will):
        identity = self.identities[name]
        if self.version != MQTT_5:
            persistent = not clean  # 3.1.1: Clean Session 0 is the persistent session
        will_message = None
        if will is not None:
            topic = self.topics[will[0]]
            retain = will[2] and self.retain_supported
            identity.will = (topic, b"w%d" % next(self.counter), will[1], retain)
            will_message = Will(topic, identity.will[1], will[1], retain)
        else:
            identity.will = None
        props = Properties(session_expiry_interval=SESSION_EXPIRY if persistent else None) \
            if self.version == MQTT_5 else None
        self.log.append(f"connect {name} clean={int(clean)} persistent={int(persistent)} will={identity.will}")
        expect_present = not clean and identity.session is not None
        client = self.clients(name, client_id=identity.client_id, clean_start=clean, properties=props,
                              will=will_message)
        if client.connack.session_present != expect_present:
            raise ConformanceFailure(
                f"{name}: CONNACK Session Present {int(client.connack.session_present)}, expected "
                f"{int(expect_present)} ({'Clean Start' if clean else 'no Clean Start'}, "
                f"{'a' if identity.session is not None else 'no'} stored session) "
                f"[{_session_present_statement(self.version, clean, expect_present)}] "
                f"[steps: {' | '.join(self.log)}]")
        if clean or identity.session is None:
            identity.session = Session(persistent)
        identity.session.persistent = persistent
        identity.client = client
        client.subscribe((self.ns.barrier, 1))
        queued, identity.session.queued = identity.session.queued, []
        self._settle({name: queued}, f"connect {name}")

    @precondition(lambda self: self.online())
    @rule(data=st.data(), abrupt=st.booleans())
    def disconnect(self, data, abrupt):
        """DISCONNECT (the Will is dropped) or a socket close without it (the Will is published)."""
        name = data.draw(st.sampled_from(self.online()), label="who")
        identity = self.identities[name]
        self.log.append(f"{'close' if abrupt else 'disconnect'} {name}")
        client, identity.client = identity.client, None
        if abrupt:
            client.close()
        else:
            client.disconnect()
        if not identity.session.persistent:
            identity.session = None
        expected = {}
        if abrupt and identity.will is not None:
            topic, payload, qos, retain = identity.will
            expected = self._message(topic, payload, qos, retain)
        identity.will = None
        self._settle(expected, f"{'close' if abrupt else 'disconnect'} {name}")

    @precondition(lambda self: self.online())
    @rule(data=st.data(), which=st.integers(0, len(FILTERS) - 1), qos=st.integers(0, 2))
    def subscribe(self, data, which, qos):
        self._subscribe(data.draw(st.sampled_from(self.online()), label="who"), which, qos)

    def _subscribe(self, name, which, qos):
        identity = self.identities[name]
        topic_filter = self.filters[which]
        self.log.append(f"{name} subscribe {topic_filter} qos={qos}")
        code = identity.client.subscribe((topic_filter, qos), lower_grant_ok=True).reason_codes[0]
        if code >= 0x80:
            raise ConformanceFailure(f"{name}: SUBSCRIBE to {topic_filter!r} refused with 0x{code:02X}")
        if code > qos:
            raise ConformanceFailure(f"{name}: granted QoS {code} above the requested {qos}")
        identity.session.subscriptions[topic_filter] = code
        retained = [Expected(topic, payload, stored, [Matching(code)], stored > 0, True)
                    for topic, (payload, stored) in self.retained.items() if topic_matches(topic_filter, topic)]
        self._settle({name: retained}, f"{name} subscribe {topic_filter}")

    @precondition(lambda self: self.online())
    @rule(data=st.data(), which=st.integers(0, len(FILTERS) - 1))
    def unsubscribe(self, data, which):
        name = data.draw(st.sampled_from(self.online()), label="who")
        identity = self.identities[name]
        topic_filter = self.filters[which]
        self.log.append(f"{name} unsubscribe {topic_filter}")
        existed = identity.session.subscriptions.pop(topic_filter, None) is not None
        unsuback = identity.client.unsubscribe(topic_filter)
        # 0x11 (No subscription existed) describes a missing subscription, but no sentence rules out 0x00 there
        allowed = ([0x00],) if existed else ([0x11], [0x00])
        if self.version == MQTT_5 and unsuback.reason_codes not in allowed:
            fail_statements([("MQTT-3.11.3-2", (f"{name}: UNSUBACK codes {unsuback.reason_codes} for a subscription "
                                               f"that {'existed' if existed else 'did not exist'}"))])

    @precondition(lambda self: self.online())
    @rule(data=st.data(), which=st.integers(0, len(TOPICS) - 1), qos=st.integers(0, 2), retain=st.booleans(),
          empty=st.booleans())
    def publish(self, data, which, qos, retain, empty):
        name = data.draw(st.sampled_from(self.online()), label="who")
        identity = self.identities[name]
        topic = self.topics[which]
        retain = retain and self.retain_supported
        payload = b"" if (retain and empty) else b"s%d" % next(self.counter)
        self.log.append(f"{name} publish {topic} {payload!r} qos={qos} retain={int(retain)}")
        ack = identity.client.publish(topic, payload, qos=qos, retain=retain)
        if self.version == MQTT_5 and ack is not None and ack.reason_code >= 0x80:
            raise ConformanceFailure(f"{name}: the broker refused a plain PUBLISH with 0x{ack.reason_code:02X}")
        self._settle(self._message(topic, payload, qos, retain), f"{name} publish {topic}")

    # --------------------------------------------------------------------------------- teardown

    def teardown(self):
        try:
            if self.online():
                self._settle({}, "the last step (a final quiet period)", extra_quiet=0.05)
        finally:
            self._clean_up()

    def _clean_up(self):
        for identity in self.identities.values():
            if identity.client is not None:
                identity.client.disconnect()
                identity.client = None
            if identity.session is not None and identity.session.persistent:
                props = Properties(session_expiry_interval=0) if self.version == MQTT_5 else None
                cleaner = self.clients(f"{identity.name}-cleanup", client_id=identity.client_id, clean_start=True,
                                       properties=props)
                cleaner.disconnect()
        if self.retain_supported:
            for topic in self.topics:
                self.observer.publish(topic, b"", qos=0, retain=True)
        self.clients.close()


def _session_present_statement(version: int, clean: bool, stored: bool) -> str:
    """The statement that fixes Session Present: 3.1.1 3.2.2-1 (Clean Session 1), -2 (stored state), -3 (none);
    5.0 3.2.2-2 (Clean Start 1), -3 (Clean Start 0, either way)."""
    if version == 4:
        return "MQTT-3.2.2-1" if clean else ("MQTT-3.2.2-2" if stored else "MQTT-3.2.2-3")
    return "MQTT-3.2.2-2" if clean else "MQTT-3.2.2-3"


@pytest.mark.spec("MQTT-3.1.2-4", "MQTT-3.1.2-5", "MQTT-3.1.2-6", "MQTT-3.2.2-1", "MQTT-3.2.2-2", "MQTT-3.2.2-3",
                  "MQTT-3.1.2-8",
                  "MQTT-3.1.2-10", "MQTT-3.14.4-3", "MQTT-3.10.4-2", "MQTT-4.5.0-1", "MQTT-3.3.1-6",
                  "MQTT-3.3.1-10", "MQTT-3.3.2-3", "MQTT-3.3.5-1", "MQTT-3.8.4-6", "MQTT-3.3.1-8", "MQTT-3.3.1-9",
                  "MQTT-3.3.1-3", version="3.1.1")
@pytest.mark.spec("MQTT-3.1.2-4", "MQTT-3.1.2-5", "MQTT-3.1.2-6", "MQTT-3.1.2-23", "MQTT-3.2.2-2", "MQTT-3.2.2-3",
                  "MQTT-3.1.2-8", "MQTT-3.1.2-10", "MQTT-3.14.4-3", "MQTT-3.10.4-2", "MQTT-3.11.3-2",
                  "MQTT-4.5.0-1", "MQTT-3.3.1-9", "MQTT-3.3.1-6", "MQTT-3.3.2-3", "MQTT-3.3.4-2", "MQTT-3.8.4-8",
                  "MQTT-3.3.1-12", "MQTT-3.3.1-3", version="5.0")
def test_clients_sessions_and_deliveries_follow_the_model(client_factory, version, broker):
    """Random runs of connect / subscribe / unsubscribe / publish / disconnect / close / reconnect
    across three clients; after every step the deliveries match the model (module docstring)."""
    clients = ExampleClients(client_factory)
    observations: list[str] = []
    run_state_machine_as_test(lambda: DeliveryModel(clients, version, broker, observations),
                              settings=suite_settings(max_examples=10, stateful_step_count=15))
    if observations:
        known_deviation(104, observations[0])
