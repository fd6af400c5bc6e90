"""Command line of the conformance package: `python -m conformance coverage [--version V] [--missing]`.

Running the suite itself is pytest's job: `pytest --pyargs conformance --broker=TARGET`.
"""

from __future__ import annotations

import argparse
import json
import sys

from . import coverage


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m conformance",
        description="MQTT conformance suite tools. Run the suite with: pytest --pyargs conformance --broker=TARGET",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    cover = commands.add_parser(
        "coverage", help="which server-side normative statements have a test, per version and packet",
        description="Reads the @pytest.mark.spec tags of the suite (without running it) and sets them against "
                    "the statement catalogue: tested, not checkable black-box (with the catalogue's reason), "
                    "untested.")
    cover.add_argument("--version", choices=["3.1.1", "5.0", "all"], default="all", help="protocol version")
    cover.add_argument("--missing", action="store_true", help="list the untested statements")
    cover.add_argument("--json", action="store_true", help="print machine-readable JSON instead of tables")
    args = parser.parse_args(argv)

    versions = ["3.1.1", "5.0"] if args.version == "all" else [args.version]
    if not coverage.TESTS_DIR.is_dir():
        print(f"error: no test modules found in {coverage.TESTS_DIR}", file=sys.stderr)
        return 1
    result = coverage.compute(coverage.scan_tags(), versions)
    if args.json:
        print(json.dumps({v: {"statements": len(c.statements), "tested": sorted(c.tested),
                              "not_checkable": [s.id for s in c.not_checkable],
                              "untested": [s.id for s in c.untested],
                              "unknown_ids": c.unknown_ids} for v, c in result.items()}, indent=2))
    else:
        print("\n\n".join(coverage.format_report(c, args.missing) for c in result.values()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
