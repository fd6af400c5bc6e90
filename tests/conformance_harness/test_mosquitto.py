"""The mosquitto target and a handful of real conformance tests run against it."""

from __future__ import annotations

import json
import socket

import pytest

from conformance.targets import MosquittoTarget, find_mosquitto

pytest_plugins = ["pytester"]

pytestmark = pytest.mark.skipif(find_mosquitto() is None, reason="mosquitto not installed: apt-get install mosquitto")


def test_mosquitto_target_lifecycle():
    target = MosquittoTarget()
    assert target.version_string.startswith("mosquitto ")
    target.start()
    try:
        host, port = target.address
        with socket.create_connection((host, port), timeout=2):
            pass
        assert "running" in target.logs()
        assert "listener" in target.config_text(port, "/tmp") and "allow_anonymous true" in target.config_text(1, "/x")
    finally:
        target.stop()
    assert target.process is None
    with pytest.raises(OSError):
        socket.create_connection((host, port), timeout=1).close()
    target.cleanup()


def test_suite_subset_against_mosquitto(pytester):
    out = pytester.path / "mosquitto.json"
    result = pytester.runpytest(
        "-p", "no:cacheprovider", "--pyargs", "conformance.tests", "--broker=mosquitto", f"--results={out}",
        "-k", "pingreq_gets_pingresp or qos1_publish_gets_puback or wildcard_matching or second_connect "
              "or client_id_takeover or publish_above_maximum_qos")
    document = json.loads(out.read_text())
    assert document["target"]["name"] == "mosquitto"
    assert document["target"]["version_string"].startswith("mosquitto ")
    assert document["broker_log"] and (pytester.path / "mosquitto.broker.log").exists()
    outcomes = {r["nodeid"].split("::")[1]: (r["outcome"], r["known_deviation"]) for r in document["tests"]}
    assert len(outcomes) == 11, outcomes
    for name in ("test_pingreq_gets_pingresp", "test_qos1_publish_gets_puback_with_same_id",
                 "test_wildcard_matching", "test_second_connect_closes_connection"):
        for version in ("3.1.1", "5.0"):
            assert outcomes[f"{name}[v{version}]"] == ("pass", None), outcomes
    assert outcomes["test_client_id_takeover_closes_existing_connection[v3.1.1]"] == ("pass", None)
    takeover_v5 = outcomes["test_client_id_takeover_closes_existing_connection[v5.0]"]
    if document["target"]["version_string"] == "mosquitto 2.0.11":
        assert takeover_v5 == ("fail", 13)  # known deviation #13 on this version
    assert outcomes["test_publish_above_maximum_qos_closes[v5.0]"][0] == "not-applicable"
    assert result.ret in (pytest.ExitCode.OK,)
