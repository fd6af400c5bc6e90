"""Command line of the conformance package (`python -m conformance --help`).

    python -m conformance coverage [--version V] [--missing] [--json]
    python -m conformance list [--version V] [--statement GLOB]... [--section N]... [--json]
    python -m conformance compare RESULTS.json RESULTS.json...

`coverage` and `list` read the suite's `@pytest.mark.spec` tags without running anything; `compare` reads
results files of identical runs and lists the verdicts that differ (exit status 1 if any does). Running the suite itself is
pytest's job: `pytest --pyargs conformance --broker=TARGET [--statement GLOB] [--section N]`.
"""

from __future__ import annotations

import json
import sys

from refbroker.cli_hints import SuggestingArgumentParser

from . import compare, coverage
from .catalogue import VERSIONS, load_catalogue
from .selection import Selection

EPILOG = """examples:
  python -m conformance coverage --version 5.0 --missing
  python -m conformance list --statement 'MQTT-3.3.1-*'
  python -m conformance list --section 3.8 --version 3.1.1
  python -m conformance compare results/run-1.json results/run-2.json results/run-3.json
run the suite: pytest --pyargs conformance --broker=TARGET [--mqtt-version V] [--statement GLOB] [--section N]"""


def _parser() -> SuggestingArgumentParser:
    parser = SuggestingArgumentParser(
        prog="python -m conformance",
        description="Tools of the MQTT conformance suite: statement coverage and the tests per statement. "
                    "Run the suite itself with: pytest --pyargs conformance --broker=TARGET",
        epilog=EPILOG)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    version_choices = [*VERSIONS, "all"]
    cover = commands.add_parser(
        "coverage", help="which server-side normative statements have a test, per version and packet",
        description="Reads the @pytest.mark.spec tags of the suite (without running it) and sets them against "
                    "the statement catalogue: tested, not checkable black-box (with the catalogue's reason), "
                    "untested.")
    cover.add_argument("--version", choices=version_choices, default="all", help="protocol version (default: all)")
    cover.add_argument("--missing", action="store_true", help="list the untested statements")
    cover.add_argument("--json", action="store_true", help="print machine-readable JSON instead of tables")
    listing = commands.add_parser(
        "list", help="the tests of each statement (optionally chosen like pytest's --statement / --section)",
        description="Prints, per MQTT version and statement, the tests that check it, or why none does "
                    "(untested, or not checkable black-box with the catalogue's reason). --statement and "
                    "--section choose statements exactly as the suite's pytest options do.")
    listing.add_argument("--version", choices=version_choices, default="all", help="protocol version (default: all)")
    listing.add_argument("--statement", action="append", default=[], metavar="GLOB",
                         help="statements matching GLOB, e.g. 'MQTT-3.3.1-*' (repeatable)")
    listing.add_argument("--section", action="append", default=[], metavar="N",
                         help="statements of spec section N and its subsections, e.g. 3.8 (repeatable)")
    listing.add_argument("--all-actors", action="store_true",
                         help="also client-side statements that no test checks (default: server side and tested)")
    listing.add_argument("--json", action="store_true", help="print machine-readable JSON")
    repeat = commands.add_parser(
        "compare", help="do identical runs give identical verdicts? (per test and per statement)",
        description="Reads two or more results files (--results of runs of the same suite against the same "
                    "broker) and prints every test and every (test, statement) whose verdict differs. Exit "
                    "status 1 when any does.")
    repeat.add_argument("results", nargs="+", metavar="RESULTS.json", help="results files (two or more)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "compare":
        return _compare(args.results)
    versions = list(VERSIONS) if args.version == "all" else [args.version]
    if not coverage.TESTS_DIR.is_dir():
        print(f"error: no test modules found in {coverage.TESTS_DIR}", file=sys.stderr)
        return 1
    if args.command == "list":
        return _list(args, versions)
    result = coverage.compute(coverage.scan_tags(), versions)
    if args.json:
        print(json.dumps({v: {"statements": len(c.statements), "tested": sorted(c.tested),
                              "not_checkable": [s.id for s in c.not_checkable],
                              "untested": [s.id for s in c.untested],
                              "unknown_ids": c.unknown_ids} for v, c in result.items()}, indent=2))
    else:
        print("\n\n".join(coverage.format_report(c, args.missing) for c in result.values()))
    return 0


def _compare(paths: list[str]) -> int:
    if len(paths) < 2:
        print("error: compare needs at least two results files", file=sys.stderr)
        return 2
    try:
        result = compare.compare_runs(paths)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(compare.format_comparison(result))
    return 0 if result.identical else 1


def _list(args, versions: list[str]) -> int:
    selection = Selection(args.statement, args.section, versions)
    try:
        selection.check()
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    result = coverage.compute(coverage.scan_tags(), versions)
    document: dict[str, list[dict]] = {}
    for version in versions:
        tested = result[version].tested
        rows = []
        for (statement_version, _), statement in load_catalogue().items():
            if statement_version != version or (selection.active and not selection.chosen(statement)):
                continue
            tests = sorted(set(tested.get(statement.id, [])))
            if not tests and statement.actor == "client" and not args.all_actors:
                continue
            status = "tested" if tests else "untested" if statement.checkable else "not checkable black-box"
            rows.append({"id": statement.id, "section": statement.section, "packet": statement.packet,
                         "status": status, "tests": tests, "summary": statement.summary,
                         "reason": "" if statement.checkable else statement.not_checkable_reason})
        document[version] = rows
    if args.json:
        print(json.dumps(document, indent=2))
        return 0
    for version, rows in document.items():
        if not rows:
            continue
        tests = sum(len(r["tests"]) for r in rows)
        print(f"MQTT {version}: {len(rows)} statement(s), {tests} test tag(s)")
        for row in rows:
            print(f"  {row['id']:<18} §{row['section']:<10} {row['packet']:<14} {row['status']}"
                  + (f": {row['reason']}" if row["reason"] and not row["tests"] else ""))
            for test in row["tests"]:
                print(f"      {test}")
        print()
    if selection.active:
        chosen = " ".join([*(f"--statement '{p}'" for p in args.statement), *(f"--section {s}" for s in args.section)])
        print(f"run them: pytest --pyargs conformance --broker=TARGET {chosen}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
