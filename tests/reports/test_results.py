"""reports/results.py: reading results files, outcome mapping, traces, labels, and clear errors."""

from __future__ import annotations

import json

import pytest

from reports.results import ResultsError, assign_labels, load_run, load_runs, normalise_outcome

from .helpers import packet, record, results, write


def test_reads_the_plugins_format(tmp_path):
    trace = [{"client": "sub", "client_id": "c1", "packets": [packet(1000.5, "in", "SUBACK", hex_text="90 03 00 01 00")]},
             {"client": "pub", "client_id": "c2", "packets": [packet(1000.0, "event", "OPEN"),
                                                              packet(1000.2, "out", "CONNECT", hex_text="10 00")]}]
    path = write(tmp_path / "r.json", results([
        record("conformance/tests/test_x.py::test_a[v5.0]", ["MQTT-3.12.4-1"], traces=trace),
        record("conformance/tests/test_x.py::test_b[v3.1.1]", ["MQTT-2.2.2-2"], "3.1.1", "fail",
               reason="known deviation #102 (ref): t. Observed: x", known_deviation=102),
        record("conformance/tests/test_x.py::test_c[v5.0]", ["MQTT-3.1.2-22"], outcome="not-applicable",
               reason="no QoS 2", pcap="captures/c.pcap"),
    ], name="mosquitto", version_string="mosquitto 2.0.11"))
    run = load_run(path)
    assert (run.target, run.target_version, run.label, run.target_option) == (
        "mosquitto", "mosquitto 2.0.11", "mosquitto 2.0.11", "mosquitto")
    assert run.mqtt_versions == ["3.1.1", "5.0"] and run.duration == 10.0 and run.target_error is None
    a, b, c = run.tests
    assert (a.name, a.module, a.version, a.outcome, a.statements) == (
        "test_a[v5.0]", "test_x.py", "5.0", "pass", ["MQTT-3.12.4-1"])
    # the per-client traces become one list in time order, relative to the first packet
    assert [(p["client"], p["dir"], p["type"]) for p in a.trace] == [
        ("pub", "event", "OPEN"), ("pub", "out", "CONNECT"), ("sub", "in", "SUBACK")]
    assert [round(p["rel"], 3) for p in a.trace] == [0.0, 0.2, 0.5]
    assert a.trace[2]["hex"] == "90 03 00 01 00"
    assert (b.outcome, b.deviation_number, b.version) == ("deviation", 102, "3.1.1")
    assert (c.outcome, c.reason, c.pcap) == ("not-applicable", "no QoS 2", "captures/c.pcap")


@pytest.mark.parametrize(("raw", "deviation", "expected"), [
    ("pass", None, "pass"), ("passed", None, "pass"), ("fail", None, "fail"), ("failed", None, "fail"),
    ("fail", 13, "deviation"), ("xfail", None, "deviation"), ("FAIL", "#13", "deviation"),
    ("pass", 13, "pass"),  # a pass stays a pass whatever the deviation field says
    ("not-applicable", None, "not-applicable"), ("skipped", None, "not-applicable"), ("n/a", None, "not-applicable"),
    ("not_applicable", None, "not-applicable"), ("error", 13, "error"), ("weird", None, None),
])
def test_outcome_mapping(raw, deviation, expected):
    assert normalise_outcome(raw, deviation) == expected


def test_older_hand_written_format(tmp_path):
    path = write(tmp_path / "old.json", {
        "header": {"target": "mosquitto", "target_version": "mosquitto 2.0.21", "mqtt_versions": ["4", "5"]},
        "tests": [{"nodeid": "t::x", "statements": ["MQTT-3.12.4-1"], "version": "5", "outcome": "passed",
                   "trace": [{"time": 2.0, "direction": "received", "type": "PINGRESP", "hex": "d000"},
                             {"time": 1.0, "direction": "sent", "type": "PINGREQ", "hex": "c000"}]}]})
    run = load_run(path)
    assert (run.label, run.mqtt_versions) == ("mosquitto 2.0.21", ["3.1.1", "5.0"])
    test = run.tests[0]
    assert (test.version, test.outcome) == ("5.0", "pass")
    assert [(p["dir"], p["type"], p["hex"]) for p in test.trace] == [("out", "PINGREQ", "c0 00"), ("in", "PINGRESP", "d0 00")]


def test_target_error_and_unknown_version(tmp_path):
    path = write(tmp_path / "e.json", results([record("t::a", ["MQTT-3.12.4-1"], outcome="error")],
                                              version_string="unknown", error="did not start"))
    run = load_run(path)
    assert (run.target_error, run.label) == ("did not start", "refbroker")


def test_interop_only_file(tmp_path):
    path = write(tmp_path / "interop.json", {"interop": [
        {"client": "paho-mqtt 2.1", "broker": "mosquitto 2.0.11", "scenario": "qos1 round trip", "outcome": "pass"},
        {"client": "gmqtt", "broker": "refbroker 0.1.0", "scenario": "will", "outcome": "failed", "reason": "no will"}]})
    run = load_run(path)
    assert run.tests == [] and [(r.client, r.outcome, r.reason) for r in run.interop] == [
        ("paho-mqtt 2.1", "pass", ""), ("gmqtt", "fail", "no will")]


@pytest.mark.parametrize(("content", "message"), [
    ("{not json", "not JSON (Expecting property name enclosed in double quotes at line 1, column 2)"),
    ("[1, 2]", "expected a JSON object with a 'tests' or 'interop' list, got a JSON list"),
    ('{"target": "x"}', "expected a JSON object with a 'tests' list (a conformance results file) or an 'interop' list"),
    ('{"schema": "junit/1", "tests": []}', "schema 'junit/1' is not a conformance results schema"),
    ('{"schema": "mqtt-conformance-results/2", "tests": []}', "newer than this report builder reads"),
    ('{"tests": [3]}', "tests[0] is not an object"),
    ('{"tests": [{"nodeid": "t::a", "statement_ids": [], "protocol_version": "5.0", "outcome": "green"}]}',
     "test t::a: unknown outcome 'green' (expected one of pass, fail, deviation, not-applicable, error)"),
    ('{"tests": [{"nodeid": "t::a", "statement_ids": [], "outcome": "pass"}]}', "test t::a: no 'protocol_version'"),
    ('{"tests": [{"nodeid": "t::a", "protocol_version": "5.0"}]}', "test t::a: no 'outcome'"),
    ('{"tests": [{"nodeid": "t::a", "protocol_version": "5.0", "outcome": "pass", "statement_ids": 7}]}',
     "'statement_ids' must be a list"),
    ('{"tests": [{"nodeid": "t::a", "protocol_version": "5.0", "outcome": "pass", "traces": {}}]}',
     "'traces' must be a list of client traces"),
    ('{"interop": [{"client": "paho", "broker": "b"}]}', "interop[0]: missing scenario, outcome"),
    ('{"interop": [{"client": "c", "broker": "b", "scenario": "s", "outcome": "xfail"}]}', "interop[0]: unknown outcome"),
])
def test_bad_files_give_clear_errors(tmp_path, content, message):
    path = write(tmp_path / "bad.json", content)
    with pytest.raises(ResultsError) as error:
        load_run(path)
    assert str(error.value).startswith(f"{path}: ")
    assert message in str(error.value)


def test_missing_file_and_directory(tmp_path):
    with pytest.raises(ResultsError, match=r"no such results file"):
        load_run(tmp_path / "missing.json")
    with pytest.raises(ResultsError, match=r"is a directory, not a results file"):
        load_run(tmp_path)


def test_binary_file(tmp_path):
    path = tmp_path / "bin.json"
    path.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(ResultsError, match=r"cannot be read"):
        load_run(path)


def test_labels_are_unique(tmp_path):
    local = write(tmp_path / "mosquitto-local.json", results([], name="mosquitto", version_string="mosquitto 2.0.11"))
    docker = write(tmp_path / "docker.json", results([], name="docker:mosquitto-2.0.11", option="docker:mosquitto-2.0.11",
                                                     version_string="mosquitto 2.0.11"))
    newer = write(tmp_path / "newer.json", results([], name="mosquitto", version_string="mosquitto 2.1.2"))
    runs = load_runs([local, docker, newer, newer])
    assert [r.label for r in runs] == ["mosquitto 2.0.11 [mosquitto]", "mosquitto 2.0.11 [docker:mosquitto-2.0.11]",
                                       "mosquitto 2.1.2 (newer.json) #3", "mosquitto 2.1.2 (newer.json) #4"]
    # two runs of one target: the file names tell them apart
    other = write(tmp_path / "other.json", results([], name="mosquitto", version_string="mosquitto 2.0.11"))
    assert [r.label for r in load_runs([local, other])] == ["mosquitto 2.0.11 (mosquitto-local.json)",
                                                            "mosquitto 2.0.11 (other.json)"]
    single = load_runs([local])
    assert single[0].label == "mosquitto 2.0.11"
    assign_labels(single)
    assert single[0].label == "mosquitto 2.0.11"


def test_real_results_file_shape_round_trips(tmp_path):
    """The exact keys the plugin writes (tests/conformance_harness/test_plugin.py pins them) are read."""
    document = results([record("t::a", ["MQTT-3.12.4-1"], phase="setup", outcome="error", reason="boom")])
    run = load_run(write(tmp_path / "r.json", json.loads(json.dumps(document))))
    assert (run.tests[0].phase, run.tests[0].outcome, run.tests[0].reason) == ("setup", "error", "boom")
