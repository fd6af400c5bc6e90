"""Turn any number of conformance runs into one self-contained HTML compliance report.

The report is a single file (inline CSS and JavaScript, no CDN) that works offline from file://.
For every protocol version it shows a statement x broker matrix built from the catalogue's server-side
statements: a statement's cell is the combined outcome of the tests that name it in that run (the worst
one decides, see `combine`). Below the matrix: the known deviations of real brokers
(conformance/deviations.py) with the runs that showed them, the interop table when interop results are
given, and every test with its statement summaries, outcome, reason and packet trace.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path

import jinja2

from conformance.catalogue import Statement, load_catalogue, normalise_id
from conformance.deviations import DEVIATIONS

from .results import Run, TestResult

#: When several tests name one statement, the first outcome of this list that occurs decides the cell:
#: a new failure outweighs a harness error, which outweighs a known deviation, which outweighs a pass.
PRECEDENCE = ("fail", "error", "deviation", "pass", "not-applicable")
#: Besides the combined test outcomes a cell can say: "not-checkable" (the catalogue says no black-box test
#: can make the statement fail: never shown as pass, whatever tests name it, unless one fails), "untested"
#: (checkable, but no test of the run names it) and "unsupported" (the broker does not speak that MQTT
#: version: the results file's `unsupported_versions`) and "not-selected" (the run chose a subset of the
#: tests, -k / --statement / --section, and none of the chosen ones checks the statement).
CELL_OUTCOMES = (*PRECEDENCE, "not-checkable", "untested", "unsupported", "not-selected")
CELL_LABELS = {"pass": "pass", "fail": "FAIL", "deviation": "known deviation", "not-applicable": "n/a",
               "error": "error", "not-checkable": "not checkable", "untested": "untested",
               "unsupported": "not supported", "not-selected": "not selected"}
#: MQTT versions in the order the report shows them
VERSION_ORDER = ("3.1", "3.1.1", "5.0")
_V5_ONLY_NAMES = (("clean_start=", "clean_session="), ("reason_codes=", "return_codes="),
                  ("reason_code=", "return_code="))


def combine(outcomes: list[str]) -> str:
    """The outcome of a statement in one run from the outcomes of the tests that check it."""
    for outcome in PRECEDENCE:
        if outcome in outcomes:
            return outcome
    return "untested"


def cell_outcome(statement: Statement, outcomes: list[str], unsupported: bool = False,
                 selected: bool = True) -> str:
    """What a matrix cell shows: the combined outcome, except that a broker without the version shows
    "unsupported", a statement the run's selection left out "not-selected", and a statement no black-box
    test can check is never shown as passing or untested."""
    if unsupported:
        return "unsupported"
    combined = combine(outcomes)
    if combined == "untested" and not selected:
        return "not-selected"
    if not statement.checkable and combined in ("pass", "untested"):
        return "not-checkable"
    return combined


def _selected(run, version: str, statement_id: str) -> bool:
    chosen = run.selected_statements
    return chosen is None or (version, statement_id) in chosen


def trace_summary(summary: str, packet_type: str, version: str) -> str:
    """A trace line in the field names of its MQTT version: 3.1 and 3.1.1 say Clean Session and return
    codes (the suite's client writes 5.0's names for every version in older results files); a 3.1.1
    DISCONNECT has no reason code at all."""
    if version == "5.0" or not summary:
        return summary
    if packet_type == "DISCONNECT":
        return summary.replace("(reason_code=0x00)", "()")
    for v5_name, v3_name in _V5_ONLY_NAMES:
        summary = summary.replace(v5_name, v3_name)
    return summary


@dataclass
class Cell:
    outcome: str
    tests: list[tuple[str, TestResult]] = field(default_factory=list)  # (anchor, test)
    #: anchors of tests linked here that do not count for this statement (see `counts_for`)
    ignored: set[str] = field(default_factory=set)
    #: the statement of the cell (catalogue id): a test's verdict on it is `test.outcome_for(statement)`
    statement: str = ""

    @property
    def deviations(self) -> list[int]:
        numbers = []
        for anchor, test in self.tests:
            if test.outcome == "deviation" and test.deviation_number is not None and anchor not in self.ignored \
                    and test.deviation_number not in numbers:
                numbers.append(test.deviation_number)
        return numbers

    @property
    def deciding(self) -> tuple[str, TestResult] | None:
        """The test whose outcome the cell shows (the first one with the cell's outcome)."""
        for anchor, test in self.tests:
            if test.outcome_for(self.statement) == self.outcome and anchor not in self.ignored:
                return anchor, test
        return self.tests[0] if self.tests else None


def counts_for(test: TestResult, statement_id: str) -> bool:
    """Does the test's outcome count for this statement?

    A known deviation names the statements it breaks. A test that checks several statements and ends in
    a known deviation says nothing about its other statements (it stopped at the deviation), so for
    those it is linked but not counted, unless no other test decides the statement. Every other outcome
    counts for every statement the test names. A results file with per-statement verdicts decides itself:
    a statement the test did not reach does not count.
    """
    if test.statement_outcomes:
        return test.outcome_for(statement_id) is not None
    if test.outcome != "deviation" or test.deviation_number not in DEVIATIONS:
        return True
    broken = {sid for version, sid in DEVIATIONS[test.deviation_number].statements if version == test.version}
    named = set()
    for sid in test.statements:
        try:
            named.add(normalise_id(test.version, sid))
        except KeyError:
            pass
    if not broken & named:  # the deviation's statements are not among the test's: count it everywhere
        return True
    return statement_id in broken


@dataclass
class Row:
    statement: Statement
    cells: list[Cell]

    @property
    def outcomes(self) -> list[str]:
        return [cell.outcome for cell in self.cells]

    @property
    def test_names(self) -> list[str]:
        names: list[str] = []
        for cell in self.cells:
            for _, test in cell.tests:
                if test.name not in names:
                    names.append(test.name)
        return names


@dataclass
class UnknownStatement:
    run: str
    version: str
    nodeid: str
    statement: str
    message: str


def anchor_for(run_index: int, test_index: int) -> str:
    return f"t{run_index}-{test_index}"


def deviation_text(number: int | None, fallback: str | None = None) -> str:
    """"known deviation #102 (reference): title" for a cell's title and the test details."""
    deviation = DEVIATIONS.get(number) if number is not None else None
    if deviation is None:
        return f"known deviation {fallback or ('#' + str(number) if number is not None else '')}".strip()
    return f"known deviation #{number} ({deviation.reference}): {deviation.title}"


def reason_text(test: TestResult) -> str:
    """The test's reason; for a numbered known deviation without the deviation's own text, which the
    report shows beside it ("known deviation #N (reference): title. Observed: X" -> "Observed: X")."""
    reason = test.reason
    if test.outcome == "deviation" and test.deviation_number is not None \
            and reason.startswith(f"known deviation #{test.deviation_number}") and ". Observed: " in reason:
        return "Observed: " + reason.split(". Observed: ", 1)[1]
    return reason


def ordered_tests(run: Run) -> list[tuple[int, TestResult]]:
    """(index, test) pairs, the worst outcomes first, otherwise in the order the suite ran them."""
    rank = {outcome: i for i, outcome in enumerate(PRECEDENCE)}
    return sorted(enumerate(run.tests), key=lambda item: (rank.get(item[1].outcome, 0) >= rank["pass"],
                                                          item[0]))


def outcome_counts(run: Run) -> dict[str, int]:
    counts = Counter(t.outcome for t in run.tests)
    return {o: counts[o] for o in PRECEDENCE if counts[o]}


def _versions(runs: list[Run]) -> list[str]:
    seen = {v for run in runs for v in run.mqtt_versions} | {t.version for run in runs for t in run.tests}
    return [v for v in VERSION_ORDER if v in seen]


def _columns(runs: list[Run], version: str) -> list[int]:
    return [i for i, run in enumerate(runs)
            if (run.tests and (version in run.mqtt_versions or any(t.version == version for t in run.tests)))
            or version in run.unsupported_versions]


def build_model(runs: list[Run]) -> dict:
    catalogue = load_catalogue()
    versions = _versions(runs)
    # (run index, version, statement id) -> [(anchor, test)]
    tests_of: dict[tuple[int, str, str], list[tuple[str, TestResult]]] = defaultdict(list)
    unknown: list[UnknownStatement] = []
    summaries_of_test: dict[str, list[Statement | None]] = {}
    for run_index, run in enumerate(runs):
        for test_index, test in enumerate(run.tests):
            anchor = anchor_for(run_index, test_index)
            described: list[Statement | None] = []
            for statement_id in test.statements:
                try:
                    key = normalise_id(test.version, statement_id)
                except KeyError as exc:
                    unknown.append(UnknownStatement(run.label, test.version, test.nodeid, statement_id,
                                                    str(exc.args[0] if exc.args else exc)))
                    described.append(None)
                    continue
                tests_of[(run_index, test.version, key)].append((anchor, test))
                described.append(catalogue.get((test.version, key)))
            summaries_of_test[anchor] = described

    matrices = []
    summaries = []
    for version in versions:
        columns = _columns(runs, version)
        if not columns:
            continue
        groups: dict[str, list[Row]] = {}
        tested_ids = {key[2] for key in tests_of if key[1] == version and key[0] in columns}
        for (statement_version, _), statement in catalogue.items():
            if statement_version != version:
                continue
            if statement.actor not in ("server", "both") and statement.id not in tested_ids:
                continue  # client obligations appear only when a test checks the server's reaction
            cells = []
            for run_index in columns:
                tests = tests_of.get((run_index, version, statement.id), [])
                ignored = {anchor for anchor, t in tests if not counts_for(t, statement.id)}
                if ignored == {anchor for anchor, _ in tests}:
                    ignored = set()  # only such tests: the deviation stands for this statement too
                outcome = cell_outcome(statement, [t.outcome_for(statement.id) or "untested" for a, t in tests
                                                   if a not in ignored],
                                       version in runs[run_index].unsupported_versions,
                                       _selected(runs[run_index], version, statement.id))
                cells.append(Cell(outcome, tests, ignored, statement.id))
            groups.setdefault(statement.packet or "other", []).append(Row(statement, cells))
        # Groups in the order of the spec: by the first section number of their statements.
        ordered = sorted(groups.items(), key=lambda item: min(_section_key(r.statement.section) for r in item[1]))
        matrices.append({"version": version, "columns": [runs[i] for i in columns], "groups": ordered,
                         "rows": sum(len(rows) for rows in groups.values())})
        for position, run_index in enumerate(columns):
            counts = Counter(row.cells[position].outcome for rows in groups.values() for row in rows)
            tests_run = Counter(t.outcome for t in runs[run_index].tests if t.version == version)
            summaries.append({"run": runs[run_index], "version": version, "counts": counts,
                              "total": sum(counts.values()),
                              "unsupported": runs[run_index].unsupported_versions.get(version),
                              "tests": {o: tests_run[o] for o in PRECEDENCE if tests_run[o]}})

    observed: dict[int, list[tuple[str, int]]] = {}
    for number in sorted(DEVIATIONS):
        seen = []
        for run in runs:
            n = sum(1 for t in run.tests if t.outcome == "deviation" and t.deviation_number == number)
            if n:
                seen.append((run.label, n))
        observed[number] = seen
    unnumbered = sorted({t.known_deviation for run in runs for t in run.tests
                         if t.outcome == "deviation" and t.deviation_number not in DEVIATIONS and t.known_deviation})

    return {"runs": runs, "matrices": matrices, "summaries": summaries, "unknown": unknown,
            "outcomes": CELL_OUTCOMES, "labels": CELL_LABELS, "anchor": anchor_for,
            "statements_of": summaries_of_test, "deviations": [DEVIATIONS[n] for n in sorted(DEVIATIONS)],
            "observed": observed, "unnumbered_deviations": unnumbered, "deviation_text": deviation_text,
            "reason_text": reason_text, "deviation_of": DEVIATIONS.get, "ordered_tests": ordered_tests,
            "outcome_counts": outcome_counts, "trace_summary": trace_summary,
            "interop": interop_model(runs), "diff_runs": [run for run in runs if run.tests],
            "generated": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")}


def _section_key(section: str) -> tuple:
    parts = []
    for part in str(section).replace("-", ".").split("."):
        parts.append((0, int(part), "") if part.isdigit() else (1, 0, part))
    return tuple(parts)


def interop_model(runs: list[Run]) -> dict | None:
    """The client x broker x scenario table: rows (scenario, client), one column per broker."""
    records = [record for run in runs for record in run.interop]
    if not records:
        return None
    brokers: list[str] = []
    for record in records:
        if record.broker not in brokers:
            brokers.append(record.broker)
    rows: dict[tuple[str, str], dict[str, list]] = {}
    for record in records:
        rows.setdefault((record.scenario, record.client), {}).setdefault(record.broker, []).append(record)
    table, details = [], []
    for (scenario, client), by_broker in sorted(rows.items()):
        cells = []
        for broker in brokers:
            found = by_broker.get(broker, [])
            outcome = combine([r.outcome for r in found])
            reason = "; ".join(r.reason for r in found if r.reason)
            anchor = None
            for record in found:
                if record.outcome in ("fail", "error"):  # drill-down: reason, attribution, packet trace
                    anchor = anchor or f"interop-{len(details)}"
                    details.append({"anchor": f"interop-{len(details)}", "record": record})
            cells.append({"outcome": outcome, "reason": reason, "broker": broker, "anchor": anchor})
        table.append({"scenario": scenario, "client": client, "cells": cells})
    counts = Counter(record.outcome for record in records)
    clients = sorted({record.client for record in records})
    per_pair = {(c, b): Counter() for c in clients for b in brokers}
    for record in records:
        per_pair[(record.client, record.broker)][record.outcome] += 1
    return {"brokers": brokers, "rows": table, "counts": counts, "total": len(records), "details": details,
            "clients": clients, "per_pair": per_pair}


def _environment() -> jinja2.Environment:
    environment = jinja2.Environment(
        loader=jinja2.FunctionLoader(lambda name: resources.files("reports").joinpath("templates", name)
                                     .read_text(encoding="utf-8")),
        autoescape=True, trim_blocks=True, lstrip_blocks=True, undefined=jinja2.StrictUndefined)
    return environment


def render(runs: list[Run], model: dict | None = None) -> str:
    return _environment().get_template("report.html.j2").render(**(model or build_model(runs)))


def write_report(runs: list[Run], output_dir: Path, model: dict | None = None) -> Path:
    """Write output_dir/index.html (created atomically) and return its path."""
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    path = output_dir / "index.html"
    tmp = path.with_suffix(".html.tmp")
    tmp.write_text(render(runs, model), encoding="utf-8")
    tmp.replace(path)
    return path


__all__ = ["CELL_LABELS", "PRECEDENCE", "Cell", "Row", "anchor_for", "build_model", "cell_outcome", "combine",
           "counts_for", "trace_summary",
           "ordered_tests", "outcome_counts", "reason_text", "render", "write_report"]
