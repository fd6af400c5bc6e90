"""The pytest plugin, run in inner pytest sessions (pytester) against a fake broker: version
parametrisation from spec markers, outcomes, the results JSON file, and inertness elsewhere."""

from __future__ import annotations

import json

import pytest

from .scripted_server import FakeBroker

pytest_plugins = ["pytester"]

SUITE = '''
import pytest
from conformance import known_deviation, not_applicable
from conformance.client import HarnessError


@pytest.mark.spec("MQTT-3.12.4-1")
def test_ping(client_factory, version):
    client_factory().ping()


@pytest.mark.spec("MQTT-3.1.3-7", version="5.0")
def test_only_v5(client_factory, version):
    assert version == 5
    client_factory().ping()


@pytest.mark.spec("MQTT-3.1.2-7", version="3.1.1")
def test_alias_spelling(client_factory, version):
    assert version == 4


@pytest.mark.spec("MQTT-3.12.4-1", version="3.1.1")
def test_fails(client_factory, version):
    client_factory().ping()
    assert 1 == 2, "deliberate failure"


@pytest.mark.spec("MQTT-3.12.4-1", version="3.1.1")
def test_na(client_factory, version):
    not_applicable("the broker lacks the frobnicator")


@pytest.mark.spec("MQTT-3.1.4-3", version="5.0")
def test_known(client_factory, version):
    client_factory()
    known_deviation(13, "closed without DISCONNECT 0x8E")


@pytest.mark.spec("MQTT-3.12.4-1", version="3.1.1")
def test_harness_problem(client_factory, version):
    raise HarnessError("the harness broke")


def test_not_a_conformance_test():
    pass
'''

HEADER_KEYS = {"schema", "target", "mqtt_versions", "versions", "started", "finished", "duration",
               "hypothesis_profile", "hypothesis_seed", "python", "pytest", "summary", "tests"}
RECORD_KEYS = {"nodeid", "statement_ids", "statement_outcomes", "protocol_version", "outcome", "reason",
               "known_deviation", "duration", "traces", "capture"}


@pytest.fixture
def fake_broker():
    broker = FakeBroker()
    yield broker
    broker.stop()


def _run(pytester, *args):
    return pytester.runpytest("-p", "no:cacheprovider", "-p", "no:randomly", *args)


def test_results_file_schema_and_outcomes(pytester, fake_broker):
    pytester.makepyfile(test_suite=SUITE)
    profile = pytester.path / "profile.toml"
    profile.write_text('[target]\nversion = "mosquitto 2.0.11"\n')
    out = pytester.path / "out" / "results.json"
    result = _run(pytester, f"--broker={fake_broker.spec}", f"--target-profile={profile}", f"--results={out}")
    # pytest's categories are the results file's: the HarnessError is an error, the skip not applicable
    result.assert_outcomes(passed=5, failed=1, errors=1)
    result.stdout.fnmatch_lines(["*1 failed, 5 passed*1 error, 1 not applicable, 1 known deviation*"])
    assert any("mqtt conformance" in line for line in result.outlines)

    document = json.loads(out.read_text())
    assert HEADER_KEYS <= set(document)
    assert document["schema"] == "mqtt-conformance-results/1"
    assert document["target"]["name"] == fake_broker.spec
    assert document["target"]["version_string"] == "mosquitto 2.0.11"
    assert document["mqtt_versions"] == ["3.1", "3.1.1", "5.0"]
    records = {r["nodeid"].split("::")[1]: r for r in document["tests"]}
    for record in records.values():
        assert set(record) == RECORD_KEYS
    assert "test_not_a_conformance_test" not in records  # only suite tests are recorded
    assert set(records) == {"test_ping[v3.1.1]", "test_ping[v5.0]", "test_only_v5[v5.0]",
                            "test_alias_spelling[v3.1.1]", "test_fails[v3.1.1]", "test_na[v3.1.1]",
                            "test_known[v5.0]", "test_harness_problem[v3.1.1]"}

    ping = records["test_ping[v5.0]"]
    assert (ping["outcome"], ping["protocol_version"], ping["statement_ids"]) == ("pass", "5.0", ["MQTT-3.12.4-1"])
    packets = ping["traces"][0]["packets"]
    assert [p["type"] for p in packets if p["dir"] in ("in", "out")] == [
        "CONNECT", "CONNACK", "PINGREQ", "PINGRESP", "DISCONNECT"]
    assert all("hex" in p and "summary" in p and "t" in p for p in packets if p["dir"] != "event")

    assert records["test_alias_spelling[v3.1.1]"]["statement_ids"] == ["MQTT-3.1.2.7"]  # catalogue spelling
    fails = records["test_fails[v3.1.1]"]
    assert fails["outcome"] == "fail" and "deliberate failure" in fails["reason"]
    assert fails["known_deviation"] is None and fails["traces"]
    na = records["test_na[v3.1.1]"]
    assert (na["outcome"], na["reason"]) == ("not-applicable", "the broker lacks the frobnicator")
    known = records["test_known[v5.0]"]
    assert (known["outcome"], known["known_deviation"]) == ("fail", 13)
    assert "closed without DISCONNECT 0x8E" in known["reason"]
    harness = records["test_harness_problem[v3.1.1]"]
    assert harness["outcome"] == "error" and "the harness broke" in harness["reason"]
    assert document["summary"] == {"pass": 4, "fail": 2, "not-applicable": 1, "error": 1, "known_deviations": 1,
                                   "total": 8}


def test_known_deviation_is_a_plain_failure_on_other_targets(pytester, fake_broker):
    pytester.makepyfile(test_suite=SUITE)
    out = pytester.path / "results.json"
    _run(pytester, f"--broker={fake_broker.spec}", f"--results={out}", "-k", "test_known")
    record = json.loads(out.read_text())["tests"][0]
    assert record["outcome"] == "fail" and record["known_deviation"] is None
    # the observation only: mosquitto's deviation table is not quoted to another broker
    assert "closed without DISCONNECT 0x8E" in record["reason"] and "mosquitto" not in record["reason"]
    assert "Deviation" not in record["reason"]  # a plain failure there, labelled as one
    assert record["statement_outcomes"] == {"MQTT-3.1.4-3": "fail"}


def test_mqtt_version_selects_parametrisations(pytester, fake_broker):
    pytester.makepyfile(test_suite=SUITE)
    out = pytester.path / "results.json"
    result = _run(pytester, f"--broker={fake_broker.spec}", f"--results={out}", "--mqtt-version=5.0",
                  "-k", "ping or only_v5 or alias")
    outcomes = result.parseoutcomes()
    assert outcomes.get("passed") == 2 and "failed" not in outcomes, outcomes
    document = json.loads(out.read_text())
    assert document["mqtt_versions"] == ["5.0"]
    assert {r["protocol_version"] for r in document["tests"]} == {"5.0"}


def test_default_results_path_names_the_target(pytester, fake_broker):
    pytester.makepyfile(test_suite=SUITE)
    _run(pytester, f"--broker={fake_broker.spec}", "-k", "test_ping")
    expected = pytester.path / "results" / f"conformance-127.0.0.1_{fake_broker.port}.json"
    assert expected.exists()


def test_unknown_statement_id_is_a_collection_error(pytester, fake_broker):
    pytester.makepyfile(test_bad='''
import pytest

@pytest.mark.spec("MQTT-9.9.9-9", version="5.0")
def test_x(client_factory, version):
    pass
''')
    result = _run(pytester, f"--broker={fake_broker.spec}")
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines(["*unknown statement id 'MQTT-9.9.9-9' for MQTT 5.0*"])


def test_bad_options_are_usage_errors(pytester):
    pytester.makepyfile(test_x="def test_x():\n    pass\n")
    assert _run(pytester, "--broker=nonsense").ret == pytest.ExitCode.USAGE_ERROR
    assert _run(pytester, "--mqtt-version=4.0").ret == pytest.ExitCode.USAGE_ERROR


def test_broker_that_does_not_start_gives_errors(pytester):
    from conformance.targets import free_port

    pytester.makepyfile(test_suite=SUITE)
    out = pytester.path / "results.json"
    result = _run(pytester, f"--broker=127.0.0.1:{free_port()}", f"--results={out}", "-k", "test_ping")
    result.assert_outcomes(errors=2)
    document = json.loads(out.read_text())
    assert [r["outcome"] for r in document["tests"]] == ["error", "error"]
    assert "did not accept connections" in document["tests"][0]["reason"]
    assert "did not accept connections" in document["target"]["error"]


def test_plugin_is_inert_for_other_tests(pytester):
    """A project with its own `version` fixture and no conformance tests: nothing parametrised,
    no results file, no broker started."""
    pytester.makepyfile(test_other='''
import pytest

@pytest.fixture
def version():
    return "mine"

def test_uses_own_version(version):
    assert version == "mine"

@pytest.mark.parametrize("n", [1, 2])
def test_plain(n):
    assert n
''')
    result = _run(pytester)
    result.assert_outcomes(passed=3)
    assert not (pytester.path / "results").exists()
    assert "mqtt conformance" not in result.stdout.str()


ATTRIBUTION_SUITE = '''
import pytest
from conformance import check, statement


@pytest.mark.spec("MQTT-3.12.4-1", "MQTT-4.6.0-2", version="3.1.1")
def test_unchecked_statement_never_passes(client_factory, version):
    client_factory().ping()


@pytest.mark.spec("MQTT-3.12.4-1", "MQTT-3.1.3-5", "MQTT-3.1.4-4", version="3.1.1")
def test_second_check_fails(client_factory, version):
    client = client_factory()
    with statement("MQTT-3.12.4-1"):
        client.ping()
    check("MQTT-3.1.3-5", False, "deliberately failed check")
    client.ping()
'''


def test_statement_outcomes_name_only_the_failed_check(pytester, fake_broker):
    """Only the statement whose check failed is red; one no black-box test can check never passes."""
    pytester.makepyfile(test_attr=ATTRIBUTION_SUITE)
    out = pytester.path / "results.json"
    _run(pytester, f"--broker={fake_broker.spec}", f"--results={out}", "--mqtt-version=3.1.1")
    records = {r["nodeid"].split("::")[1]: r for r in json.loads(out.read_text())["tests"]}
    # MQTT-4.6.0-2 binds the client (the order of its PUBACKs): the catalogue says no broker test checks it
    assert records["test_unchecked_statement_never_passes[v3.1.1]"]["statement_outcomes"] == {
        "MQTT-3.12.4-1": "pass", "MQTT-4.6.0-2": "not-checkable"}
    assert records["test_second_check_fails[v3.1.1]"]["statement_outcomes"] == {
        "MQTT-3.12.4-1": "pass", "MQTT-3.1.3-5": "fail", "MQTT-3.1.4-4": "not-reached"}


def test_results_record_the_selection_of_a_selective_run(pytester, fake_broker):
    pytester.makepyfile(test_suite=SUITE)
    out = pytester.path / "selected.json"
    _run(pytester, f"--broker={fake_broker.spec}", f"--results={out}", "-k", "test_ping")
    document = json.loads(out.read_text())
    assert document["selection"]["options"] == {"keyword": "test_ping"}
    assert ["3.1.1", "MQTT-3.12.4-1"] in document["selection"]["statements"]
    assert all(statement[1] == "MQTT-3.12.4-1" for statement in document["selection"]["statements"])
    every = pytester.path / "every.json"
    _run(pytester, f"--broker={fake_broker.spec}", f"--results={every}")
    assert json.loads(every.read_text())["selection"] is None
