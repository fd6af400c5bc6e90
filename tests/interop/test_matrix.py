"""The interop matrix end to end: real brokers as processes, real client libraries in driver processes,
cells through the recording proxy, results in the report's format, nothing left running."""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

import pytest

from conformance.targets import target_from_option
from interop.brokers import BROKERS, build_target
from interop.brokers.kinds import AedesBroker, MqttoolsBroker
from interop.cell import DriverPool
from interop.clients import CLIENTS, ClientSpec
from interop.probe import v5_connack_properties
from interop.runner import Plan, run_broker, run_cell
from interop.scenarios import SCENARIOS
from interop.tlsfiles import make_tls_files
from interop.tracing import CellTrace
from reports.results import load_run

PROCESS_KINDS = ["refbroker", "mosquitto", "amqtt", "aedes", "ejabberd", "rabbitmq"]


def _children() -> list[str]:
    """Live (not zombie) child processes of this test process."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == os.getpid() and fields[0] != "Z":
            found.append(stat.parent.name)
    return found


@pytest.fixture
def new_children():
    """Child processes started during the test and still alive (processes that were already running,
    such as a Docker engine an earlier test started, are not the test's)."""
    before = set(_children())
    return lambda: sorted(set(_children()) - before)


@pytest.fixture
def tls_files():
    """Certificates in a world-readable directory (mosquitto and the Erlang brokers run as their own users)."""
    directory = tempfile.mkdtemp(prefix="interop-test-tls-")
    os.chmod(directory, 0o755)
    yield make_tls_files(Path(directory) / "tls")
    shutil.rmtree(directory, ignore_errors=True)


@pytest.mark.parametrize("name", PROCESS_KINDS)
def test_broker_target_restarts_on_the_same_port_and_stops(name, tls_files, new_children):
    target = build_target(name)
    why = target.unavailable()
    if why:
        pytest.skip(why)
    target.tls_files = tls_files
    target.start()
    try:
        address = target.address
        assert target.tls_address is not None and target.websocket_address is not None
        if "5.0" in target.capabilities.versions:
            assert v5_connack_properties(*address, credentials=target.capabilities.credentials) is not None
        target.restart()
        assert target.address == address
    finally:
        target.cleanup()
    assert new_children() == []


@pytest.mark.parametrize("name", CLIENTS)
def test_every_client_driver_says_which_library_and_version_it_runs(name):
    spec = CLIENTS[name]
    why = spec.unavailable()
    if why:
        pytest.skip(why)
    pool = DriverPool(spec)
    try:
        hello = pool.hello()
    finally:
        pool.close()
    assert hello["library"] and hello["version"] not in ("", "unknown"), (spec.name, hello)
    assert set(spec.versions) <= set(hello["features"]), spec.name


def test_cells_against_refbroker_pass_and_leave_nothing_running(tmp_path, new_children):
    results = tmp_path / "refbroker.json"
    clients = ["paho-mqtt", "gmqtt", "mqtt.js", "mosquitto-cli", "fusesource-java"]
    scenarios = ["wildcards", "will-abnormal", "user-properties", "tls-client-cert", "websocket", "broker-restart"]
    for name in clients:
        if CLIENTS[name].unavailable():
            pytest.skip(CLIENTS[name].unavailable())
    assert run_broker("refbroker", clients=clients, scenarios=scenarios, results=results, jobs=2) == 0
    document = json.loads(results.read_text())
    outcomes = {(r["client"].split()[0], r["scenario"]): r for r in document["interop"]}
    assert {r["outcome"] for r in document["interop"]} <= {"pass", "not-applicable"}, \
        [r for r in document["interop"] if r["outcome"] not in ("pass", "not-applicable")]
    # 3.1.1-only libraries: the MQTT 5 cells are not applicable, with the reason
    assert outcomes[("fusesource-mqtt-client", "user-properties · 5.0")]["reason"] == \
        "fusesource-java does not speak MQTT 5.0"
    assert outcomes[("gmqtt", "websocket · 5.0")]["outcome"] == "not-applicable"
    assert outcomes[("paho-mqtt", "broker-restart · 5.0")]["outcome"] == "pass"
    run = load_run(results)  # the report reads it
    assert len(run.interop) == len(document["interop"]) and run.interop[0].broker.startswith("refbroker")
    assert new_children() == []


def test_a_failing_cell_carries_trace_statement_and_attribution(tmp_path):
    """amqtt's broker forwards a QoS 0 message at QoS 2 to a QoS 2 subscription (found by the matrix)."""
    results = tmp_path / "amqtt.json"
    why = build_target("amqtt").unavailable() or CLIENTS["paho-mqtt"].unavailable()
    if why:
        pytest.skip(why)
    run_broker("amqtt", clients=["paho-mqtt"], scenarios=["qos-delivery"], results=results, jobs=1)
    record = json.loads(results.read_text())["interop"][0]
    assert record["outcome"] == "fail" and record["statement"] == "3.1.1 §3.8.4"
    assert "qos0 arrived at QoS 2" in record["reason"]
    assert record["attribution"].startswith("the broker forwarded a QoS 0 message at QoS 2")
    packets = [p for trace in record["traces"] for p in trace["packets"]]
    assert any(p["type"] == "PUBLISH" and p["dir"] == "in" and p["hex"].startswith("34") for p in packets)
    assert load_run(results).interop[0].trace  # the report's drill-down has the packets


def test_a_hung_client_is_killed_and_fails_with_the_reason(tmp_path, new_children):
    """A driver that answers `hello` and then nothing: the cell fails as hung within its limit."""
    script = tmp_path / "hung_driver.py"
    script.write_text("import json, sys, time\n"
                      "line = sys.stdin.readline()\n"
                      "print(json.dumps({'id': json.loads(line)['id'], 'ok': True, 'library': 'hung', "
                      "'version': '0', 'features': ['3.1.1']}), flush=True)\n"
                      "time.sleep(600)\n")
    spec = ClientSpec("hung", ("3.1.1",), (sys.executable, str(script)))
    broker = build_target("refbroker")
    broker.start()
    pool = DriverPool(spec)
    trace = CellTrace(broker)
    try:
        scenario = SCENARIOS["wildcards"]
        scenario = type(scenario)(scenario.name, scenario.versions, scenario.run, scenario.needs, 3.0, scenario.doc)
        record = run_cell(Plan(spec, scenario, "3.1.1"), pool, broker, None, trace)
    finally:
        trace.close()
        pool.close()
        broker.cleanup()
    assert record["outcome"] == "fail" and record["reason"].startswith("hung: ")
    assert record["duration"] < 10
    assert new_children() == []


def test_conformance_builds_the_interop_broker_kinds():
    assert isinstance(target_from_option("aedes:"), AedesBroker)
    with pytest.raises(ValueError, match="takes no argument"):
        target_from_option("rabbitmq:whatever")
    assert set(PROCESS_KINDS) <= set(BROKERS)


def test_a_scenario_the_brokers_connack_rules_out_is_not_applicable():
    """mqttools' v5 CONNACK says Wildcard Subscription Available 0: the wildcards cell is not applicable
    (before, the scenario subscribed with wildcards anyway and failed the broker for it)."""
    broker = MqttoolsBroker()
    if broker.unavailable() or CLIENTS["paho-mqtt"].unavailable():
        pytest.skip(broker.unavailable() or CLIENTS["paho-mqtt"].unavailable())
    broker.start()
    pool = DriverPool(CLIENTS["paho-mqtt"])
    trace = CellTrace(broker)
    try:
        broker.v5_connack = v5_connack_properties(*broker.address)
        record = run_cell(Plan(CLIENTS["paho-mqtt"], SCENARIOS["wildcards"], "5.0"), pool, broker, None, trace)
    finally:
        trace.close()
        pool.close()
        broker.cleanup()
    assert record["outcome"] == "not-applicable", record
    assert record["reason"] == "mqttools: its CONNACK says wildcard subscription available = 0"
