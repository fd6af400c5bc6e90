"""conformance/allure_support.py: a real small suite run against refbroker with --alluredir writes allure
results with the MQTT labels, the broker and version parameters, and the packet trace attached."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conformance.allure_support import format_trace, maybe_register

from ..broker.processes import mosquitto_or_skip

REPO = Path(__file__).resolve().parents[2]


def _labels(result: dict, name: str) -> list[str]:
    return [label["value"] for label in result["labels"] if label["name"] == name]


def _suite(tmp_path: Path, *extra: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--pyargs", "conformance.tests.test_connect",
         "-k", "accepted_with_connack or second_connect", "--mqtt-version=all", "-q", "--broker=refbroker",
         f"--results={tmp_path / 'results.json'}", *extra],
        capture_output=True, text=True, check=False, cwd=REPO, env=env, timeout=300)


def test_alluredir_results_carry_labels_parameters_and_trace(tmp_path):
    pytest.importorskip("allure_pytest", reason="allure-pytest not installed: pip install allure-pytest")
    alluredir = tmp_path / "allure"
    run = _suite(tmp_path, f"--alluredir={alluredir}")
    assert run.returncode == 0, run.stdout + run.stderr
    results = [json.loads(p.read_text()) for p in alluredir.glob("*-result.json")]
    recorded = json.loads((tmp_path / "results.json").read_text())["tests"]
    assert len(results) == len(recorded) >= 4
    # both the pytest parameters and ours take part in the history id: one result per test and version
    assert len({r["historyId"] for r in results}) == len(results)
    for record in recorded:
        version = record["protocol_version"]
        (result,) = [r for r in results if r["name"] == record["nodeid"].split("::")[-1]]
        assert _labels(result, "epic") == [f"MQTT {version}"]
        assert _labels(result, "story") == record["statement_ids"]
        parameters = {p["name"]: p["value"] for p in result["parameters"]}
        assert parameters["broker"] == "'refbroker 0.1.0'" and parameters["MQTT version"] == f"'{version}'"
        (trace,) = [a for a in result["attachments"] if a["name"] == "packet trace"]
        assert trace["type"] == "text/plain"
        text = (alluredir / trace["source"]).read_text()
        # the attachment is the same trace the results file holds, as text
        assert text == format_trace(record["traces"])
        assert "->  CONNECT" in text and "<-  CONNACK" in text
        assert "Statements checked:" in result["description"]
        assert result["status"] == "passed"


def test_features_are_the_statements_packets(tmp_path):
    pytest.importorskip("allure_pytest", reason="allure-pytest not installed: pip install allure-pytest")
    from conformance.catalogue import load_catalogue

    alluredir = tmp_path / "allure"
    assert _suite(tmp_path, f"--alluredir={alluredir}").returncode == 0
    catalogue = load_catalogue()
    for path in alluredir.glob("*-result.json"):
        result = json.loads(path.read_text())
        (epic,) = _labels(result, "epic")
        version = epic.removeprefix("MQTT ")
        expected = []
        for statement in _labels(result, "story"):
            packet = catalogue[(version, statement)].packet
            if packet not in expected:
                expected.append(packet)
        assert _labels(result, "feature") == expected


def test_without_alluredir_nothing_is_registered(tmp_path):
    run = _suite(tmp_path, "--trace-config")
    assert run.returncode == 0, run.stdout + run.stderr
    assert "mqtt_conformance_allure" not in run.stdout


def test_maybe_register_needs_alluredir():
    class Config:
        def __init__(self, alluredir):
            self.alluredir = alluredir
            self.registered = []
            self.pluginmanager = self

        def getoption(self, name, default=None):
            assert name == "--alluredir"
            return self.alluredir

        def has_plugin(self, name):
            return any(n == name for _, n in self.registered)

        def register(self, plugin, name):
            self.registered.append((plugin, name))

    assert maybe_register(Config(None)) is False
    pytest.importorskip("allure_pytest", reason="allure-pytest not installed: pip install allure-pytest")
    config = Config("/tmp/x")
    assert maybe_register(config) is True and maybe_register(config) is False
    assert [name for _, name in config.registered] == ["mqtt_conformance_allure"]


def test_format_trace():
    traces = [{"client": "sub", "packets": [{"t": 10.5, "dir": "in", "type": "PUBLISH", "summary": "PUBLISH(a)",
                                             "hex": "30 03 00 01 61"}]},
              {"client": "publisher", "packets": [{"t": 10.0, "dir": "out", "type": "CONNECT", "summary": "CONNECT()"},
                                                  {"t": 10.25, "dir": "event", "type": "NOTE", "summary": "hello"}]}]
    lines = format_trace(traces).splitlines()
    assert lines[0].split() == ["0.0000s", "publisher", "->", "CONNECT", "CONNECT()"]
    assert lines[1].split() == ["0.2500s", "publisher", "--", "NOTE", "hello"]
    assert lines[2].split() == ["0.5000s", "sub", "<-", "PUBLISH", "PUBLISH(a)"]
    assert lines[3].strip() == "30 03 00 01 61" and lines[3].index("30") == lines[2].index("PUBLISH")
    assert "no packets were exchanged" in format_trace([])


def test_known_deviation_is_tagged_on_mosquitto(tmp_path):
    pytest.importorskip("allure_pytest", reason="allure-pytest not installed: pip install allure-pytest")
    mosquitto_or_skip()
    alluredir = tmp_path / "allure"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--pyargs", "conformance.tests.test_malformed",
         "-k", "invalid_fixed_header_flags_close and PINGREQ", "--mqtt-version=all", "-q", "--broker=mosquitto",
         f"--results={tmp_path / 'results.json'}", f"--alluredir={alluredir}"],
        capture_output=True, text=True, check=False, cwd=REPO, env=env, timeout=300)
    assert run.returncode == 0, run.stdout + run.stderr
    recorded = {r["nodeid"].split("::")[-1]: r for r in json.loads((tmp_path / "results.json").read_text())["tests"]}
    results = [json.loads(p.read_text()) for p in alluredir.glob("*-result.json")]
    assert results
    for result in results:
        record = recorded[result["name"]]
        parameters = {p["name"]: p["value"] for p in result["parameters"]}
        assert parameters["broker"].startswith("'mosquitto ")
        if record["known_deviation"] is not None:
            number = record["known_deviation"]
            assert f"known deviation #{number}" in _labels(result, "tag")
            assert result["status"] == "skipped"  # allure shows pytest's xfail as skipped
            assert any(a["name"] == f"known deviation #{number}" for a in result["attachments"])
        else:
            assert not [t for t in _labels(result, "tag") if t.startswith("known deviation")]
