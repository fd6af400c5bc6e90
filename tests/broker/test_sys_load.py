"""$SYS load averages and store figures, with time passed in."""

import math

import pytest

from refbroker.core.sys_load import LoadAverages
from refbroker.core.sys_topics import Counters
from refbroker.protocol import Publish

from .harness import Harness


def test_a_steady_rate_is_approached_fastest_by_the_1_minute_average():
    load, counters = LoadAverages(0.0), Counters()
    for step in range(1, 31):  # 120 messages per minute for 5 minutes, updated every 10 s
        counters.messages_received += 20
        load.update(step * 10.0, counters)
    averages = load.averages["messages/received"]
    assert averages["1min"] == pytest.approx(120 * (1 - math.exp(-300 / 60)))
    assert averages["5min"] == pytest.approx(120 * (1 - math.exp(-1)))
    assert averages["1min"] > averages["5min"] > averages["15min"] > 0
    assert load.values()["load/messages/received/1min"] == f"{averages['1min']:.2f}"


def test_no_time_no_change():
    load, counters = LoadAverages(5.0), Counters(bytes_sent=1000)
    load.update(5.0, counters)
    assert load.averages["bytes/sent"]["1min"] == 0.0


def test_the_averages_decay_when_traffic_stops():
    load, counters = LoadAverages(0.0), Counters(publish_received=600)
    load.update(60.0, counters)
    busy = load.averages["publish/received"]["1min"]
    load.update(120.0, counters)
    assert load.averages["publish/received"]["1min"] == pytest.approx(busy * math.exp(-1))


def test_sys_load_and_store_topics_are_published():
    h = Harness(sys_interval=10)
    watcher, _ = h.connect("watch")
    watcher.subscribe(("$SYS/broker/load/#", 0), ("$SYS/broker/store/#", 0))
    watcher.take()
    publisher, _ = h.connect("pub")
    publisher.send(Publish("kept", b"12345", retain=True))
    h.advance(10)
    values = {p.topic.removeprefix("$SYS/broker/"): p.payload.decode() for p in watcher.take()}
    for name in ("messages/received", "messages/sent", "bytes/received", "bytes/sent", "publish/received",
                 "publish/sent", "publish/dropped"):
        for window in ("1min", "5min", "15min"):
            assert f"load/{name}/{window}" in values
    assert "load/connections/1min" in values and "load/sockets/15min" in values
    assert float(values["load/sockets/1min"]) > 0 and float(values["load/connections/5min"]) > 0
    assert values["store/messages/count"] == "1"  # the retained message
    assert values["store/messages/bytes"] == "5"
    assert not any(topic.startswith("heap") for topic in values)  # n/a in Python


def test_queued_messages_count_once_in_the_store():
    h = Harness(sys_interval=10)
    for name in ("a", "b"):
        client, _ = h.connect(name, clean_start=False)
        client.subscribe(("t", 1))
        client.drop()
    publisher, _ = h.connect("pub")
    publisher.send(Publish("t", b"abc", qos=1, packet_id=1))  # queued for both offline sessions
    watcher, _ = h.connect("watch")
    watcher.subscribe(("$SYS/broker/store/messages/#", 0))
    watcher.take()
    h.advance(10)
    values = {p.topic: p.payload for p in watcher.take()}
    assert values["$SYS/broker/store/messages/count"] == b"1"
    assert values["$SYS/broker/store/messages/bytes"] == b"3"
