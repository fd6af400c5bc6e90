"""The conformance suite's --capture-dir: one pcapng per test, its path in the results file, and the
report's link from a failing test to its capture."""

from __future__ import annotations

import json

import pytest

from conformance.capture import capture_file_name
from pcap.reader import read_capture

pytest_plugins = ["pytester"]

SUITE = '''
import pytest


@pytest.mark.spec("MQTT-3.12.4-1")
def test_ping(client_factory, version):
    client_factory().ping()


@pytest.mark.spec("MQTT-3.12.4-1", version="5.0")
def test_fails(client_factory, version):
    client_factory().ping()
    assert False, "deliberate failure"


@pytest.mark.spec("MQTT-3.12.4-1", version="3.1.1")
def test_no_client(client_factory, version):
    pass
'''


def test_one_capture_per_test_and_the_report_links_it(pytester):
    pytester.makepyfile(test_suite=SUITE)
    results = pytester.path / "results.json"
    captures = pytester.path / "captures"
    outcome = pytester.runpytest("-p", "no:cacheprovider", "--broker=refbroker", f"--results={results}",
                                 f"--capture-dir={captures}")
    outcome.assert_outcomes(passed=3, failed=1)
    records = {r["nodeid"].split("::")[1]: r for r in json.loads(results.read_text())["tests"]}
    assert records["test_no_client[v3.1.1]"]["capture"] is None  # no connection, no file
    for name in ("test_ping[v3.1.1]", "test_ping[v5.0]", "test_fails[v5.0]"):
        path = records[name]["capture"]
        assert path == str(captures / capture_file_name(records[name]["nodeid"]))
        (session,) = read_capture(path).sessions
        assert [p.name for p in session.packets()] == ["CONNECT", "CONNACK", "PINGREQ", "PINGRESP", "DISCONNECT"]
        assert session.broker[1] == 1883  # --capture-port's default, so Wireshark dissects it as MQTT

    from reports.__main__ import main as reports_main
    assert reports_main(["build", str(results), "-o", str(pytester.path / "html")]) == 0
    html = (pytester.path / "html" / "index.html").read_text()
    assert f'href="{records["test_fails[v5.0]"]["capture"]}"' in html


@pytest.mark.parametrize("nodeid, name", [
    ("conformance/tests/test_x.py::test_y[v5.0]", "test_x.test_y-v5.0.pcapng"),
    ("test_z.py::test_q", "test_z.test_q.pcapng"),
])
def test_capture_file_names(nodeid, name):
    assert capture_file_name(nodeid) == name


def test_parameters_that_a_file_name_cannot_keep_stay_apart():
    plus = capture_file_name("t.py::test_r[v5.0-reply/+]")
    hash_ = capture_file_name("t.py::test_r[v5.0-reply/#]")
    assert plus != hash_ and plus.startswith("t.test_r-v5.0-reply-")
