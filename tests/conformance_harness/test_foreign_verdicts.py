"""The suite's verdicts on a broker nobody here wrote (aedes, a Node.js broker), where the spec leaves a choice.

A failure must be forced by a sentence of the spec; where the spec allows what the broker did, the test is
not applicable and says so. These cases were failures before an audit of the suite's verdicts on foreign
brokers found that no sentence forces them (MQTT 3.1 names no answer to an empty client identifier, and
none requires a CONNACK before closing on an "MQIsdp" CONNECT of an unknown level).
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from interop.brokers import build_target


@pytest.fixture(scope="module")
def aedes_v31_records(tmp_path_factory) -> dict[str, dict]:
    missing = build_target("aedes").unavailable()
    if missing:
        pytest.skip(missing)
    results = tmp_path_factory.mktemp("aedes") / "results.json"
    subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                    "--pyargs", "conformance.tests.test_v31", "--mqtt-version=3.1", "--broker=aedes:", f"--results={results}",
                    "-k", "mqisdp_with_another_level or empty_client_identifier"],
                   capture_output=True, text=True, timeout=300, check=False)
    return {record["nodeid"].split("::")[1]: record for record in json.loads(results.read_text())["tests"]}


def test_a_close_without_connack_on_an_unknown_mqisdp_level_is_allowed(aedes_v31_records):
    # aedes closes the connection on level 127 without a CONNACK
    record = aedes_v31_records["test_mqisdp_with_another_level_is_refused[v3.1-127]"]
    assert record["outcome"] == "not-applicable", record["reason"]
    assert "without a CONNACK" in record["reason"] and "the spec allows it" in record["reason"]


def test_accepting_an_unknown_mqisdp_level_still_fails(aedes_v31_records):
    # aedes accepts level 4 with CONNACK 0: neither 3.1 nor 3.1.1 allows that
    record = aedes_v31_records["test_mqisdp_with_another_level_is_refused[v3.1-4]"]
    assert record["outcome"] == "fail" and "MQTT-3.1.2-1" in record["reason"], record["reason"]


@pytest.mark.parametrize("clean", ["clean0", "clean1"])
def test_accepting_an_empty_3_1_client_identifier_is_allowed(aedes_v31_records, clean):
    record = aedes_v31_records[f"test_empty_client_identifier_is_rejected[v3.1-{clean}]"]
    assert record["outcome"] == "not-applicable", record["reason"]
    assert "longer than 23" in record["reason"]
