"""`python -m reports build`: merge results files into the report and say what it shows, per run and
MQTT version, on the terminal. `python -m reports run` (run.py) ends with the same step.

Exit codes: 0 the report was written; 1 it was written but `strict` found statement ids the catalogue does
not know; 2 nothing was written (a results file is missing or unreadable).
"""

from __future__ import annotations

import sys
from pathlib import Path

from .build import CELL_OUTCOMES, build_model, write_report
from .pcap_section import UpgradeTableError, load_upgrade_table, render_upgrade_section
from .results import ResultsError, load_runs

EXIT_OK, EXIT_STRICT, EXIT_BAD_INPUT = 0, 1, 2


def build_report(results: list[Path], output: Path, *, strict: bool = False, upgrade_table: Path | None = None) -> int:
    try:
        runs = load_runs(results)
    except ResultsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    model = build_model(runs)
    if upgrade_table is not None:  # the "Upgrade check" section (pcap_section.py)
        try:
            model["upgrade_section"] = render_upgrade_section(load_upgrade_table(upgrade_table))
        except UpgradeTableError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return EXIT_BAD_INPUT
    path = write_report(runs, output, model)
    for summary in model["summaries"]:
        counts = summary["counts"]
        if summary["unsupported"]:
            print(f"{summary['run'].label} MQTT {summary['version']}: not supported by the broker "
                  f"({summary['unsupported']})")
            continue
        print(f"{summary['run'].label} MQTT {summary['version']}: {summary['total']} statements: "
              + ", ".join(f"{counts[o]} {o}" for o in CELL_OUTCOMES if o != "unsupported")
              + " | tests: " + (", ".join(f"{n} {o}" for o, n in summary["tests"].items()) or "none"))
    for run in runs:
        if run.target_error:
            print(f"warning: {run.label}: the broker target could not be used: {run.target_error}", file=sys.stderr)
        if run.interop:
            print(f"{run.label}: {len(run.interop)} interop result(s)")
    for unknown in model["unknown"]:
        print(f"warning: unknown statement id {unknown.statement} (MQTT {unknown.version}) in {unknown.nodeid} "
              f"[{unknown.run}]: {unknown.message}", file=sys.stderr)
    print(f"report written: {path.resolve()}")
    if strict and model["unknown"]:
        print(f"error: --strict: {len(model['unknown'])} unknown statement id(s)", file=sys.stderr)
        return EXIT_STRICT
    return EXIT_OK

