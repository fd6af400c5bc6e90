"""conformance/checks.py: which statement a failure turns red, and nothing else."""

from __future__ import annotations

import pytest

from conformance import checks
from conformance.checks import check, statement, statement_outcomes
from conformance.client import HarnessError, NoPacketReceived

IDS = ["MQTT-3.3.4-1", "MQTT-2.3.1-6", "MQTT-4.3.2-2"]


@pytest.fixture
def ledger():
    found = checks.begin_test()
    yield found
    checks.end_test()


def _fail(block) -> BaseException:
    with pytest.raises(BaseException) as info:
        block()
    return info.value


def test_passing_test_passes_every_statement(ledger):
    assert statement_outcomes(IDS, "pass", ledger=ledger) == dict.fromkeys(IDS, "pass")


def test_check_fails_only_its_statement(ledger):
    check("MQTT-3.3.4-1", True)

    def body():
        check("MQTT-2.3.1-6", False, "PUBACK has the wrong packet id")

    failure = _fail(body)
    assert str(failure) == "[MQTT-2.3.1-6] PUBACK has the wrong packet id"
    assert statement_outcomes(IDS, "fail", ledger=ledger, failure=failure, failure_text=str(failure)) == {
        "MQTT-3.3.4-1": "pass", "MQTT-2.3.1-6": "fail", "MQTT-4.3.2-2": "not-reached"}


def test_statement_block_charges_client_failures_to_its_statement(ledger):
    with statement("MQTT-3.3.4-1"):
        pass

    def body():
        with statement("MQTT-4.3.2-2"):
            raise NoPacketReceived("subscriber: nothing arrived within 3 s")

    failure = _fail(body)
    assert failure.statement == "MQTT-4.3.2-2"
    assert statement_outcomes(IDS, "fail", ledger=ledger, failure=failure, failure_text=str(failure)) == {
        "MQTT-3.3.4-1": "pass", "MQTT-2.3.1-6": "not-reached", "MQTT-4.3.2-2": "fail"}


def test_plain_assert_in_a_block_and_inner_check_wins(ledger):
    def plain():
        with statement("MQTT-2.3.1-6"):
            assert False, "wrong id"

    assert _fail(plain).statement == "MQTT-2.3.1-6"

    def nested():
        with statement("MQTT-3.3.4-1"):
            check("MQTT-4.3.2-2", False, "not resent")

    assert _fail(nested).statement == "MQTT-4.3.2-2"


def test_harness_errors_pass_through_untagged(ledger):
    def body():
        with statement("MQTT-3.3.4-1"):
            raise HarnessError("the broker did not start")

    failure = _fail(body)
    assert getattr(failure, "statement", None) is None
    assert statement_outcomes(IDS, "error", ledger=ledger, failure=failure) == dict.fromkeys(IDS, "error")


def test_unnamed_failure_counts_against_the_first_statement(ledger):
    failure = _fail(lambda: (_ for _ in ()).throw(NoPacketReceived("nothing arrived within 3 s")))
    assert statement_outcomes(IDS, "fail", ledger=ledger, failure=failure, failure_text=str(failure)) == {
        "MQTT-3.3.4-1": "fail", "MQTT-2.3.1-6": "not-reached", "MQTT-4.3.2-2": "not-reached"}


def test_message_quoting_a_tagged_id_names_it(ledger):
    failure = AssertionError("DISCONNECT before CONNACK [MQTT-4.3.2-2]")
    assert statement_outcomes(IDS, "fail", ledger=ledger, failure=failure, failure_text=str(failure))[
        "MQTT-4.3.2-2"] == "fail"


def test_known_deviation_marks_the_statements_it_breaks(ledger):
    check("MQTT-3.3.4-1", True)
    outcomes = statement_outcomes(IDS, "deviation", ledger=ledger, failure=None, failure_text="known deviation #19",
                                  deviation_statements=frozenset({"MQTT-4.3.2-2"}))
    assert outcomes == {"MQTT-3.3.4-1": "pass", "MQTT-2.3.1-6": "not-reached", "MQTT-4.3.2-2": "deviation"}


def test_not_applicable_and_error_apply_to_all(ledger):
    assert statement_outcomes(IDS, "not-applicable", ledger=ledger) == dict.fromkeys(IDS, "not-applicable")
