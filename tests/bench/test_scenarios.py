"""Tiny runs of every scenario: the counts must add up (nothing here asserts a speed).

refbroker runs as its own process, as in a real benchmark; so do the relay and mosquitto.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest

from bench import wire
from bench.cli import main
from bench.runner import Options, Scenario, _groups, percentile, run_scenario
from bench.targets import MosquittoTarget, RefbrokerTarget, RelayTarget, TargetError
from refbroker.protocol import Publish, StreamDecoder

TINY = Options(messages=300, fanout_messages=20, unpaced_messages=2000, latency_rate=400, latency_seconds=0.25,
               time_cap=20, subscriber_processes=2)
SUBSCRIBERS = 5  # the fan-out of these tests; the real default is 100
SCENARIOS = [Scenario(qos, fanout, kind) for kind in ("throughput", "latency") for fanout in (1, SUBSCRIBERS)
             for qos in (0, 1, 2)]
UNPACED = [Scenario(qos, fanout, "unpaced", publishers) for publishers, fanout in ((1, 1), (3, 3), (1, SUBSCRIBERS))
           for qos in (0, 1)]


@pytest.fixture(scope="module")
def refbroker():
    target = RefbrokerTarget()
    target.start()
    yield target
    target.stop()


@pytest.fixture(scope="module")
def relay():
    target = RelayTarget()
    target.start()
    yield target
    target.stop()


def check_counts(figures: dict, scenario: Scenario) -> None:
    assert figures["published"] == figures["planned"]
    assert figures["expected"] == figures["published"] * scenario.fanout
    assert figures["unique"] == figures["expected"], figures  # every message reached every subscriber
    assert figures["received"] == figures["unique"] and figures["duplicates"] == 0
    assert figures["lost"] == 0 and figures["loss_percent"] == 0 and not figures["capped"]
    if scenario.qos:
        assert figures["acknowledged"] == figures["published"]  # every QoS 1/2 flow completed
    assert figures["seconds"] > 0 and figures["throughput"] > 0
    if scenario.kind != "throughput":
        latency = figures["latency_us"]
        assert latency["samples"] == figures["expected"]
        assert 0 < latency["p50"] <= latency["p90"] <= latency["p99"] <= latency["max"]
    if scenario.kind == "latency":
        assert figures["rate"] == TINY.latency_rate / scenario.fanout


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: s.key)
def test_every_scenario_against_refbroker_counts_add_up(refbroker, scenario):
    check_counts(run_scenario(refbroker, scenario, TINY), scenario)


@pytest.mark.parametrize("scenario", UNPACED, ids=lambda s: s.key)
def test_unpaced_publishers_never_wait_and_nothing_is_lost_on_refbroker(refbroker, scenario):
    figures = run_scenario(refbroker, scenario, TINY)
    check_counts(figures, scenario)
    assert figures["publishers"] == scenario.publishers
    assert figures["planned"] == (TINY.unpaced_messages if scenario.fanout == 1
                                  else TINY.fanout_messages * 100 // scenario.fanout) // scenario.publishers * \
        scenario.publishers


def test_capacity_figures_against_refbroker_in_small(monkeypatch):
    from bench import capacity, targets
    monkeypatch.setattr(capacity, "IDLE_COUNTS", (20, 40))
    monkeypatch.setattr(capacity, "RETAINED_COUNT", 300)
    monkeypatch.setattr(capacity, "LARGE_PAYLOADS", (50_000, 200_000))
    monkeypatch.setattr(capacity, "STALLED_MESSAGES", 2_000)
    monkeypatch.setattr(capacity, "MESSAGE_SIZE_LIMIT", 300_000)
    monkeypatch.setattr(targets, "MESSAGE_SIZE_LIMIT", 300_000)
    monkeypatch.setattr(capacity, "MAX_CONNECTIONS", 5)
    monkeypatch.setattr(targets, "MAX_CONNECTIONS", 5)
    target = RefbrokerTarget()
    target.start()
    try:
        figures = capacity.measure(target, lambda text: None)
    finally:
        target.stop()
    assert figures["idle_bytes_20"] > 0 and figures["idle_bytes_40"] > 0
    assert isinstance(figures[capacity.FLOOR_KEY], int)  # measured on bench/loop_floor.py, not an error text
    assert isinstance(figures["retained_bytes"], int)
    assert isinstance(figures["retained_seconds"], float)  # all 300 delivered
    assert isinstance(figures["payload_seconds_50000"], float) and isinstance(figures["payload_seconds_200000"], float)
    assert figures["payload_refused"] == "yes (PUBACK 0x97)"
    assert figures["max_connections"] == "yes"
    assert isinstance(figures["stalled_growth"], int)
    text = capacity.table({"refbroker": figures}, ["refbroker"])
    assert "bytes per idle connection" in text and "max_connections 5 enforced" in text
    assert "event loop and transport alone" in text


@pytest.mark.parametrize("scenario", [Scenario(2, 1, "throughput"), Scenario(1, SUBSCRIBERS, "throughput"),
                                      Scenario(2, SUBSCRIBERS, "latency")], ids=lambda s: s.key)
def test_the_relay_carries_every_qos_flow_end_to_end(relay, scenario):
    check_counts(run_scenario(relay, scenario, TINY), scenario)


@pytest.mark.mosquitto
def test_mosquitto_as_a_target():
    assert shutil.which("mosquitto") or Path("/usr/sbin/mosquitto").exists(), "Debian's mosquitto package"
    target = MosquittoTarget()
    target.start()
    try:
        for scenario in (Scenario(0, 1, "throughput"), Scenario(1, SUBSCRIBERS, "throughput"),
                         Scenario(1, 3, "unpaced", 3)):
            check_counts(run_scenario(target, scenario, TINY), scenario)
    finally:
        workdir = target.workdir
        target.stop()
    assert workdir and not Path(workdir).exists()  # its config and log go with it


def test_a_stopped_target_leaves_no_folder_behind_and_a_failed_start_says_why(monkeypatch):
    target = RefbrokerTarget()
    target.start()
    workdir = target.workdir
    assert Path(workdir, "broker.conf").is_file()
    target.stop()
    assert not Path(workdir).exists()
    # A broker that exits while starting: its log is in the error, its folder is gone all the same
    broken = RefbrokerTarget()
    monkeypatch.setattr(broken, "command", lambda config_path: [sys.executable, "-c", "print('no such luck'); exit(3)"])
    with pytest.raises(TargetError, match="(?s)exited with status 3.*no such luck"):
        broken.start()
    assert broken.workdir is None and broken.process is None


def test_command_line_run_prints_the_table_and_writes_json(tmp_path, capsys):
    output = tmp_path / "figures.json"
    code = main(["--target", "refbroker", "--qos", "0,1", "--fanout", "1", "--messages", "200", "--latency-seconds",
                 "0.2", "--repeat", "2", "--unpaced-messages", "300", "--kind", "throughput,unpaced,latency",
                 "--json", str(output), "--quiet"])
    out = capsys.readouterr().out
    assert code == 0
    assert "2 CPU cores" in out or "CPU cores (os.cpu_count())" in out
    assert "QoS 0  1→1" in out and "QoS 1  1→1" in out and "generator ceiling" in out
    assert "Unpaced: publishers never wait" in out
    document = json.loads(output.read_text())
    assert document["machine"]["cpu_count"]
    assert set(document["targets"]) == {"refbroker", "relay"}
    keys = {(result["target"], result["scenario"]) for result in document["results"]}
    assert ("refbroker", "throughput-qos1-1to1") in keys and ("relay", "latency-qos0-1to1") in keys
    assert all(result["lost"] == 0 for result in document["results"])
    assert ("refbroker", "unpaced-qos1-1to1") in keys
    throughput = [result for result in document["results"] if result["kind"] == "throughput"]
    assert throughput and all(len(result["runs"]) == 2 and result["throughput"] in result["runs"]
                              for result in throughput)  # the median run of two: the slower one


def test_v5_load_works_too(refbroker):
    options = Options(messages=100, time_cap=20, version=5)
    for qos in (0, 2):
        check_counts(run_scenario(refbroker, Scenario(qos, 1, "throughput"), options), Scenario(qos, 1, "throughput"))


@pytest.mark.parametrize("version", [4, 5])
@pytest.mark.parametrize("qos", [0, 1, 2])
def test_patched_template_is_still_a_valid_publish(version, qos):
    template = wire.publish_template("bench/t", qos, version)
    data = bytearray(template.data)
    wire.STAMP.pack_into(data, template.payload_offset, 123456789, 42)
    if qos:
        wire.PACKET_ID.pack_into(data, template.packet_id_offset, 4242)
    (packet,) = StreamDecoder(version).feed(bytes(data))
    assert isinstance(packet, Publish) and packet.topic == "bench/t" and packet.qos == qos
    assert len(packet.payload) == wire.PAYLOAD_SIZE
    assert wire.STAMP.unpack_from(packet.payload) == (123456789, 42)
    assert packet.packet_id == (4242 if qos else None)


def test_percentile_is_nearest_rank():
    values = list(range(1, 101))
    assert [percentile(values, f) for f in (0.5, 0.9, 0.99, 1.0)] == [50, 90, 99, 100]
    assert percentile([7], 0.99) == 7 and percentile([], 0.5) == 0


def test_subscribers_are_spread_evenly_over_processes():
    assert _groups(100, 2) == [50, 50]
    assert _groups(5, 2) == [3, 2]
    assert _groups(1, 2) == [1]
    assert sum(_groups(101, 3)) == 101
