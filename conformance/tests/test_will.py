"""Will Messages: published when the connection ends abnormally, never after DISCONNECT."""

from __future__ import annotations

import time

import pytest

from conformance import check, known_deviation, statement
from conformance.client import ConformanceFailure
from refbroker.protocol import MQTT_5, Properties, Will

from .helpers import QUIET, session_properties


def _watch(client_factory, topic_filter: str, qos: int = 1):
    watcher = client_factory("watcher")
    watcher.subscribe((topic_filter, qos))
    return watcher


@pytest.mark.spec("MQTT-3.1.2-8", "MQTT-3.1.2-16", version="3.1.1")
@pytest.mark.spec("MQTT-3.1.2-8", "MQTT-3.1.2-7", "MQTT-3.1.2-14", version="5.0")
def test_will_published_when_connection_drops(client_factory, version, topic, broker):
    """The socket closes without DISCONNECT: the Will is published, with RETAIN 0 (Will Retain 0)."""
    watcher = _watch(client_factory, f"{topic}/will")
    client = client_factory("dying", will=Will(f"{topic}/will", b"gone", qos=1, retain=False))
    broker.require("will")
    client.close()
    will = watcher.expect_publish(timeout=3.0)
    check("MQTT-3.1.2-8", (will.topic, will.payload, will.qos) == (f"{topic}/will", b"gone", 1),
          f"the Will as published: {will}")
    check("MQTT-3.1.2-16" if version != MQTT_5 else "MQTT-3.1.2-14", not will.retain,
          f"a Will with Will Retain 0 is published as a non-retained message: {will}")


@pytest.mark.spec("MQTT-3.1.2-10", "MQTT-3.14.4-3")
def test_will_not_published_after_disconnect(client_factory, version, topic):
    """DISCONNECT (reason 0x00) deletes the Will: nothing is published when the connection closes."""
    watcher = _watch(client_factory, f"{topic}/will")
    client = client_factory("leaving", will=Will(f"{topic}/will", b"must not appear", qos=1))
    client.disconnect()
    watcher.expect_nothing(QUIET)


@pytest.mark.spec("MQTT-3.1.2-8", "MQTT-4.8.0-1", version="3.1.1")
@pytest.mark.spec("MQTT-3.1.2-8", "MQTT-4.13.1-1", version="5.0")
def test_will_published_when_server_closes_for_protocol_error(client_factory, version, topic):
    """The server closing the connection because of a protocol error also publishes the Will."""
    watcher = _watch(client_factory, f"{topic}/will")
    client = client_factory("offender", will=Will(f"{topic}/will", b"closed for an error", qos=0))
    client.send_raw(b"\x30\x05\x00\x03a/+", note="PUBLISH to a topic name with a wildcard")
    with statement("MQTT-4.8.0-1" if version != MQTT_5 else "MQTT-4.13.1-1"):
        client.expect_disconnect()
    will = watcher.expect_publish(timeout=3.0)
    check("MQTT-3.1.2-8", will.payload == b"closed for an error", f"the watcher got {will}")


@pytest.mark.spec("MQTT-3.1.2-17", version="3.1.1")
@pytest.mark.spec("MQTT-3.1.2-15", version="5.0")
def test_will_retain_publishes_retained_message(client_factory, version, topic, broker):
    """Will Retain 1: the Will becomes the retained message of its topic."""
    client = client_factory("dying", will=Will(f"{topic}/will", b"retained will", qos=1, retain=True))
    broker.require("retain", client.connack if version == MQTT_5 else None)
    client.close()
    watcher = _watch(client_factory, f"{topic}/will")
    will = watcher.expect_publish(timeout=3.0)
    if will.payload != b"retained will" or not will.retain:
        raise ConformanceFailure(f"the Will with Will Retain 1 must reach later subscribers as a retained message: "
                                 f"{will}")
    watcher.publish(f"{topic}/will", b"", retain=True)  # clean up


@pytest.mark.spec("MQTT-3.1.2-10", "MQTT-3.1.2-12", version="3.1.1")
@pytest.mark.spec("MQTT-3.1.2-10", version="5.0")
def test_will_published_once_and_not_for_a_later_connection(client_factory, version, topic):
    """Once published the Will is gone: a later connection of the same client without Will Flag
    publishes nothing when it drops."""
    watcher = _watch(client_factory, f"{topic}/will")
    client = client_factory("dying", will=Will(f"{topic}/will", b"once", qos=1))
    client.close()
    first = watcher.expect_publish(timeout=3.0)
    if first.payload != b"once":
        raise ConformanceFailure(f"the Will was not published when the connection dropped: {first} [MQTT-3.1.2-8]")
    again = client_factory("again", client_id=client.client_id)
    again.close()
    with statement("MQTT-3.1.2-10" if version == MQTT_5 else "MQTT-3.1.2-12"):
        watcher.expect_nothing(QUIET)


@pytest.mark.spec("MQTT-3.1.2-8", "MQTT-3.1.3-10", "MQTT-3.3.2-4", "MQTT-3.3.2-20", "MQTT-3.3.2-15",
                  "MQTT-3.3.2-16", version="5.0")
def test_v5_will_properties_passed_through(client_factory, version, topic):
    """A v5 Will keeps its properties; its User Properties stay in their original order."""
    watcher = _watch(client_factory, f"{topic}/will")
    user = [("k", "1"), ("a", "2"), ("k", "3")]
    will = Will(f"{topic}/will", b"{}", qos=1, properties=Properties(
        payload_format_indicator=1, content_type="application/json", user_properties=user,
        response_topic=f"{topic}/reply", correlation_data=b"\x00\x01"))
    client = client_factory("dying", will=will)
    client.close()
    published = watcher.expect_publish(timeout=3.0)
    props = published.properties
    check("MQTT-3.1.3-10", props.user_properties == user, f"Will User Properties changed: {props.user_properties}")
    check("MQTT-3.3.2-4", props.payload_format_indicator == 1, f"Payload Format Indicator {props.payload_format_indicator}")
    check("MQTT-3.3.2-20", props.content_type == "application/json", f"Content Type {props.content_type!r}")
    check("MQTT-3.3.2-15", props.response_topic == f"{topic}/reply", f"Response Topic {props.response_topic!r}")
    check("MQTT-3.3.2-16", props.correlation_data == b"\x00\x01", f"Correlation Data {props.correlation_data!r}")


@pytest.mark.spec("MQTT-3.1.2-8", version="5.0")
def test_v5_disconnect_with_will_message_publishes_will(client_factory, version, topic):
    """DISCONNECT with reason 0x04 (Disconnect with Will Message) asks the server to publish the Will."""
    watcher = _watch(client_factory, f"{topic}/will")
    client = client_factory("leaving", will=Will(f"{topic}/will", b"on purpose", qos=1))
    client.disconnect(reason_code=0x04)
    assert watcher.expect_publish(timeout=3.0).payload == b"on purpose"


@pytest.mark.spec("MQTT-3.1.3-9", "MQTT-3.1.2-8", version="5.0")
def test_v5_will_delay(client_factory, version, topic):
    """Will Delay Interval 1 s with sessions that outlive the connection: the Will of a client that
    does not come back is published after the delay, not at once; the Will of a client that reconnects
    within the delay is never published.

    Four clients drop 0.25 s apart, so that their delays end at different fractions of a second: a broker
    that rounds the delay to a whole-second timer publishes some of them early in every run (one sample
    passed or failed by the phase of the close). Each Will's time is measured from its client's close and
    judged against the delay with 0.1 s of slack for the two clocks."""
    watcher = client_factory("watcher")
    watcher.subscribe((f"{topic}/will/#", 1))
    props = session_properties(version, expiry=30)
    delayed = Properties(will_delay_interval=1)
    gone = [client_factory(f"gone{n}", will=Will(f"{topic}/will/gone{n}", b"gone", qos=1, properties=delayed),
                           clean_start=False, properties=props) for n in range(4)]
    back = client_factory("back", will=Will(f"{topic}/will/back", b"back", qos=1, properties=delayed),
                          clean_start=False, properties=props)
    back.close()
    client_factory("back-again", client_id=back.client_id, clean_start=False, properties=props)
    closed_at: dict[str, float] = {}
    arrived: dict[str, float] = {}

    def collect(seconds: float) -> None:
        for message in watcher.collect_publishes(seconds):
            arrived.setdefault(message.topic, time.monotonic())

    for n, client in enumerate(gone):
        closed_at[f"{topic}/will/gone{n}"] = time.monotonic()
        client.close()
        collect(0.25)
    # "published after ... the Will Delay Interval has elapsed" sets no deadline: wait generously (mosquitto
    # 2.0.11 runs its will timer now and then, up to seconds late), then a little for a stray one
    deadline = time.monotonic() + 5.0
    while time.monotonic() < deadline and any(name not in arrived for name in closed_at):
        collect(0.1)
    collect(QUIET)
    with statement("MQTT-3.1.3-9"):  # the reconnected client's Will (due at the same time) never comes
        check("MQTT-3.1.3-9", f"{topic}/will/back" not in arrived, "the Will of a client that reconnected within "
              "its Will Delay Interval was sent")
    missing = [name for name in closed_at if name not in arrived]
    check("MQTT-3.1.2-8", not missing, f"the Wills {missing} were not published within 5 s after their delay")
    elapsed = {name: arrived[name] - closed_at[name] for name in closed_at}
    early = {name: after for name, after in elapsed.items() if after < 0.9}  # 0.1 s of slack for the clocks
    if early:
        known_deviation(109, "Will Delay Interval 1 s: Wills published after " + ", ".join(
            f"{after:.2f} s" for after in elapsed.values()) + " (measured from each client's close)")
