"""`python -m reports run`: the suite against one broker, then the HTML report, with an exit status for CI.

    python -m reports run                                   # embedded refbroker -> results/refbroker.json
    python -m reports run --broker 127.0.0.1:1883 --section 3.8
    python -m reports run --broker mosquitto --allow-failures -- -x

This is what `./run report` and `tox -e report` call. It owns three decisions:

* the results file is named after the target (`results/<target>.json`: `refbroker.json`,
  `mosquitto.json`, `127.0.0.1_1883.json`, `docker_mosquitto-2.0.21.json`), so runs against different
  brokers never overwrite each other;
* the report is built from that file whatever the suite's outcome;
* the exit status: 0 when every failure is a known deviation of that broker; 1 when a test failed in a
  way no known deviation explains, or could not run (error), unless `--allow-failures`; 2 for bad
  arguments or when the suite wrote no results at all. The last line says which and why.

Options it does not know go to pytest unchanged (e.g. `-k`, `-x`, `--target-profile`).
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from refbroker.cli_hints import SuggestingArgumentParser

from .build_command import build_report
from .results import ResultsError, Run, load_runs

EXIT_OK, EXIT_FAILURES, EXIT_BAD_INPUT = 0, 1, 2


def results_name(broker: str | None) -> str:
    """The results file name for a --broker option: 'refbroker.json', '127.0.0.1_1883.json', ..."""
    text = (broker or "refbroker").strip() or "refbroker"
    safe = re.sub(r"[^A-Za-z0-9.-]+", "_", text).strip("_.") or "target"
    return f"{safe}.json"


def gate(run: Run) -> tuple[int, str]:
    """(exit status, summary line) of one run: non-zero when a failure is not a known deviation."""
    counts = {outcome: sum(1 for t in run.tests if t.outcome == outcome)
              for outcome in ("pass", "fail", "deviation", "not-applicable", "error")}
    parts = (f"{counts['pass']} pass, {counts['fail']} new failure(s), {counts['deviation']} known deviation(s), "
             f"{counts['error']} error(s), {counts['not-applicable']} not applicable")
    if run.target_error:
        return EXIT_FAILURES, f"{run.label}: the broker could not be used ({run.target_error}): {parts}"
    if not run.tests:
        return EXIT_FAILURES, f"{run.label}: no conformance test ran"
    if counts["fail"] or counts["error"]:
        return EXIT_FAILURES, f"{run.label}: {parts}: FAILED (a failure that is not a known deviation)"
    why = "every failure is a known deviation" if counts["deviation"] else "no failure"
    return EXIT_OK, f"{run.label}: {parts}: OK ({why})"


def _parser() -> SuggestingArgumentParser:
    parser = SuggestingArgumentParser(
        prog="python -m reports run",
        description="Run the conformance suite against one broker, write results/<target>.json and the HTML "
                    "report, and exit 1 when a test fails in a way that is not a known deviation of that broker.",
        epilog="Options not listed here go to pytest unchanged, e.g. -k EXPR, -x, --target-profile FILE; "
               "so do arguments after '--'.")
    parser.add_argument("--broker", default="refbroker", metavar="TARGET",
                        help="refbroker (default, embedded), mosquitto, mosquitto:/path, docker:mosquitto-2.0.21 "
                             "or HOST:PORT")
    parser.add_argument("--mqtt-version", default="all", metavar="V", help="3.1, 3.1.1, 5.0 or all (default)")
    parser.add_argument("--statement", action="append", default=[], metavar="GLOB",
                        help="only the tests of statements matching GLOB (repeatable)")
    parser.add_argument("--section", action="append", default=[], metavar="N",
                        help="only the tests of spec section N and its subsections (repeatable)")
    parser.add_argument("--allow-failures", action="store_true",
                        help="exit 0 even when a failure is not a known deviation (the summary still says so)")
    parser.add_argument("--results-dir", type=Path, default=Path("results"),
                        help="where results/<target>.json goes (default: results)")
    parser.add_argument("-o", "--output", type=Path, default=Path("reports/html"),
                        help="report directory (default: reports/html)")
    parser.add_argument("--junitxml", type=Path, default=None, metavar="PATH",
                        help="also write JUnit XML (with statement ids and outcomes as properties)")
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    passthrough: list[str] = []
    if "--" in argv:
        index = argv.index("--")
        argv, passthrough = argv[:index], argv[index + 1:]
    args, unknown = _parser().parse_known_args(argv)
    pytest_args = [*unknown, *passthrough]
    results = (args.results_dir / results_name(args.broker)).resolve()
    command = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--pyargs", "conformance",
               f"--broker={args.broker}", f"--mqtt-version={args.mqtt_version}", f"--results={results}",
               *(f"--statement={s}" for s in args.statement), *(f"--section={s}" for s in args.section)]
    if args.junitxml is not None:
        command.append(f"--junitxml={args.junitxml.resolve()}")
    command += pytest_args or ["-q"]
    print("== " + " ".join(command[1:]), flush=True)
    if results.exists():
        results.unlink()  # a stale file must not pass for this run's results
    completed = subprocess.run(command, check=False)
    if not results.exists():
        print(f"error: the suite wrote no results (pytest exit status {completed.returncode}); nothing to report",
              file=sys.stderr)
        return EXIT_BAD_INPUT if completed.returncode in (2, 4, 5) else EXIT_FAILURES
    status = build_report([results], args.output)
    if status == EXIT_BAD_INPUT:
        return EXIT_BAD_INPUT
    try:
        run = load_runs([results])[0]
    except ResultsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    code, line = gate(run)
    if code and args.allow_failures:
        line += "; exit 0 because of --allow-failures"
        code = EXIT_OK
    elif code:
        line += " -> exit 1 (--allow-failures to accept)"
    print(f"results file: {results}")
    print(line)
    return code


if __name__ == "__main__":
    sys.exit(main())
