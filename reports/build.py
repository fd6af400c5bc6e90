"""Turn any number of conformance runs into one self-contained HTML compliance report.

The report is a single file (inline CSS and JavaScript, no CDN) that works offline from file://.
For every protocol version it shows a statement x broker matrix built from the catalogue's server-side
statements: a statement's cell is the combined outcome of the tests that name it in that run.
"""

from __future__ import annotations

import html
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timezone
from importlib import resources
from pathlib import Path

import jinja2

from conformance.catalogue import Statement, load_catalogue, normalise_id

from .results import Run, TestResult

# When several tests name one statement, the worst outcome decides the cell.
_PRECEDENCE = ("fail", "error", "deviation", "pass", "not-applicable")
CELL_LABELS = {"pass": "pass", "fail": "FAIL", "deviation": "known deviation", "not-applicable": "n/a",
               "error": "error", "untested": "untested"}


def combine(outcomes: list[str]) -> str:
    for outcome in _PRECEDENCE:
        if outcome in outcomes:
            return outcome
    return "untested"


@dataclass
class Cell:
    outcome: str
    tests: list[tuple[str, TestResult]] = field(default_factory=list)  # (anchor, test)


@dataclass
class Row:
    statement: Statement
    cells: list[Cell]

    @property
    def outcomes(self) -> list[str]:
        return [cell.outcome for cell in self.cells]


def _test_anchor(run_index: int, test_index: int) -> str:
    return f"t{run_index}-{test_index}"


def build_model(runs: list[Run]) -> dict:
    catalogue = load_catalogue()
    versions = [v for v in ("3.1.1", "5.0") if any(v in run.mqtt_versions or any(t.version == v for t in run.tests)
                                                    for run in runs)]
    # (run index, version, statement id) -> [(anchor, test)]
    tests_of: dict[tuple[int, str, str], list[tuple[str, TestResult]]] = defaultdict(list)
    unknown: list[tuple[str, str, str]] = []
    for run_index, run in enumerate(runs):
        for test_index, test in enumerate(run.tests):
            for statement_id in test.statements:
                try:
                    key = normalise_id(test.version, statement_id)
                except KeyError:
                    unknown.append((run.label, test.nodeid, statement_id))
                    continue
                tests_of[(run_index, test.version, key)].append((_test_anchor(run_index, test_index), test))

    matrices = []
    summaries = []
    for version in versions:
        columns = [i for i, run in enumerate(runs) if version in run.mqtt_versions
                   or any(t.version == version for t in run.tests)]
        groups: dict[str, list[Row]] = defaultdict(list)
        tested_ids = {key[2] for key in tests_of if key[1] == version and key[0] in columns}
        for (statement_version, _), statement in catalogue.items():
            if statement_version != version:
                continue
            if statement.actor not in ("server", "both") and statement.id not in tested_ids:
                continue  # client obligations appear only when a test checks the server's reaction
            cells = []
            for run_index in columns:
                tests = tests_of.get((run_index, version, statement.id), [])
                cells.append(Cell(combine([t.outcome for _, t in tests]), tests))
            groups[statement.packet].append(Row(statement, cells))
        matrices.append({"version": version, "columns": [runs[i] for i in columns],
                         "groups": sorted(groups.items())})
        for position, run_index in enumerate(columns):
            counts = Counter(row.cells[position].outcome for rows in groups.values() for row in rows)
            test_counts = Counter(t.outcome for t in runs[run_index].tests if t.version == version)
            summaries.append({"run": runs[run_index], "version": version, "counts": counts,
                              "total": sum(counts.values()), "tests": test_counts})
    return {"runs": runs, "matrices": matrices, "summaries": summaries, "unknown": unknown,
            "outcomes": ("pass", "fail", "deviation", "error", "not-applicable", "untested"),
            "labels": CELL_LABELS, "anchor": _test_anchor,
            "generated": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")}


def render(runs: list[Run]) -> str:
    environment = jinja2.Environment(
        loader=jinja2.FunctionLoader(lambda name: resources.files("reports").joinpath("templates", name)
                                     .read_text(encoding="utf-8")),
        autoescape=True, trim_blocks=True, lstrip_blocks=True, undefined=jinja2.StrictUndefined)
    environment.filters["hexdump"] = lambda text: " ".join(text[i:i + 2] for i in range(0, len(text or ""), 2))
    environment.globals["escape"] = html.escape
    return environment.get_template("report.html.j2").render(**build_model(runs))


def write_report(runs: list[Run], output_dir: Path) -> Path:
    output_dir.mkdir(parents=True, exist_ok=True)
    path = output_dir / "index.html"
    path.write_text(render(runs), encoding="utf-8")
    return path
