"""python -m conformance compare: verdicts of identical runs, per test and per statement."""

from __future__ import annotations

import json

from conformance.__main__ import main
from conformance.compare import compare_runs


def _results(path, outcome="pass", statements=None, deviation=None):
    record = {"nodeid": "t.py::test_a[v5.0]", "outcome": outcome, "known_deviation": deviation,
              "statement_outcomes": statements or {"MQTT-3.3.1-1": "pass", "MQTT-3.3.1-2": "pass"}}
    other = {"nodeid": "t.py::test_b[v5.0]", "outcome": "pass", "known_deviation": None,
             "statement_outcomes": {"MQTT-3.12.4-1": "pass"}}
    path.write_text(json.dumps({"tests": [record, other]}))
    return path


def test_identical_runs(tmp_path, capsys):
    files = [str(_results(tmp_path / f"r{i}.json")) for i in range(3)]
    assert compare_runs(files).identical
    assert main(["compare", *files]) == 0
    assert "identical" in capsys.readouterr().out


def test_a_flip_is_named_per_test_and_statement(tmp_path, capsys):
    a = _results(tmp_path / "a.json")
    b = _results(tmp_path / "b.json", "fail", {"MQTT-3.3.1-1": "pass", "MQTT-3.3.1-2": "fail"})
    c = _results(tmp_path / "c.json", "fail", {"MQTT-3.3.1-1": "pass", "MQTT-3.3.1-2": "deviation"}, deviation=13)
    result = compare_runs([a, b, c])
    assert result.node_flips == {"t.py::test_a[v5.0]": ["pass", "fail", "fail#13"]}
    assert result.statement_flips == {("t.py::test_a[v5.0]", "MQTT-3.3.1-2"): ["pass", "fail", "deviation"]}
    assert main(["compare", str(a), str(b)]) == 1
    assert "t.py::test_a[v5.0]: pass | fail" in capsys.readouterr().out


def test_not_a_results_file(tmp_path, capsys):
    bad = tmp_path / "bad.json"
    bad.write_text("{}")
    assert main(["compare", str(bad), str(bad)]) == 2
    assert "not a conformance results file" in capsys.readouterr().err
