"""The interop scenarios: what one client library and one broker must do together, judged by the spec.

A scenario is a function of a `Cell` (interop/cell.py): it opens connections through the client
library under test (every connection of a cell uses that library), publishes, subscribes and checks
what arrives. `cell.check(condition, what, statement)` fails the cell naming the statement that forces
the expectation; `cell.require(feature)` makes the cell not applicable when the library's API or the
broker's profile lacks the feature. Where the spec allows several behaviours, a scenario accepts all
of them (and says so in the pass reason when the broker chose the less common one).

Statement ids differ between the versions; `ids(v311, v5)` picks the one of the cell's version. A rule
3.1.1 states without a number is cited by its section.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

V311, V5 = "3.1.1", "5.0"
BOTH = (V311, V5)


@dataclass(frozen=True)
class Scenario:
    name: str
    versions: tuple[str, ...]
    run: Callable
    #: what the scenario needs, checked before it runs: library features and broker capabilities
    needs: tuple[str, ...] = ()
    #: seconds the whole cell may take before the client is killed as hung
    limit: float = 30.0
    doc: str = ""


SCENARIOS: dict[str, Scenario] = {}


def scenario(name: str, versions=BOTH, needs=(), limit: float = 30.0):
    def register(function):
        SCENARIOS[name] = Scenario(name, tuple(versions), function, tuple(needs), limit,
                                   (function.__doc__ or "").strip().splitlines()[0])
        return function
    return register


def pick(cell, v311: str | None, v5: str | None) -> str | None:
    return v5 if cell.version == V5 else v311


def payloads(messages) -> list[str]:
    return [m["payload"] for m in messages]


# --------------------------------------------------------------------------- topics and QoS


@scenario("wildcards", needs=("wildcard_subscriptions",))
def wildcards(cell):
    """'+' and '#' match what they should, and a leading wildcard does not match a '$' topic."""
    base = cell.topic("w")
    sub = cell.connect("sub")
    cell.subscribe("sub", f"{base}/+/x", 1)
    cell.subscribe("sub", f"{base}/deep/#", 1)
    cell.subscribe("sub", "+/interop-dollar/#", 1)
    pub = cell.connect("pub")
    for topic in (f"{base}/a/x", f"{base}/a/y", f"{base}/deep/1/2", f"{base}/deep"):
        cell.publish("pub", topic, topic, 1)
    got = cell.receive("sub", 3, 3.0)
    expected = {f"{base}/a/x", f"{base}/deep/1/2", f"{base}/deep"}
    topics = {m["topic"] for m in got}
    # '#' also matches the parent level: "sport/#" matches "sport" (4.7.1.2)
    cell.check(topics == expected, f"delivered topics {sorted(topics)}, expected {sorted(expected)}",
               pick(cell, "MQTT-4.5.0-1", "MQTT-4.5.0-1"))
    extra = cell.receive("sub", 1, 0.5)
    cell.check(not extra, f"an unmatched topic was delivered: {[m['topic'] for m in extra]}",
               pick(cell, "MQTT-4.5.0-1", "MQTT-4.5.0-1"))
    # '$' topics: a client may publish to them or the broker may refuse (the spec lets a broker reserve them)
    try:
        cell.publish("pub", "$interop-dollar/" + base, "dollar", 0)
    except cell.ClientError:
        pass
    dollar = cell.receive("sub", 1, 0.6)
    cell.check(not dollar, "a '$' topic was delivered to the filter '+/interop-dollar/#'", "MQTT-4.7.2-1")
    return pub


@scenario("qos-delivery")
def qos_delivery(cell):
    """QoS 0, 1 and 2 messages arrive once each at the QoS the subscription granted."""
    topic = cell.topic("q")
    cell.connect("sub")
    granted = cell.subscribe("sub", topic, 2)
    cell.connect("pub")
    for qos in (0, 1, 2):
        cell.publish("pub", topic, f"qos{qos}", qos)
    got = cell.receive("sub", 3, 4.0)
    max_qos = granted[0] if granted and granted[0] in (0, 1, 2) else 2
    cell.check(sorted(payloads(got)) == ["qos0", "qos1", "qos2"], f"received {payloads(got)}",
               pick(cell, "MQTT-4.5.0-1", "MQTT-4.5.0-1"))
    for message in got:
        sent = int(message["payload"][-1])
        if message["qos"] is None:
            cell.note(f"{cell.client.name} does not report the QoS of a received message")
            break
        cell.check(message["qos"] == min(sent, max_qos),
                   f"{message['payload']} arrived at QoS {message['qos']}, granted {max_qos}",
                   pick(cell, "3.1.1 §3.8.4", "MQTT-3.8.4-8"))
    extra = cell.receive("sub", 1, 0.5)
    cell.check(not extra, f"a message arrived twice: {payloads(extra)}", pick(cell, "3.1.1 §4.3", "5.0 §4.3"))


@scenario("qos-downgrade")
def qos_downgrade(cell):
    """A subscription granted QoS 0 / 1 receives QoS 2 messages at the granted QoS."""
    t0, t1 = cell.topic("d0"), cell.topic("d1")
    cell.connect("sub")
    g0 = cell.subscribe("sub", t0, 0)
    g1 = cell.subscribe("sub", t1, 1)
    cell.connect("pub")
    cell.publish("pub", t0, "to0", 2 if cell.has("qos2") else 1)
    cell.publish("pub", t1, "to1", 2 if cell.has("qos2") else 1)
    got = {m["payload"]: m for m in cell.receive("sub", 2, 4.0)}
    cell.check(set(got) == {"to0", "to1"}, f"received {sorted(got)}", "MQTT-4.5.0-1")
    rule = pick(cell, "3.1.1 §3.8.4", "MQTT-3.8.4-8")
    if got["to0"]["qos"] is None:
        cell.not_applicable(f"{cell.client.name} does not report the QoS of a received message")
    cell.check(got["to0"]["qos"] == 0, f"the QoS 0 subscription (granted {g0}) got QoS {got['to0']['qos']}", rule)
    cell.check(got["to1"]["qos"] <= 1, f"the QoS 1 subscription (granted {g1}) got QoS {got['to1']['qos']}", rule)


# --------------------------------------------------------------------------- retained


@scenario("retained")
def retained(cell):
    """A retained message is stored, replaced by a newer one, and cleared by an empty one."""
    topic = cell.topic("r")
    cell.connect("pub")
    cell.publish("pub", topic, "first", 1, retain=True)
    cell.publish("pub", topic, "second", 1, retain=True)
    cell.connect("s1")
    cell.subscribe("s1", topic, 1)
    got = cell.receive("s1", 1, 3.0)
    cell.check(payloads(got) == ["second"], f"a new subscriber got {payloads(got)}, expected the newest retained",
               pick(cell, "MQTT-3.3.1-5", "MQTT-3.3.1-5"))
    if got and got[0]["retain"] is None:
        cell.note(f"{cell.client.name} does not report the RETAIN flag of a received message")
    else:
        cell.check(bool(got and got[0]["retain"]), "the retained message arrived without the RETAIN flag",
                   pick(cell, "MQTT-3.3.1-8", "5.0 §3.3.1.3"))
    cell.publish("pub", topic, "", 1, retain=True)
    cell.receive("s1", 1, 1.0)  # the empty message itself may be forwarded to the existing subscriber
    cell.connect("s2")
    cell.subscribe("s2", topic, 1)
    left = cell.receive("s2", 1, 1.0)
    cell.check(not left, f"after clearing, a new subscriber still got {payloads(left)}",
               pick(cell, "MQTT-3.3.1-10", "MQTT-3.3.1-6"))


# --------------------------------------------------------------------------- will


@scenario("will-abnormal", needs=("will",))
def will_abnormal(cell):
    """A client that dies without DISCONNECT has its Will published; a normal DISCONNECT discards it."""
    topic = cell.topic("will")
    cell.connect("watch")
    cell.subscribe("watch", topic + "/#", 1)
    cell.connect("dying", driver=1, will={"topic": topic + "/dead", "payload": "gone", "qos": 1})
    cell.connect("polite", driver=0, will={"topic": topic + "/polite", "payload": "never", "qos": 1})
    cell.disconnect("polite")
    cell.kill_driver(1)
    got = cell.receive("watch", 1, 5.0)
    got += cell.receive("watch", 1, 0.5)
    cell.check("gone" in payloads(got), f"after the client died the watcher got {payloads(got)}", "MQTT-3.1.2-8")
    if "never" in payloads(got) and 4 in cell.wire.client_disconnect_codes():
        # 5.0 3.14.2.1: a client may end with 0x04 "Disconnect with Will Message"; the broker must then publish it
        cell.note(f"{cell.client.name} disconnects with reason 0x04 (Disconnect with Will Message), so its Will "
                  "was published as the spec requires; the spec allows both choices of the client")
        return
    cell.check("never" not in payloads(got), "the Will of a client that sent DISCONNECT was published",
               pick(cell, "MQTT-3.1.2-10", "MQTT-3.1.2-10"))


@scenario("will-delay", versions=(V5,), needs=("will", "will_delay", "session_expiry"), limit=40)
def will_delay(cell):
    """v5 Will Delay: the Will waits for its delay, and a reconnect within the delay cancels it."""
    topic = cell.topic("wd")
    cell.connect("watch")
    cell.subscribe("watch", topic + "/#", 1)
    cid = cell.client_id("late")
    cell.connect("late", driver=1, client_id=cid, clean=True, session_expiry=30,
                 will={"topic": topic + "/late", "payload": "late", "qos": 1, "delay": 2})
    cell.kill_driver(1)
    killed = time.monotonic()
    early = cell.receive("watch", 1, 1.2)
    cell.check(not early, f"the Will arrived {time.monotonic() - killed:.1f} s after the client died, "
               "before its 2 s Will Delay Interval", "MQTT-3.1.2-8")
    got = cell.receive("watch", 1, 5.0)
    cell.check(payloads(got) == ["late"], f"no Will {time.monotonic() - killed:.1f} s after the client died "
               f"(delay 2 s, session expiry 30 s): {payloads(got)}", "MQTT-3.1.2-8")
    cid2 = cell.client_id("back")
    cell.connect("back", driver=1, client_id=cid2, clean=True, session_expiry=30,
                 will={"topic": topic + "/back", "payload": "back", "qos": 1, "delay": 2})
    cell.kill_driver(1)
    cell.connect("back", client_id=cid2, clean=False, session_expiry=30)
    cancelled = cell.receive("watch", 1, 3.0)
    cell.check(not cancelled, "the Will was published although the client reconnected within the delay",
               "MQTT-3.1.3-9")


# --------------------------------------------------------------------------- sessions and restarts


@scenario("persistent-session", needs=("persistent_sessions",))
def persistent_session(cell):
    """A session that outlives its connection keeps its subscription and queues QoS 1 messages."""
    topic = cell.topic("ps")
    cid = cell.client_id("keep")
    cell.connect("keep", client_id=cid, clean=False, session_expiry=300)
    cell.subscribe("keep", topic, 1)
    cell.disconnect("keep")
    cell.connect("pub")
    for n in range(3):
        cell.publish("pub", topic, f"m{n}", 1)
    connack = cell.connect("keep", client_id=cid, clean=False, session_expiry=300)
    if connack.get("session_present") is None:
        cell.note(f"{cell.client.name} does not expose the CONNACK's Session Present flag")
    else:
        cell.check(connack["session_present"] is True, f"CONNACK Session Present = {connack['session_present']}",
                   pick(cell, "MQTT-3.2.2-2", "MQTT-3.2.2-2"))
    got = cell.receive("keep", 3, 4.0)
    cell.check(payloads(got) == ["m0", "m1", "m2"], f"queued messages received: {payloads(got)}",
               pick(cell, "MQTT-3.1.2-5", "MQTT-3.1.2-23"))
    cell.connect("keep", client_id=cid, clean=True, session_expiry=0)  # ends the session


@scenario("broker-restart", needs=("restart",), limit=120)
def broker_restart(cell):
    """After the broker restarts, the client connects again, subscribes, publishes and receives."""
    topic = cell.topic("rs")
    cell.connect("c")
    cell.subscribe("c", topic, 1)
    cell.restart_broker()
    deadline = time.monotonic() + 5
    while cell.status("c") and time.monotonic() < deadline:
        time.sleep(0.2)
    if cell.status("c"):
        cell.note(f"{cell.client.name} still reports the connection as up 5 s after the broker restarted "
                  "(it may have reconnected by itself)")
    cell.connect("c")
    cell.subscribe("c", topic, 1)
    cell.publish("c", topic, "again", 1)
    got = cell.receive("c", 1, 4.0)
    cell.check(payloads(got) == ["again"], f"after reconnecting the client received {payloads(got)}",
               "MQTT-4.5.0-1")


# --------------------------------------------------------------------------- transports


def _roundtrip(cell, transport: str, **connect):
    topic = cell.topic(transport)
    cell.connect("c", transport=transport, **connect)
    cell.subscribe("c", topic, 1)
    cell.publish("c", topic, f"over {transport}", 1)
    got = cell.receive("c", 1, 4.0)
    cell.check(payloads(got) == [f"over {transport}"], f"over {transport} the client received {payloads(got)}",
               "MQTT-4.5.0-1")


@scenario("tls", needs=("tls",))
def tls(cell):
    """TLS with the server certificate verified against the matrix's CA."""
    _roundtrip(cell, "tls")


@scenario("tls-verification", needs=("tls",))
def tls_verification(cell):
    """A client given a CA that did not sign the server's certificate refuses the connection."""
    try:
        cell.connect("c", transport="tls", ca=cell.tls_files.other_ca)
    except cell.ClientError:
        return  # refused: the library verified the server certificate
    # not an MQTT statement: MQTT leaves TLS to TLS (5.0 section 5.4.5 recommends checking the certificate)
    cell.check(False, "the library connected although the server certificate is not signed by the CA it was "
               "given: it does not verify the server", "5.0 §5.4.5 (TLS)")


@scenario("tls-client-cert", needs=("tls", "client_certificate"))
def tls_client_cert(cell):
    """TLS to a listener that requires a client certificate; the client presents one."""
    _roundtrip(cell, "mtls")


@scenario("websocket", needs=("websocket",))
def websocket(cell):
    """MQTT over WebSocket (subprotocol "mqtt", path /mqtt)."""
    _roundtrip(cell, "ws")


# --------------------------------------------------------------------------- MQTT 5 properties


def _one(cell, topic, properties, qos=1, retain=False):
    cell.connect("sub")
    cell.subscribe("sub", topic, qos)
    cell.connect("pub")
    cell.publish("pub", topic, "body", qos, retain=retain, properties=properties)
    got = cell.receive("sub", 1, 4.0)
    cell.check(len(got) == 1, f"received {payloads(got)}", "MQTT-4.5.0-1")
    return got[0]


@scenario("user-properties", versions=(V5,), needs=("user_properties",))
def user_properties(cell):
    """User Properties arrive unaltered and in order."""
    # a repeated name, kept in order [MQTT-3.3.2-18]; adjacent, so a library whose API takes a name ->
    # values map (MQTT.js) can still express it
    sent = [["a", "1"], ["b", "2"], ["b", "3"]]
    got = _one(cell, cell.topic("up"), {"user_properties": sent})
    received = got["properties"].get("user_properties", [])
    cell.check(received == sent, f"User Properties {received}, sent {sent}", "MQTT-3.3.2-17")


@scenario("message-expiry", versions=(V5,), needs=("message_expiry", "persistent_sessions", "session_expiry"))
def message_expiry(cell):
    """A queued message past its Message Expiry Interval is dropped; a live one arrives with the rest."""
    topic = cell.topic("me")
    cid = cell.client_id("off")
    cell.connect("off", client_id=cid, clean=True, session_expiry=300)
    cell.subscribe("off", topic, 1)
    cell.disconnect("off")
    cell.connect("pub")
    cell.publish("pub", topic, "short", 1, properties={"message_expiry": 1})
    cell.publish("pub", topic, "long", 1, properties={"message_expiry": 100})
    time.sleep(2.2)
    cell.connect("off", client_id=cid, clean=False, session_expiry=0)
    got = cell.receive("off", 2, 3.0)
    cell.check("short" not in payloads(got), "a message whose expiry interval had passed was delivered",
               "MQTT-3.3.2-5")
    cell.check("long" in payloads(got), f"the unexpired message did not arrive: {payloads(got)}", "MQTT-3.1.2-23")
    long = next(m for m in got if m["payload"] == "long")
    remaining = long["properties"].get("message_expiry")
    cell.check(remaining is not None and remaining < 100, f"forwarded Message Expiry Interval {remaining}, "
               "expected the 100 s sent minus the time it waited (> 2 s)", "MQTT-3.3.2-6")


@scenario("topic-alias", versions=(V5,), needs=("topic_alias",))
def topic_alias(cell):
    """The client publishes with a Topic Alias (set, then alias only); the subscriber gets the full topic."""
    topic = cell.topic("ta")
    cell.connect("sub")
    cell.subscribe("sub", topic, 1)
    connack = cell.connect("pub")
    # the library's view of the CONNACK, else the broker's own (the same for every client)
    maximum = (connack.get("properties") or cell.broker.v5_connack or {}).get("topic_alias_maximum", 0)
    if not maximum:
        cell.not_applicable("the broker's CONNACK has Topic Alias Maximum 0 (it accepts no aliases)")
    cell.publish("pub", topic, "one", 1, properties={"topic_alias": 1})
    cell.publish("pub", "", "two", 1, properties={"topic_alias": 1})
    got = cell.receive("sub", 2, 4.0)
    cell.check(payloads(got) == ["one", "two"] and all(m["topic"] == topic for m in got),
               f"received {[(m['topic'], m['payload']) for m in got]}", "MQTT-3.3.2-12")


@scenario("subscription-identifier", versions=(V5,), needs=("subscription_identifier", "subscription_identifiers"))
def subscription_identifier(cell):
    """Overlapping subscriptions with identifiers: the message carries the identifiers that matched."""
    topic = cell.topic("si")
    cell.connect("sub")
    cell.subscribe("sub", topic, 1, subscription_identifier=7)
    cell.subscribe("sub", topic.rsplit("/", 1)[0] + "/#", 1, subscription_identifier=9)
    cell.connect("pub")
    cell.publish("pub", topic, "x", 1)
    got = cell.receive("sub", 2, 3.0)
    ids = sorted(i for m in got for i in m["properties"].get("subscription_identifier", []))
    # one copy with [7, 9] or two copies with 7 and 9 (4.3.4-2: the server may send either)
    cell.check(ids == [7, 9], f"Subscription Identifiers received {ids} in {len(got)} message(s), expected 7 and 9",
               "MQTT-3.3.4-3")


@scenario("request-response", versions=(V5,), needs=("response_topic", "correlation_data"))
def request_response(cell):
    """Request/response: Response Topic and Correlation Data reach the responder unaltered, and back."""
    req, resp = cell.topic("req"), cell.topic("resp")
    cell.connect("responder")
    cell.subscribe("responder", req, 1)
    cell.connect("requester")
    cell.subscribe("requester", resp, 1)
    cell.publish("requester", req, "question", 1, properties={"response_topic": resp, "correlation_data": "c-42"})
    got = cell.receive("responder", 1, 4.0)
    cell.check(len(got) == 1, "the request did not arrive", "MQTT-4.5.0-1")
    props = got[0]["properties"]
    cell.check(props.get("response_topic") == resp, f"Response Topic {props.get('response_topic')!r}", "MQTT-3.3.2-15")
    cell.check(props.get("correlation_data") == "c-42", f"Correlation Data {props.get('correlation_data')!r}",
               "MQTT-3.3.2-16")
    cell.publish("responder", props["response_topic"], "answer", 1,
                 properties={"correlation_data": props["correlation_data"]})
    answer = cell.receive("requester", 1, 4.0)
    cell.check(payloads(answer) == ["answer"] and answer[0]["properties"].get("correlation_data") == "c-42",
               f"the response arrived as {answer}", "MQTT-3.3.2-16")


@scenario("shared-subscription", versions=(V5,), needs=("shared_subscriptions",))
def shared_subscription(cell):
    """$share/GROUP/filter: each message goes to exactly one member of the group."""
    topic = cell.topic("sh")
    group = f"$share/{cell.client_id('g')}/{topic}"
    for name in ("m1", "m2"):
        cell.connect(name)
        cell.subscribe(name, group, 1)
    cell.connect("pub")
    for n in range(6):
        cell.publish("pub", topic, f"s{n}", 1)
    first = cell.receive("m1", 6, 2.5)
    second = cell.receive("m2", 6, 1.0)
    everything = sorted(payloads(first) + payloads(second))
    cell.check(everything == [f"s{n}" for n in range(6)],
               f"the group received {everything} (m1 {len(first)}, m2 {len(second)}); each message exactly once",
               "MQTT-4.8.2-3")


@scenario("payload-format", versions=(V5,), needs=("payload_format", "content_type"))
def payload_format(cell):
    """Payload Format Indicator and Content Type are forwarded unaltered."""
    got = _one(cell, cell.topic("pf"), {"payload_format": 1, "content_type": "text/plain; charset=utf-8"})
    props = got["properties"]
    cell.check(props.get("payload_format") == 1, f"Payload Format Indicator {props.get('payload_format')!r}",
               "MQTT-3.3.2-4")
    cell.check(props.get("content_type") == "text/plain; charset=utf-8", f"Content Type {props.get('content_type')!r}",
               "MQTT-3.3.2-20")


@scenario("broker-limits", versions=(V5,), needs=("connack_properties", "receive_maximum", "maximum_packet_size"))
def broker_limits(cell):
    """The client's Receive Maximum and Maximum Packet Size are respected by the broker; the broker's
    CONNACK limits are visible to the client."""
    topic = cell.topic("lim")
    cell.connect("small", receive_maximum=2, maximum_packet_size=256)
    cell.subscribe("small", topic, 1)
    connack = cell.connect("pub")
    props = connack.get("properties", {})
    cell.note("broker CONNACK: " + ", ".join(f"{k}={v}" for k, v in sorted(props.items())) if props else
              "broker CONNACK: no limits declared (defaults: Receive Maximum 65535, no Maximum Packet Size)")
    cell.publish("pub", topic, "x" * 1000, 1)  # too big for "small": must be discarded [MQTT-3.1.2-25]
    for n in range(5):
        cell.publish("pub", topic, f"n{n}", 1)
    got = cell.receive("small", 5, 4.0)
    cell.check("x" * 1000 not in payloads(got), "a PUBLISH larger than the client's Maximum Packet Size was sent",
               "MQTT-3.1.2-24")
    cell.check(payloads(got) == [f"n{n}" for n in range(5)], f"received {payloads(got)}", "MQTT-3.1.2-25")
    limit = props.get("maximum_packet_size")
    if limit:
        cell.note(f"the broker's Maximum Packet Size is {limit}")
