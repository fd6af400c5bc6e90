"""JUnit XML properties of conformance tests and the broker's name: run a small suite in an inner pytest
session against a real refbroker reached by HOST:PORT, read the XML with ElementTree."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from conformance.junit import properties_for
from refbroker.embedded import EmbeddedBroker

pytest_plugins = ["pytester"]

SUITE = '''
import pytest
from conformance import known_deviation, not_applicable


@pytest.mark.spec("MQTT-3.12.4-1")
def test_ping(client_factory, version):
    client_factory().ping()


@pytest.mark.spec("MQTT-3.1.4-3", version="5.0")
def test_known(client_factory, broker, version):
    known_deviation(13, "closed without DISCONNECT 0x8E")


@pytest.mark.spec("MQTT-3.12.4-1", version="3.1.1")
def test_na(client_factory, version):
    not_applicable("the broker lacks the frobnicator")
'''


@pytest.fixture(scope="module")
def running_refbroker():
    broker = EmbeddedBroker(verbose=False).start()
    try:
        yield broker
    finally:
        broker.stop()


def _properties(case: ET.Element) -> list[tuple[str, str]]:
    return [(p.get("name"), p.get("value")) for p in case.iter("property")]


def test_junit_properties_name_statements_outcome_and_broker(pytester, running_refbroker):
    pytester.makepyfile(test_suite=SUITE)
    xml = pytester.path / "junit.xml"
    result = pytester.runpytest("-p", "no:cacheprovider", f"--broker=127.0.0.1:{running_refbroker.port}",
                                f"--junitxml={xml}", f"--results={pytester.path / 'r.json'}")
    assert result.ret == pytest.ExitCode.TESTS_FAILED, result.outlines[-20:]  # test_known fails
    cases = {case.get("name"): _properties(case) for case in ET.parse(xml).getroot().iter("testcase")}
    ping = dict(cases["test_ping[v5.0]"])
    assert ("statement", "MQTT-3.12.4-1") in cases["test_ping[v5.0]"]
    assert ping["mqtt_version"] == "5.0" and ping["outcome"] == "pass" and "reason" not in ping
    # the broker is named by what it says it is ($SYS/broker/version), not by host:port or 'unknown'
    assert ping["broker"].startswith("refbroker "), ping
    known = dict(cases["test_known[v5.0]"])
    # refbroker is not mosquitto 2.0.11: deviation 13 does not apply, so this is a plain failure
    assert known["outcome"] == "fail" and "known_deviation" not in known and "0x8E" in known["reason"]
    na = dict(cases["test_na[v3.1.1]"])
    assert na["outcome"] == "not-applicable" and na["reason"] == "the broker lacks the frobnicator"


def test_properties_for_a_known_deviation():
    properties = properties_for([("5.0", "MQTT-3.1.4-3")], "5.0", "mosquitto 2.0.11",
                                {"outcome": "fail", "known_deviation": 13, "reason": "known deviation #13 ..."})
    values = dict(properties)
    assert values["known_deviation"].startswith("#13: ") and values["statement"] == "MQTT-3.1.4-3"
