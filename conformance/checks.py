"""Per-statement checks: which normative statement a failed expectation belongs to.

A test may be tagged with several statements; when it fails, only the statement whose check failed is
red. A test says which statement each expectation enforces with

    check("MQTT-3.3.1-1", publish.dup, f"the resent PUBLISH has DUP 0: {publish}")

which records a pass for the statement when the condition holds and raises `StatementFailure` (an
`AssertionError`, outcome *fail*) naming it when it does not. `fail_statement(id, message)` fails one
without a condition. A block of steps that all serve one statement (a flow whose packets the client's
`expect*` methods check) is wrapped in

    with statement("MQTT-4.3.3-2"):
        publisher.send(Pubrel(42))
        publisher.expect(Pubcomp)

so that whatever fails inside (a `ConformanceFailure` of the client, an `assert`, a reset connection)
belongs to that statement; the innermost block or `check` wins. The results file then carries, per
test, the outcome of each statement it names (`statement_outcomes`), computed by `statement_outcomes`
from the test's outcome, the checks that ran and the failure:

* the test passed: every statement passes;
* a failure names its statement -- in this order: a `check`, a known deviation (the statements the
  deviation breaks are "deviation"), a `statement` block, a message that quotes a tagged id in brackets
  such as "[MQTT-3.3.1-1]": that statement fails, the ones whose checks passed before pass, the rest have no
  verdict from this test ("not-reached");
* a failure that names none of the test's statements counts against the test's first statement: the
  one its first `spec` marker lists first, which by the suite's convention is the statement its flow
  serves (tests with several statements put every other expectation in a `check` or a `statement`
  block; tests/conformance_harness/test_attribution.py holds the suite to that);
* not-applicable and error apply to every statement of the test.

A statement the catalogue marks as not checkable black-box (no broker behaviour can make it fail) never
gets "pass" from a passing test: the plugin writes "not-checkable" for it instead (`NOT_CHECKABLE`).

The ledger of the running test lives here (`begin_test`/`end_test` are called by the plugin around
each test), so `check` works from tests and helpers alike without passing anything around.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import NoReturn

from .errors import ConformanceFailure, HarnessError

__all__ = [
    "NOT_CHECKABLE",
    "NOT_REACHED",
    "CheckLedger",
    "StatementFailure",
    "begin_test",
    "check",
    "current_ledger",
    "end_test",
    "fail_statement",
    "fail_statements",
    "failed_statement",
    "statement",
    "statement_outcomes",
    "statements_named_in",
]

#: a statement the test names but did not get to check (it stopped at an earlier failure)
NOT_REACHED = "not-reached"
#: a statement no black-box test can make fail (catalogue column `checkable`): a pass says nothing about it
NOT_CHECKABLE = "not-checkable"

_BRACKETED_ID = re.compile(r"\[((?:MQTT|PE|MP)-[0-9][0-9A-Za-z.\-]*[0-9a-z])\]")


class StatementFailure(ConformanceFailure):
    """A failed check of one statement; `statement` is its id as the test wrote it, `others` the ids of
    further statements the same observation broke (`fail_statements`)."""

    def __init__(self, statement: str, message: str, others: tuple[str, ...] = ()):
        super().__init__(f"[{statement}] {message}")
        self.statement = statement
        self.others = others


@dataclass
class CheckLedger:
    """The checks one test ran: statement id -> "pass" or "fail", in the order they first ran."""

    results: dict[str, str] = field(default_factory=dict)

    def record(self, statement: str, passed: bool) -> None:
        if not passed:
            self.results[statement] = "fail"
        else:
            self.results.setdefault(statement, "pass")


_current: dict[str, CheckLedger | None] = {"ledger": None}


def begin_test() -> CheckLedger:
    ledger = CheckLedger()
    _current["ledger"] = ledger
    return ledger


def end_test() -> None:
    _current["ledger"] = None


def current_ledger() -> CheckLedger | None:
    return _current["ledger"]


def check(statement: str, condition: object, message: str = "") -> None:
    """Record a check of `statement`: passes when `condition` is true, else fails the test (and the
    statement) with `message`."""
    ledger = _current["ledger"]
    if ledger is not None:
        ledger.record(statement, bool(condition))
    if not condition:
        raise StatementFailure(statement, message or "check failed")


def fail_statement(statement: str, message: str) -> NoReturn:
    """Fail the test, and `statement` only, with `message`."""
    check(statement, False, message)
    raise AssertionError("unreachable")  # pragma: no cover - check raised


@contextmanager
def statement(statement_id: str) -> Iterator[None]:
    """Every failed expectation inside the block belongs to `statement_id` (unless a `check` or an inner
    block inside names another); a block that ends normally records a pass for it.

    What counts as the broker's failure is what classify.py counts: an AssertionError (the client's
    ConformanceFailure, an `assert`), bytes the codec refuses, a reset connection. A HarnessError, a
    not-applicable skip and a known deviation's xfail pass through untouched.
    """
    try:
        yield
    except HarnessError:
        raise
    except Exception as exc:
        if getattr(exc, "statement", None) is None:
            try:
                exc.statement = statement_id  # type: ignore[attr-defined]
            except AttributeError:  # an exception type without a __dict__: say nothing rather than guess
                pass
        ledger = _current["ledger"]
        if ledger is not None and getattr(exc, "statement", None) == statement_id:
            ledger.record(statement_id, False)
        raise
    else:
        ledger = _current["ledger"]
        if ledger is not None:
            ledger.record(statement_id, True)


def failed_statement(failure: BaseException | None) -> str | None:
    """The statement a failure was charged to by `check`, `fail_statement` or a `statement` block."""
    if failure is None:
        return None
    if isinstance(failure, BaseExceptionGroup):
        for inner in failure.exceptions:
            found = failed_statement(inner)
            if found is not None:
                return found
        return None
    found = getattr(failure, "statement", None)
    return found if isinstance(found, str) else None


def fail_statements(problems: list[tuple[str, str]]) -> None:
    """Fail every statement of `problems` [(statement id, what was wrong)] at once (a test that compares a
    whole observation with a model finds several at a time); nothing happens when the list is empty."""
    if not problems:
        return
    ledger = _current["ledger"]
    named = list(dict.fromkeys(statement_id for statement_id, _ in problems))
    if ledger is not None:
        for statement_id in named:
            ledger.record(statement_id, False)
    text = "; ".join(f"{what} [{statement_id}]" for statement_id, what in problems)
    raise StatementFailure(named[0], text, tuple(named[1:]))


def statements_named_in(text: str) -> list[str]:
    """Statement ids quoted in brackets in a failure message, in order."""
    return list(dict.fromkeys(_BRACKETED_ID.findall(text or "")))


def _same(a: str, b: str, normalise) -> bool:
    if a == b:
        return True
    try:
        return normalise(a) == normalise(b)
    except KeyError:
        return False


def statement_outcomes(statements: list[str], outcome: str, *, ledger: CheckLedger | None = None,
                       failure: BaseException | None = None, failure_text: str = "",
                       deviation_statements: frozenset[str] = frozenset(),
                       normalise=lambda statement: statement) -> dict[str, str]:
    """The outcome of each of `statements` (catalogue ids) for one test; see the module docstring.

    `normalise` maps an id as a test or message writes it to its catalogue spelling (for one version).
    """
    if not statements:
        return {}
    if outcome in ("pass", "not-applicable", "error"):
        return dict.fromkeys(statements, outcome)
    checked = ledger.results if ledger is not None else {}
    result = dict.fromkeys(statements, NOT_REACHED)
    for statement in statements:
        for written, verdict in checked.items():
            if verdict == "pass" and _same(written, statement, normalise):
                result[statement] = "pass"
    failed: list[str] = []
    charged = failed_statement(failure)
    if isinstance(failure, StatementFailure) and charged is not None:  # a failed `check`: the most precise
        named = (charged, *getattr(failure, "others", ()))
        failed = [s for s in statements if any(_same(n, s, normalise) for n in named)]
    if not failed and deviation_statements:
        failed = [s for s in statements if s in deviation_statements]
    if not failed and charged is not None:  # a `statement` block
        failed = [s for s in statements if _same(charged, s, normalise)]
    if not failed:
        named = statements_named_in(failure_text)
        failed = [s for s in statements if any(_same(n, s, normalise) for n in named)]
    if not failed:  # named nothing the test is tagged with: its first (principal) statement
        failed = [statements[0]]
    verdict = "deviation" if outcome == "deviation" else "fail"
    for statement in failed:
        result[statement] = verdict
    return result
