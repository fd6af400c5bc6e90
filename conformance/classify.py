"""The one mapping from what happened in a test to its outcome, used for every phase of every test.

    pass            the test ran to its end
    fail            the broker did something the spec does not allow: an AssertionError (ConformanceFailure,
                    a plain assert), bytes from the broker that do not decode (InvalidServerPacket, or a
                    codec error raised while decoding), the broker resetting a connection a test reads
                    from a bare socket -- in the test, in a fixture's setup or in its teardown alike
    deviation       a failure that is a known deviation of this target (pytest xfail "known deviation #N")
    not-applicable  the broker lacks what the test needs (pytest skip "not applicable: ...")
    error           the harness could not do its job (HarnessError, a bug in a test, a skip without a
                    not-applicable reason)

`pytest_report_teststatus` in the plugin gives pytest the same categories, so pytest's closing line
("3 failed, 2 error, 4 not applicable, 1 known deviation") and the results file agree.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .errors import ConformanceFailure, HarnessError
from .outcomes import NOT_APPLICABLE_PREFIX, DeviationObserved, parse_known_deviation

__all__ = ["PYTEST_STATUS", "classify_exception", "classify_report", "describe_exception", "leaves"]

#: outcome -> (pytest category, short letter, verbose word) for pytest's reporting
PYTEST_STATUS = {
    "pass": ("passed", ".", "PASSED"),
    "fail": ("failed", "F", "FAILED"),
    "deviation": ("known deviation", "x", "KNOWN DEVIATION"),
    "not-applicable": ("not applicable", "n", "NOT APPLICABLE"),
    "error": ("error", "E", "ERROR"),
}

_RESETS = (ConnectionResetError, BrokenPipeError, ConnectionAbortedError)


def leaves(error: BaseException) -> Iterator[BaseException]:
    if isinstance(error, BaseExceptionGroup):
        for inner in error.exceptions:
            yield from leaves(inner)
    else:
        yield error


def _raised_while_decoding(error: BaseException) -> bool:
    """Was `error` (a codec error) raised inside a decode function, i.e. by bytes the broker sent?"""
    tb = error.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code.co_name.startswith("decode"):
            return True
        tb = tb.tb_next
    return False


def classify_exception(error: BaseException) -> str:
    """"fail" or "error" for an exception that ended a test (any phase)."""
    from refbroker.protocol import MQTTError

    verdicts = set()
    for leaf in leaves(error):
        if isinstance(leaf, HarnessError):
            verdicts.add("error")
        elif isinstance(leaf, (AssertionError, pytest.fail.Exception, *_RESETS)) or isinstance(leaf, MQTTError) and _raised_while_decoding(leaf):
            verdicts.add("fail")
        else:
            verdicts.add("error")
    return "error" if "error" in verdicts or not verdicts else "fail"


def describe_exception(error: BaseException) -> str | None:
    """A sentence for exceptions whose own text does not say what the broker did, else None."""
    for leaf in leaves(error):
        if isinstance(leaf, _RESETS):
            return f"the broker reset or closed the connection while the test used it ({type(leaf).__name__})"
    return None


def classify_report(report: pytest.TestReport, excinfo: pytest.ExceptionInfo | None) -> tuple[str, str]:
    """(outcome, reason) for one phase's report; ("pass", "") for a passed phase."""
    if report.passed:
        return "pass", ""
    if report.skipped:
        wasxfail = getattr(report, "wasxfail", None)
        if wasxfail is not None:
            reason = wasxfail.removeprefix("reason: ")
            return ("deviation" if parse_known_deviation(wasxfail) is not None else "fail"), reason
        reason = _skip_reason(report)
        if reason.startswith(NOT_APPLICABLE_PREFIX):
            return "not-applicable", reason[len(NOT_APPLICABLE_PREFIX):]
        return "error", f"skipped without a not-applicable reason: {reason}"
    if excinfo is None:
        return "error", str(report.longrepr)[:4000]
    return classify_exception(excinfo.value), _failure_text(excinfo, report)


def _skip_reason(report: pytest.TestReport) -> str:
    longrepr = report.longrepr
    text = str(longrepr[2]) if isinstance(longrepr, tuple) and len(longrepr) == 3 else str(longrepr)
    return text.removeprefix("Skipped: ")


def _failure_text(excinfo: pytest.ExceptionInfo, report: pytest.TestReport) -> str:
    import os

    error = excinfo.value
    if isinstance(error, ConformanceFailure):
        # A known deviation's behaviour on a broker not known to have it is a plain failure there (its
        # text says which deviation it resembles): not labelled with the class that carries the number
        label = ConformanceFailure.__name__ if isinstance(error, DeviationObserved) else type(error).__name__
        text = f"{label}: {error}"
    else:
        text = excinfo.exconly()
    described = describe_exception(excinfo.value)
    if described:
        text = f"{described}: {text}"
    crash = getattr(report.longrepr, "reprcrash", None)
    if crash is not None:
        text += f" ({os.path.basename(crash.path)}:{crash.lineno})"
    return text[:4000]
