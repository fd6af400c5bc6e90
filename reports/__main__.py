"""Command line: `python -m reports build RESULTS.json... -o reports/html/`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .build import write_report
from .results import ResultsError, load_run


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m reports",
                                     description="Build the HTML compliance report from conformance results.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    build = commands.add_parser("build", help="merge results files into one self-contained HTML report",
                                description="Merges any number of results files (one per broker run, written by "
                                            "the conformance suite's --results option) into ONE static HTML file "
                                            "that works offline.")
    build.add_argument("results", nargs="+", type=Path, help="results JSON files")
    build.add_argument("-o", "--output", type=Path, default=Path("reports/html"),
                       help="output directory (default: reports/html); the report is index.html inside it")
    args = parser.parse_args(argv)
    try:
        runs = [load_run(path) for path in args.results]
    except ResultsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    path = write_report(runs, args.output)
    for run in runs:
        counts = {o: sum(1 for t in run.tests if t.outcome == o) for o in ("pass", "fail", "deviation",
                                                                          "not-applicable", "error")}
        print(f"{run.label}: " + ", ".join(f"{n} {o}" for o, n in counts.items()) + " (tests)")
    print(f"report written: {path.resolve()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
