"""python -m conformance.policy: the policy checks with their listener x check table.

    python -m conformance.policy run LAYOUT [--label NAME] [--results FILE] [--format text|markdown] [-- PYTEST-ARGS]
    python -m conformance.policy table RESULTS.json... [--format text|markdown]

`run` checks the broker serving LAYOUT (the same checks as `pytest --pyargs conformance.policy
--policy-layout LAYOUT`), writes every verdict to a results file and prints the table: one row per
listener (port, transport, what it is for), one column per check, cells pass / fail / n.a.
`table` prints the table of results files written earlier (text, or Markdown for a note).
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

from refbroker.cli_hints import SuggestingArgumentParser

from .layout import load_layout
from .table import ResultsError, render_markdown, render_text, validate

EPILOG = """examples:
  refbroker --test-server --out test-server &                     # a local test.mosquitto.org
  python -m conformance.policy run test-server --label refbroker
  mosquitto -c test-server/mosquitto.conf &                       # the same layout on mosquitto
  python -m conformance.policy run test-server --label "mosquitto 2.0.11" --format markdown
  python -m conformance.policy table results/policy-refbroker.json --format markdown
  python -m conformance.policy run public --cafile mosquitto.org.crt  # test.mosquitto.org itself

exit status: 0 every check passed, 1 a check did not pass, 2 bad arguments or unusable files,
3 nothing listens on the layout's listeners."""


def _parser() -> SuggestingArgumentParser:
    parser = SuggestingArgumentParser(
        prog="python -m conformance.policy",
        description="Check a broker against the test server policy (test.mosquitto.org's listeners, users and "
                    "rules) and print the listener x check table: one row per listener, one column per check.",
        epilog=EPILOG)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    run = commands.add_parser(
        "run", help="run the checks against a running broker, save the verdicts, print the table",
        description="Runs the policy checks (conformance/policy/test_policy.py) against the broker that serves "
                    "LAYOUT, writes the verdicts to a results file and prints the listener x check table. The "
                    "broker must be running: refbroker --test-server --out DIR, or mosquitto -c DIR/mosquitto.conf.",
        epilog="Arguments after -- go to pytest (e.g. -- -x -k rights).")
    run.add_argument("layout", metavar="LAYOUT",
                     help="the layout.json refbroker --test-server wrote (or its directory), or 'public' for "
                          "test.mosquitto.org")
    run.add_argument("--label", default=None,
                     help="the run's name in the table and in the default results file name (default: HOST:PORT "
                          "of the first listener)")
    run.add_argument("--results", default=None, metavar="FILE",
                     help="where the verdicts go (default: results/policy-LABEL.json)")
    run.add_argument("--format", choices=("text", "markdown"), default="text", help="table format (default text)")
    run.add_argument("--cafile", default=None, metavar="FILE", help="CA of the TLS listeners (default: the layout's)")
    run.add_argument("--client-cert", default=None, metavar="FILE",
                     help="client certificate for the client-certificate listener (default: the layout's)")
    run.add_argument("--client-key", default=None, metavar="FILE", help="its private key")
    table = commands.add_parser(
        "table", help="print the table of saved results",
        description="Prints the listener x check table of results files that `run` wrote, one after the other.")
    table.add_argument("results", nargs="+", metavar="RESULTS.json", help="results files of `run`")
    table.add_argument("--format", choices=("text", "markdown"), default="text", help="table format (default text)")
    return parser


def _render(results: dict, form: str) -> str:
    return render_markdown(results) if form == "markdown" else render_text(results)


def _default_results(label: str) -> Path:
    return Path("results") / f"policy-{re.sub(r'[^A-Za-z0-9._-]+', '_', label).strip('_') or 'run'}.json"


def _run(args, pytest_args: list[str]) -> int:
    from .run import reachable, run  # pytest is imported only for a run

    try:
        layout = load_layout(args.layout, cafile=args.cafile, client_cert=args.client_cert,
                             client_key=args.client_key)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if not layout.listeners:
        print(f"error: {args.layout}: the layout has no listeners", file=sys.stderr)
        return 2
    closed = reachable(layout)
    if len(closed) == len(layout.listeners):
        first = layout.listeners[0]
        print(f"error: nothing listens on {layout.host}:{first.port} or the layout's other ports: start the test "
              f"server first (refbroker --test-server --out DIR, or mosquitto -c DIR/mosquitto.conf)", file=sys.stderr)
        return 3
    for listener in closed:
        print(f"warning: nothing listens on {layout.host}:{listener.port} ({listener.id}, {listener.purpose}): "
              "its checks will fail", file=sys.stderr)
    label = args.label or f"{layout.host}:{layout.listeners[0].port}"
    path = Path(args.results) if args.results else _default_results(label)
    print(f"policy checks against {layout.host} ({len(layout.listeners)} listeners, layout {layout.source}); "
          f"verdicts: {path}", flush=True)
    results, status = run(layout, args.layout, label=label, pytest_args=pytest_args or ["-q"])
    if status not in (0, 1):  # pytest: 2 interrupted, 3 internal error, 4 usage error, 5 no tests
        print(f"error: pytest ended with status {status}: no table (see its output above)", file=sys.stderr)
        return 2
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(results, indent=1) + "\n", encoding="utf-8")
    except OSError as exc:
        print(f"error: cannot write {path}: {exc.strerror or exc}", file=sys.stderr)
        print(_render(results, args.format))
        return 2
    print()
    print(_render(results, args.format))
    print(f"\nverdicts written to {path}")
    return 0 if all(record["outcome"] in ("pass", "skip") for record in results["checks"]) else 1


def _table(args) -> int:
    shown = []
    for name in args.results:
        try:
            results = validate(json.loads(Path(name).read_text(encoding="utf-8")), name)
        except OSError as exc:
            print(f"error: cannot read {name}: {exc.strerror or exc}", file=sys.stderr)
            return 2
        except json.JSONDecodeError as exc:
            print(f"error: {name} is not JSON ({exc.msg}, line {exc.lineno})", file=sys.stderr)
            return 2
        except ResultsError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        shown.append(_render(results, args.format))
    print("\n\n".join(shown))
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    pytest_args: list[str] = []
    if "--" in argv:
        cut = argv.index("--")
        argv, pytest_args = argv[:cut], argv[cut + 1:]
    args = _parser().parse_args(argv)
    if args.command == "run":
        return _run(args, pytest_args)
    if pytest_args:
        print("error: arguments after -- go to pytest, and only `run` runs it", file=sys.stderr)
        return 2
    return _table(args)


if __name__ == "__main__":
    sys.exit(main())
