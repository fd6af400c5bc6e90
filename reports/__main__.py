"""Command line of the report builder (`python -m reports --help`).

    python -m reports build RESULTS.json... -o reports/html/
    python -m reports run [--broker TARGET] [--allow-failures] ...   (suite + report + CI exit status: run.py)

Exit codes of `build`: 0 the report was written; 1 it was written but --strict found statement ids the
catalogue does not know; 2 nothing was written (a results file is missing or unreadable, or bad arguments).
"""

from __future__ import annotations

import sys
from pathlib import Path

from refbroker.cli_hints import SuggestingArgumentParser

from .build_command import build_report


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["run"]:
        from .run import main as run_main

        return run_main(argv[1:])
    parser = SuggestingArgumentParser(
        prog="python -m reports",
        description="Build the HTML compliance report from conformance results, or run the suite and build it.",
        epilog="examples:\n  python -m reports run --broker 127.0.0.1:1883 --section 3.8\n"
               "  python -m reports build results/*.json -o reports/html")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    commands.add_parser("run", add_help=False,
                        help="run the suite against one broker, write results/<target>.json and the report; exit 1 "
                             "when a failure is not a known deviation (python -m reports run --help)")
    build = commands.add_parser("build", help="merge results files into one self-contained HTML report",
                                description="Merges any number of results files (one per broker run, written by "
                                            "the conformance suite's --results option, and interop results) into "
                                            "ONE static HTML file that works offline.")
    build.add_argument("results", nargs="+", type=Path, help="results JSON files")
    build.add_argument("-o", "--output", type=Path, default=Path("reports/html"),
                       help="output directory (default: reports/html); the report is index.html inside it")
    build.add_argument("--upgrade-table", type=Path, metavar="FILE",
                       help="add the upgrade-check section (JSON from: python -m pcap corpus upgrade-table)")
    build.add_argument("--strict", action="store_true",
                       help="exit 1 when a results file names statement ids the catalogue does not know")
    args = parser.parse_args(argv)
    return build_report(args.results, args.output, strict=args.strict, upgrade_table=args.upgrade_table)


if __name__ == "__main__":
    sys.exit(main())
