"""Command line: `python -m reports build RESULTS.json... -o reports/html/`.

Exit codes: 0 the report was written; 1 it was written but --strict found statement ids the catalogue
does not know; 2 nothing was written (a results file is missing or unreadable, or bad arguments).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .build import PRECEDENCE, build_model, write_report
from .results import ResultsError, load_runs

EXIT_OK, EXIT_STRICT, EXIT_BAD_INPUT = 0, 1, 2


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m reports",
                                     description="Build the HTML compliance report from conformance results.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    build = commands.add_parser("build", help="merge results files into one self-contained HTML report",
                                description="Merges any number of results files (one per broker run, written by "
                                            "the conformance suite's --results option, and interop results) into "
                                            "ONE static HTML file that works offline.")
    build.add_argument("results", nargs="+", type=Path, help="results JSON files")
    build.add_argument("-o", "--output", type=Path, default=Path("reports/html"),
                       help="output directory (default: reports/html); the report is index.html inside it")
    build.add_argument("--strict", action="store_true",
                       help="exit 1 when a results file names statement ids the catalogue does not know")
    args = parser.parse_args(argv)
    try:
        runs = load_runs(args.results)
    except ResultsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    model = build_model(runs)
    path = write_report(runs, args.output, model)
    for summary in model["summaries"]:
        counts = summary["counts"]
        print(f"{summary['run'].label} MQTT {summary['version']}: {summary['total']} statements: "
              + ", ".join(f"{counts[o]} {o}" for o in (*PRECEDENCE, "untested"))
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
    if args.strict and model["unknown"]:
        print(f"error: --strict: {len(model['unknown'])} unknown statement id(s)", file=sys.stderr)
        return EXIT_STRICT
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
